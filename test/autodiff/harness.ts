// Shared scaffolding of the finite-difference tests of the VJP rules: a compact way to state a small
// graph (fed inputs with their values, constant initializers, opset) and the two assertions every test
// makes — the analytic gradient matches central finite differences within a stated bound, and it is
// not trivially zero (so no test can pass vacuously).
import assert from 'node:assert/strict';
import { DataType, type NodeProto, type TensorProto } from '../../src/onnx/proto.js';
import { checkGradient, rng, type GradCheckResult } from '../helpers/fd.js';
import Long from 'long';

export interface FdCase {
  nodes: NodeProto[];
  /** Fed graph inputs: name → [dims, values]. All of them are differentiated unless `wrt` says otherwise. */
  inputs: Record<string, readonly [readonly number[], Float32Array]>;
  initializers?: TensorProto[];
  opset?: number;
  wrt?: string[];
  /** The differentiated graph output; default 'y'. */
  output?: string;
  /** Finite-difference step. */
  eps: number;
  k?: number;
  /** one seed per run (see VjpContext.perSeed) */
  perSeed?: boolean;
}

/** Runs the finite-difference check of one small graph. */
export async function fd(c: FdCase): Promise<GradCheckResult> {
  const output = c.output ?? 'y';
  const inputs = Object.fromEntries(Object.entries(c.inputs).map(([n, [, v]]) => [n, v]));
  for (const [n, [dims, v]] of Object.entries(c.inputs)) {
    const count = dims.reduce((a, b) => a * b, 1);
    if (count !== v.length) throw new Error(`test input ${n}: ${v.length} values for dims [${dims.join(', ')}]`);
  }
  return checkGradient({
    graph: {
      nodes: c.nodes,
      inputs: Object.entries(c.inputs).map(([name, [dims]]) => ({ name, dims })),
      outputs: [output],
      initializers: c.initializers,
      opset: c.opset,
    },
    wrt: c.wrt ?? Object.keys(c.inputs),
    output,
    inputs,
    k: c.k,
    eps: c.eps,
    perSeed: c.perSeed,
  });
}

export function maxAbs(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
  return m;
}

/**
 * The two assertions of every test: relative error (max |analytic − numeric| / max(1, max |numeric|))
 * below `bound`, and every checked gradient larger than `minGrad` somewhere.
 */
export function assertGradient(r: GradCheckResult, bound: number, minGrad = 1e-3): void {
  const sizes = Object.entries(r.gradients).map(([n, g]) => `${n}: max |g| = ${maxAbs(g).toExponential(2)}`).join(', ');
  if (process.env.FD_VERBOSE) console.error(`relError ${r.relError.toExponential(2)} (bound ${bound}); ${sizes}`);
  assert.ok(r.relError < bound, `relative error ${r.relError.toExponential(2)} is not below ${bound} (${sizes})`);
  for (const [name, g] of Object.entries(r.gradients)) {
    assert.ok(maxAbs(g) > minGrad, `gradient of ${name} is trivially zero (max |g| = ${maxAbs(g)} ≤ ${minGrad})`);
  }
}

/** Number of elements of dims. */
export const count = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** `values` scaled and shifted: v·scale + shift. */
export function affine(values: Float32Array, scale: number, shift = 0): Float32Array {
  return values.map((v) => v * scale + shift);
}

/** Moves every value that lies within `margin` of one of `kinks` to 2·margin beyond it. */
export function avoid(values: Float32Array, kinks: readonly number[], margin: number): Float32Array {
  return values.map((v) => {
    for (const k of kinks) if (Math.abs(v - k) < margin) return v < k ? k - 2 * margin : k + 2 * margin;
    return v;
  });
}

/** Uniform values in [lo, hi) with random sign: magnitudes kept away from 0 (divisors). */
export function awayFromZero(n: number, seed: number, lo: number, hi: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() < 0.5 ? -1 : 1) * (lo + (hi - lo) * r()));
}

/** An int64 tensor from bigints (exact for values such as INT64_MAX that a JS number cannot hold). */
export function int64TensorExact(name: string, dims: readonly number[], values: readonly bigint[]): TensorProto {
  const data = BigInt64Array.from(values);
  return {
    name, dims: dims.map((d) => Long.fromNumber(d)), data_type: DataType.INT64,
    raw_data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

/** A BOOL tensor (one byte per element). */
export function boolTensor(name: string, dims: readonly number[], values: readonly boolean[]): TensorProto {
  return { name, dims: dims.map((d) => Long.fromNumber(d)), data_type: DataType.BOOL, raw_data: Uint8Array.from(values, (v) => (v ? 1 : 0)) };
}

export const INT64_MAX = 9223372036854775807n;
