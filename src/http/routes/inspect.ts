// HTTP routes for looking inside a model (mounted by the app with `app.use(inspectRouter(deps))`):
//   POST /features              feature-map grid of layers for an image (PNG, or JSON with statistics)
//   POST /histograms            histograms of activations and class-score gradients (JSON, or PNG plot)
//   GET  /models/{id}/summary   torchsummary-style table (JSON, or text/plain)
//   GET  /models/{id}/graph     computation graph (SVG, or DOT with Accept: text/vnd.graphviz)
// Tensors come from the inference pool (`tensors` jobs); the graph facts of each model are asked of the
// pool once (a `facts` job) and cached here, as are rendered graphs. Errors are problem+json.
import { type NextFunction, type Request, type Response, Router } from 'express';
import type { ServerConfig } from '../config.js';
import { MAX_LAYERS, resolveLayers, resolveTargets } from '../params.js';
import { HttpProblem, badParameter, sendProblem } from '../problem.js';
import { decodeUpload, findModel, poolProblem, readUpload } from '../upload.js';
import type { ModelStatus } from '../../workers/pool.js';
import { toModelInput } from '../../engine/input.js';
import type { ModelInfo } from '../../engine/runtime.js';
import { COLORMAP_NAMES, isColormapName } from '../../render/index.js';
import type { ModelFacts } from '../../inspect/facts.js';
import { GridOptionError, featureGrid, type ChannelSelection, type GridOptions } from '../../inspect/grid.js';
import { GRAPH_COLLAPSE, graphDot, renderDot, type GraphOptions } from '../../inspect/graph.js';
import { HISTOGRAM_DEFAULTS, histogram, histogramPng, type Histogram, type HistogramPanel } from '../../inspect/histogram.js';
import { summaryJson } from '../../inspect/json.js';
import { formatSummary, summarize } from '../../inspect/summary.js';
import type { TensorsRequest, TensorsResult } from '../../inspect/tensors.js';

/** What the routes need of the inference pool (InferencePool, or a stand-in in tests). */
export interface InspectPool {
  models(): ModelStatus[];
  tensors(modelId: string, req: TensorsRequest, opts?: { signal?: AbortSignal }): Promise<TensorsResult>;
  facts(modelId: string, opts?: { signal?: AbortSignal }): Promise<ModelFacts>;
}

export interface InspectDeps {
  /** the pool once the models are loaded (undefined: answer 503 not-ready) */
  pool(): InspectPool | undefined;
  /** the model of a request that names none */
  defaultModel(): string | undefined;
  config: Pick<ServerConfig, 'maxUploadBytes' | 'maxPixels' | 'maxImageSide' | 'retryAfterSeconds'>;
  /** while true, a full queue is reported as shutting-down rather than overloaded */
  shuttingDown?(): boolean;
}

/** Route templates and their methods, for the app's 405 table. */
export const INSPECT_ROUTES: Record<string, string[]> = {
  '/features': ['POST'],
  '/histograms': ['POST'],
  '/models/{id}/summary': ['GET', 'HEAD'],
  '/models/{id}/graph': ['GET', 'HEAD'],
};

export const FEATURE_PARAMETERS = [
  'model', 'layer', 'nrow', 'padding', 'normalize', 'range', 'scale_each', 'pad_value', 'channels', 'colormap', 'scale', 'output',
] as const;
export const HISTOGRAM_PARAMETERS = ['model', 'layer', 'target', 'bins', 'range', 'grad_range', 'gradients', 'output'] as const;
export const GRAPH_PARAMETERS = ['collapse', 'depth', 'rankdir', 'format'] as const;
/** Most classes whose gradients one histogram request shows. */
export const MAX_HISTOGRAM_TARGETS = 4;

// A Map, not a plain object: `constructor`, `__proto__` or `toString` must not be found as inherited keys.
const BOOLEANS: ReadonlyMap<string, boolean> = new Map([['true', true], ['1', true], ['false', false], ['0', false]]);

// ---------------------------------------------------------------- parameters

type Params = Map<string, string>;

