// Who may call, how often, and from which web origins: optional API keys (Authorization: Bearer or
// X-API-Key, checked against API_KEYS_FILE), rate limits per key (or per client address when keys are
// off) with express-rate-limit — one for every route, one for long work — and CORS for an allow-list of
// origins. With REDIS_URL the rate-limit counters live in Redis (rate-limit-redis), shared by replicas.
import type { Request, RequestHandler, Response } from 'express';
import { ipKeyGenerator, MemoryStore, rateLimit, type RateLimitRequestHandler, type Store } from 'express-rate-limit';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import { METHODS, isMethodName } from '../cam/index.js';
import { CamserveError } from '../errors/index.js';
import type { ServerConfig } from './config.js';
import { ApiKeys } from './keys.js';
import type { Metrics } from './metrics.js';

/** Headers a browser script may read from a cross-origin answer. */
export const CORS_EXPOSED_HEADERS = [
  'X-Camserve-Model', 'X-Camserve-Model-Version', 'X-Camserve-Method', 'X-Camserve-Class-Index', 'X-Camserve-Class-Label', 'X-Camserve-Class-Score',
  'X-Camserve-Layers', 'Server-Timing', 'X-Request-Id', 'Location', 'Retry-After', 'RateLimit', 'RateLimit-Policy',
  'WWW-Authenticate',
];
/** Request headers a cross-origin script may send. */
export const CORS_ALLOWED_HEADERS = ['Authorization', 'X-API-Key', 'Content-Type', 'Accept', 'Idempotency-Key', 'Last-Event-ID', 'X-Request-Id'];
export const CORS_MAX_AGE_S = 600;

/** The realm of the WWW-Authenticate challenge. */
const REALM = 'camserve';

/**
 * Methods whose cost is many model runs: Score-CAM and its kin (one forward run per channel), Ablation-CAM
 * (one head run per channel), input methods of ten runs or more (Integrated Gradients: 50), and aug_smooth.
 */
export function isLongWork(method: string, augSmooth: boolean): boolean {
  if (augSmooth) return true;
  if (!isMethodName(method)) return false;
  const m = METHODS[method];
  switch (m.kind) {
    case 'input': return m.runs >= 10;
    case 'factorization': return false;
    default: return m.needs === 'input-runs' || m.needs === 'head-runs';
  }
}

/** Who made a request: the key's name when keys are on, else the client address (behind TRUST_PROXY hops). */
export function clientOf(req: Request, res: Response): string {
  const name = res.locals.keyName as string | undefined;
  return name ? `key:${name}` : `ip:${ipKeyGenerator(req.ip ?? req.socket.remoteAddress ?? 'unknown')}`;
}

/** The owner of a job created by this request: the key's name, or null when keys are off. */
export function ownerOf(res: Response): string | null {
  return (res.locals.keyName as string | undefined) ?? null;
}

interface Limiter {
  name: string;
  limit: number;
  windowMs: number;
  store: Store;
  middleware: RateLimitRequestHandler;
}

export interface AccessOptions {
  config: ServerConfig;
  logger: Logger;
  metrics: Metrics;
  redis?: Redis;
  /** the web page's files (answered without a key) */
  publicFiles: string[];
}

export class Access {
  private keys?: ApiKeys;
  private readonly general?: Limiter;
  private readonly long?: Limiter;
  /** resolves when the key file is loaded (rejects when it cannot be read) */
  readonly ready: Promise<void>;

  constructor(private readonly opts: AccessOptions) {
    const { config } = opts;
    this.ready = config.apiKeysFile
      ? ApiKeys.open(config.apiKeysFile, opts.logger, config.apiKeysPollMs).then((k) => { this.keys = k; })
      : Promise.resolve();
    this.ready.catch(() => undefined); // startServer reports it
    if (config.rateLimit > 0) this.general = this.limiter('general', config.rateLimit);
    if (config.rateLimitLong > 0) this.long = this.limiter('long', config.rateLimitLong);
  }

  get keysOn(): boolean {
    return this.opts.config.apiKeysFile !== undefined;
  }

  /** Reloads the key file now (it is also reloaded on change). */
  async reloadKeys(): Promise<void> {
    await this.keys?.reload();
  }

  private limiter(name: string, limit: number): Limiter {
    const { config, redis } = this.opts;
    const windowMs = config.rateLimitWindowS * 1000;
    const store: Store = redis
      ? new RedisStore({
        prefix: `camserve:rl:${name}:`,
        sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as Promise<RedisReply>,
      })
      : new MemoryStore();
    const middleware = rateLimit({
      windowMs, limit, store,
      standardHeaders: 'draft-8', legacyHeaders: false, identifier: name,
      keyGenerator: (req, res) => clientOf(req, res),
      // A store that fails (Redis down) must not take the service with it: the request goes through, logged.
      passOnStoreError: true,
      logger: {
        error: (e, message) => this.opts.logger.error({ err: e instanceof Error ? { message: e.message, name: e.name } : e, limit: name }, message ?? 'rate limiter error'),
        warn: (e, message) => this.opts.logger.warn({ err: e instanceof Error ? { message: e.message, name: e.name } : e, limit: name }, message ?? 'rate limiter warning'),
      },
      validate: { xForwardedForHeader: false, trustProxy: false },
      handler: (req, res, next) => {
        this.opts.metrics.rateLimited.inc({ limit: name, key: (res.locals.keyName as string | undefined) ?? '' });
        next(new CamserveError('rate-limited', `rate limit "${name}" reached: at most ${limit} ${name === 'long' ? 'long explanations or jobs' : 'requests'} per ${config.rateLimitWindowS} s for this client`, { limit: name, allowed: limit, window_s: config.rateLimitWindowS }));
      },
    });
    return { name, limit, windowMs, store, middleware };
  }

