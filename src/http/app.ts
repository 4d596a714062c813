// The Express application: the routes of the contract (openapi.yaml), request logging and metrics, one
// 405 table, and problem+json for every failure. Inference happens in the pool, never on this thread.
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import { CamserveError } from '../errors/index.js';
import { Renderer } from '../workers/index.js';
import { Access } from './access.js';
import type { ServerConfig } from './config.js';
import { MemoryJobs } from './jobs/memory.js';
import { RedisJobs } from './jobs/redis.js';
import type { JobBackend } from './jobs/types.js';
import { requestId, routeLabel, type AppContext, type ServicePool } from './context.js';
import { createMetrics, type Metrics } from './metrics.js';
import { sendProblem } from './problem.js';
import { CAM_ROUTES, camRoutes } from './routes/cam.js';
import { INSPECT_ROUTES, inspectRoutes } from './routes/inspect.js';
import { JOB_ROUTES, jobsRoutes } from './routes/jobs.js';
import { MODEL_ROUTES, chooseDefaultModel, modelsRoutes } from './routes/models.js';
import { OPS_ROUTES, opsRoutes } from './routes/ops.js';
import { connectRedis, isRedisDown } from './redis.js';
import { ADMIN_ROUTES, adminRoutes } from './routes/admin.js';
import { KSERVE_ROUTES, kserveRoutes } from './routes/kserve.js';

export type { ServicePool } from './context.js';

/** Routes of the contract and the HTTP methods each allows (others get 405). */
export const ROUTES: Record<string, string[]> = {
  '/': ['GET', 'HEAD'],
  ...OPS_ROUTES,
  ...MODEL_ROUTES,
  ...CAM_ROUTES,
  ...INSPECT_ROUTES,
  ...JOB_ROUTES,
  ...ADMIN_ROUTES,
  ...KSERVE_ROUTES,
};

export interface CamserveControl {
  metrics: Metrics;
  logger: Logger;
  /** resolves with the pool once the models are loaded and the default model is known */
  ready: Promise<ServicePool>;
  /** from now on /readyz answers 503 and every answer closes its connection */
  beginShutdown(): void;
  isShuttingDown(): boolean;
  /** stops the jobs, the render thread and the Redis connections (after the server has closed) */
  close(): Promise<void>;
  /** API keys, rate limits, CORS */
  access: Access;
  /** where jobs live */
  jobs: JobBackend;
}

export type CamserveApp = express.Express & { camserve: CamserveControl };