/** Query and form fields merged; unknown and repeated names refused (400), empty values absent. */
function collect(route: string, allowed: readonly string[], ...sources: Record<string, unknown>[]): Params {
  const out: Params = new Map();
  for (const source of sources) {
    for (const [name, value] of Object.entries(source)) {
      if (!allowed.includes(name)) {
        const hint = name === 'image' ? ' (the image is a file field of a multipart form, or the raw body)' : '';
        throw badParameter(name, [...allowed], value, `unknown parameter "${name}"${hint}; ${route} accepts ${allowed.join(', ')}`);
      }
      if (typeof value !== 'string' || out.has(name)) {
        throw badParameter(name, 'one value (lists go comma-separated in one value)', value, `parameter "${name}" is given more than once`);
      }
      if (value.trim() !== '') out.set(name, value.trim());
    }
  }
  return out;
}

function int(p: Params, name: string, min: number, max: number): number | undefined {
  const v = p.get(name);
  if (v === undefined) return undefined;
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(Number.isSafeInteger(n) && n >= min && n <= max)) throw badParameter(name, `an integer in ${min}..${max}`, v, `${name} must be an integer in ${min}..${max}, got "${v}"`);
  return n;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function num(p: Params, name: string): number | undefined {
  const v = p.get(name);
  if (v === undefined) return undefined;
  if (!NUMBER.test(v)) throw badParameter(name, 'a number', v, `${name} must be a number, got "${v}"`);
  return Number(v);
}

function bool(p: Params, name: string): boolean | undefined {
  const v = p.get(name);
  if (v === undefined) return undefined;
  const b = BOOLEANS.get(v.toLowerCase());
  if (b === undefined) throw badParameter(name, ['true', 'false', '1', '0'], v, `${name} must be true or false, got "${v}"`);
  return b;
}

function range(p: Params, name: string): [number, number] | undefined {
  const v = p.get(name);
  if (v === undefined) return undefined;
  const parts = v.split(',').map((s) => s.trim());
  if (parts.length !== 2 || !parts.every((s) => NUMBER.test(s)) || !(Number(parts[0]) < Number(parts[1]))) {
    throw badParameter(name, '"lo,hi": two numbers, lo < hi', v, `${name} must be "lo,hi" with lo < hi, got "${v}"`);
  }
  return [Number(parts[0]), Number(parts[1])];
}

function list(p: Params, name: string): string[] | undefined {
  const v = p.get(name);
  if (v === undefined) return undefined;
  const items = v.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) throw badParameter(name, 'a comma-separated list without empty items', v, `${name} has an empty item: "${v}"`);
  return [...new Set(items)];
}

function oneOf<T extends string>(p: Params, name: string, allowed: readonly T[], dflt: T): T {
  const v = p.get(name) ?? dflt;
  if (!(allowed as readonly string[]).includes(v)) throw badParameter(name, [...allowed], v, `${name} must be one of ${allowed.join(', ')}, got "${v}"`);
  return v as T;
}

/** `channels`: "all", "top:k", or a comma-separated list of indices. */
export function parseChannels(v: string | undefined): ChannelSelection | undefined {
  if (v === undefined || v === 'all') return undefined;
  const top = /^top:(\d+)$/.exec(v);
  if (top) {
    const k = Number(top[1]);
    if (!(k >= 1)) throw badParameter('channels', '"all", "top:k" (k ≥ 1) or channel indices', v, `channels top:k needs k ≥ 1, got "${v}"`);
    return { top: k };
  }
  const items = v.split(',').map((s) => s.trim());
  if (!items.every((s) => /^\d+$/.test(s))) {
    throw badParameter('channels', '"all", "top:k" or comma-separated channel indices', v, `channels must be "all", "top:k" or channel indices, got "${v}"`);
  }
  return items.map(Number);
}

/** Grid options of POST /features (everything but model, layer, output). */
export function parseGridOptions(p: Params): GridOptions {
  const normalize = bool(p, 'normalize') ?? false;
  const r = range(p, 'range');
  const scaleEach = bool(p, 'scale_each') ?? false;
  if (r && !normalize) throw badParameter('range', 'only with normalize=true', p.get('range'), 'range clamps before normalising; it needs normalize=true (as make_grid ignores value_range without normalize)');
  if (scaleEach && !normalize) throw badParameter('scale_each', 'only with normalize=true', p.get('scale_each'), 'scale_each normalises each map; it needs normalize=true');
  const colormap = p.get('colormap');
  if (colormap !== undefined && colormap !== 'none' && !isColormapName(colormap)) {
    throw badParameter('colormap', ['none', ...COLORMAP_NAMES], colormap, `unknown colour map "${colormap}"`);
  }
  return {
    nrow: int(p, 'nrow', 1, 4096),
    padding: int(p, 'padding', 0, 64),
    normalize,
    range: r,
    scaleEach,
    padValue: num(p, 'pad_value'),
    channels: parseChannels(p.get('channels')),
    colormap: colormap === undefined || colormap === 'none' ? undefined : (colormap as GridOptions['colormap']),
    scale: int(p, 'scale', 1, 64),
  };
}

