// The one parameter kit of the HTTP routes and the CLI: values arrive as strings (query, form, command
// line), are collected once and parsed by one parser per kind of value, each refusing with a 400 that
// names the parameter, what it accepts and what it got. Lookups never touch inherited properties.
import { FINER_DEFAULTS, METHOD_NAMES, METHODS, TARGET_KINDS, isMethodName, isTargetKind, type FinerOptions, type MethodName, type TargetKind } from '../cam/index.js';
import { findCandidate, type ExplainRequest, type ModelInfo } from '../engine/index.js';
import { badParameter } from '../errors/index.js';
import { GRAPH_COLLAPSE, HISTOGRAM_DEFAULTS, type ChannelSelection, type GraphOptions, type GridOptions } from '../inspect/index.js';
import { METRIC_NAMES, METRIC_SCORES, isMetricName, type MetricName, type MetricScore } from '../metrics/index.js';
import { COLORMAP_NAMES, DEFAULT_COMPRESSION_LEVEL, PICTURE_FORMATS, isColormapName, type ColormapName, type PictureFormat } from '../render/index.js';

/** A request's parameters by name: present and non-empty values only. */
export type Params = ReadonlyMap<string, string>;

/** Most layers one request may combine. */
export const MAX_LAYERS = 8;

/**
 * Merges parameter sources (query, form fields, CLI options) into one map. Refuses a name that is not in
 * `allowed` (400, listing them) and one given more than once (in one source or across them). Empty
 * values count as absent.
 */
export function collectParameters(route: string, allowed: readonly string[], ...sources: Record<string, unknown>[]): Params {
  const out = new Map<string, string>();
  for (const source of sources) {
    for (const [name, value] of Object.entries(source)) {
      if (!allowed.includes(name)) {
        const hint = name === 'image' ? ' (the image is a file field of a multipart form, or the raw body)' : '';
        throw badParameter(name, [...allowed], typeof value === 'string' ? value : null, `unknown parameter "${name}"${hint}; ${route} accepts ${allowed.join(', ')}`);
      }
      if (typeof value !== 'string' || out.has(name)) {
        throw badParameter(name, 'one value (lists go comma-separated in one value)', Array.isArray(value) ? value.map(String) : null, `parameter "${name}" is given more than once`);
      }
      if (value.trim() !== '') out.set(name, value.trim());
    }
  }
  return out;
}

const BOOLEANS: ReadonlyMap<string, boolean> = new Map([['true', true], ['1', true], ['false', false], ['0', false]]);
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** `true`, `false`, `1` or `0` (any case). */
export function bool(p: Params, name: string): boolean | undefined {
  const v = p.get(name);
  if (v === undefined) return undefined;
  const b = BOOLEANS.get(v.toLowerCase());
  if (b === undefined) throw badParameter(name, ['true', 'false', '1', '0'], v, `${name} must be true or false, got "${v}"`);
  return b;
}

/** A decimal integer in [min, max]. */
export function int(p: Params, name: string, min: number, max: number): number | undefined {
  const v = p.get(name);
  if (v === undefined) return undefined;
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(Number.isSafeInteger(n) && n >= min && n <= max)) throw badParameter(name, `an integer in ${min}..${max}`, v, `${name} must be an integer in ${min}..${max}, got "${v}"`);
  return n;
}

/** A finite decimal number, optionally within [min, max]. */
export function num(p: Params, name: string, bounds: { min?: number; max?: number; what?: string } = {}): number | undefined {
  const v = p.get(name);
  if (v === undefined) return undefined;
  const n = NUMBER.test(v) ? Number(v) : NaN;
  const { min = -Infinity, max = Infinity } = bounds;
  if (!(Number.isFinite(n) && n >= min && n <= max)) {
    const what = bounds.what ?? (Number.isFinite(min) || Number.isFinite(max) ? `a number in [${min}, ${max}]` : 'a number');
    throw badParameter(name, what, v, `${name} must be ${what}, got "${v}"`);
  }
  return n;
}