  /** CORS: the allowed origins get Access-Control-* headers; their preflights are answered here. */
  readonly cors: RequestHandler = (req, res, next) => {
    const origins = this.opts.config.corsOrigins;
    if (origins.length === 0) return next();
    const any = origins.includes('*');
    if (!any) res.append('Vary', 'Origin');
    const origin = req.headers.origin;
    if (!origin || !(any || origins.includes(origin))) return next();
    res.setHeader('Access-Control-Allow-Origin', any ? '*' : origin);
    res.setHeader('Access-Control-Expose-Headers', CORS_EXPOSED_HEADERS.join(', '));
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
      res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, POST, DELETE, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', CORS_ALLOWED_HEADERS.join(', '));
      res.setHeader('Access-Control-Max-Age', String(CORS_MAX_AGE_S));
      res.locals.route = 'preflight';
      res.status(204).end();
      return;
    }
    next();
  };

  /** Paths answered without a key: the probes, the web page, and what the flags open. */
  private open(req: Request): boolean {
    if (req.method === 'OPTIONS') return true;
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const p = req.path;
    if (p === '/healthz' || p === '/readyz' || p === '/' || this.opts.publicFiles.includes(p)) return true;
    if (p === '/metrics' && this.opts.config.metricsPublic) return true;
    if (this.opts.config.kserveMetadataPublic && /^\/v1\/models\/[^/:]+$/.test(p)) return true;
    return false;
  }

  /** API keys: a valid one names the caller (res.locals.keyName); none or a wrong one is 401. */
  readonly authenticate: RequestHandler = (req, res, next) => {
    if (!this.keysOn || this.open(req)) return next();
    const keys = this.keys;
    if (!keys) throw new CamserveError('not-ready', 'the API keys are still loading');
    const given = presentedKey(req);
    const name = given === undefined ? undefined : keys.verify(given);
    if (name === undefined) {
      res.setHeader('WWW-Authenticate', given === undefined
        ? `Bearer realm="${REALM}"`
        : `Bearer realm="${REALM}", error="invalid_token", error_description="the API key is not valid"`);
      throw new CamserveError('unauthorized', given === undefined
        ? 'an API key is required: send Authorization: Bearer <key> (or X-API-Key: <key>)'
        : 'the API key is not valid');
    }
    res.locals.keyName = name;
    next();
  };

  /** The rate limit of every route but the probes (one hit per request). */
  readonly limit: RequestHandler = (req, res, next) => {
    if (!this.general || req.method === 'OPTIONS' || req.path === '/healthz' || req.path === '/readyz') return next();
    void this.general.middleware(req, res, next);
  };

  /**
   * Counts `n` units of work once a request's size is known: long work (when `long`) on the long limit,
   * and `n − 1` more requests on the general one (a batch of n images counts as n requests). Throws
   * `rate-limited` (429, Retry-After) when either is over.
   */
  async consume(req: Request, res: Response, n: number, long: boolean): Promise<void> {
    if (this.general && n > 1) await this.extraHits(this.general, req, res, n - 1);
    if (long && this.long) {
      await new Promise<void>((resolve, reject) => {
        void this.long!.middleware(req, res, (err?: unknown) => (err ? reject(err) : resolve()));
      });
      if (n > 1) await this.extraHits(this.long, req, res, n - 1);
    }
  }

  private async extraHits(l: Limiter, req: Request, res: Response, n: number): Promise<void> {
    const key = clientOf(req, res);
    let hits = 0;
    let resetTime: Date | undefined;
    try {
      for (let i = 0; i < n; i++) ({ totalHits: hits, resetTime } = await l.store.increment(key));
    } catch (e) {
      this.opts.logger.error({ err: e }, 'rate-limit store failed; request let through');
      return;
    }
    if (hits <= l.limit) return;
    const retry = Math.max(1, Math.ceil(((resetTime?.getTime() ?? Date.now() + l.windowMs) - Date.now()) / 1000));
    res.setHeader('Retry-After', String(retry));
    this.opts.metrics.rateLimited.inc({ limit: l.name, key: (res.locals.keyName as string | undefined) ?? '' });
    throw new CamserveError('rate-limited', `rate limit "${l.name}" reached: this request counts ${n + 1} and at most ${l.limit} are allowed per ${this.opts.config.rateLimitWindowS} s for this client`,
      { limit: l.name, allowed: l.limit, window_s: this.opts.config.rateLimitWindowS });
  }

  close(): void {
    this.keys?.close();
    for (const l of [this.general, this.long]) {
      if (l && l.store instanceof MemoryStore) l.store.shutdown();
    }
  }
}

/** The key a request presents: `Authorization: Bearer <key>`, else `X-API-Key`. */
function presentedKey(req: Request): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
    return '';
  }
  const x = req.headers['x-api-key'];
  return typeof x === 'string' && x.length > 0 ? x.trim() : undefined;
}
