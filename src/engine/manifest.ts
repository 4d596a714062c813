// The optional model.json beside model.onnx: input preprocessing, labels, default layer and output.
// Parsed once at the edge into a ModelManifest with every field checked.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ModelError } from '../errors/index.js';
import type { ResizeMode } from '../render/index.js';

export interface InputSpec {
  /** [height, width] the image is resized to */
  size?: [number, number];
  layout: 'NCHW' | 'NHWC';
  channels: 'RGB' | 'BGR' | 'gray';
  /** pixel (0..255) × scale, then (x − mean) / std per channel */
  scale: number;
  mean: number[];
  std: number[];
  /** stretch: resize to size ignoring aspect; crop: resize the short side and centre-crop; pad: letterbox */
  resize: ResizeMode;
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
}

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

function fail(file: string, field: string, expected: string, got: unknown): never {
  throw new ModelError(`${file}: "${field}" must be ${expected}, got ${JSON.stringify(got)}`);
}

function isNumArray(v: unknown, n?: number): v is number[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x)) && (n === undefined || v.length === n);
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
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(file, '(root)', 'an object', raw);
  const inp = (raw.input ?? {}) as Record<string, unknown>;
  const gray = inp.channels === 'gray' || (inp.channels === undefined && channelsInModel === 1);
  const n = gray ? 1 : 3;
  const input: InputSpec = {
    layout: graph.layout ?? 'NCHW', channels: gray ? 'gray' : 'RGB', scale: 1 / 255,
    mean: gray ? [0.5] : IMAGENET_MEAN, std: gray ? [0.5] : IMAGENET_STD, resize: 'stretch',
  };
  if (inp.size !== undefined) {
    if (!isNumArray(inp.size, 2) || !inp.size.every((v) => Number.isInteger(v) && v > 0)) fail(file, 'input.size', '[height, width] of positive integers', inp.size);
    input.size = [inp.size[0], inp.size[1]];
  }
  if (inp.layout !== undefined) {
    if (inp.layout !== 'NCHW' && inp.layout !== 'NHWC') fail(file, 'input.layout', '"NCHW" or "NHWC"', inp.layout);
    input.layout = inp.layout;
  }
  if (inp.channels !== undefined) {
    if (inp.channels !== 'RGB' && inp.channels !== 'BGR' && inp.channels !== 'gray') fail(file, 'input.channels', '"RGB", "BGR" or "gray"', inp.channels);
    input.channels = inp.channels;
  }
  if (inp.scale !== undefined) {
    if (typeof inp.scale !== 'number' || !(inp.scale > 0)) fail(file, 'input.scale', 'a positive number', inp.scale);
    input.scale = inp.scale;
  }
  for (const key of ['mean', 'std'] as const) {
    const v = inp[key];
    if (v === undefined) continue;
    if (!isNumArray(v, n)) fail(file, `input.${key}`, `an array of ${n} numbers`, v);
    if (key === 'std' && v.some((x) => x <= 0)) fail(file, 'input.std', 'positive numbers', v);
    input[key] = v;
  }
  if (inp.resize !== undefined) {
    if (inp.resize !== 'stretch' && inp.resize !== 'crop' && inp.resize !== 'pad') fail(file, 'input.resize', '"stretch", "crop" or "pad"', inp.resize);
    input.resize = inp.resize;
  }
  const manifest: ModelManifest = { input, multiLabel: raw.multiLabel === true };
  for (const key of ['layer', 'output', 'description'] as const) {
    const v = raw[key];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v === '') fail(file, key, 'a non-empty string', v);
    manifest[key] = v;
  }
  if (raw.multiLabel !== undefined && typeof raw.multiLabel !== 'boolean') fail(file, 'multiLabel', 'true or false', raw.multiLabel);
  let labels = raw.labels;
  if (labels === undefined) {
    try {
      await readFile(path.join(dir, 'labels.txt'));
      labels = 'labels.txt';
    } catch { /* no labels */ }
  }
  if (typeof labels === 'string') {
    const lf = path.resolve(dir, labels);
    if (path.relative(dir, lf).startsWith('..')) fail(file, 'labels', 'a file inside the model folder', labels);
    try {
      manifest.labels = (await readFile(lf, 'utf8')).split(/\r?\n/).map((s) => s.trim()).filter((s) => s !== '');
    } catch (e) {
      throw new ModelError(`${file}: cannot read labels file ${labels}: ${(e as Error).message}`);
    }
  } else if (labels !== undefined) {
    if (!Array.isArray(labels) || !labels.every((s) => typeof s === 'string')) fail(file, 'labels', 'a file name or an array of strings', labels);
    manifest.labels = labels as string[];
  }
  return manifest;
}
