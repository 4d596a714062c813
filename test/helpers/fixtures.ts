// Reads the PyTorch reference fixtures written by tools/fixtures/generate.py (test/fixtures/models/<name>/).
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeModel, encodeModel } from '../../src/onnx/proto.js';
import type { ModelRuntime } from '../../src/engine/runtime.js';
import type { ForwardRunner } from '../../src/cam/types.js';

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

// ---- Library references (tools/fixtures/generate_methods.py): methods.json next to reference.json ----

/** A stored tensor; `dtype` absent means float32. */
export interface StoredRef extends TensorRef { dtype?: 'float16' }
/** One map entry of methods.json, with the method's own extra fields. */
export type MapRef = StoredRef & Record<string, unknown>;
export interface MethodsCase {
  id: string; module: string; layer: string; target: number;
  maps: Record<string, MapRef>;
  torchcam: Record<string, MapRef>;
}
export interface MethodsFixture {
  name: string; dir: string; family: string;
  libraries: Record<string, string>;
  /** the rebuilt PyTorch model's logits the references were computed from */
  logits: number[];
  cases: MethodsCase[];
  targets: ({ kind: string; target: number; score: number; seed: number[]; comparison?: number[]; alpha?: number })[];
  input?: Record<string, MapRef> & { target: number };
  metrics?: Record<string, unknown> & { target: number };
  dff?: Record<string, unknown>;
  guided?: Record<string, unknown>;
  refinecam?: MapRef & { target: number; layers: string[] };
}

/** Every fixture model with a methods.json, with its reference.json fields (`fixture`). */
export function listMethodFixtures(): (MethodsFixture & { fixture: Fixture })[] {
  return listFixtures()
    .filter((f) => existsSync(path.join(f.dir, 'methods.json')))
    .map((f) => ({ ...JSON.parse(readFileSync(path.join(f.dir, 'methods.json'), 'utf8')) as MethodsFixture, name: f.name, dir: f.dir, fixture: f }));
}

/** A stored tensor as float32 (float16 files decoded exactly). */
export function readStored(dir: string, ref: StoredRef): Float32Array {
  if (ref.dtype !== 'float16') return readF32(dir, ref.file);
  const b = readFileSync(path.join(dir, ref.file));
  const h = new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  return Float32Array.from(h, halfToFloat);
}

/** IEEE 754 binary16 → number. */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Pearson correlation of two equally long arrays. */
export function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) { ma += a[i]; mb += b[i]; }
  ma /= n; mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i] - ma;
    const y = b[i] - mb;
    sab += x * y; saa += x * x; sbb += y * y;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** The name of the graph input's copy that inputGradientModel inserts. */
export const INPUT_COPY = 'camserve_input_copy';

/**
 * A copy of the fixture's model (in a temporary folder) whose input first passes an Identity node: the
 * Identity's output INPUT_COPY is a candidate layer, so `activationsAndGradients(x, [INPUT_COPY], …)`
 * yields dScore/dInput. The engine has no input gradients of its own; this is how the tests get them.
 */
export function inputGradientModel(fx: Fixture): string {
  const m = decodeModel(readFileSync(path.join(fx.dir, 'model.onnx')));
  const g = m.graph!;
  for (const n of g.node ?? []) n.input = (n.input ?? []).map((i) => (i === fx.input.name ? INPUT_COPY : i));
  g.node = [{ op_type: 'Identity', input: [fx.input.name], output: [INPUT_COPY], name: INPUT_COPY, attribute: [] }, ...(g.node ?? [])];
  const dir = mkdtempSync(path.join(tmpdir(), `camserve-${fx.name}-`));
  for (const f of readdirSync(fx.dir)) if (f.endsWith('.onnx.data')) copyFileSync(path.join(fx.dir, f), path.join(dir, f));
  const file = path.join(dir, 'model.onnx');
  writeFileSync(file, encodeModel(m));
  return file;
}

/**
 * A ForwardRunner for methods that mask the input (Score-CAM family), built on ModelRuntime.predict (one
 * run per mask): the runtime's own runner is private to `explain`, which only serves registered methods.
 */
export function predictRunner(rt: ModelRuntime, input: Float32Array): ForwardRunner {
  const { height, width, channels } = rt.info.inputSize;
  return {
    input: { height, width, channels, layout: rt.info.manifest.input.layout, data: input },
    async scoreInputs(variants, target) {
      const out = new Float32Array(variants.count);
      const x = new Float32Array(input.length);
      for (let k = 0; k < variants.count; k++) {
        variants.write(k, x);
        const logits = await rt.predict(x);
        out[k] = typeof target === 'number' ? logits[target] : target(logits);
      }
      return out;
    },
    scoreActivations: () => Promise.reject(new Error('predictRunner: no head runs')),
    classifier: () => Promise.reject(new Error('predictRunner: no classifier')),
  };
}
