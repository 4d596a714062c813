// Reads the PyTorch reference fixtures written by tools/fixtures/generate.py (test/fixtures/models/<name>/).
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/models');

export interface TensorRef { dims: number[]; file: string }
export interface FixtureCase {
  id: string; module: string; layer: string; target: number; score: number;
  activations: TensorRef; gradients: TensorRef; maps: Record<string, TensorRef>; smooth?: Record<string, TensorRef>;
}
export interface Fixture {
  name: string; dir: string; family: string; opset: number;
  input: { name: string; dims: number[]; file: string };
  logits: { name: string; dims: number[]; values: number[] };
  params: number;
  cases: FixtureCase[];
}

export function listFixtures(): Fixture[] {
  if (!existsSync(FIXTURES)) return [];
  return readdirSync(FIXTURES).sort()
    .filter((d) => existsSync(path.join(FIXTURES, d, 'reference.json')))
    .map((d) => ({ name: d, dir: path.join(FIXTURES, d), ...JSON.parse(readFileSync(path.join(FIXTURES, d, 'reference.json'), 'utf8')) }));
}

export function readF32(dir: string, file: string): Float32Array {
  const b = readFileSync(path.join(dir, file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** max |a − b| / max |b| */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-12);
}

/** pytorch-grad-cam's scale_cam_image without resizing: (x − min) / (max + 1e-7) after subtracting min. */
export function normalised(x: ArrayLike<number>): Float32Array {
  let min = Infinity;
  for (let i = 0; i < x.length; i++) min = Math.min(min, x[i]);
  const out = Float32Array.from(x, (v) => v - min);
  let max = 0;
  for (const v of out) max = Math.max(max, v);
  for (let i = 0; i < out.length; i++) out[i] /= 1e-7 + max;
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}
