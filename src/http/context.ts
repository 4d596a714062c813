// What every route of the app shares: the configuration, metrics, the pool once it is ready, the default
// model, the shutdown state, the render thread; and the small steps every handler starts with.
import type { Request, Response } from 'express';
import type { ExplainRequest, ExplainResult, TensorsRequest, TensorsResult } from '../engine/index.js';
import { isMethodName } from '../cam/index.js';
import { CamserveError } from '../errors/index.js';
import type { ModelFacts } from '../inspect/index.js';
import type { RenderJob } from '../render/index.js';
import type { JobOptions, ModelStatus, ReloadChanges, Reservation } from '../workers/index.js';
import type { Access } from './access.js';
import { clientOf } from './access.js';
import type { ServerConfig } from './config.js';
import type { JobBackend } from './jobs/types.js';
import type { Metrics } from './metrics.js';

/** What the routes need of the inference pool (InferencePool, or a stand-in in tests). */
export interface ServicePool {
  models(): ModelStatus[];
  stats(): { workers: number; busy: number; queued: number; replaced?: number; coalesced?: number };
  explain(modelId: string, req: ExplainRequest, opts?: JobOptions): Promise<ExplainResult>;
  /** several inputs as one queued job (one trunk run where the model takes batches); else explain one by one */
  explainBatch?(modelId: string, reqs: ExplainRequest[], opts?: JobOptions & { maxBatch?: number }): Promise<ExplainResult[]>;
  tensors(modelId: string, req: TensorsRequest, opts?: JobOptions): Promise<TensorsResult>;
  facts(modelId: string, opts?: JobOptions): Promise<ModelFacts>;
  /** the refusal a new job of `weight` inputs from `client` would get now (queue full, client's share taken, shutting down), if any */
  full?(weight?: number, client?: string): CamserveError | undefined;
  /** a place in the queue for a request about to upload its image, or the refusal it gets now */
  reserve?(weight?: number, client?: string): Reservation | CamserveError;
  /** loads the models folder as it is now (POST /admin/reload) */
  reload?(): Promise<{ changes: ReloadChanges; models: ModelStatus[] }>;
}

export interface AppContext {
  config: ServerConfig;
  metrics: Metrics;
  /** the pool once models are loaded */
  pool(): ServicePool | undefined;
  defaultModel(): string | undefined;
  shuttingDown(): boolean;
  /** PNGs of a render job, made off the HTTP thread */
  render(job: RenderJob): Promise<Buffer[]>;
  /** API keys, rate limits, CORS */
  access: Access;
  /** where jobs live (in the process, or Redis) */
  jobs(): JobBackend;
  /** `f` is called when shutdown begins (event streams end); the returned function forgets it */
  onShutdown(f: () => void): () => void;
}

/** The pool, or 503 not-ready while the models load. */
export function requirePool(ctx: AppContext): ServicePool {
  const pool = ctx.pool();
  if (!pool) throw new CamserveError('not-ready', 'the models are still loading');
  return pool;
}

/** Labels the answer with its route template (logs, metrics). */
export function routeLabel(res: Response, template: string): void {
  res.locals.route = template;
}

/** A signal that fires when the client leaves before its answer is complete. */
export function clientGone(res: Response): AbortSignal {
  const ac = new AbortController();
  res.on('close', () => { if (!res.writableFinished) ac.abort(); });
  return ac.signal;
}

/**
 * The signal of a request's job: the client leaves, or its deadline (`timeoutMs` after `startedAt`)
 * passes — then the signal's reason is a TimeoutError, which the pool reports as deadline-exceeded.
 */
export function jobSignal(gone: AbortSignal, startedAt: number, timeoutMs: number): AbortSignal {
  return AbortSignal.any([gone, AbortSignal.timeout(Math.max(1, Math.ceil(timeoutMs - (performance.now() - startedAt))))]);
}

/**
 * Admission before any work: with every worker busy and the queue full (counting requests admitted but
 * not queued yet), the client's share taken, or the server stopping, the request is refused before its
 * body is parsed or decoded. Otherwise it holds a place in the queue until its job takes it or it ends.
 */
export function admit(pool: ServicePool, req: Request, res: Response): Reservation | undefined {
  const place = pool.reserve?.(1, clientOf(req, res));
  if (place === undefined) return undefined;
  if (!(place instanceof CamserveError)) {
    // Given back if the request ends (refused, failed, client gone) before its job took the place.
    res.once('close', () => place.release());
    return place;
  }
  // Metrics and logs name the model and method when the query string gives valid ones (the body is not read).
  const { model, method } = req.query as Record<string, unknown>;
  if (typeof model === 'string' && pool.models().some((m) => m.id === model)) res.locals.model = model;
  if (typeof method === 'string' && isMethodName(method)) res.locals.camMethod = method;
  // No `Connection: close`: Node discards the unread body and keeps the connection, where closing it
  // under a client still sending would reset the connection instead of answering.
  throw place;
}

/** The model a request names (a 404 if none such, 422 if it failed to load). */
export function findModel(models: ModelStatus[], id: string | undefined, parameter = 'model') {
  const status = models.find((m) => m.id === id);
  if (!id || !status) {
    throw new CamserveError('unknown-model', id ? `no model "${id}"` : 'no model is loaded, so a request must name one',
      { parameter, allowed: models.map((m) => m.id), received: id ?? null });
  }
  if (!status.ok) throw new CamserveError('model-unavailable', `model "${id}" failed to load: ${status.error}`, { model: id });
  return status.info;
}

/** The request's id (set by pino-http), for problem bodies. */
export function requestId(req: Request): string {
  return typeof req.id === 'string' ? req.id : String(req.id ?? '');
}