/** "lo,hi": two numbers with lo < hi. */
export function range(p: Params, name: string): [number, number] | undefined {
  const v = p.get(name);
  if (v === undefined) return undefined;
  const parts = v.split(',').map((s) => s.trim());
  const [lo, hi] = parts.map(Number);
  if (parts.length !== 2 || !parts.every((s) => NUMBER.test(s)) || !(Number.isFinite(lo) && Number.isFinite(hi) && lo < hi)) {
    throw badParameter(name, '"lo,hi": two numbers, lo < hi', v, `${name} must be "lo,hi" with lo < hi, got "${v}"`);
  }
  return [lo, hi];
}

/** A comma-separated list without empty items, de-duplicated in order; at most `max` items. */
export function list(p: Params, name: string, max = Infinity): string[] | undefined {
  const v = p.get(name);
  if (v === undefined) return undefined;
  const items = v.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) throw badParameter(name, 'a comma-separated list without empty items', v, `${name} has an empty item: "${v}"`);
  const unique = [...new Set(items)];
  if (unique.length > max) throw badParameter(name, `at most ${max} items`, v, `${name} has ${unique.length} items, at most ${max} are allowed`);
  return unique;
}

/** One of `allowed` (exact), else `dflt`. */
export function oneOf<T extends string>(p: Params, name: string, allowed: readonly T[], dflt: T): T {
  const v = p.get(name) ?? dflt;
  if (!(allowed as readonly string[]).includes(v)) throw badParameter(name, [...allowed], v, `${name} must be one of ${allowed.join(', ')}, got "${v}"`);
  return v as T;
}

/** Class indices for `target` items: an index, or a label (exact, else case-insensitive and unique). De-duplicated, in order. */
export function resolveTargets(items: readonly string[], info: Pick<ModelInfo, 'numClasses' | 'manifest'>, parameter = 'target'): number[] {
  const labels = info.manifest.labels;
  const range = `0..${info.numClasses - 1}`;
  const out: number[] = [];
  for (const item of items) {
    let index: number | undefined;
    if (/^\d+$/.test(item)) {
      index = Number(item);
      if (!(index < info.numClasses)) {
        throw badParameter(parameter, labels ? { indices: range, labels } : { indices: range }, item, `class index ${item} is outside ${range}`);
      }
    } else if (labels) {
      index = labels.indexOf(item);
      if (index < 0) {
        const lower = item.toLowerCase();
        const matches = labels.flatMap((l, i) => (l.toLowerCase() === lower ? [i] : []));
        index = matches.length === 1 ? matches[0] : -1;
      }
      if (index < 0) throw badParameter(parameter, { indices: range, labels }, item, `"${item}" is neither a class index nor a label of this model`);
    } else {
      throw badParameter(parameter, { indices: range }, item, `"${item}" is not a class index, and this model has no labels`);
    }
    if (!out.includes(index)) out.push(index);
  }
  return out;
}

/**
 * The candidate layers `layer` items name (each by its candidate name, its tensor or the node that produces
 * it), de-duplicated in order; 400 listing the candidates for any other item.
 */
export function resolveLayers(items: readonly string[] | undefined, info: Pick<ModelInfo, 'candidateLayers' | 'defaultLayer'>): string[] {
  if (!items?.length) return [info.defaultLayer];
  const out: string[] = [];
  for (const item of items) {
    const c = findCandidate(info.candidateLayers, item);
    if (!c) {
      throw badParameter('layer', info.candidateLayers.map((l) => l.name), item,
        `"${item}" is not a candidate layer of this model (a feature map or token map that leads to the logits, named by its name, tensor or node); GET /models/{id} lists them`);
    }
    if (!out.includes(c.name)) out.push(c.name);
  }
  return out;
}

/**
 * `timeout_ms`: how long the client will wait for its answer, at most `max` (the server's limit, also the
 * deadline of a request that names none). Counted from the request's arrival.
 */
export function timeoutMs(p: Params, max: number): number {
  return int(p, 'timeout_ms', 1, max) ?? max;
}

// ---------------------------------------------------------------- explanations (POST /cam, camserve explain)

