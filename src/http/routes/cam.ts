// POST /cam: reads the upload (multipart field `image`, a raw image body, or a JSON body of base64
// images), checks the parameters, decodes and preprocesses the images, queues the explanation on the pool
// and answers PNG or JSON. Several images (a batch) are answered as JSON, one result per image, and run as
// one queued job: in one forward pass where the model takes batches.
import type { IRouter, Request, Response } from 'express';
import {
  CAM_PARAMETERS, camJson, collectParameters, conceptsJson, decodeSide, explainedClasses, explainRequest, explanationJson, finite, parseCamParams, pictureJob,
  predictions, resolveLayers, resultHead, resultPicture, timeoutMs, type CamParams, type Params,
} from '../../api/index.js';
import { toModelInput, type DecodedImage, type ExplainRequest, type ExplainResult, type ModelInfo } from '../../engine/index.js';
import { CamserveError, badParameter } from '../../errors/index.js';
import { pictureType } from '../../render/index.js';
import { clientOf, isLongWork } from '../access.js';
import type { Reservation } from '../../workers/index.js';
import { admit, clientGone, findModel, jobSignal, requirePool, routeLabel, type AppContext, type ServicePool } from '../context.js';
import { decodeUpload, readUpload } from '../upload.js';

export const CAM_ROUTES: Record<string, string[]> = { '/cam': ['POST'] };

export function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** Stage times as answered: ms to 3 decimals. */
function roundedTimings(timings: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, round(v)]));
}

function serverTiming(timings: Record<string, number>): string {
  return Object.entries(timings).map(([k, v]) => `${k.replace(/_ms$/, '')};dur=${round(v)}`).join(', ');
}

/** Whether POST /cam's answer carries a picture (an image answer, or JSON with include_png). */
export function hasPicture(params: Pick<CamParams, 'output' | 'includePng'>): boolean {
  return params.output !== 'json' || params.includePng;
}

/** `X-Camserve-Metric-<name>` headers of a PNG answer. */
function metricHeaders(res: Response, metrics: Record<string, number> | undefined): void {
  for (const [name, v] of Object.entries(metrics ?? {})) res.setHeader(`X-Camserve-Metric-${name}`, String(finite(v)));
}

/** An explanation's parameters checked against the model: what the pool is asked. */
export interface CamPlan {
  params: CamParams;
  info: ModelInfo;
  targets?: number[];
  layers: string[];
}

/** Checks the collected parameters against the models (404 unknown model, 400 classes and layers). */
export function planCam(ctx: AppContext, pool: ServicePool, raw: Params, preferJson: boolean): CamPlan {
  const params = parseCamParams(raw, preferJson, ctx.config.maxImageSide);
  const info = findModel(pool.models(), params.model ?? ctx.defaultModel());
  const targets = explainedClasses(params, info, ctx.config.maxTargets);
  const layers = resolveLayers(params.layer, info);
  return { params, info, targets, layers };
}

export function planRequest(plan: CamPlan, input: Float32Array): ExplainRequest {
  return explainRequest(plan.params, input, plan.targets, plan.layers, plan.info);
}

/**
 * Decodes an image of a request; in a batch a failure names the image (`index`). With `sizing`, a JPEG is
 * decoded no larger than the answer's picture (none: `picture` false) and the model input need (decodeSide).
 */
export async function decodeAt(
  ctx: AppContext, bytes: Buffer | undefined, index: number | undefined, sizing?: { plan: CamPlan; picture: boolean },
): Promise<DecodedImage> {
  // Only max_side can make the decode smaller (decodeSide); without it the header is not read twice.
  const maxSide = sizing?.plan.params.maxSide;
  const side = sizing && maxSide !== undefined
    ? (h: Parameters<typeof decodeSide>[0]) => decodeSide(h, { picture: sizing.picture, maxSide }, sizing.plan.info, ctx.config.maxImageSide)
    : undefined;
  try {
    return await decodeUpload(bytes, ctx.config, side);
  } catch (e) {
    if (index === undefined || !(e instanceof CamserveError)) throw e;
    throw new CamserveError(e.code, `image ${index}: ${e.message}`, { ...e.details, parameter: 'image', index });
  }
}

