// KServe's V1 inference protocol beside camserve's own API, so that an InferenceService with a custom
// container can run camserve as predictor and explainer:
//   GET  /v1/models                  {"models": [names of ready models]}
//   GET  /v1/models/{name}           {"name", "ready"}
//   POST /v1/models/{name}:predict   {"instances": [{"image": {"b64": …}}, …]} → {"predictions": [[top-5 classes], …]}
//   POST /v1/models/{name}:explain   the same with POST /cam's parameters per instance (or in "parameters")
//                                    → {"explanations": [POST /cam's JSON answer, …]}
import type { IRouter, Request, Response } from 'express';
import { CAM_PARAMETERS, collectParameters, predictions, timeoutMs, type Params } from '../../api/index.js';
import { toModelInput, topK } from '../../engine/index.js';
import { CamserveError, badParameter } from '../../errors/index.js';
import type { Reservation } from '../../workers/index.js';
import { clientOf, isLongWork } from '../access.js';
import { admit, clientGone, findModel, jobSignal, requirePool, routeLabel, type AppContext, type ServicePool } from '../context.js';
import { base64Image, readUpload, type Upload } from '../upload.js';
import { camResultJson, decodeAt, planCam, planRequest } from './cam.js';

/** The app's 405 table takes /v1/models; the {name} paths, whose last segment may carry a verb, answer their own 405s. */
export const KSERVE_ROUTES: Record<string, string[]> = { '/v1/models': ['GET', 'HEAD'] };

/** `name:verb` of the KServe paths (the colon is part of the last segment). */
const VERB = /^(.+):(predict|explain)$/;

/** The parameters an instance (or the request's `parameters`) may carry: POST /cam's, but the model is the path's. */
const INSTANCE_PARAMETERS = CAM_PARAMETERS.filter((p) => p !== 'model');

/** A KServe V1 body: one image per instance (`{"image": {"b64": …}}`, `{"b64": …}` or a base64 string), parameters beside it. */
function kserveBody(body: unknown, limit: number, maxFiles: number): Upload & { instances: Record<string, unknown>[] } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new CamserveError('bad-request', 'the body must be a JSON object: { "instances": [ { "image": { "b64": "<base64>" } }, … ] }');
  }
  const { instances, parameters, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw badParameter(unknown, ['instances', 'parameters'], null, `unknown member "${unknown}" of the request; KServe V1 takes "instances" (and camserve "parameters" for all of them)`);
  if (!Array.isArray(instances) || instances.length === 0) throw badParameter('instances', 'a non-empty list', Array.isArray(instances) ? 0 : typeof instances, '"instances" must be a non-empty list');
  if (instances.length > maxFiles) throw badParameter('instances', `at most ${maxFiles} instances`, instances.length, `at most ${maxFiles} instances in one request, got ${instances.length}`);
  if (parameters !== undefined && (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters))) {
    throw badParameter('parameters', 'an object of POST /cam parameters', typeof parameters, '"parameters" must be an object');
  }
  const images: Buffer[] = [];
  const fields: Record<string, unknown>[] = [];
  instances.forEach((inst, i) => {
    let image: unknown = inst;
    let own: Record<string, unknown> = {};
    if (typeof inst === 'object' && inst !== null && !Array.isArray(inst)) {
      const { image: img, b64, ...params } = inst as Record<string, unknown>;
      image = img ?? (b64 !== undefined ? { b64 } : undefined);
      own = params;
    }
    if (typeof image === 'object' && image !== null && !Array.isArray(image)) image = (image as { b64?: unknown }).b64;
    if (image === undefined) throw badParameter('instances', 'an image per instance', null, `instance ${i} has no image ("image": {"b64": "<base64>"})`);
    images.push(base64Image(image, i, limit, 'instances'));
    const merged: Record<string, unknown> = {};
    for (const [k, v] of [...Object.entries((parameters as Record<string, unknown> | undefined) ?? {}), ...Object.entries(own)]) {
      merged[k] = typeof v === 'number' || typeof v === 'boolean' ? String(v) : v;
    }
    fields.push(merged);
  });
  return { bytes: images[0], images, fields: {}, instances: fields };
}

/** Whether a ready model has this name (KServe's model names are camserve's model ids). */
function ready(pool: ServicePool, name: string): boolean {
  return pool.models().some((m) => m.id === name && m.ok);
}