/** Every parameter of an explanation besides the image. */
export const CAM_PARAMETERS = [
  'model', 'method', 'target', 'topk', 'layer', 'output', 'alpha', 'colormap',
  'eigen_smooth', 'aug_smooth', 'include_png', 'timeout_ms',
  'target_kind', 'finer_comparison', 'finer_alpha', 'seed', 'concepts', 'metrics', 'road_percentiles', 'metric_score',
  'max_side', 'format', 'png_compression', 'quality',
] as const;

/** Smallest `max_side`; the largest is the server's MAX_IMAGE_SIDE (the CLI's: {@link MAX_SIDE_LIMIT}). */
export const MIN_MAX_SIDE = 16;
/** Largest `max_side` where no server cap is given (MAX_IMAGE_SIDE's own upper bound). */
export const MAX_SIDE_LIMIT = 16384;

/** Most comparison classes of Finer-CAM, concepts of DFF. */
export const MAX_FINER_COMPARISON = 16;
export const MAX_CONCEPTS = 64;

export const OUTPUTS = ['overlay', 'heatmap', 'json'] as const;
export type Output = (typeof OUTPUTS)[number];

export interface CamParams {
  model?: string;
  method: MethodName;
  /** class indices or labels as given, resolved against the model by {@link resolveTargets} */
  target?: string[];
  topk?: number;
  layer?: string[];
  output: Output;
  alpha: number;
  colormap: ColormapName;
  eigenSmooth: boolean;
  augSmooth: boolean;
  includePng: boolean;
  /** what is differentiated for each class (default `class`; finercam: `finer`) */
  targetKind: TargetKind;
  /** Finer-CAM's comparison ranks and α (target kind finer only) */
  finer?: FinerOptions;
  /** seed of the method's random draws (default 0) */
  seed?: number;
  /** DFF's number of concepts */
  concepts?: number;
  /** faithfulness metrics of each explanation */
  metrics?: MetricName[];
  roadPercentiles?: number[];
  metricScore?: MetricScore;
  /** the pictures' longer side at most this (aspect kept, never enlarged); default the image's (capped) size */
  maxSide?: number;
  /** the format of an image answer (output overlay or heatmap); pictures inside JSON are PNG */
  format: PictureFormat;
  /** zlib level of PNG pictures, 0..9 */
  pngCompression: number;
  /** WebP / JPEG quality, 1..100 (default the renderer's) */
  quality?: number;
}

/**
 * Checks every explanation parameter that does not depend on the model. `preferJson`: the Accept header asks
 * for JSON; `maxImageSide`: the largest `max_side` (the server's MAX_IMAGE_SIDE).
 */