/** POST /cam's JSON answer for one image (a job's result for one image is the same). */
export async function camResultJson(
  ctx: AppContext, plan: CamPlan, decoded: DecodedImage, result: ExplainResult, timings: Record<string, number>,
): Promise<Record<string, unknown>> {
  const { params, info } = plan;
  const top = resultHead(info, params.method, result, decoded);
  const t = performance.now();
  if (result.factorization) {
    // DFF: each concept's map and classes (and with include_png the one picture of them all).
    const f = result.factorization;
    const [png] = params.includePng ? await ctx.render(resultPicture('overlay', decoded, info, result, params)) : [];
    if (params.includePng) timings.render_ms = performance.now() - t;
    return {
      ...top,
      concepts: conceptsJson(f, info),
      nmf_iterations: f.iterations,
      ...(png ? { png: png.toString('base64') } : {}),
      timings_ms: roundedTimings(timings),
    };
  }
  const pngs = params.includePng ? await ctx.render(pictureJob('overlay', decoded, info, result.explanations.map((e) => e.map), params)) : [];
  if (params.includePng) timings.render_ms = performance.now() - t;
  const pred = predictions(result.logits, info);
  const explanations = result.explanations.map((e, i) => ({
    ...explanationJson(e, pred),
    ...(e.layers.length > 1 ? { layers: e.layers.map((l) => ({ layer: l.layer, cam: camJson(l.map) })) } : {}),
    ...(params.includePng ? { png: pngs[i].toString('base64') } : {}),
  }));
  return {
    ...top,
    target_kind: result.targetKind,
    explanations,
    timings_ms: roundedTimings(timings),
  };
}

/** Registers the routes on the app (not a sub-router: its automatic OPTIONS answer would shadow the app's 405 table). */
export function camRoutes(router: IRouter, ctx: AppContext): void {
  router.post('/cam', async (req: Request, res: Response): Promise<void> => {
    const t0 = performance.now();
    routeLabel(res, '/cam');
    res.setHeader('Cache-Control', 'no-store');
    const pool = requirePool(ctx);
    const reservation = admit(pool, req, res);
    // The client may leave at any time: its job is then dropped from the queue, or stopped.
    const gone = clientGone(res);

    const upload = await readUpload(req, res, { ...ctx.config, maxFiles: ctx.config.maxBatch, json: true });
    const raw = collectParameters('POST /cam', CAM_PARAMETERS, req.query as Record<string, unknown>, upload.fields);
    const batch = upload.images.length > 1;
    const plan = planCam(ctx, pool, raw, batch || req.accepts(['image/png', 'application/json']) === 'application/json');
    const { params, info } = plan;
    res.locals.camMethod = params.method;
    res.locals.model = info.id;
    if (batch && params.output !== 'json') {
      throw badParameter('output', ['json'], params.output, `${upload.images.length} images are answered as JSON, one result per image (each with include_png=true for its overlay)`);
    }
    await ctx.access.consume(req, res, Math.max(1, upload.images.length), isLongWork(params.method, params.augSmooth));
    const signal = jobSignal(gone, t0, timeoutMs(raw, ctx.config.maxTimeoutMs));
    if (batch) return camBatch(ctx, pool, plan, upload.images, { req, res, t0, gone, signal, reservation });

    const timings: Record<string, number> = {};
    let t = performance.now();
    const decoded = await decodeAt(ctx, upload.bytes, undefined, { plan, picture: hasPicture(params) });
    timings.decode_ms = performance.now() - t;
    t = performance.now();
    const input = await toModelInput(decoded.rgb, info);
    timings.preprocess_ms = performance.now() - t;
    if (gone.aborted) return;

    t = performance.now();
    const result: ExplainResult = await pool.explain(info.id, planRequest(plan, input), { signal, client: clientOf(req, res), reservation, version: info.version });
    const wall = performance.now() - t;
    const inWorker = Object.values(result.timings).reduce((a, b) => a + b, 0);
    Object.assign(timings, result.timings);
    timings.queue_ms = Math.max(0, wall - inWorker);
    ctx.metrics.inference.observe({ cam_method: params.method, model: info.id }, inWorker / 1000);
    ctx.metrics.queueWait.observe({ model: info.id }, Math.max(0, wall - inWorker) / 1000);
    if (gone.aborted) return;

    if (params.output !== 'json') {
      t = performance.now();
      const [png] = await ctx.render(resultPicture(params.output, decoded, info, result, params));
      timings.render_ms = performance.now() - t;
      timings.total_ms = performance.now() - t0;
      res.setHeader('X-Camserve-Model', info.id);
      if (info.version) res.setHeader('X-Camserve-Model-Version', info.version);
      res.setHeader('X-Camserve-Method', params.method);
      if (result.factorization) {
        res.setHeader('X-Camserve-Concepts', String(result.factorization.concepts.length));
      } else {
        const first = result.explanations[0];
        const p = predictions(result.logits, info).of(first.target.index);
        res.setHeader('X-Camserve-Class-Index', String(p.index));
        if (p.label !== null) res.setHeader('X-Camserve-Class-Label', encodeURIComponent(p.label));
        res.setHeader('X-Camserve-Class-Score', String(p.score));
        res.setHeader('X-Camserve-Target-Kind', result.targetKind);
        if (first.category !== undefined) res.setHeader('X-Camserve-Category', String(first.category));
        metricHeaders(res, first.metrics);
      }
      res.setHeader('Server-Timing', serverTiming(timings));
      res.type(pictureType(params.format)).send(png);
      return;
    }
    const body = await camResultJson(ctx, plan, decoded, result, timings);
    timings.total_ms = performance.now() - t0;
    body.timings_ms = roundedTimings(timings);
    res.setHeader('Server-Timing', serverTiming(timings));
    res.json(body);
  });
}

