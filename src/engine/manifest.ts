// The optional model.json beside model.onnx: input preprocessing, labels, default layer and output.
// Parsed once at the edge into a ModelManifest with every field checked.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ModelError } from '../errors/index.js';
import { containedFile } from '../onnx/index.js';
import type { FitOptions, ResizeMode } from '../render/index.js';

export interface InputSpec {
  /** [height, width] the image is resized to */
  size?: [number, number];
  layout: 'NCHW' | 'NHWC';
  channels: 'RGB' | 'BGR' | 'gray';
  /** pixel (0..255) × scale, then (x − mean) / std per channel; scale may be negative (inverted inputs) */
  scale: number;
  mean: number[];
  std: number[];
  /** instead of scale/mean/std: x = pixel (0..255) × affine.scale[c] + affine.offset[c], per channel */
  affine?: { scale: number[]; offset: number[] };
  /** stretch: resize to size ignoring aspect; crop: resize the short side and centre-crop; pad: letterbox */
  resize: ResizeMode;
  /** crop: the short side before the centre crop (torchvision: resize 256, crop 224); default the crop size */
  resizeSize?: number;
  /** pad: where the image sits in the letterbox (top-left: borders right and below only); default center */
  anchor?: 'center' | 'top-left';
  /** pad: grey level 0..255 of the borders; default 0 */
  padValue?: number;
}

export interface ModelManifest {
  input: InputSpec;
  /** class names by index (from labels.txt or an inline array) */
  labels?: string[];
  layer?: string;
  output?: string;
  /** classes are independent (sigmoid scores) rather than exclusive (softmax) */
  multiLabel: boolean;
  description?: string;
  /** transformers: tokens before the patch grid, and/or the grid [h, w] (otherwise detected) */
  tokens?: { prefix?: number; grid?: [number, number] };
  /** false: keep an exported fixed batch of 1 as it is (no symbolic rewrite; many-run methods run one image at a time) */
  symbolicBatch?: boolean;
  /** false: never take a pooling → linear head's gradient in closed form; always run the head's backward */
  linearShortcut?: boolean;
}

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

/** One problem of model.json: the field and what is wrong with it. */
export interface ManifestProblem { field: string; message: string }

function isNumArray(v: unknown, n?: number): v is number[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x)) && (n === undefined || v.length === n);
}

/** The geometry options of an input spec, for inputGeometry and render jobs. */
export function fitOf(spec: InputSpec): FitOptions {
  return { ...(spec.resizeSize !== undefined ? { resizeSize: spec.resizeSize } : {}), anchor: spec.anchor ?? 'center' };
}

/** What the graph says where model.json is silent: its channel count and, when it can tell, its layout. */
export interface GraphDefaults {
  channelsInModel?: number;
  layout?: InputSpec['layout'];
}