export function parseCamParams(p: Params, preferJson = false, maxImageSide = MAX_SIDE_LIMIT): CamParams {
  const method = p.get('method') ?? 'gradcam';
  if (!isMethodName(method)) throw badParameter('method', [...METHOD_NAMES], method, `unknown method "${method}"`);
  const output = oneOf(p, 'output', OUTPUTS, preferJson ? 'json' : 'overlay');
  const colormap = p.get('colormap') ?? 'jet';
  if (!isColormapName(colormap)) throw badParameter('colormap', [...COLORMAP_NAMES], colormap, `unknown colour map "${colormap}"`);
  const alpha = num(p, 'alpha', { min: 0, max: 1, what: 'a number in [0, 1] (the image weight)' }) ?? 0.5;
  const topk = int(p, 'topk', 1, Number.MAX_SAFE_INTEGER);
  const target = list(p, 'target');
  if (target && topk !== undefined) throw badParameter('topk', 'topk or target, not both', p.get('topk'), 'give target (the classes) or topk (the k best classes), not both');
  const layer = list(p, 'layer', MAX_LAYERS);
  const includePng = bool(p, 'include_png') ?? false;
  if (includePng && output !== 'json') {
    throw badParameter('include_png', 'true only with output=json', p.get('include_png'), `include_png adds PNGs to a JSON answer; output is ${output}`);
  }
  const eigenSmooth = bool(p, 'eigen_smooth') ?? false;
  const augSmooth = bool(p, 'aug_smooth') ?? false;
  const m = METHODS[method];
  const refuse = (name: string, why: string) => { throw badParameter(name, `not with method=${method}`, p.get(name), why); };

  // What is differentiated.
  const kind = p.get('target_kind');
  if (kind !== undefined && !isTargetKind(kind)) throw badParameter('target_kind', [...TARGET_KINDS], kind, `unknown target kind "${kind}"`);
  const fixed = 'targetKind' in m ? m.targetKind : undefined;
  if (fixed && kind !== undefined && kind !== fixed) refuse('target_kind', `${method} explains target_kind=${fixed}; got "${kind}"`);
  const targetKind: TargetKind = fixed ?? (kind as TargetKind | undefined) ?? 'class';
  if (m.kind === 'factorization' && kind !== undefined) refuse('target_kind', `${method} is not class-specific: it has no target`);
  const ranks = list(p, 'finer_comparison', MAX_FINER_COMPARISON);
  const finerAlpha = num(p, 'finer_alpha');
  for (const [name, given] of [['finer_comparison', ranks], ['finer_alpha', finerAlpha]] as const) {
    if (given !== undefined && targetKind !== 'finer') throw badParameter(name, 'only with target_kind=finer (or method=finercam)', p.get(name), `${name} sets Finer-CAM's comparison; the target kind is ${targetKind}`);
  }
  if (ranks && !ranks.every((r) => /^\d{1,4}$/.test(r) && Number(r) >= 1)) {
    throw badParameter('finer_comparison', 'ranks ≥ 1, comma-separated (1: the class with the nearest logit)', p.get('finer_comparison'), `finer_comparison must be ranks ≥ 1, got "${p.get('finer_comparison')}"`);
  }
  const finer = targetKind === 'finer' ? { ranks: ranks?.map(Number) ?? FINER_DEFAULTS.ranks, alpha: finerAlpha ?? FINER_DEFAULTS.alpha } : undefined;

  // Per kind of method.
  if (m.kind === 'factorization') {
    if (target || topk !== undefined) refuse(target ? 'target' : 'topk', `${method} is not class-specific: it factorises the layer into concepts (concepts=k)`);
    if (eigenSmooth || augSmooth) refuse(eigenSmooth ? 'eigen_smooth' : 'aug_smooth', `${method} factorises the activations; smoothing does not apply`);
    if (layer && layer.length > 1) throw badParameter('layer', 'one layer', p.get('layer'), `${method} factorises one layer, ${layer.length} were given`);
  }
  const concepts = int(p, 'concepts', 1, MAX_CONCEPTS);
  if (concepts !== undefined && m.kind !== 'factorization') refuse('concepts', 'concepts is the number of DFF concepts (method=dff)');
  if (m.kind === 'input') {
    if (layer && !m.layerCam) refuse('layer', `${method} works on the input's gradients; it uses no layer`);
    if (eigenSmooth || augSmooth) refuse(eigenSmooth ? 'eigen_smooth' : 'aug_smooth', `${method} is an input attribution; eigen_smooth and aug_smooth smooth layer maps`);
  }
  const seed = int(p, 'seed', 0, 0xffffffff);

  // Faithfulness metrics.
  const metrics = list(p, 'metrics', METRIC_NAMES.length);
  for (const name of metrics ?? []) if (!isMetricName(name)) throw badParameter('metrics', [...METRIC_NAMES], name, `unknown metric "${name}"`);
  if (metrics && m.kind === 'factorization') refuse('metrics', `${method} has no map per class to measure`);
  const percentiles = list(p, 'road_percentiles', 99);
  if (percentiles && !percentiles.every((v) => NUMBER.test(v) && Number(v) > 0 && Number(v) < 100)) {
    throw badParameter('road_percentiles', 'numbers in (0, 100), comma-separated', p.get('road_percentiles'), `road_percentiles must be numbers in (0, 100), got "${p.get('road_percentiles')}"`);
  }
  if (percentiles && !metrics?.some((n) => n.startsWith('road_'))) {
    throw badParameter('road_percentiles', 'only with a ROAD metric in metrics', p.get('road_percentiles'), 'road_percentiles sets the percentiles of road_morf, road_lerf and road_combined; metrics asks for none of them');
  }
  const metricScore = p.get('metric_score');
  if (metricScore !== undefined) {
    if (!metrics) throw badParameter('metric_score', 'only with metrics', metricScore, 'metric_score says what the metrics compare; no metrics were asked for');
    oneOf(p, 'metric_score', METRIC_SCORES, 'softmax');
  }
  // The pictures: size and encoding.
  const maxSide = int(p, 'max_side', MIN_MAX_SIDE, maxImageSide);
  const format = oneOf(p, 'format', PICTURE_FORMATS, 'png');
  if (format !== 'png' && output === 'json') {
    throw badParameter('format', ['png'], format, 'format sets the picture of an image answer (output=overlay or heatmap); the pictures of JSON answers (include_png), of jobs and of KServe are PNG');
  }
  const pngCompression = int(p, 'png_compression', 0, 9);
  if (pngCompression !== undefined && format !== 'png') throw badParameter('png_compression', 'only with format=png', p.get('png_compression'), `png_compression is the zlib level of PNG pictures; format is ${format}`);
  const quality = int(p, 'quality', 1, 100);
  if (quality !== undefined && format === 'png') throw badParameter('quality', 'only with format=webp or jpeg', p.get('quality'), 'quality sets WebP and JPEG pictures; PNG is lossless (png_compression sets its zlib level)');
  return {
    maxSide, format, pngCompression: pngCompression ?? DEFAULT_COMPRESSION_LEVEL, quality,
    model: p.get('model'), method, target, topk, layer, output, alpha, colormap, eigenSmooth, augSmooth, includePng,
    targetKind, finer, seed, concepts,
    metrics: metrics as MetricName[] | undefined, roadPercentiles: percentiles?.map(Number), metricScore: metricScore as MetricScore | undefined,
  };
}