/** Several images: decoded, queued as one job of that many inputs, answered as one JSON with a result per image. */
async function camBatch(
  ctx: AppContext, pool: ServicePool, plan: CamPlan, images: Buffer[],
  r: { req: Request; res: Response; t0: number; gone: AbortSignal; signal: AbortSignal; reservation?: Reservation },
): Promise<void> {
  const { info, params } = plan;
  const timings: Record<string, number> = {};
  let t = performance.now();
  // Decoded and preprocessed side by side on libuv's threads; the first failure (in image order) refuses the batch.
  const settled = await Promise.allSettled(images.map(async (bytes, i) => {
    const d = await decodeAt(ctx, bytes, i, { plan, picture: hasPicture(params) });
    return { d, x: await toModelInput(d.rgb, info) };
  }));
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  const decoded: DecodedImage[] = settled.map((s) => (s as PromiseFulfilledResult<{ d: DecodedImage }>).value.d);
  const inputs = settled.map((s) => (s as PromiseFulfilledResult<{ x: Float32Array }>).value.x);
  timings.decode_ms = performance.now() - t;
  if (r.gone.aborted) return;

  t = performance.now();
  const reqs = inputs.map((x) => planRequest(plan, x));
  const opts = { signal: r.signal, client: clientOf(r.req, r.res), reservation: r.reservation, version: info.version };
  let results: ExplainResult[];
  if (pool.explainBatch) {
    results = await pool.explainBatch(info.id, reqs, { ...opts, maxBatch: ctx.config.maxBatch });
  } else {
    results = [];
    for (const q of reqs) results.push(await pool.explain(info.id, q, opts));
  }
  const wall = performance.now() - t;
  const inWorker = results.reduce((a, x) => a + Object.values(x.timings).reduce((b, c) => b + c, 0), 0);
  timings.explain_ms = wall;
  timings.queue_ms = Math.max(0, wall - inWorker);
  ctx.metrics.inference.observe({ cam_method: params.method, model: info.id }, inWorker / 1000);
  ctx.metrics.queueWait.observe({ model: info.id }, Math.max(0, wall - inWorker) / 1000);
  if (r.gone.aborted) return;

  t = performance.now();
  const out = [];
  for (const [i, x] of results.entries()) out.push(await camResultJson(ctx, plan, decoded[i], x, { ...x.timings }));
  if (params.includePng) timings.render_ms = performance.now() - t;
  timings.total_ms = performance.now() - r.t0;
  r.res.setHeader('Server-Timing', serverTiming(timings));
  r.res.json({
    model: info.id, method: params.method, layers: results[0].layers, count: out.length, results: out,
    timings_ms: roundedTimings(timings),
  });
}
