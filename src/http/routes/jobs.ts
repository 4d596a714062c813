// Jobs: POST /jobs queues an explanation of one or many images (POST /cam's fields) and answers 202 with
// its Location; GET /jobs/{id} shows its state, progress and results; GET /jobs/{id}/events streams them
// (server-sent events, resumable with Last-Event-ID); GET /jobs/{id}/results/{n}.png is an image's PNG;
// DELETE /jobs/{id} cancels it (or deletes a finished one).
import { createHash, randomUUID } from 'node:crypto';
import type { IRouter, Request, Response } from 'express';
import { CAM_PARAMETERS, collectParameters } from '../../api/index.js';
import { CamserveError, badParameter } from '../../errors/index.js';
import { clientOf, ownerOf } from '../access.js';
import { requirePool, routeLabel, type AppContext } from '../context.js';
import { jobPlan } from '../jobs/run.js';
import { TERMINAL, viewOf, type Idempotency, type JobEvent, type JobRecord } from '../jobs/types.js';
import { decodeAt } from './cam.js';
import { readUpload } from '../upload.js';

export const JOB_ROUTES: Record<string, string[]> = {
  '/jobs': ['POST'],
  '/jobs/{id}': ['GET', 'HEAD', 'DELETE'],
  '/jobs/{id}/events': ['GET'],
  '/jobs/{id}/results/{n}.png': ['GET', 'HEAD'],
};

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const JOB_ID = /^[0-9a-f-]{36}$/;

/** A request's Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) and the request's fingerprint. */
function idempotency(req: Request, params: Record<string, string>, images: Buffer[]): Idempotency | undefined {
  const key = req.headers['idempotency-key'];
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key)) {
    throw badParameter('Idempotency-Key', '1-255 visible ASCII characters', typeof key === 'string' ? key.slice(0, 64) : null, 'the Idempotency-Key header must be 1-255 visible ASCII characters');
  }
  const h = createHash('sha256');
  h.update(JSON.stringify(Object.entries(params).sort(([a], [b]) => a.localeCompare(b))));
  for (const img of images) h.update(createHash('sha256').update(img).digest());
  return { key, fingerprint: h.digest('hex') };
}

function jobId(req: Request): string {
  const id = String(req.params.id);
  // Ids are UUIDs: anything else is no job (and never reaches Redis as a key).
  if (!JOB_ID.test(id)) throw new CamserveError('not-found', `no job ${id.slice(0, 64)}`);
  return id;
}