/**
 * The classes of an explanation, checked against the model and the limit of classes per request (target
 * kind binary: the categories 0 and 1 of a one-output model; finer: the comparison ranks fit the classes).
 */
export function explainedClasses(params: Pick<CamParams, 'target' | 'topk' | 'output' | 'targetKind' | 'finer'>, info: Pick<ModelInfo, 'numClasses' | 'manifest'>, maxTargets: number): number[] | undefined {
  if (params.targetKind === 'binary') {
    if (info.numClasses !== 1) throw badParameter('target_kind', 'binary only for a model with one output', 'binary', `target_kind=binary explains a one-output binary classifier; this model has ${info.numClasses} outputs`);
    if (params.topk !== undefined) throw badParameter('topk', 'not with target_kind=binary', String(params.topk), 'a binary classifier has one output: give target=1 or target=0 (the category), or neither for the predicted one');
    const categories = params.target?.map((t) => {
      if (t !== '0' && t !== '1') throw badParameter('target', ['0', '1'], t, `with target_kind=binary, target is the category 0 or 1, got "${t}"`);
      return Number(t);
    });
    if (categories && categories.length > 1 && params.output !== 'json') {
      throw badParameter('output', ['json'], params.output, `output=${params.output} shows one category but ${categories.length} were asked for; use output=json`);
    }
    return categories;
  }
  const worst = params.finer ? Math.max(...params.finer.ranks) : 0;
  if (worst > info.numClasses - 1) {
    throw badParameter('finer_comparison', `ranks in 1..${info.numClasses - 1}`, params.finer!.ranks.join(','), `comparison rank ${worst} asked for, but the model has only ${info.numClasses - 1} other classes`);
  }
  const targets = params.target ? resolveTargets(params.target, info) : undefined;
  const explained = targets?.length ?? params.topk ?? 1;
  const maxK = Math.min(maxTargets, info.numClasses);
  if (explained > maxK) {
    throw badParameter(params.target ? 'target' : 'topk', `at most ${maxK} classes`, params.target?.join(',') ?? params.topk,
      `${explained} classes asked for; at most ${maxK} may be explained at once${info.numClasses < maxTargets ? ' (the model has ' + info.numClasses + ' classes)' : ''}`);
  }
  if (explained > 1 && params.output !== 'json') {
    throw badParameter('output', ['json'], params.output,
      `output=${params.output} shows one class but ${explained} were asked for; use output=json (with include_png=true for images) to explain several`);
  }
  return targets;
}