export function kserveRoutes(router: IRouter, ctx: AppContext): void {
  router.get('/v1/models', (_req: Request, res: Response) => {
    routeLabel(res, '/v1/models');
    res.json({ models: requirePool(ctx).models().filter((m) => m.ok).map((m) => m.id) });
  });

  router.get('/v1/models/:name', (req: Request, res: Response) => {
    const name = String(req.params.name);
    const verb = VERB.exec(name);
    if (verb) {
      // GET on a :predict or :explain path: the 405 of that path.
      routeLabel(res, `/v1/models/{name}:${verb[2]}`);
      res.setHeader('Allow', 'POST, OPTIONS');
      throw new CamserveError('method-not-allowed', `${req.method} is not allowed on /v1/models/{name}:${verb[2]}; allowed: POST, OPTIONS`, { allowed: ['POST', 'OPTIONS'], received: req.method });
    }
    routeLabel(res, '/v1/models/{name}');
    const pool = requirePool(ctx);
    if (!pool.models().some((m) => m.id === name)) findModel(pool.models(), name, 'name');
    res.json({ name, ready: ready(pool, name) });
  });

  router.post('/v1/models/:name', async (req: Request, res: Response): Promise<void> => {
    const t0 = performance.now();
    const verb = VERB.exec(String(req.params.name));
    if (!verb) {
      routeLabel(res, '/v1/models/{name}');
      res.setHeader('Allow', 'GET, HEAD, OPTIONS');
      throw new CamserveError('method-not-allowed', `POST is not allowed on /v1/models/{name}; allowed: GET, HEAD, OPTIONS (POST /v1/models/{name}:predict or :explain)`, { allowed: ['GET', 'HEAD', 'OPTIONS'], received: req.method });
    }
    const [, name, action] = verb;
    routeLabel(res, `/v1/models/{name}:${action}`);
    res.setHeader('Cache-Control', 'no-store');
    const pool = requirePool(ctx);
    const reservation = admit(pool, req, res);
    const gone = clientGone(res);
    const info = findModel(pool.models(), name, 'name');
    res.locals.model = info.id;
    const upload = await readUpload(req, res, { ...ctx.config, maxFiles: ctx.config.maxBatch, maxRequestBytes: ctx.config.maxRequestBytes, json: true, jsonBody: kserveBody });
    if (!('instances' in upload)) throw new CamserveError('unsupported-media-type', 'send the instances as application/json', { allowed: ['application/json'], received: req.headers['content-type'] ?? null });
    const instances = (upload as Upload & { instances: Record<string, unknown>[] }).instances;
    const params = instances.map((fields) => collectParameters(`POST /v1/models/{name}:${action}`, INSTANCE_PARAMETERS, fields));
    const out = [];
    for (const [i, p] of params.entries()) {
      const item = action === 'predict'
        ? await predictOne(ctx, pool, info.id, upload.images[i], i, { req, res, gone, t0, p, reservation: i === 0 ? reservation : undefined })
        : await explainOne(ctx, pool, info.id, upload.images[i], i, { req, res, gone, t0, p, reservation: i === 0 ? reservation : undefined });
      if (gone.aborted) return;
      out.push(item);
    }
    res.json(action === 'predict' ? { predictions: out } : { explanations: out });
  });

  // Other methods on /v1/models/{name} and its verbs: 405 with Allow (OPTIONS: 204 with Allow).
  router.all('/v1/models/:name', (req: Request, res: Response) => {
    const verb = VERB.exec(String(req.params.name));
    routeLabel(res, verb ? `/v1/models/{name}:${verb[2]}` : '/v1/models/{name}');
    const allowed = verb ? ['POST', 'OPTIONS'] : ['GET', 'HEAD', 'OPTIONS'];
    res.setHeader('Allow', allowed.join(', '));
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    throw new CamserveError('method-not-allowed', `${req.method} is not allowed here; allowed: ${allowed.join(', ')}`, { allowed, received: req.method });
  });
}

interface InstanceContext { req: Request; res: Response; gone: AbortSignal; t0: number; p: Params; reservation?: Reservation }

/** One instance's top-5 classes (index, label, score, logit), from one forward pass. */
async function predictOne(ctx: AppContext, pool: ServicePool, model: string, bytes: Buffer, index: number, c: InstanceContext) {
  const info = findModel(pool.models(), model, 'name');
  const decoded = await decodeAt(ctx, bytes, index);
  const input = await toModelInput(decoded.rgb, info);
  const signal = jobSignal(c.gone, c.t0, timeoutMs(c.p, ctx.config.maxTimeoutMs));
  const t = await pool.tensors(model, { input, layers: [info.defaultLayer] }, { signal, client: clientOf(c.req, c.res), reservation: c.reservation, version: info.version });
  const pred = predictions(t.logits, info);
  return topK(pred.scores, 5).map(pred.of);
}

/** One instance explained as POST /cam explains it (its JSON answer, PNGs with include_png=true). */
async function explainOne(ctx: AppContext, pool: ServicePool, model: string, bytes: Buffer, index: number, c: InstanceContext) {
  const raw = new Map(c.p);
  raw.set('model', model);
  const plan = planCam(ctx, pool, raw, true);
  if (plan.params.output !== 'json') throw badParameter('output', ['json'], plan.params.output, ':explain answers JSON (with include_png=true for the overlays)');
  c.res.locals.camMethod = plan.params.method;
  await ctx.access.consume(c.req, c.res, 1, isLongWork(plan.params.method, plan.params.augSmooth));
  const timings: Record<string, number> = {};
  let t = performance.now();
  const decoded = await decodeAt(ctx, bytes, index, { plan, picture: plan.params.includePng });
  timings.decode_ms = performance.now() - t;
  t = performance.now();
  const input = await toModelInput(decoded.rgb, plan.info);
  timings.preprocess_ms = performance.now() - t;
  const signal = jobSignal(c.gone, c.t0, timeoutMs(c.p, ctx.config.maxTimeoutMs));
  const result = await pool.explain(model, planRequest(plan, input), { signal, client: clientOf(c.req, c.res), reservation: c.reservation, version: plan.info.version });
  Object.assign(timings, result.timings);
  return camResultJson(ctx, plan, decoded, result, timings);
}
