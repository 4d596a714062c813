// Backward passes beyond the head's: the whole model differentiated down to its input (saliency, integrated
// gradients, SmoothGrad, guided backpropagation, FullGrad's biased layers), and the head's backward pass
// differentiated once more (ShapleyCAM's Hessian-vector product). Both are built by the same gradient
// builder as the head's backward, as standard ONNX nodes.
import * as ort from 'onnxruntime-node';
import { buildGradientPatch, GradientError } from '../autodiff/index.js';
import { ExplainError } from '../errors/index.js';
import { createSession, nodesOnPath, OnnxModel, type OwnedSession, probeShapes, pruneToOutputs, type SessionOptions } from '../onnx/index.js';
import type { LayerSet, ModelRuntime } from './runtime.js';

/** The model with its backward pass to the input: feeds input [B, …] and seed [B, classes]. */
export interface InputBackward {
  session: OwnedSession;
  seed: string;
  /** gradient output of the input and of each extra target, by tensor */
  gradients: Record<string, string>;
  /** whether the graph takes batches of several inputs: learnt on the first batch (a model with a dynamic batch axis) */
  batched?: boolean;
}

/**
 * The head's backward pass differentiated again: feeds the head's inputs, seed [K, classes] and vector
 * [K, C, h, w]. No session where the backward pass does not read the layer (G is constant in A: H = 0).
 */
export interface HessianRun {
  session?: OwnedSession;
  /** the first backward's seed (dScore/dlogits) */
  seed: string;
  /** the vector v of H·v (ShapleyCAM: A itself) */
  vector: string;
  /** H·v */
  output: string;
  /** the head's inputs the session reads (layers, side inputs) */
  inputs: string[];
}

/** A gradient error as the 422 it is, naming where the input gradient could not be built. */
function cannotExplain(e: unknown, what: string): never {
  if (e instanceof GradientError) throw new ExplainError(`${what}: ${e.message}`);
  throw e;
}

export async function buildInputBackward(rt: ModelRuntime, relu: 'plain' | 'guided', extra: readonly string[], options: SessionOptions): Promise<InputBackward> {
  const input = rt.info.inputName;
  let grad;
  try {
    grad = await buildGradientPatch(rt.model, rt.tensorInfos(), { targets: [input, ...extra], output: rt.info.logits, relu });
  } catch (e) {
    cannotExplain(e, `no gradient down to the input "${input}"`);
  }
  const pruned = pruneToOutputs(rt.model.withPatch(grad.patch), Object.values(grad.gradients));
  const session = await createSession(rt.model, pruned.bytes, options);
  return { session, seed: grad.seed, gradients: grad.gradients };
}

/**
 * Reverse over reverse: the head with its backward pass (G = ∂(seed·logits)/∂A) is a graph whose output G
 * is differentiated w.r.t. A with the vector v as its seed, giving ∂(v·G)/∂A = H·v (H symmetric). The
 * second pass needs the shapes of the first pass's tensors: a probe run with zeros and one seed row. Where
 * G does not depend on A through floating-point tensors (pooling → linear heads, max-pooling's routing
 * alone), H = 0 and no session is built.
 */
export async function buildHessianRun(rt: ModelRuntime, set: LayerSet, layer: string, options: SessionOptions): Promise<HessianRun> {
  try {
    const headModel = await rt.headModel(set);
    // Seeded as the head's backward is (one seed per run where attention moves the batch axis).
    const perSeed = rt.perSeed(headModel, set);
    const first = await buildGradientPatch(headModel, rt.tensorInfos(), { targets: set.layers, output: rt.info.logits, perSeed });
    const g = first.gradients[layer];
    const once = await OnnxModel.fromBytes(pruneToOutputs(headModel.withPatch(first.patch), [g]).bytes, rt.model.file);
    // A backward pass that does not read A (a pooling → linear head): G is constant, H·v = 0.
    if (!once.inputs.some((i) => i.name === layer)) return { seed: first.seed, vector: '', output: '', inputs: [] };
    const feeds: Record<string, ort.Tensor> = {};
    for (const i of once.inputs) {
      const dims = i.name === first.seed ? [1, ...rt.tensorDims(rt.info.logits)!.slice(1)] : rt.tensorDims(i.name);
      if (!dims) throw new ExplainError(`the shape of the head input "${i.name}" is unknown`);
      feeds[i.name] = new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
    }
    const shapes = await probeShapes(once, feeds, options);
    // The layer read only through integer tensors (max-pooling's indices): G is piecewise constant in A, H·v = 0.
    if (nodesOnPath(once, [layer], g, (t) => /float/.test(shapes.get(t)?.type ?? '')).length === 0) return { seed: first.seed, vector: '', output: '', inputs: [] };
    const second = await buildGradientPatch(once, shapes, { targets: [layer], output: g, prefix: 'camserve-hvp/', perSeed });
    const pruned = pruneToOutputs(once.withPatch(second.patch), [second.gradients[layer]]);
    const session = await createSession(rt.model, pruned.bytes, options);
    return {
      session, seed: first.seed, vector: second.seed, output: second.gradients[layer],
      inputs: [...pruned.inputs].filter((n) => n !== first.seed && n !== second.seed),
    };
  } catch (e) {
    cannotExplain(e, `no Hessian-vector product at "${layer}" (the head's backward pass differentiated again)`);
  }
}