export function jobsRoutes(router: IRouter, ctx: AppContext): void {
  router.post('/jobs', async (req: Request, res: Response) => {
    routeLabel(res, '/jobs');
    res.setHeader('Cache-Control', 'no-store');
    requirePool(ctx);
    const jobs = ctx.jobs();
    const upload = await readUpload(req, res, { ...ctx.config, maxFiles: ctx.config.maxJobImages, json: true });
    const raw = collectParameters('POST /jobs', CAM_PARAMETERS, req.query as Record<string, unknown>, upload.fields);
    if (raw.has('timeout_ms')) throw badParameter('timeout_ms', 'not for jobs', raw.get('timeout_ms'), 'a job has no deadline: watch it and cancel it with DELETE /jobs/{id}');
    const params = Object.fromEntries(raw);
    const plan = jobPlan(ctx, { params, model: raw.get('model') ?? ctx.defaultModel() ?? '' });
    res.locals.camMethod = plan.params.method;
    res.locals.model = plan.info.id;
    if (upload.images.length === 0) {
      throw new CamserveError('missing-image', 'no image: send multipart/form-data with the files in field "image", the image itself as the body, or JSON { "images": [base64, …] }', { parameter: 'image' });
    }
    await ctx.access.consume(req, res, upload.images.length, true);
    // Images that cannot be explained are refused now, not found out later.
    for (const [i, bytes] of upload.images.entries()) await decodeAt(ctx, bytes, upload.images.length > 1 ? i : undefined);
    if (ctx.shuttingDown()) throw new CamserveError('shutting-down', 'the server is shutting down');

    const record: JobRecord = {
      id: randomUUID(), owner: ownerOf(res), client: clientOf(req, res), state: 'queued',
      model: plan.info.id, method: plan.params.method, images: upload.images.length,
      created_at: Date.now(), progress: { done: 0, total: 0, images_done: 0 },
    };
    const { record: r, created } = await jobs.submit(record, { params, images: upload.images, model: plan.info.id }, idempotency(req, params, upload.images));
    if (!created) res.setHeader('Idempotent-Replayed', 'true');
    res.status(202).location(`/jobs/${r.id}`).json(viewOf(r));
  });

  router.get('/jobs/:id', async (req: Request, res: Response) => {
    routeLabel(res, '/jobs/{id}');
    res.setHeader('Cache-Control', 'no-store');
    const r = await ctx.jobs().get(jobId(req), ownerOf(res));
    res.locals.model = r.model;
    res.locals.camMethod = r.method;
    res.json(viewOf(r));
  });

  router.delete('/jobs/:id', async (req: Request, res: Response) => {
    routeLabel(res, '/jobs/{id}');
    res.setHeader('Cache-Control', 'no-store');
    const { record, deleted } = await ctx.jobs().cancel(jobId(req), ownerOf(res));
    res.locals.model = record.model;
    if (deleted) {
      res.status(204).end();
      return;
    }
    res.status(202).json(viewOf(record));
  });

  router.get('/jobs/:id/results/:file', async (req: Request, res: Response) => {
    routeLabel(res, '/jobs/{id}/results/{n}.png');
    const m = /^(\d{1,6})\.png$/.exec(String(req.params.file));
    if (!m) throw new CamserveError('not-found', `no route ${req.method} ${req.path}`);
    const png = await ctx.jobs().png(jobId(req), ownerOf(res), Number(m[1]));
    res.setHeader('Cache-Control', 'private, max-age=60');
    res.type('image/png').send(png);
  });

  router.get('/jobs/:id/events', async (req: Request, res: Response) => {
    routeLabel(res, '/jobs/{id}/events');
    const id = jobId(req);
    const last = req.headers['last-event-id'];
    let open = true;
    let ended = false;
    const pending: JobEvent[] = [];
    const write = (e: JobEvent) => {
      if (!open) return;
      // One event: its id (for Last-Event-ID), its name, the job as JSON on one line.
      res.write(`id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
      if (TERMINAL.has(e.data.state) && e.event !== 'progress') end();
    };
    const end = () => {
      if (ended) return;
      ended = true;
      open = false;
      clearInterval(heartbeat);
      sub?.unsubscribe();
      forget?.();
      res.end();
    };
    let forget: (() => void) | undefined;
    let headersSent = false;
    // Events that arrive while the backlog is read wait until the headers are out.
    let sub: { unsubscribe(): void } | undefined;
    let heartbeat: NodeJS.Timeout | undefined;
    sub = await ctx.jobs().subscribe(id, ownerOf(res), typeof last === 'string' ? last.trim() : undefined, (e) => {
      if (headersSent) write(e);
      else pending.push(e);
    });
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Accel-Buffering', 'no');
    res.setHeader('Connection', 'keep-alive');
    res.flushHeaders();
    headersSent = true;
    res.write(`retry: 2000\n\n`);
    heartbeat = setInterval(() => { if (open) res.write(': heartbeat\n\n'); }, ctx.config.sseHeartbeatS * 1000);
    heartbeat.unref();
    res.on('close', () => {
      open = false;
      clearInterval(heartbeat);
      sub?.unsubscribe();
      forget?.();
    });
    forget = ctx.onShutdown(end);
    if (ctx.shuttingDown()) end();
    for (const e of pending.splice(0)) write(e);
    // A finished job whose last event was before Last-Event-ID has nothing more to say.
    const now = await ctx.jobs().get(id, ownerOf(res)).catch(() => undefined);
    if (!ended && (!now || TERMINAL.has(now.state))) end();
  });
}
