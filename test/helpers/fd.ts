// Central finite differences against the gradient graph: builds the explain patch for a small test
// graph, runs it once, and compares dL/dx (L = Σ seed·y, K seeds at once) with (L(x+ε) − L(x−ε)) / 2ε.
import { mulberry32 } from '../../src/cam/index.js';
import * as ort from 'onnxruntime-node';
import { buildGradientPatch } from '../../src/autodiff/builder.js';
import { OnnxModel } from '../../src/onnx/model.js';
import { createSession, probeShapes } from '../../src/onnx/session.js';
import { buildModelBytes, type TestGraph } from './graph.js';

/** Deterministic pseudo-random numbers (mulberry32, the engine's own generator) for test data. */
export const rng = mulberry32;

/** Uniform values in [lo, hi). */
export function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

/** Values in ±[gap, 1] with distinct magnitudes: keeps finite differences away from kinks (ReLU at 0, max ties). */
export function awayFromKinks(n: number, seed: number, gap = 0.05): Float32Array {
  const r = rng(seed);
  const order = Array.from({ length: n }, (_, i) => i).sort(() => r() - 0.5);
  const out = new Float32Array(n);
  order.forEach((rank, i) => {
    const mag = gap + (1 - gap) * (rank + 0.5) / n;
    out[i] = (r() < 0.5 ? -1 : 1) * mag;
  });
  return out;
}

export interface GradCheck {
  graph: TestGraph;
  /** Graph inputs to differentiate with respect to. */
  wrt: string[];
  /** The differentiated output (must be a graph output with batch 1). */
  output: string;
  inputs: Record<string, Float32Array>;
  /** Number of seeds run at once (classes); default 2 (1 with perSeed). */
  k?: number;
  eps?: number;
  /** one seed per run: the output and path tensors need not have batch 1 in axis 0 */
  perSeed?: boolean;
}

export interface GradCheckResult {
  /** max |analytic − numeric| / max(1, max |numeric|), over all checked elements and seeds */
  relError: number;
  /** the analytic gradients, per wrt input: [K, ...dims] flattened */
  gradients: Record<string, Float32Array>;
  /** ops emitted in the backward pass */
  backwardOps: string[];
}

export async function checkGradient(c: GradCheck): Promise<GradCheckResult> {
  const k = c.perSeed ? 1 : c.k ?? 2;
  const eps = c.eps ?? 1e-2;
  const bytes = buildModelBytes(c.graph);
  const model = await OnnxModel.fromBytes(bytes, 'test.onnx');
  const dims = Object.fromEntries(c.graph.inputs.map((i) => [i.name, i.dims.map(Number)]));
  const feeds = (vals: Record<string, Float32Array>) =>
    Object.fromEntries(Object.entries(vals).map(([n, v]) => [n, new ort.Tensor('float32', v, dims[n])]));
  const shapes = await probeShapes(model, feeds(c.inputs));
  const patch = await buildGradientPatch(model, shapes, { targets: c.wrt, output: c.output, perSeed: c.perSeed });
  const outDims = shapes.get(c.output)!.dims;
  const perSeed = outDims.slice(1).reduce((a, b) => a * b, 1);
  const seed = uniform(k * perSeed, 1234, -1, 1);

  const explain = await createSession(model, model.withPatch(patch.patch), { graphOptimization: 'disabled' });
  const plain = await createSession(model, bytes, { graphOptimization: 'disabled' });
  try {
    const out = await explain.session.run({ ...feeds(c.inputs), [patch.seed]: new ort.Tensor('float32', seed, [k, ...outDims.slice(1)]) });
    const gradients: Record<string, Float32Array> = {};
    let relError = 0;
    for (const x of c.wrt) {
      const g = out[patch.gradients[x]].data as Float32Array;
      gradients[x] = g;
      const n = c.inputs[x].length;
      if (g.length !== k * n) throw new Error(`gradient of ${x} has ${g.length} elements, expected ${k * n}`);
      let maxNum = 0;
      let maxDiff = 0;
      for (let j = 0; j < n; j++) {
        const values = (delta: number) => {
          const v = Float32Array.from(c.inputs[x]);
          v[j] += delta;
          return v;
        };
        const yPlus = (await plain.session.run(feeds({ ...c.inputs, [x]: values(eps) })))[c.output].data as Float32Array;
        const yMinus = (await plain.session.run(feeds({ ...c.inputs, [x]: values(-eps) })))[c.output].data as Float32Array;
        for (let s = 0; s < k; s++) {
          let num = 0;
          for (let i = 0; i < perSeed; i++) num += seed[s * perSeed + i] * (yPlus[i] - yMinus[i]);
          num /= 2 * eps;
          maxNum = Math.max(maxNum, Math.abs(num));
          maxDiff = Math.max(maxDiff, Math.abs(num - g[s * n + j]));
        }
      }
      relError = Math.max(relError, maxDiff / Math.max(1, maxNum));
    }
    return { relError, gradients, backwardOps: [...new Set((patch.patch.node ?? []).map((nd) => nd.op_type))] };
  } finally {
    await explain.release();
    await plain.release();
  }
}