/** Reads `<dir>/model.json` (optional) and `labels.txt` (optional); the graph's facts fill missing fields. */
export async function readManifest(dir: string, graph: GraphDefaults = {}): Promise<ModelManifest> {
  const { channelsInModel } = graph;
  const file = path.join(dir, 'model.json');
  let raw: Record<string, unknown> = {};
  try {
    raw = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new ModelError(`${file}: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ModelError(`${file}: the file must hold a JSON object, got ${JSON.stringify(raw)}`, { file, errors: [{ field: '(root)', message: 'must be an object' }] });
  const problems: ManifestProblem[] = [];
  const bad = (field: string, expected: string, got: unknown) => problems.push({ field, message: `must be ${expected}, got ${JSON.stringify(got)}` });
  const inp = (raw.input ?? {}) as Record<string, unknown>;
  if (typeof inp !== 'object' || inp === null || Array.isArray(inp)) bad('input', 'an object', raw.input);
  const known = new Set(['size', 'layout', 'channels', 'scale', 'mean', 'std', 'affine', 'resize', 'resize_size', 'crop_pct', 'anchor', 'pad_value']);
  for (const k of Object.keys(inp)) if (!known.has(k)) problems.push({ field: `input.${k}`, message: `is not a field of input (${[...known].join(', ')})` });
  const gray = inp.channels === 'gray' || (inp.channels === undefined && channelsInModel === 1);
  const n = gray ? 1 : 3;
  const input: InputSpec = {
    layout: graph.layout ?? 'NCHW', channels: gray ? 'gray' : 'RGB', scale: 1 / 255,
    mean: gray ? [0.5] : IMAGENET_MEAN, std: gray ? [0.5] : IMAGENET_STD, resize: 'stretch', anchor: 'center', padValue: 0,
  };
  if (inp.size !== undefined) {
    if (!isNumArray(inp.size, 2) || !inp.size.every((v) => Number.isInteger(v) && v > 0)) bad('input.size', '[height, width] of positive integers', inp.size);
    else input.size = [inp.size[0], inp.size[1]];
  }
  if (inp.layout !== undefined) {
    if (inp.layout !== 'NCHW' && inp.layout !== 'NHWC') bad('input.layout', '"NCHW" or "NHWC"', inp.layout);
    else input.layout = inp.layout;
  }
  if (inp.channels !== undefined) {
    if (inp.channels !== 'RGB' && inp.channels !== 'BGR' && inp.channels !== 'gray') bad('input.channels', '"RGB", "BGR" or "gray"', inp.channels);
    else input.channels = inp.channels;
  }
  if (inp.scale !== undefined) {
    // Negative: an inverted input (white = low).
    if (typeof inp.scale !== 'number' || !Number.isFinite(inp.scale) || inp.scale === 0) bad('input.scale', 'a non-zero number (negative inverts the input)', inp.scale);
    else input.scale = inp.scale;
  }
  for (const key of ['mean', 'std'] as const) {
    const v = inp[key];
    if (v === undefined) continue;
    if (!isNumArray(v, n)) bad(`input.${key}`, `an array of ${n} number${n === 1 ? '' : 's'} (one per channel, in input.channels order)`, v);
    else if (key === 'std' && v.some((x) => x === 0)) bad('input.std', 'non-zero numbers', v);
    else input[key] = v;
  }
  if (inp.affine !== undefined) {
    const a = inp.affine as Record<string, unknown>;
    if (typeof a !== 'object' || a === null || !isNumArray(a.scale, n) || !isNumArray(a.offset, n) || (a.scale as number[]).some((x) => x === 0)) {
      bad('input.affine', `{ "scale": [${n} non-zero numbers], "offset": [${n} numbers] } (x = pixel · scale + offset per channel)`, inp.affine);
    } else if (inp.scale !== undefined || inp.mean !== undefined || inp.std !== undefined) {
      problems.push({ field: 'input.affine', message: 'replaces input.scale, input.mean and input.std: give one or the other' });
    } else {
      input.affine = { scale: [...(a.scale as number[])], offset: [...(a.offset as number[])] };
    }
  }
  // Means are in the units of pixel × scale: Caffe-style means (0..255) need scale 1.
  if (!input.affine && inp.mean !== undefined && isNumArray(inp.mean, n)) {
    const lo = Math.min(0, 255 * input.scale);
    const hi = Math.max(0, 255 * input.scale);
    const margin = 0.25 * (hi - lo);
    const outside = input.mean.filter((m) => m < lo - margin || m > hi + margin);
    if (outside.length) {
      problems.push({ field: 'input.mean', message: `${JSON.stringify(input.mean)} lies outside the pixel range ${+lo.toFixed(4)}..${+hi.toFixed(4)} that input.scale ${input.scale} gives${hi <= 1.5 && outside.every((m) => m > 1.5) ? ' (means in 0..255, as Caffe and OpenCV write them, need "scale": 1)' : ''}` });
    }
  }
  if (inp.resize !== undefined) {
    if (inp.resize !== 'stretch' && inp.resize !== 'crop' && inp.resize !== 'pad') bad('input.resize', '"stretch", "crop" or "pad"', inp.resize);
    else input.resize = inp.resize;
  }
  if (inp.resize_size !== undefined && inp.crop_pct !== undefined) problems.push({ field: 'input.crop_pct', message: 'give input.resize_size or input.crop_pct, not both' });
  if (inp.resize_size !== undefined) {
    if (typeof inp.resize_size !== 'number' || !Number.isInteger(inp.resize_size) || inp.resize_size <= 0) bad('input.resize_size', 'a positive integer (the short side before the centre crop)', inp.resize_size);
    else input.resizeSize = inp.resize_size;
  }
  if (inp.crop_pct !== undefined) {
    if (typeof inp.crop_pct !== 'number' || !(inp.crop_pct > 0 && inp.crop_pct <= 1)) bad('input.crop_pct', 'a number in (0, 1] (timm: the crop is crop_pct of the resized short side)', inp.crop_pct);
    else if (!input.size) problems.push({ field: 'input.crop_pct', message: 'needs input.size (the crop) to compute the resize size' });
    else input.resizeSize = Math.floor(Math.min(...input.size) / inp.crop_pct);
  }
  if (input.resizeSize !== undefined) {
    if (input.resize !== 'crop') problems.push({ field: inp.crop_pct !== undefined ? 'input.crop_pct' : 'input.resize_size', message: `only applies to "resize": "crop" (resize is "${input.resize}")` });
    else if (input.size && input.resizeSize < Math.min(...input.size)) problems.push({ field: 'input.resize_size', message: `${input.resizeSize} is smaller than the crop ${input.size.join('×')}` });
  }
  if (inp.anchor !== undefined) {
    if (inp.anchor !== 'center' && inp.anchor !== 'top-left') bad('input.anchor', '"center" or "top-left"', inp.anchor);
    else if (input.resize !== 'pad') problems.push({ field: 'input.anchor', message: `only applies to "resize": "pad" (resize is "${input.resize}")` });
    else input.anchor = inp.anchor;
  }
  if (inp.pad_value !== undefined) {
    if (typeof inp.pad_value !== 'number' || !Number.isInteger(inp.pad_value) || inp.pad_value < 0 || inp.pad_value > 255) bad('input.pad_value', 'an integer in 0..255 (the grey level of the borders)', inp.pad_value);
    else if (input.resize !== 'pad') problems.push({ field: 'input.pad_value', message: `only applies to "resize": "pad" (resize is "${input.resize}")` });
    else input.padValue = inp.pad_value;
  }
  const manifest: ModelManifest = { input, multiLabel: raw.multiLabel === true };
  for (const key of ['layer', 'output', 'description'] as const) {
    const v = raw[key];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v === '') bad(key, 'a non-empty string', v);
    else manifest[key] = v;
  }
  if (raw.multiLabel !== undefined && typeof raw.multiLabel !== 'boolean') bad('multiLabel', 'true or false', raw.multiLabel);
  for (const key of ['symbolicBatch', 'linearShortcut'] as const) {
    const v = raw[key];
    if (v === undefined) continue;
    if (typeof v !== 'boolean') bad(key, 'true or false', v);
    else manifest[key] = v;
  }
  if (raw.tokens !== undefined) {
    const t = raw.tokens as Record<string, unknown>;
    const tokens: NonNullable<ModelManifest['tokens']> = {};
    if (typeof t !== 'object' || t === null || Array.isArray(t)) bad('tokens', '{ "prefix": n, "grid": [h, w] }', raw.tokens);
    else {
      if (t.prefix !== undefined) {
        if (typeof t.prefix !== 'number' || !Number.isInteger(t.prefix) || t.prefix < 0) bad('tokens.prefix', 'a non-negative integer (class, distillation and register tokens before the grid)', t.prefix);
        else tokens.prefix = t.prefix;
      }
      if (t.grid !== undefined) {
        if (!isNumArray(t.grid, 2) || !t.grid.every((v) => Number.isInteger(v) && v > 0)) bad('tokens.grid', '[h, w] of positive integers', t.grid);
        else tokens.grid = [t.grid[0], t.grid[1]];
      }
      manifest.tokens = tokens;
    }
  }
  const knownTop = new Set(['input', 'labels', 'layer', 'output', 'multiLabel', 'description', 'tokens', 'symbolicBatch', 'linearShortcut']);
  for (const k of Object.keys(raw)) if (!knownTop.has(k)) problems.push({ field: k, message: `is not a field of model.json (${[...knownTop].join(', ')})` });
  let labels = raw.labels;
  if (labels === undefined) {
    try {
      await readFile(path.join(dir, 'labels.txt'));
      labels = 'labels.txt';
    } catch { /* no labels */ }
  }
  if (typeof labels === 'string') {
    let lf: string | undefined;
    try {
      lf = await containedFile(dir, labels, 'labels file');
    } catch (e) {
      problems.push({ field: 'labels', message: (e as Error).message });
    }
    if (lf) {
      try {
        manifest.labels = (await readFile(lf, 'utf8')).split(/\r?\n/).map((s) => s.trim()).filter((s) => s !== '');
      } catch (e) {
        problems.push({ field: 'labels', message: `cannot read labels file ${labels}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` });
      }
    }
  } else if (labels !== undefined) {
    if (!Array.isArray(labels) || !labels.every((s) => typeof s === 'string')) bad('labels', 'a file name or an array of strings', labels);
    else manifest.labels = labels as string[];
  }
  if (problems.length) {
    const list = problems.map((p) => `"${p.field}" ${p.message}`).join('; ');
    throw new ModelError(`${file}: ${problems.length === 1 ? '' : `${problems.length} problems: `}${list}`, { file, errors: problems });
  }
  return manifest;
}