// ---------------------------------------------------------------- upload, model, errors

class ClientGone extends Error {
  override name = 'ClientGone';
}

/** An uploaded image as the model's input. */
async function imageInput(bytes: Buffer | undefined, info: ModelInfo, deps: InspectDeps): Promise<Float32Array> {
  const decoded = await decodeUpload(bytes, deps.config);
  return toModelInput(decoded.rgb, info);
}

// ---------------------------------------------------------------- JSON helpers

/** Float32 values as JSON numbers with 9 significant digits (exact for float32); non-finite → null. */
function f(v: number): number | null {
  return Number.isFinite(v) ? Number(v.toPrecision(9)) : null;
}

function histogramJson(h: Histogram) {
  return {
    bins: h.bins, range: h.range.map(f), edges: h.edges.map(f), counts: h.counts, count: h.count,
    below: h.below, above: h.above, non_finite: h.nonFinite,
    min: f(h.min), max: f(h.max), mean: f(h.mean), std: f(h.std), zeros: f(h.zeros),
  };
}

function prediction(logits: Float32Array, index: number, info: ModelInfo) {
  return { index, label: info.manifest.labels?.[index] ?? null, logit: f(logits[index]) };
}

function top1(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

// ---------------------------------------------------------------- router

export function inspectRouter(deps: InspectDeps): Router {
  const router = Router();
  const factsCache = new Map<string, Promise<ModelFacts>>();
  const graphCache = new Map<string, Promise<string>>();
  const GRAPH_CACHE_SIZE = 32;

  const requirePool = (): InspectPool => {
    const pool = deps.pool();
    if (!pool) throw new HttpProblem('not-ready', 'the models are still loading', {}, { 'Retry-After': String(deps.config.retryAfterSeconds) });
    return pool;
  };

  const abortOnClose = (res: Response): AbortSignal => {
    const ac = new AbortController();
    res.on('close', () => { if (!res.writableFinished) ac.abort(); });
    return ac.signal;
  };

  const fromPool = async <T>(run: () => Promise<T>, model: string): Promise<T> => {
    try {
      return await run();
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw new ClientGone();
      throw poolProblem(e as Error, { retryAfterSeconds: deps.config.retryAfterSeconds, shuttingDown: deps.shuttingDown?.() ?? false }, { model }) ?? e;
    }
  };

  const factsOf = (pool: InspectPool, id: string): Promise<ModelFacts> => {
    let p = factsCache.get(id);
    if (!p) {
      p = fromPool(() => pool.facts(id), id);
      factsCache.set(id, p);
      p.catch(() => factsCache.delete(id));
    }
    return p;
  };

  /** What both image routes start with: the pool, an abort signal for a client that leaves, the upload and its parameters. */
  const imageRequest = async (req: Request, res: Response, route: string, allowed: readonly string[]) => {
    res.locals.route = route;
    res.setHeader('Cache-Control', 'no-store');
    const pool = requirePool();
    const signal = abortOnClose(res);
    const upload = await readUpload(req, res, deps.config.maxUploadBytes);
    const p = collect(`POST ${route}`, allowed, req.query as Record<string, unknown>, upload.fields);
    return { pool, signal, upload, p };
  };

  router.post('/features', async (req: Request, res: Response) => {
    const { pool, signal, upload, p } = await imageRequest(req, res, '/features', FEATURE_PARAMETERS);
    const preferJson = req.accepts(['image/png', 'application/json']) === 'application/json';
    const output = oneOf(p, 'output', ['png', 'json'] as const, preferJson ? 'json' : 'png');
    const opts = parseGridOptions(p);
    const info = findModel(pool.models(), p.get('model') ?? deps.defaultModel(), 'model');
    res.locals.model = info.id;
    const layers = resolveLayers(list(p, 'layer') ?? [info.defaultLayer], info);
    if (layers.length > MAX_LAYERS) throw badParameter('layer', `at most ${MAX_LAYERS} layers`, p.get('layer'), `${layers.length} layers, at most ${MAX_LAYERS} at once`);
    const input = await imageInput(upload.bytes, info, deps);
    if (signal.aborted) return;
    const t = await fromPool(() => pool.tensors(info.id, { input, layers }, { signal }), info.id);
    let grid;
    try {
      grid = await featureGrid(t.layers.map((l) => ({ layer: l.layer, maps: { C: l.dims[1], h: l.dims[2], w: l.dims[3], data: l.activations } })), opts, output === 'png');
    } catch (e) {
      if (e instanceof GridOptionError) throw badParameter(e.option, 'see detail', p.get(e.option) ?? null, e.message);
      throw e;
    }
    if (signal.aborted) return;
    const top = top1(t.logits);
    if (output === 'png') {
      res.setHeader('X-Camserve-Model', info.id);
      res.setHeader('X-Camserve-Layers', encodeURIComponent(layers.join(',')));
      res.type('image/png').send(grid.png);
      return;
    }
    res.json({
      model: info.id,
      prediction: prediction(t.logits, top, info),
      width: grid.width,
      height: grid.height,
      layers: grid.layers.map((g, i) => ({
        layer: g.layer,
        dims: t.layers[i].dims,
        channels: g.layout.channels,
        grid: {
          nrow: opts.nrow ?? 8, padding: opts.padding ?? 2, xmaps: g.layout.xmaps, ymaps: g.layout.ymaps,
          scale: g.layout.scale, tile_width: g.layout.tileWidth, tile_height: g.layout.tileHeight,
          width: g.layout.width, height: g.layout.height, offset_y: g.offsetY,
        },
        stats: g.stats.map((s) => ({ channel: s.channel, min: f(s.min), max: f(s.max), mean: f(s.mean), std: f(s.std), zeros: f(s.zeros) })),
      })),
    });
  });

  router.post('/histograms', async (req: Request, res: Response) => {
    const { pool, signal, upload, p } = await imageRequest(req, res, '/histograms', HISTOGRAM_PARAMETERS);
    const output = oneOf(p, 'output', ['json', 'png'] as const, req.accepts(['application/json', 'image/png']) === 'image/png' ? 'png' : 'json');
    const bins = int(p, 'bins', 1, HISTOGRAM_DEFAULTS.maxBins) ?? HISTOGRAM_DEFAULTS.bins;
    const actRange = range(p, 'range');
    const gradRange = range(p, 'grad_range');
    const withGradients = bool(p, 'gradients') ?? true;
    const info = findModel(pool.models(), p.get('model') ?? deps.defaultModel(), 'model');
    res.locals.model = info.id;
    const layers = resolveLayers(list(p, 'layer') ?? [info.defaultLayer], info);
    if (layers.length > MAX_LAYERS) throw badParameter('layer', `at most ${MAX_LAYERS} layers`, p.get('layer'), `${layers.length} layers, at most ${MAX_LAYERS} at once`);
    const targetItems = list(p, 'target');
    if (targetItems && !withGradients) throw badParameter('target', 'only with gradients=true', p.get('target'), 'target picks the class of the gradients; gradients=false shows activations only');
    const targets = targetItems ? resolveTargets(targetItems, info) : undefined;
    if (targets && targets.length > MAX_HISTOGRAM_TARGETS) {
      throw badParameter('target', `at most ${MAX_HISTOGRAM_TARGETS} classes`, p.get('target'), `${targets.length} classes, at most ${MAX_HISTOGRAM_TARGETS} at once`);
    }
    if (gradRange && !withGradients) throw badParameter('grad_range', 'only with gradients=true', p.get('grad_range'), 'grad_range bins the gradients; gradients=false shows activations only');
    const input = await imageInput(upload.bytes, info, deps);
    if (signal.aborted) return;
    const job: TensorsRequest = withGradients ? (targets ? { input, layers, targets } : { input, layers, topk: 1 }) : { input, layers };
    const t = await fromPool(() => pool.tensors(info.id, job, { signal }), info.id);
    if (signal.aborted) return;
    const layerHists = t.layers.map((l) => {
      const per = l.activations.length;
      return {
        layer: l.layer,
        dims: l.dims,
        activations: histogram(l.activations, { bins, range: actRange }),
        gradients: t.targets.map((target, k) => ({ target, hist: histogram(l.gradients!.subarray(k * per, (k + 1) * per), { bins, range: gradRange }) })),
      };
    });
    if (output === 'png') {
      const panels: HistogramPanel[] = [];
      for (const l of layerHists) {
        panels.push({ title: 'activations', subtitle: l.layer, hist: l.activations });
        for (const g of l.gradients) {
          const label = info.manifest.labels?.[g.target];
          panels.push({ title: `∂ logit[${g.target}${label ? ` ${label}` : ''}] / ∂ activations`, subtitle: l.layer, hist: g.hist, color: '#e8590c' });
        }
      }
      res.setHeader('X-Camserve-Model', info.id);
      res.type('image/png').send(await histogramPng(panels, 1 + t.targets.length));
      return;
    }
    res.json({
      model: info.id,
      prediction: prediction(t.logits, top1(t.logits), info),
      targets: t.targets.map((c) => prediction(t.logits, c, info)),
      layers: layerHists.map((l) => ({
        layer: l.layer,
        dims: l.dims,
        activations: histogramJson(l.activations),
        gradients: l.gradients.map((g) => ({ target: g.target, histogram: histogramJson(g.hist) })),
      })),
    });
  });

  router.get('/models/:id/summary', async (req: Request, res: Response) => {
    res.locals.route = '/models/{id}/summary';
    const pool = requirePool();
    collect('GET /models/{id}/summary', [], req.query as Record<string, unknown>);
    const info = findModel(pool.models(), String(req.params.id), 'id');
    res.locals.model = info.id;
    const summary = summarize(await factsOf(pool, info.id));
    if (req.accepts(['application/json', 'text/plain']) === 'text/plain') {
      res.type('text/plain; charset=utf-8').send(formatSummary(summary));
      return;
    }
    res.json(summaryJson(summary));
  });

  router.get('/models/:id/graph', async (req: Request, res: Response) => {
    res.locals.route = '/models/{id}/graph';
    const pool = requirePool();
    const p = collect('GET /models/{id}/graph', GRAPH_PARAMETERS, req.query as Record<string, unknown>);
    const accepted = req.accepts(['image/svg+xml', 'text/vnd.graphviz']);
    const format = oneOf(p, 'format', ['svg', 'dot'] as const, accepted === 'text/vnd.graphviz' ? 'dot' : 'svg');
    const opts: GraphOptions = {
      collapse: oneOf(p, 'collapse', GRAPH_COLLAPSE, 'none'),
      depth: int(p, 'depth', 1, 64),
      rankdir: oneOf(p, 'rankdir', ['TB', 'LR'] as const, 'TB'),
    };
    const info = findModel(pool.models(), String(req.params.id), 'id');
    res.locals.model = info.id;
    const facts = await factsOf(pool, info.id);
    if (format === 'dot') {
      res.type('text/vnd.graphviz; charset=utf-8').send(graphDot(facts, opts));
      return;
    }
    const key = JSON.stringify([info.id, opts.collapse, opts.depth ?? null, opts.rankdir]);
    let svg = graphCache.get(key);
    if (!svg) {
      svg = renderDot(graphDot(facts, opts));
      graphCache.set(key, svg);
      svg.catch(() => graphCache.delete(key));
      while (graphCache.size > GRAPH_CACHE_SIZE) graphCache.delete(graphCache.keys().next().value as string);
    }
    res.type('image/svg+xml').send(await svg);
  });

  // These paths with another HTTP method: 405 with Allow (OPTIONS: 204 with Allow), as the app does for its own.
  for (const [template, methods] of Object.entries(INSPECT_ROUTES)) {
    router.all(template.replace('{id}', ':id'), (req: Request, res: Response) => {
      res.locals.route = template;
      const allow = [...methods, 'OPTIONS'];
      res.setHeader('Allow', allow.join(', '));
      if (req.method === 'OPTIONS') {
        res.status(204).end();
        return;
      }
      throw new HttpProblem('method-not-allowed', `${req.method} is not allowed on ${template}; allowed: ${allow.join(', ')}`, { allowed: allow, received: req.method });
    });
  }

  // Problems of these routes as problem+json (the app's own handler gets everything else).
  router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (err instanceof ClientGone) return;
    if (err instanceof HttpProblem) {
      sendProblem(res, err, typeof req.id === 'string' ? req.id : undefined);
      return;
    }
    next(err);
  });
  return router;
}
