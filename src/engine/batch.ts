// Explaining several inputs with the same method and layers: on a model whose input takes a batch of any
// size, one trunk run for all of them (the forward pass, the bulk of a gradient method's cost), then each
// input's own head run and map; otherwise one input after another.
import * as ort from 'onnxruntime-node';
import { isMethodName, METHODS } from '../cam/index.js';
import { cancelled } from '../errors/index.js';
import { explain, type ExplainOptions, type ExplainRequest, type ExplainResult } from './explain.js';
import type { TrunkRun } from './passes.js';
import type { ModelRuntime } from './runtime.js';

export interface BatchOptions extends Omit<ExplainOptions, 'trunk' | 'progress'> {
  /** most inputs in one trunk run (default: all) */
  maxBatch?: number;
}

/**
 * Whether a request's cost is about one trunk run that a batched run can give it: a layer method that
 * needs the activations, the gradients or the classifier only (no extra model runs), without aug_smooth,
 * metrics or replayed draws. Such requests of one model and the same parameters can share a trunk run
 * (the pool coalesces them); for the others a shared trunk run would save nothing.
 */
export function sharesTrunk(req: ExplainRequest): boolean {
  if (!isMethodName(req.method) || req.augSmooth || req.metrics?.names.length || req.draws) return false;
  const m = METHODS[req.method];
  if (m.kind === 'input' || m.kind === 'factorization') return false;
  return (m.needs === 'gradients' || m.needs === 'activations' || m.needs === 'classifier') && !m.noisy && !m.hessian;
}

/** Whether the inputs can share trunk runs: a dynamic batch axis, and the same layers for every input. */
export function canBatch(rt: ModelRuntime, reqs: readonly ExplainRequest[]): boolean {
  if (reqs.length < 2 || !rt.dynamicBatch) return false;
  const key = (r: ExplainRequest) => JSON.stringify(rt.resolveLayers(r.layers));
  return reqs.every((r) => key(r) === key(reqs[0]));
}

/**
 * One result per request, in order, equal to explaining each alone (up to the float rounding of a batched
 * convolution). The trunk's outputs are split per input; a trunk output without the batch as its first
 * axis (a shape computed in the graph, say) would be wrong for a single input, so such a model runs one
 * input at a time.
 */
export async function explainBatch(rt: ModelRuntime, reqs: readonly ExplainRequest[], opts: BatchOptions = {}): Promise<ExplainResult[]> {
  if (!canBatch(rt, reqs)) {
    const out: ExplainResult[] = [];
    for (const r of reqs) out.push(await explain(rt, r, { signal: opts.signal }));
    return out;
  }
  const max = Math.max(1, opts.maxBatch ?? reqs.length);
  const set = await rt.layerSet(rt.resolveLayers(reqs[0].layers));
  const out: ExplainResult[] = [];
  for (let start = 0; start < reqs.length; start += max) {
    if (opts.signal?.aborted) throw cancelled();
    const chunk = reqs.slice(start, start + max);
    const n = chunk.length;
    const per = rt.info.inputDims.reduce((a, b) => a * b, 1);
    const x = new Float32Array(n * per);
    chunk.forEach((r, i) => x.set(r.input, i * per));
    const t = performance.now();
    const trunkOut = await set.trunk.session.run({ [rt.info.inputName]: rt.inputTensor(x, n) });
    const ms = (performance.now() - t) / n;
    const runs = splitBatch(trunkOut, n, ms);
    for (const [i, r] of chunk.entries()) {
      out.push(await explain(rt, r, { signal: opts.signal, trunk: runs?.[i] }));
    }
  }
  return out;
}

/** Each input's share of a batched run's outputs, or undefined when an output is not batched. */
function splitBatch(out: ort.InferenceSession.OnnxValueMapType, n: number, ms: number): TrunkRun[] | undefined {
  const names = Object.keys(out);
  const parts: Record<string, ort.Tensor>[] = Array.from({ length: n }, () => ({}));
  for (const name of names) {
    const tensor = out[name] as ort.Tensor;
    if (tensor.type !== 'float32' || tensor.dims[0] !== n) return undefined;
    const data = tensor.data as Float32Array;
    const size = data.length / n;
    const dims = [1, ...tensor.dims.slice(1)];
    for (let i = 0; i < n; i++) parts[i][name] = new ort.Tensor('float32', data.subarray(i * size, (i + 1) * size), dims);
  }
  return parts.map((p) => ({ out: p, ms }));
}
