// POST /cam: reads the upload (multipart field `image` or a raw image body), checks the parameters,
// decodes and preprocesses the image, queues the explanation on the pool and answers PNG or JSON.
import type { IRouter, Request, Response } from 'express';
import { CAM_PARAMETERS, camJson, collectParameters, explainedClasses, parseCamParams, predictions, resolveLayers, scoreFunction, timeoutMs, type CamParams } from '../../api/index.js';
import { fitOf, toModelInput, topK, type DecodedImage, type ExplainResult, type ModelInfo } from '../../engine/index.js';
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

function renderJob(kind: 'overlay' | 'heatmap', decoded: DecodedImage, info: ModelInfo, maps: CamMap[], params: CamParams): RenderJob {
  return {
    kind, image: decoded.rgb, maps, input: { width: info.inputSize.width, height: info.inputSize.height },
    resize: info.manifest.input.resize, fit: fitOf(info.manifest.input), alpha: params.alpha, colormap: params.colormap,
  };
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
    const result: ExplainResult = await pool.explain(info.id, {
      input, method: params.method, targets, topk: params.topk, layers,
      eigenSmooth: params.eigenSmooth, augSmooth: params.augSmooth,
    }, { signal });
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
      res.setHeader('Server-Timing', serverTiming(timings));
      res.type('image/png').send(png);
      return;
    }
    const pngs = params.includePng ? await ctx.render(renderJob('overlay', decoded, info, result.explanations.map((e) => e.map), params)) : [];
    const explanations = result.explanations.map((e, i) => ({
      target: pred.of(e.target.index),
      cam: camJson(e.map),
      ...(e.layers.length > 1 ? { layers: e.layers.map((l) => ({ layer: l.layer, cam: camJson(l.map) })) } : {}),
      ...(params.includePng ? { png: pngs[i].toString('base64') } : {}),
    }));
    if (params.includePng) timings.render_ms = performance.now() - t;
    timings.total_ms = performance.now() - t0;
    res.setHeader('Server-Timing', serverTiming(timings));
    res.json({
      model: info.id,
      method: params.method,
      layers,
      image: { width: decoded.width, height: decoded.height },
      score_function: scoreFunction(info),
      // Which model predicted, and which gave the activations and gradients (a quantized model's float twin).
      predictions_from: info.runs.predictions,
      gradients: info.runs.gradients,
      predictions: topK(pred.scores, 5).map(pred.of),
      explanations,
      timings_ms: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, round(v)])),
    });
  });
}