/**
 * The engine's request for checked parameters, the classes (explainedClasses) and layers (resolveLayers).
 * Metrics score by `metric_score`, by default the model's own score: softmax (pytorch-grad-cam's
 * ClassifierOutputSoftmaxTarget, TorchCAM's deletion/insertion), sigmoid for multi-label and one-output models.
 */
export function explainRequest(params: CamParams, input: Float32Array, targets: number[] | undefined, layers: string[], info: Pick<ModelInfo, 'numClasses' | 'manifest'>): ExplainRequest {
  const score = params.metricScore ?? (info.manifest.multiLabel || info.numClasses === 1 ? 'sigmoid' : 'softmax');
  return {
    input, method: params.method, targets, topk: params.topk, layers,
    eigenSmooth: params.eigenSmooth, augSmooth: params.augSmooth,
    targetKind: params.targetKind, finer: params.finer, seed: params.seed, concepts: params.concepts,
    ...(params.metrics ? { metrics: { names: params.metrics, score, roadPercentiles: params.roadPercentiles, seed: params.seed } } : {}),
  };
}

// ---------------------------------------------------------------- inspection

export const FEATURE_PARAMETERS = [
  'model', 'layer', 'nrow', 'padding', 'normalize', 'range', 'scale_each', 'pad_value', 'channels', 'colormap', 'scale', 'output', 'timeout_ms',
] as const;
export const HISTOGRAM_PARAMETERS = ['model', 'layer', 'target', 'bins', 'range', 'grad_range', 'gradients', 'output', 'timeout_ms'] as const;
export const GRAPH_PARAMETERS = ['collapse', 'depth', 'rankdir', 'format'] as const;
/** Most classes whose gradients one histogram request shows. */
export const MAX_HISTOGRAM_TARGETS = 4;

/** `channels`: "all", "top:k", or a comma-separated list of indices. */
export function parseChannels(p: Params): ChannelSelection | undefined {
  const v = p.get('channels');
  if (v === undefined || v === 'all') return undefined;
  const top = /^top:(\d+)$/.exec(v);
  if (top) {
    const k = Number(top[1]);
    if (!(Number.isSafeInteger(k) && k >= 1)) throw badParameter('channels', '"all", "top:k" (k ≥ 1) or channel indices', v, `channels top:k needs k ≥ 1, got "${v}"`);
    return { top: k };
  }
  const items = v.split(',').map((s) => s.trim());
  if (!items.every((s) => /^\d{1,9}$/.test(s))) {
    throw badParameter('channels', '"all", "top:k" or comma-separated channel indices', v, `channels must be "all", "top:k" or channel indices, got "${v}"`);
  }
  return items.map(Number);
}

/** Grid options of the feature view (everything but model, layer, output). */
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
    channels: parseChannels(p),
    colormap: colormap === undefined || colormap === 'none' ? undefined : colormap as ColormapName,
    scale: int(p, 'scale', 1, 64),
  };
}

export interface HistogramParams {
  bins: number;
  range?: [number, number];
  gradRange?: [number, number];
  gradients: boolean;
  target?: string[];
}

/** Options of the histogram view (everything but model, layer, output). */
export function parseHistogramParams(p: Params): HistogramParams {
  const gradients = bool(p, 'gradients') ?? true;
  const gradRange = range(p, 'grad_range');
  const target = list(p, 'target', MAX_HISTOGRAM_TARGETS);
  if (gradRange && !gradients) throw badParameter('grad_range', 'only with gradients=true', p.get('grad_range'), 'grad_range bins the gradients; gradients=false shows activations only');
  if (target && !gradients) throw badParameter('target', 'only with gradients=true', p.get('target'), 'target picks the classes whose gradients are shown; gradients=false shows activations only');
  return { bins: int(p, 'bins', 1, HISTOGRAM_DEFAULTS.maxBins) ?? HISTOGRAM_DEFAULTS.bins, range: range(p, 'range'), gradRange, gradients, target };
}

/** Options of the graph view. */
export function parseGraphOptions(p: Params): GraphOptions {
  return {
    collapse: oneOf(p, 'collapse', GRAPH_COLLAPSE, 'none'),
    depth: int(p, 'depth', 1, 64),
    rankdir: oneOf(p, 'rankdir', ['TB', 'LR'] as const, 'TB'),
  };
}