export interface AppOptions {
  /** default: a pino logger at config.logLevel writing to stdout */
  logger?: Logger;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:", "connect-src 'self' blob:",
  "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join('; ');

/**
 * The application. `pool` may still be loading (a promise): meanwhile /healthz answers, /readyz and
 * the model routes answer 503.
 */
export function createApp(pool: ServicePool | Promise<ServicePool>, config: ServerConfig, options: AppOptions = {}): CamserveApp {
  const logger = options.logger ?? pino({ level: config.logLevel });
  let current: ServicePool | undefined;
  let defaultModel: string | undefined;
  let shuttingDown = false;
  let jobs: JobBackend | undefined;
  const metrics = createMetrics(() => current, () => jobs);
  const renderer = new Renderer();
  const redis: Redis | undefined = config.redisUrl ? connectRedis(config.redisUrl, logger, 'commands') : undefined;
  const publicFiles = readdirSync(config.publicDir, { withFileTypes: true }).filter((d) => d.isFile()).map((d) => `/${d.name}`);
  const access = new Access({ config, logger, metrics, redis, publicFiles });
  const shutdownHooks = new Set<() => void>();
  const ready = Promise.all([Promise.resolve(pool), access.ready]).then(([p]) => {
    defaultModel = chooseDefaultModel(p.models(), config.defaultModel);
    defaultFor = p.models();
    current = p;
    return p;
  });
  ready.catch(() => undefined); // the caller (startServer) reports it

  // The default model follows the set of models (a reload may add or remove it); a configured
  // DEFAULT_MODEL stays the default even while its folder is gone (its requests are then refused).
  let defaultFor: unknown;
  const currentDefault = () => {
    const models = current?.models();
    if (models && models !== defaultFor) {
      defaultFor = models;
      try {
        defaultModel = chooseDefaultModel(models, config.defaultModel);
      } catch {
        defaultModel = config.defaultModel;
      }
    }
    return defaultModel;
  };
  const ctx: AppContext = {
    config, metrics,
    pool: () => current,
    defaultModel: currentDefault,
    shuttingDown: () => shuttingDown,
    render: (job) => renderer.render(job),
    access,
    jobs: () => jobs!,
    onShutdown: (f) => {
      shutdownHooks.add(f);
      return () => shutdownHooks.delete(f);
    },
  };
  const limits = {
    maxJobs: config.maxJobs,
    perClient: Math.max(1, Math.ceil((config.maxJobs * config.maxQueuePerClient) / Math.max(1, config.maxQueue))),
    concurrency: config.jobConcurrency,
    ttlMs: config.jobTtlS * 1000,
    maxBytes: config.jobMaxBytes,
  };
  jobs = redis && config.redisUrl
    ? new RedisJobs(ctx, limits, logger, redis, config.redisUrl)
    : new MemoryJobs(ctx, limits, logger);
  // Jobs are taken from Redis only once the models are there to run them.
  if (jobs instanceof RedisJobs) {
    const r = jobs;
    ready.then(() => r.start(), () => undefined);
  }

  const app = express() as CamserveApp;
  app.camserve = {
    metrics, logger, ready, access, jobs,
    beginShutdown: () => {
      shuttingDown = true;
      for (const f of [...shutdownHooks]) f();
    },
    isShuttingDown: () => shuttingDown,
    close: async () => {
      await jobs!.close();
      access.close();
      await renderer.close();
      if (redis) await redis.quit().catch(() => redis.disconnect());
    },
  };
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', config.trustProxy);

  app.use(pinoHttp({
    logger,
    genReqId: (req, res) => {
      const given = req.headers['x-request-id'];
      const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    customProps: (_req, res) => {
      // Called when the request starts (nothing known yet) and again when its answer is sent.
      const l = (res as Response).locals ?? {};
      const route = l.route ?? (res.writableFinished ? 'unmatched' : undefined);
      return {
        ...(route ? { route } : {}), ...(l.model ? { model: l.model } : {}), ...(l.camMethod ? { cam_method: l.camMethod } : {}),
        ...(l.shed ? { shed_total: l.shed } : {}), ...(l.keyName ? { key: l.keyName } : {}),
      };
    },
    // 4xx (the client's fault) at info; shedding load (503) at warn with the running count; 5xx at error.
    customLogLevel: (_req, res, err) => {
      if (res.statusCode === 503) return 'warn';
      if (err || res.statusCode >= 500) return 'error';
      const route = (res as Response).locals?.route;
      if (res.statusCode < 400 && (route === '/healthz' || route === '/readyz' || route === '/metrics')) return 'debug';
      return 'info';
    },
    serializers: {
      req: (req: { id: unknown; method: string; url: string; remoteAddress?: string }) => ({ id: req.id, method: req.method, url: req.url, remoteAddress: req.remoteAddress }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  }));

  // Security headers on every answer; the page loads its own script, styles and data/blob images only.
  app.use((_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    next();
  });

  // Metrics of every answer, labelled by the route template the handler set.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const end = metrics.duration.startTimer();
    if (shuttingDown) res.setHeader('Connection', 'close');
    res.once('close', () => {
      const l = res.locals;
      const labels = { route: l.route ?? 'unmatched', http_method: req.method, cam_method: l.camMethod ?? '', model: l.model ?? '' };
      end(labels);
      const status = res.writableFinished ? String(res.statusCode) : 'aborted';
      metrics.requests.inc({ ...labels, status });
      if (access.keysOn) metrics.keyRequests.inc({ key: l.keyName ?? '', status });
    });
    next();
  });

  // CORS first (a preflight carries no key), then the key, then the rate limit of every route.
  app.use(access.cors);
  app.use(access.authenticate);
  app.use(access.limit);

  opsRoutes(app, ctx);
  modelsRoutes(app, ctx);
  camRoutes(app, ctx);
  inspectRoutes(app, ctx);
  jobsRoutes(app, ctx);
  adminRoutes(app, ctx);
  kserveRoutes(app, ctx);

  app.get('/', (_req, res, next) => { routeLabel(res, '/'); next(); });
  app.use(express.static(config.publicDir, { index: 'index.html', fallthrough: true, maxAge: 0 }));

  // A known path with another HTTP method: 405 with Allow (OPTIONS: 204 with Allow).
  for (const [path, methods] of Object.entries(ROUTES)) {
    app.all(path.replace(/\{(\w+)\}\.png$/, ':file').replace(/\{(\w+)\}/g, ':$1'), (req, res) => {
      routeLabel(res, path);
      const allow = [...methods, 'OPTIONS'].join(', ');
      res.setHeader('Allow', allow);
      if (req.method === 'OPTIONS') {
        res.status(204).end();
        return;
      }
      throw new CamserveError('method-not-allowed', `${req.method} is not allowed on ${path}; allowed: ${allow}`, { allowed: [...methods, 'OPTIONS'], received: req.method });
    });
  }

  app.use((req: Request) => {
    throw new CamserveError('not-found', `no route ${req.method} ${req.path}`);
  });

  // Every failure becomes problem+json; anything unexpected is logged with its stack and answered 500 without it.
  let shed = 0;
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const id = requestId(req);
    const e = toCamserveError(err);
    if (e.code === 'cancelled' && (res.destroyed || res.writableEnded)) {
      req.log?.info({ model: res.locals.model, cam_method: res.locals.camMethod }, 'client went away; its job was dropped');
      return;
    }
    if (e.code === 'internal') {
      res.err = err instanceof Error ? err : new Error(String(err));
      req.log?.error({ err }, 'internal error');
    }
    if (e.status === 503) {
      res.locals.shed = ++shed;
      metrics.shed.inc({ reason: e.code });
    }
    const answer = e.code === 'internal' ? new CamserveError('internal', `an internal error occurred; it is logged under request id ${id}`) : e;
    sendProblem(res, answer, { requestId: id, retryAfterSeconds: config.retryAfterSeconds });
  });

  return app;
}

/**
 * Any error as a CamserveError: ours as they are; the 4xx errors of express and its body parsers (a path
 * parameter that is not valid percent-encoding, a body that cannot be parsed) as `bad-request`; the rest
 * `internal`.
 */
function toCamserveError(err: unknown): CamserveError {
  if (err instanceof CamserveError) return err;
  const e = err as { status?: unknown; statusCode?: unknown; message?: unknown } | undefined;
  const status = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  if (status !== undefined && status >= 400 && status < 500) {
    return new CamserveError('bad-request', `the request cannot be read: ${typeof e?.message === 'string' ? e.message : 'malformed'}`);
  }
  if (err instanceof URIError) return new CamserveError('bad-request', `the request path is not valid percent-encoding: ${err.message}`);
  if (isRedisDown(err)) return new CamserveError('not-ready', 'the job store (Redis) cannot be reached; try again shortly');
  return new CamserveError('internal', err instanceof Error ? err.message : String(err));
}
