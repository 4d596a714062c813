// POST /cam: reads the upload (multipart field `image` or a raw image body), checks the parameters,
// decodes and preprocesses the image, queues the explanation on the pool and answers PNG or JSON.
import type { Request, Response } from 'express';
import type { ModelStatus } from '../../workers/pool.js';
import { toModelInput, type DecodedImage } from '../../engine/input.js';
import type { ExplainRequest, ExplainResult, ModelInfo } from '../../engine/runtime.js';
import { classScores, topK } from '../../engine/scores.js';
import type { CamMap } from '../../render/index.js';
import type { ServerConfig } from '../config.js';
import type { Metrics } from '../metrics.js';
import {
  collectParameters, parseCamParams, resolveLayers, resolveTargets, type CamParams,
} from '../params.js';
import { HttpProblem, badParameter } from '../problem.js';
import { decodeUpload, findModel, poolProblem, readUpload } from '../upload.js';
import type { RenderJob } from '../../render/job.js';

/** What POST /cam needs of the inference pool (InferencePool, or a stand-in in tests). */
export interface ExplainPool {
  models(): ModelStatus[];
  explain(modelId: string, req: ExplainRequest, opts?: { signal?: AbortSignal }): Promise<ExplainResult>;
  stats(): { workers: number; busy: number; queued: number };
}

export interface CamContext {
  config: ServerConfig;
  metrics: Metrics;
  /** the pool once models are loaded (else POST /cam answers 503) */
  pool(): ExplainPool | undefined;
  defaultModel(): string | undefined;
  shuttingDown(): boolean;
  /** PNGs of a render job, made off the HTTP thread */
  render(job: RenderJob): Promise<Buffer[]>;
}


export interface Prediction { index: number; label: string | null; score: number }

/** Float32 values as JSON numbers with 9 significant digits: exact for float32, without float64 noise. */
function f32(values: Float32Array): number[] {
  return Array.from(values, (v) => (Number.isFinite(v) ? Number(v.toPrecision(9)) : 0));
}

function camJson(map: CamMap) {
  return { width: map.width, height: map.height, data: f32(map.data) };
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

function renderJob(kind: 'overlay' | 'heatmap', decoded: DecodedImage, info: ModelInfo, maps: CamMap[], params: CamParams): RenderJob {
  return {
    kind, image: decoded.rgb, maps, input: { width: info.inputSize.width, height: info.inputSize.height },
    resize: info.manifest.input.resize, alpha: params.alpha, colormap: params.colormap,
  };
}

/** The POST /cam handler. */
export function camHandler(ctx: CamContext) {
  return async (req: Request, res: Response): Promise<void> => {
    const t0 = performance.now();
    res.locals.route = '/cam';
    res.setHeader('Cache-Control', 'no-store');
    const pool = ctx.pool();
    if (!pool) throw new HttpProblem('not-ready', 'the models are still loading', {}, { 'Retry-After': String(ctx.config.retryAfterSeconds) });

    // The client may leave at any time; a job still queued is then dropped by the pool.
    const abort = new AbortController();
    res.on('close', () => { if (!res.writableFinished) abort.abort(); });

    const upload = await readUpload(req, res, ctx.config.maxUploadBytes);
    const raw = collectParameters(req.query as Record<string, unknown>, upload.fields);
    const params = parseCamParams(raw, req.accepts(['image/png', 'application/json']) === 'application/json');
    res.locals.camMethod = params.method;
    const info = findModel(pool.models(), params.model ?? ctx.defaultModel());
    res.locals.model = info.id;
    const targets = params.target ? resolveTargets(params.target, info) : undefined;
    const explained = targets?.length ?? params.topk ?? 1;
    const maxK = Math.min(ctx.config.maxTargets, info.numClasses);
    if (explained > maxK) {
      throw badParameter(params.target ? 'target' : 'topk', `at most ${maxK} classes`, params.target?.join(',') ?? params.topk,
        `${explained} classes asked for; at most ${maxK} may be explained at once${info.numClasses < ctx.config.maxTargets ? ' (the model has ' + info.numClasses + ' classes)' : ''}`);
    }
    if (explained > 1 && params.output !== 'json') {
      throw badParameter('output', ['json'], params.output,
        `output=${params.output} shows one class but ${explained} were asked for; use output=json (with include_png=true for images) to explain several`);
    }
    const layers = params.layer ? resolveLayers(params.layer, info) : [info.defaultLayer];

    const timings: Record<string, number> = {};
    let t = performance.now();
    const decoded = await decodeUpload(upload.bytes, ctx.config);
    timings.decode_ms = performance.now() - t;
    t = performance.now();
    const input = await toModelInput(decoded.rgb, info);
    timings.preprocess_ms = performance.now() - t;
    if (abort.signal.aborted) return;

    t = performance.now();
    let result: ExplainResult;
    try {
      result = await pool.explain(info.id, {
        input, method: params.method, targets, topk: params.topk, layers,
        eigenSmooth: params.eigenSmooth, augSmooth: params.augSmooth,
      }, { signal: abort.signal });
    } catch (e) {
      const problem = poolProblem(e as Error, { retryAfterSeconds: ctx.config.retryAfterSeconds, shuttingDown: ctx.shuttingDown() }, { model: info.id, method: params.method });
      if ((e as Error).name === 'AbortError') {
        req.log?.info({ model: info.id, cam_method: params.method }, 'client went away; its queued explanation was dropped');
        return;
      }
      throw problem ?? e;
    }
    const wall = performance.now() - t;
    const inWorker = Object.values(result.timings).reduce((a, b) => a + b, 0);
    Object.assign(timings, result.timings);
    timings.queue_ms = Math.max(0, wall - inWorker);
    ctx.metrics.inference.observe({ cam_method: params.method, model: info.id }, inWorker / 1000);
    ctx.metrics.queueWait.observe({ model: info.id }, Math.max(0, wall - inWorker) / 1000);
    if (abort.signal.aborted) return;

    const s = classScores(result.logits, info.manifest.multiLabel);
    const labels = info.manifest.labels;
    const prediction = (index: number): Prediction => ({ index, label: labels?.[index] ?? null, score: Number(s[index].toPrecision(9)) });
    const predictions = topK(s, 5).map(prediction);
    const first = result.explanations[0];

    t = performance.now();
    if (params.output !== 'json') {
      const [png] = await ctx.render(renderJob(params.output, decoded, info, [first.map], params));
      timings.render_ms = performance.now() - t;
      timings.total_ms = performance.now() - t0;
      const p = prediction(first.target.index);
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
      target: prediction(e.target.index),
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
      score_function: info.manifest.multiLabel ? 'sigmoid' : 'softmax',
      predictions,
      explanations,
      timings_ms: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, round(v)])),
    });
  };
}

function serverTiming(timings: Record<string, number>): string {
  return Object.entries(timings).map(([k, v]) => `${k.replace(/_ms$/, '')};dur=${round(v)}`).join(', ');
}
