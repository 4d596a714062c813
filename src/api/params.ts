// The one parameter kit of the HTTP routes and the CLI: values arrive as strings (query, form, command
// line), are collected once and parsed by one parser per kind of value, each refusing with a 400 that
// names the parameter, what it accepts and what it got. Lookups never touch inherited properties.
import { METHOD_NAMES, isMethodName, type MethodName } from '../cam/index.js';
import { findCandidate, type ModelInfo } from '../engine/index.js';
import { badParameter } from '../errors/index.js';
import { GRAPH_COLLAPSE, HISTOGRAM_DEFAULTS, type ChannelSelection, type GraphOptions, type GridOptions } from '../inspect/index.js';
import { COLORMAP_NAMES, isColormapName, type ColormapName } from '../render/index.js';

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
] as const;

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
}

/** Checks every explanation parameter that does not depend on the model. `preferJson`: the Accept header asks for JSON. */
export function parseCamParams(p: Params, preferJson = false): CamParams {
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
  return {
    model: p.get('model'), method, target, topk, layer, output, alpha, colormap,
    eigenSmooth: bool(p, 'eigen_smooth') ?? false, augSmooth: bool(p, 'aug_smooth') ?? false, includePng,
  };
}

/** The classes of an explanation, checked against the model and the limit of classes per request. */
export function explainedClasses(params: Pick<CamParams, 'target' | 'topk' | 'output'>, info: Pick<ModelInfo, 'numClasses' | 'manifest'>, maxTargets: number): number[] | undefined {
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
