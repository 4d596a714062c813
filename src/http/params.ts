// Parameters of POST /cam: collected from the query and the form, each checked at the edge with a
// 400 that names the parameter, what it accepts and what it got. Unknown or repeated ones are refused.
import { METHOD_NAMES, isMethodName, type MethodName } from '../cam/types.js';
import { COLORMAP_NAMES, isColormapName, type ColormapName } from '../render/index.js';
import type { ModelInfo } from '../engine/runtime.js';
import { badParameter } from './problem.js';

/** Every parameter POST /cam accepts besides the file field `image`. */
export const CAM_PARAMETERS = [
  'model', 'method', 'target', 'topk', 'layer', 'output', 'alpha', 'colormap',
  'eigen_smooth', 'aug_smooth', 'include_png',
] as const;
export type CamParameter = (typeof CAM_PARAMETERS)[number];

export const OUTPUTS = ['overlay', 'heatmap', 'json'] as const;
export type Output = (typeof OUTPUTS)[number];

/** Most layers one request may combine. */
export const MAX_LAYERS = 8;

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

// A Map, not a plain object: `constructor`, `__proto__` or `toString` must not be found as inherited keys.
const BOOLEANS: ReadonlyMap<string, boolean> = new Map([['true', true], ['1', true], ['false', false], ['0', false]]);

/**
 * Merges query and form fields into one map. Refuses a name that is not a parameter (400, listing the
 * known ones) and one given more than once (in the query, the form or both). Empty values count as absent.
 */
export function collectParameters(...sources: Record<string, unknown>[]): Map<CamParameter, string> {
  const out = new Map<CamParameter, string>();
  const seen = new Set<string>();
  for (const source of sources) {
    for (const [name, value] of Object.entries(source)) {
      if (!(CAM_PARAMETERS as readonly string[]).includes(name)) {
        const hint = name === 'image' ? ' (the image is a file field of a multipart form, or the raw body)' : '';
        throw badParameter(name, [...CAM_PARAMETERS], typeof value === 'string' ? value : value,
          `unknown parameter "${name}"${hint}; POST /cam accepts ${CAM_PARAMETERS.join(', ')}`);
      }
      if (typeof value !== 'string' || seen.has(name)) {
        throw badParameter(name, 'one value (several classes or layers go comma-separated in one value)', value,
          `parameter "${name}" is given more than once`);
      }
      seen.add(name);
      if (value.trim() !== '') out.set(name as CamParameter, value.trim());
    }
  }
  return out;
}

function bool(raw: Map<CamParameter, string>, name: CamParameter): boolean {
  const v = raw.get(name);
  if (v === undefined) return false;
  const b = BOOLEANS.get(v.toLowerCase());
  if (b === undefined) throw badParameter(name, ['true', 'false', '1', '0'], v, `${name} must be true or false, got "${v}"`);
  return b;
}

function list(v: string | undefined, name: CamParameter): string[] | undefined {
  if (v === undefined) return undefined;
  const items = v.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) throw badParameter(name, 'a comma-separated list without empty items', v, `${name} has an empty item: "${v}"`);
  return [...new Set(items)];
}

/** Checks every parameter that does not depend on the model. `preferJson`: the Accept header asks for JSON. */
export function parseCamParams(raw: Map<CamParameter, string>, preferJson: boolean): CamParams {
  const method = raw.get('method') ?? 'gradcam';
  if (!isMethodName(method)) throw badParameter('method', [...METHOD_NAMES], method, `unknown method "${method}"`);
  const outputRaw = raw.get('output') ?? (preferJson ? 'json' : 'overlay');
  if (!(OUTPUTS as readonly string[]).includes(outputRaw)) throw badParameter('output', [...OUTPUTS], outputRaw, `unknown output "${outputRaw}"`);
  const output = outputRaw as Output;
  const colormap = raw.get('colormap') ?? 'jet';
  if (!isColormapName(colormap)) throw badParameter('colormap', [...COLORMAP_NAMES], colormap, `unknown colour map "${colormap}"`);
  const alphaRaw = raw.get('alpha');
  let alpha = 0.5;
  if (alphaRaw !== undefined) {
    alpha = /^[+]?(\d+\.?\d*|\.\d+)$/.test(alphaRaw) ? Number(alphaRaw) : NaN;
    if (!(alpha >= 0 && alpha <= 1)) throw badParameter('alpha', 'a number in [0, 1] (the image weight)', alphaRaw, `alpha must be a number in [0, 1], got "${alphaRaw}"`);
  }
  let topk: number | undefined;
  const topkRaw = raw.get('topk');
  if (topkRaw !== undefined) {
    topk = /^\d+$/.test(topkRaw) ? Number(topkRaw) : NaN;
    if (!(Number.isSafeInteger(topk) && topk >= 1)) throw badParameter('topk', 'a positive integer', topkRaw, `topk must be a positive integer, got "${topkRaw}"`);
  }
  const target = list(raw.get('target'), 'target');
  if (target && topk !== undefined) throw badParameter('topk', 'topk or target, not both', topkRaw, 'give target (the classes) or topk (the k best classes), not both');
  const layer = list(raw.get('layer'), 'layer');
  if (layer && layer.length > MAX_LAYERS) throw badParameter('layer', `at most ${MAX_LAYERS} layers`, raw.get('layer'), `${layer.length} layers, at most ${MAX_LAYERS} may be combined`);
  const includePng = bool(raw, 'include_png');
  if (includePng && output !== 'json') {
    throw badParameter('include_png', 'true only with output=json', raw.get('include_png'), `include_png adds PNGs to a JSON answer; output is ${output}`);
  }
  return {
    model: raw.get('model'), method, target, topk, layer, output, alpha, colormap,
    eigenSmooth: bool(raw, 'eigen_smooth'), augSmooth: bool(raw, 'aug_smooth'), includePng,
  };
}

/** Class indices for `target` items (an index, or a label: exact, else case-insensitive). */
export function resolveTargets(items: string[], info: Pick<ModelInfo, 'numClasses' | 'manifest'>): number[] {
  const labels = info.manifest.labels;
  const range = `0..${info.numClasses - 1}`;
  const out: number[] = [];
  for (const item of items) {
    let index: number | undefined;
    if (/^\d+$/.test(item)) {
      index = Number(item);
      if (!(index < info.numClasses)) {
        throw badParameter('target', labels ? { indices: range, labels } : { indices: range }, item, `class index ${item} is outside ${range}`);
      }
    } else if (labels) {
      index = labels.indexOf(item);
      if (index < 0) {
        const lower = item.toLowerCase();
        const matches = labels.flatMap((l, i) => (l.toLowerCase() === lower ? [i] : []));
        index = matches.length === 1 ? matches[0] : -1;
      }
      if (index < 0) throw badParameter('target', { indices: range, labels }, item, `"${item}" is neither a class index nor a label of this model`);
    } else {
      throw badParameter('target', { indices: range }, item, `"${item}" is not a class index, and this model has no labels`);
    }
    if (!out.includes(index)) out.push(index);
  }
  return out;
}

/** Checks `layer` items against the model's candidate layers (4-D feature maps that lead to the logits). */
export function resolveLayers(items: string[], info: Pick<ModelInfo, 'candidateLayers'>): string[] {
  const names = info.candidateLayers.map((c) => c.name);
  for (const item of items) {
    if (!names.includes(item)) {
      throw badParameter('layer', names, item, `"${item}" is not a candidate layer of this model (a 4-D feature map that leads to the logits); GET /models/{id} lists them`);
    }
  }
  return items;
}
