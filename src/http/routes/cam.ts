// POST /cam: reads the upload (multipart field `image` or a raw image body), checks the parameters,
// decodes and preprocesses the image, queues the explanation on the pool and answers PNG or JSON.
import type { IRouter, Request, Response } from 'express';
import {
  CAM_PARAMETERS, camJson, collectParameters, conceptClass, explainedClasses, explainRequest, finite, parseCamParams, predictions, resolveLayers,
  scoreFunction, timeoutMs, type CamParams,
} from '../../api/index.js';
import { toModelInput, topK, type DecodedImage, type ExplainResult, type ModelInfo } from '../../engine/index.js';
import type { CamMap, RenderJob } from '../../render/index.js';
import { admit, clientGone, findModel, jobSignal, requirePool, routeLabel, type AppContext } from '../context.js';
import { decodeUpload, readUpload } from '../upload.js';

export const CAM_ROUTES: Record<string, string[]> = { '/cam': ['POST'] };

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

function serverTiming(timings: Record<string, number>): string {
  return Object.entries(timings).map(([k, v]) => `${k.replace(/_ms$/, '')};dur=${round(v)}`).join(', ');
}

function renderJob(kind: RenderJob['kind'], decoded: DecodedImage, info: ModelInfo, maps: CamMap[], params: CamParams, alpha = params.alpha): RenderJob {
  return {
    kind, image: decoded.rgb, maps, input: { width: info.inputSize.width, height: info.inputSize.height },
    resize: info.manifest.input.resize, alpha, colormap: params.colormap,
  };
}

/** `X-Camserve-Metric-<name>` headers of a PNG answer. */
function metricHeaders(res: Response, metrics: Record<string, number> | undefined): void {
  for (const [name, v] of Object.entries(metrics ?? {})) res.setHeader(`X-Camserve-Metric-${name}`, String(finite(v)));
}

/** Registers the routes on the app (not a sub-router: its automatic OPTIONS answer would shadow the app's 405 table). */
export function camRoutes(router: IRouter, ctx: AppContext): void {
  router.post('/cam', async (req: Request, res: Response): Promise<void> => {
    const t0 = performance.now();
    routeLabel(res, '/cam');
    res.setHeader('Cache-Control', 'no-store');
    const pool = requirePool(ctx);
    admit(pool, req, res);
    // The client may leave at any time: its job is then dropped from the queue, or stopped.
    const gone = clientGone(res);

    const upload = await readUpload(req, res, ctx.config);
    const raw = collectParameters('POST /cam', CAM_PARAMETERS, req.query as Record<string, unknown>, upload.fields);
    const params = parseCamParams(raw, req.accepts(['image/png', 'application/json']) === 'application/json');
    const signal = jobSignal(gone, t0, timeoutMs(raw, ctx.config.maxTimeoutMs));
    res.locals.camMethod = params.method;
    const info = findModel(pool.models(), params.model ?? ctx.defaultModel());
    res.locals.model = info.id;
    const targets = explainedClasses(params, info, ctx.config.maxTargets);
    const layers = resolveLayers(params.layer, info);

    const timings: Record<string, number> = {};
    let t = performance.now();
    const decoded = await decodeUpload(upload.bytes, ctx.config);
    timings.decode_ms = performance.now() - t;
    t = performance.now();
    const input = await toModelInput(decoded.rgb, info);
    timings.preprocess_ms = performance.now() - t;
    if (gone.aborted) return;

    t = performance.now();
    const result: ExplainResult = await pool.explain(info.id, explainRequest(params, input, targets, layers, info), { signal });
    const wall = performance.now() - t;
    const inWorker = Object.values(result.timings).reduce((a, b) => a + b, 0);
    Object.assign(timings, result.timings);
    timings.queue_ms = Math.max(0, wall - inWorker);
    ctx.metrics.inference.observe({ cam_method: params.method, model: info.id }, inWorker / 1000);
    ctx.metrics.queueWait.observe({ model: info.id }, Math.max(0, wall - inWorker) / 1000);
    if (gone.aborted) return;

    const pred = predictions(result.logits, info);
    const first = result.explanations[0];
    t = performance.now();
    const top = {
      model: info.id, method: params.method, layers: result.layers, image: { width: decoded.width, height: decoded.height },
      score_function: scoreFunction(info), predictions: topK(pred.scores, 5).map(pred.of),
    };
    if (result.factorization) {
      // DFF: one picture of every concept; JSON: each concept's map and classes.
      const f = result.factorization;
      const maps = f.concepts.map((c) => c.map);
      const wantPng = params.output !== 'json' || params.includePng;
      const [png] = wantPng ? await ctx.render(renderJob('factorization', decoded, info, maps, params, params.output === 'heatmap' ? 0 : params.alpha)) : [];
      if (wantPng) timings.render_ms = performance.now() - t;
      timings.total_ms = performance.now() - t0;
      res.setHeader('Server-Timing', serverTiming(timings));
      if (params.output !== 'json') {
        res.setHeader('X-Camserve-Model', info.id);
        res.setHeader('X-Camserve-Method', params.method);
        res.setHeader('X-Camserve-Concepts', String(f.concepts.length));
        res.type('image/png').send(png);
        return;
      }
      res.json({
        ...top,
        concepts: f.concepts.map((c, i) => ({ index: i, classes: c.classes.map((k) => conceptClass(k, info)), cam: camJson(c.map) })),
        nmf_iterations: f.iterations,
        ...(png ? { png: png.toString('base64') } : {}),
        timings_ms: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, round(v)])),
      });
      return;
    }
    if (params.output !== 'json') {
      const [png] = await ctx.render(renderJob(params.output, decoded, info, [first.map], params));
      timings.render_ms = performance.now() - t;
      timings.total_ms = performance.now() - t0;
      const p = pred.of(first.target.index);
      res.setHeader('X-Camserve-Model', info.id);
      res.setHeader('X-Camserve-Method', params.method);
      res.setHeader('X-Camserve-Class-Index', String(p.index));
      if (p.label !== null) res.setHeader('X-Camserve-Class-Label', encodeURIComponent(p.label));
      res.setHeader('X-Camserve-Class-Score', String(p.score));
      res.setHeader('X-Camserve-Target-Kind', result.targetKind);
      if (first.category !== undefined) res.setHeader('X-Camserve-Category', String(first.category));
      metricHeaders(res, first.metrics);
      res.setHeader('Server-Timing', serverTiming(timings));
      res.type('image/png').send(png);
      return;
    }
    const pngs = params.includePng ? await ctx.render(renderJob('overlay', decoded, info, result.explanations.map((e) => e.map), params)) : [];
    const explanations = result.explanations.map((e, i) => ({
      target: pred.of(e.target.index),
      objective: finite(e.target.objective),
      ...(e.category !== undefined ? { category: e.category } : {}),
      cam: camJson(e.map),
      ...(e.metrics ? { metrics: Object.fromEntries(Object.entries(e.metrics).map(([k, v]) => [k, finite(v)])) } : {}),
      ...(e.layers.length > 1 ? { layers: e.layers.map((l) => ({ layer: l.layer, cam: camJson(l.map) })) } : {}),
      ...(params.includePng ? { png: pngs[i].toString('base64') } : {}),
    }));
    if (params.includePng) timings.render_ms = performance.now() - t;
    timings.total_ms = performance.now() - t0;
    res.setHeader('Server-Timing', serverTiming(timings));
    res.json({
      ...top,
      target_kind: result.targetKind,
      explanations,
      timings_ms: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, round(v)])),
    });
  });
}
