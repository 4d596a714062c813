// The Express application: routes of the HTTP contract (design §3, openapi.yaml), request logging
// and metrics, problem+json for every failure. Inference happens in the pool, never on this thread.
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { pino, type Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { ServerConfig } from './config.js';
import { camHandler, type ExplainPool } from './routes/cam.js';
import { createMetrics, type Metrics } from './metrics.js';
import { chooseDefaultModel, modelDetails, modelList } from './routes/models.js';
import { HttpProblem, sendProblem } from './problem.js';
import { Renderer } from '../workers/renderer.js';
import { inspectRouter, type InspectPool } from './routes/inspect.js';

export type { ExplainPool } from './routes/cam.js';

/** Routes of the contract and the HTTP methods each allows (others get 405). */
export const ROUTES: Record<string, string[]> = {
  '/': ['GET', 'HEAD'],
  '/cam': ['POST'],
  '/models': ['GET', 'HEAD'],
  '/models/{id}': ['GET', 'HEAD'],
  '/healthz': ['GET', 'HEAD'],
  '/readyz': ['GET', 'HEAD'],
  '/metrics': ['GET', 'HEAD'],
  '/openapi.yaml': ['GET', 'HEAD'],
};

export interface CamserveControl {
  metrics: Metrics;
  logger: Logger;
  /** resolves with the pool once the models are loaded and the default model is known */
  ready: Promise<ExplainPool>;
  /** from now on /readyz answers 503 and every answer closes its connection */
  beginShutdown(): void;
  isShuttingDown(): boolean;
  /** stops the render thread (after the server has closed) */
  close(): Promise<void>;
}

export type CamserveApp = express.Express & { camserve: CamserveControl };

export interface AppOptions {
  /** default: a pino logger at config.logLevel writing to stdout */
  logger?: Logger;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * The application. `pool` may still be loading (a promise): meanwhile /healthz answers, /readyz and
 * the model routes answer 503.
 */
export function createApp(pool: ExplainPool | Promise<ExplainPool>, config: ServerConfig, options: AppOptions = {}): CamserveApp {
  const logger = options.logger ?? pino({ level: config.logLevel });
  let current: ExplainPool | undefined;
  let defaultModel: string | undefined;
  let shuttingDown = false;
  const metrics = createMetrics(() => current);
  const renderer = new Renderer();
  const ready = Promise.resolve(pool).then((p) => {
    defaultModel = chooseDefaultModel(p.models(), config.defaultModel);
    current = p;
    return p;
  });
  ready.catch(() => undefined); // the caller (startServer) reports it

  const app = express() as CamserveApp;
  app.camserve = {
    metrics, logger, ready,
    beginShutdown: () => { shuttingDown = true; },
    isShuttingDown: () => shuttingDown,
    close: () => renderer.close(),
  };
  app.disable('x-powered-by');
  app.set('etag', false);

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
      return { ...(route ? { route } : {}), ...(l.model ? { model: l.model } : {}), ...(l.camMethod ? { cam_method: l.camMethod } : {}) };
    },
    customLogLevel: (_req, res, err) => {
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

  // Metrics of every answer, labelled by the route template the handler set.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const end = metrics.duration.startTimer();
    if (shuttingDown) res.setHeader('Connection', 'close');
    res.once('close', () => {
      const l = res.locals;
      const labels = { route: l.route ?? 'unmatched', http_method: req.method, cam_method: l.camMethod ?? '', model: l.model ?? '' };
      end(labels);
      metrics.requests.inc({ ...labels, status: res.writableFinished ? String(res.statusCode) : 'aborted' });
    });
    next();
  });

  const retry = { 'Retry-After': String(config.retryAfterSeconds) };
  const requirePool = (): ExplainPool => {
    if (!current) throw new HttpProblem('not-ready', 'the models are still loading', {}, retry);
    return current;
  };
  const route = (name: string) => (_req: Request, res: Response, next: NextFunction) => {
    res.locals.route = name;
    next();
  };

  app.get('/healthz', route('/healthz'), (_req, res) => {
    res.json({ status: 'ok', uptime_s: Math.round(process.uptime()) });
  });

  app.get('/readyz', route('/readyz'), (_req, res) => {
    if (shuttingDown) throw new HttpProblem('shutting-down', 'the server is shutting down', {}, retry);
    const p = requirePool();
    const models = p.models();
    const ok = models.filter((m) => m.ok).length;
    if (ok === 0) {
      throw new HttpProblem('not-ready', `no model loaded from ${config.modelsDir}${models.length ? ': ' + models.map((m) => `${m.id}: ${m.ok ? 'ok' : m.error}`).join('; ') : ''}`, {}, retry);
    }
    res.json({ status: 'ready', models: { ready: ok, failed: models.length - ok }, default_model: defaultModel ?? null, ...p.stats() });
  });

  app.get('/metrics', route('/metrics'), async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.get('/openapi.yaml', route('/openapi.yaml'), (_req, res) => {
    res.type('application/yaml').sendFile(config.openapiFile);
  });

  app.get('/models', route('/models'), (_req, res) => {
    res.json(modelList(requirePool().models(), defaultModel));
  });

  app.get('/models/:id', route('/models/{id}'), (req, res) => {
    const id = String(req.params.id);
    const models = requirePool().models();
    const m = models.find((s) => s.id === id);
    if (!m) throw new HttpProblem('unknown-model', `no model "${id}"`, { parameter: 'id', allowed: models.map((s) => s.id), received: id });
    res.json(modelDetails(m));
  });

  app.post('/cam', camHandler({
    config, metrics,
    pool: () => current,
    defaultModel: () => defaultModel,
    shuttingDown: () => shuttingDown,
    render: (job) => renderer.render(job),
  }));

  app.use(inspectRouter({
    config,
    pool: () => current as (ExplainPool & InspectPool) | undefined,
    defaultModel: () => defaultModel,
    shuttingDown: () => shuttingDown,
  }));

  app.get('/', route('/'));
  app.use(express.static(config.publicDir, { index: 'index.html', fallthrough: true, maxAge: 0 }));

  // A known path with another HTTP method: 405 with Allow (OPTIONS: 204 with Allow).
  for (const [path, methods] of Object.entries(ROUTES)) {
    app.all(path.replace('{id}', ':id'), route(path), (req, res) => {
      const allow = [...methods, 'OPTIONS'].join(', ');
      res.setHeader('Allow', allow);
      if (req.method === 'OPTIONS') {
        res.status(204).end();
        return;
      }
      throw new HttpProblem('method-not-allowed', `${req.method} is not allowed on ${path}; allowed: ${allow}`, { allowed: [...methods, 'OPTIONS'], received: req.method });
    });
  }

  app.use((req: Request) => {
    throw new HttpProblem('not-found', `no route ${req.method} ${req.path}`);
  });

  // Every failure becomes problem+json; anything unexpected is logged with its stack and answered 500 without it.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const id = typeof req.id === 'string' ? req.id : String(req.id ?? '');
    if (err instanceof HttpProblem) {
      sendProblem(res, err, id);
      return;
    }
    const e = err as { status?: number; type?: string; message?: string };
    if (e?.type === 'entity.parse.failed' || (e?.status === 400 && e.type)) {
      sendProblem(res, new HttpProblem('bad-request', `the request cannot be read: ${e.message}`), id);
      return;
    }
    if (e?.type === 'request.aborted') return;
    req.log?.error({ err }, 'unhandled error');
    res.err = err as Error;
    sendProblem(res, new HttpProblem('internal', `an internal error occurred; it is logged under request id ${id}`), id);
  });

  return app;
}
