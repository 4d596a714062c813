// Every traversal of a model's graph in one place: the logits, the candidate target layers (and the
// default), paths between tensors, the head sub-graph after the layers, pruning, the linear-head match.
import Long from 'long';
import { ExplainError, ModelError } from '../errors/index.js';
import { attrFloat, attrInt, attrInts, type OnnxModel } from './model.js';
import { decodeModel, encodeModel, type NodeProto, type TensorProto } from './proto.js';
import type { TensorInfo } from './session.js';
import { findLayers, type CandidateLayer } from './layers.js';

export type { CandidateLayer } from './layers.js';

/** Ops after which the graph output is a normalised score, not a logit: CAM differentiates their input. */
const SCORE_HEADS = new Set(['Softmax', 'LogSoftmax', 'Sigmoid']);

/** The tensor to differentiate: `override`, or the first graph output, or the input of a final Softmax/Sigmoid. */
export function findLogits(model: OnnxModel, override?: string): string {
  if (override) {
    if (!model.producer.has(override)) throw new ModelError(`output tensor "${override}" is not produced by any node`);
    return override;
  }
  const out = model.outputs[0];
  if (!out) throw new ModelError('the model has no outputs');
  const p = model.producer.get(out.name);
  if (p !== undefined && SCORE_HEADS.has(model.nodes[p].op_type)) return model.nodes[p].input[0];
  return out.name;
}

/** Names of every tensor the logits depend on (its ancestors). */
export function ancestorsOf(model: OnnxModel, tensor: string): Set<string> {
  const seen = new Set<string>([tensor]);
  const stack = [tensor];
  while (stack.length) {
    const t = stack.pop()!;
    const p = model.producer.get(t);
    if (p === undefined) continue;
    for (const i of model.nodes[p].input) if (i && !seen.has(i)) { seen.add(i); stack.push(i); }
  }
  return seen;
}

/**
 * Candidate target layers and the default (see layers.ts for the rule and its reasons): kept for
 * callers that only need channels-first maps of a batch-1 model.
 */
export function candidateLayers(
  model: OnnxModel, shapes: Map<string, TensorInfo>, logits: string, inputLayout: 'NCHW' | 'NHWC' = 'NCHW',
): { candidates: CandidateLayer[]; defaultLayer: string | undefined } {
  return findLayers(model, shapes, logits, { inputLayout });
}

export interface HeadGraph {
  /** Encodes the head as a ModelProto (inputs: the targets and the side tensors; output: the logits). */
  encode(): Uint8Array;
  /** The head's graph inputs, in order: targets it does not compute itself, then side inputs. */
  inputs: string[];
  /** Tensors the head reads that the trunk computes (other than the targets), e.g. DenseNet's earlier features. */
  sideInputs: string[];
  nodeCount: number;
}

/**
 * The part of the model between `targets` and `logits`: every node the logits need that depends on a
 * target, plus constant-only nodes they read; other tensors they read become extra inputs fed from the
 * trunk run. The analysis is cheap; `encode()` writes only the head's own initializers, when called.
 */
export function extractHead(model: OnnxModel, shapes: Map<string, TensorInfo>, targets: readonly string[], logits: string): HeadGraph {
  const up = ancestorsOf(model, logits);
  const downstream = new Set<string>(targets);
  const headNodes = new Set<number>();
  model.nodes.forEach((n, i) => {
    if (n.input.some((t) => t && downstream.has(t)) && n.output.some((o) => up.has(o))) {
      headNodes.add(i);
      for (const o of n.output) if (o) downstream.add(o);
    }
  });
  if (!downstream.has(logits)) throw new ModelError(`the logits "${logits}" do not depend on ${targets.join(', ')}`);

  // Inputs of head nodes that the head does not compute: initializers, constant sub-graphs, or side inputs.
  const constantNodes = new Set<number>();
  const isConstSubgraph = (t: string, seen = new Set<string>()): boolean => {
    if (model.initializers.has(t)) return true;
    const p = model.producer.get(t);
    if (p === undefined || seen.has(t)) return false;
    seen.add(t);
    const n = model.nodes[p];
    if (n.input.every((i) => !i || isConstSubgraph(i, seen))) { constantNodes.add(p); return true; }
    return false;
  };
  const sideInputs: string[] = [];
  const initializerNames = new Set<string>();
  const visitInputs = (n: NodeProto) => {
    for (const t of n.input) {
      if (!t || downstream.has(t) || sideInputs.includes(t)) continue;
      if (model.initializers.has(t)) initializerNames.add(t);
      else if (!isConstSubgraph(t)) sideInputs.push(t);
    }
  };
  for (const i of headNodes) visitInputs(model.nodes[i]);
  for (const i of constantNodes) for (const t of model.nodes[i].input) if (t && model.initializers.has(t)) initializerNames.add(t);

  const order = [...new Set([...constantNodes, ...headNodes])].sort((a, b) => a - b);
  // A target computed inside the head (a later layer of several) is not an input of the head.
  const producedInHead = new Set(order.flatMap((i) => model.nodes[i].output));
  const headInputs = [...targets.filter((t) => !producedInHead.has(t)), ...sideInputs];
  const initializer: TensorProto[] = model.graph.initializer.filter((t) => t.name && initializerNames.has(t.name));
  // Inputs get a symbolic batch axis so batched head runs (Ablation-CAM) are possible where the head allows.
  const valueInfo = (name: string) => {
    const s = shapes.get(name);
    const dim = (s?.dims ?? []).map((d, i) => (i === 0 ? { dim_param: 'N' } : { dim_value: Long.fromNumber(d) }));
    return { name, type: { tensor_type: { elem_type: s?.type === 'int64' ? 7 : 1, shape: { dim } } } };
  };
  const encode = () => encodeModel({
    ir_version: model.proto.ir_version,
    opset_import: model.proto.opset_import,
    producer_name: 'camserve-head',
    graph: {
      name: 'head',
      node: order.map((i) => model.nodes[i]),
      initializer,
      input: headInputs.map(valueInfo),
      output: [{ name: logits }],
    },
  });
  return { encode, inputs: headInputs, sideInputs, nodeCount: order.length };
}

/**
 * Indices of the nodes that lie on a path from any of `targets` to `output`, in topological order.
 * The path only runs through tensors for which `differentiable` holds (by default all): integer shape
 * arithmetic downstream of a target (Shape → Gather → Cast ...) is not part of it.
 */
export function nodesOnPath(model: OnnxModel, targets: readonly string[], output: string, differentiable: (tensor: string) => boolean = () => true): number[] {
  const downstream = new Set<string>(targets);
  const forward = new Set<number>();
  model.nodes.forEach((n, i) => {
    if (n.input.some((t) => t && downstream.has(t))) {
      forward.add(i);
      for (const o of n.output) if (o && differentiable(o)) downstream.add(o);
    }
  });
  const upstream = new Set<string>([output]);
  const path: number[] = [];
  for (let i = model.nodes.length - 1; i >= 0; i--) {
    const n = model.nodes[i];
    if (!forward.has(i) || !n.output.some((o) => upstream.has(o))) continue;
    path.push(i);
    for (const t of n.input) if (t && downstream.has(t)) upstream.add(t);
  }
  return path.reverse();
}

/**
 * Model bytes cut down to the nodes that `outputs` depend on, with only those outputs and the inputs and
 * initializers that the remaining nodes read (onnxruntime runs every node of a graph whatever the fetches).
 */
export function pruneToOutputs(bytes: Uint8Array, outputs: string[]): { bytes: Uint8Array; inputs: Set<string> } {
  const model = decodeModel(bytes);
  const graph = model.graph!;
  const nodes = graph.node ?? [];
  // Sub-graphs (If, Loop, Scan) may read outer tensors by name: leave such graphs whole.
  if (nodes.some((n) => (n.attribute ?? []).some((a) => a.g || ((a as { graphs?: unknown[] }).graphs?.length ?? 0) > 0))) {
    return { bytes, inputs: new Set((graph.input ?? []).map((v) => v.name ?? '')) };
  }
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => { for (const o of n.output ?? []) if (o) producer.set(o, i); });
  const keep = new Set<number>();
  const read = new Set<string>(outputs);
  const stack = [...outputs];
  while (stack.length) {
    const i = producer.get(stack.pop()!);
    if (i === undefined || keep.has(i)) continue;
    keep.add(i);
    for (const t of nodes[i].input ?? []) {
      if (!t) continue;
      read.add(t);
      stack.push(t);
    }
  }
  graph.node = nodes.filter((_, i) => keep.has(i));
  graph.initializer = (graph.initializer ?? []).filter((t) => read.has(t.name ?? ''));
  graph.input = (graph.input ?? []).filter((v) => read.has(v.name ?? ''));
  graph.output = outputs.map((name) => ({ name }));
  return { bytes: encodeModel(model), inputs: new Set(graph.input.map((v) => v.name ?? '')) };
}

/** The classifier of a global-average-pool → linear head: `classes` rows of `channels` weights. */
export interface LinearHead {
  channels: number;
  classes: number;
  /** the weights of one class, one per channel of the layer */
  row(target: number): Float32Array;
}

/** Ops between the pooling and the linear layer that leave values as they are. */
const PASS_THROUGH = new Set(['Flatten', 'Reshape', 'Squeeze', 'Identity', 'Dropout']);

/** The pooling → linear part of a head path: the linear node and its constant weight matrix. */
interface PoolLinear {
  linear: NodeProto;
  /** [classes, C] (transposed: Gemm with transB) or [C, classes] */
  weights: Float32Array;
  transposed: boolean;
  classes: number;
}

/**
 * `path` (the nodes from a layer of C channels to the logits) as global average pooling (GlobalAveragePool,
 * or ReduceMean over the spatial axes) → reshapes → one linear layer (Gemm with transA 0, or MatMul) →
 * optionally one Add → the logits. 'shape' where the path is anything else, 'weights' where the linear
 * layer's weights are not a constant matrix. (ModelError from a ReduceMean whose axes are not constant.)
 */
async function poolLinear(model: OnnxModel, path: NodeProto[], C: number): Promise<PoolLinear | 'shape' | 'weights'> {
  const pool = path[0];
  if (!pool) return 'shape';
  if (pool.op_type === 'ReduceMean') {
    const axes = attrInts(pool, 'axes') ?? (pool.input[1] ? await model.constantNumbers(pool.input[1], 'axes') : undefined);
    if (!axes || [...axes].map((a) => (a < 0 ? a + 4 : a)).sort().join() !== '2,3') return 'shape';
  } else if (pool.op_type !== 'GlobalAveragePool') return 'shape';
  let i = 1;
  while (i < path.length && PASS_THROUGH.has(path[i].op_type)) i++;
  const linear = path[i];
  if (!linear || (linear.op_type !== 'Gemm' && linear.op_type !== 'MatMul')) return 'shape';
  const rest = path.slice(i + 1);
  if (rest.length > 1 || (rest.length === 1 && rest[0].op_type !== 'Add')) return 'shape';
  if (linear.op_type === 'Gemm' && attrInt(linear, 'transA', 0) === 1) return 'shape';
  const w = await model.constantValue(linear.input[1]);
  if (!w || !(w.data instanceof Float32Array) || w.dims.length !== 2) return 'weights';
  const transposed = linear.op_type === 'Gemm' && attrInt(linear, 'transB', 0) === 1;
  const [r, c] = w.dims;
  if ((transposed ? c : r) !== C) return 'shape';
  return { linear, weights: w.data, transposed, classes: transposed ? r : c };
}

/**
 * Matches the head after `layer` against global average pooling (GlobalAveragePool, or ReduceMean over the
 * spatial axes) → reshapes → one linear layer (Gemm, or MatMul + Add) → the logits, and returns the
 * linear layer's weights. ExplainError saying what the path is when the head is anything else.
 */
export async function matchLinearHead(model: OnnxModel, shapes: Map<string, TensorInfo>, layer: string, logits: string): Promise<LinearHead> {
  const path = nodesOnPath(model, [layer], logits).map((i) => model.nodes[i]);
  const why = `the head after "${layer}" is ${path.map((n) => n.op_type).join(' → ') || '(empty)'}, not global average pooling then one linear layer`;
  const C = shapes.get(layer)?.dims[1];
  if (C === undefined) throw new ExplainError(`layer "${layer}" is not a tensor of the model`);
  const m = await poolLinear(model, path, C);
  if (m === 'shape') throw new ExplainError(why);
  if (m === 'weights') throw new ExplainError(`${why}: its weights are not a constant matrix`);
  const { weights: data, transposed, classes } = m;
  return {
    channels: C,
    classes,
    row(target) {
      if (transposed) return data.slice(target * C, (target + 1) * C);
      const out = new Float32Array(C);
      for (let k = 0; k < C; k++) out[k] = data[k * classes + target];
      return out;
    },
  };
}

/**
 * The gradient of a global-average-pool → linear head, where it is exactly that: the logits z = α·W·mean(A)
 * + b, so ∂z_j/∂A[k, y, x] = α·W[j, k] / (h·w) at every position, whatever A is.
 */
export interface LinearGradient {
  channels: number;
  classes: number;
  /** α / (h·w) */
  scale: number;
  /** W: [classes, C] (transposed) or [C, classes] */
  weights: Float32Array;
  transposed: boolean;
}

/**
 * Matches the head after `layer` strictly for its gradient: a chain in which each node reads the previous
 * node's output and nothing else that depends on the layer (every node on a path from the layer to the
 * logits is in the chain), `layer` → GlobalAveragePool (or ReduceMean over axes 2, 3) → Flatten / Reshape /
 * Squeeze / Identity / Dropout → Gemm (transA 0, constant B, its α kept) or MatMul (constant right
 * operand) → optionally Add of a bias that does not depend on the layer → the logits, each shape checked
 * against the probe ([1, C] into the linear layer, [1, classes] out). Undefined, with no error, otherwise.
 * The pooling → linear part is poolLinear's, as for matchLinearHead (CAM's weights, without the chain and shape checks).
 */
export async function matchLinearGradient(model: OnnxModel, shapes: Map<string, TensorInfo>, layer: string, logits: string): Promise<LinearGradient | undefined> {
  const dims = shapes.get(layer)?.dims;
  if (!dims || dims.length !== 4 || dims[0] !== 1) return undefined;
  const [, C, h, w] = dims;
  const path = nodesOnPath(model, [layer], logits).map((i) => model.nodes[i]);
  if (path.length < 2) return undefined;
  // A chain: node i reads node i−1's one output as its first input, and no other input of it lies on a path.
  const onPath = new Set<string>([layer, ...path.flatMap((n) => n.output)]);
  let prev = layer;
  for (const n of path) {
    if (n.output.length !== 1 && !(n.op_type === 'Dropout' && n.output.length === 2)) return undefined;
    const reads = n.input.filter((t) => t && onPath.has(t));
    if (reads.length !== 1 || reads[0] !== prev) return undefined;
    if (n.op_type !== 'Add' && n.input[0] !== prev) return undefined;
    prev = n.output[0];
  }
  if (prev !== logits) return undefined;
  // A ReduceMean whose axes are not constant is no match here (matchLinearHead reports it).
  const m = await poolLinear(model, path, C).catch((e: unknown) => { if (e instanceof ModelError) return 'shape' as const; throw e; });
  if (typeof m === 'string') return undefined;
  const { linear, classes, transposed } = m;
  const into = shapes.get(linear.input[0])?.dims;
  if (!into || into.length !== 2 || into[0] !== 1 || into[1] !== C) return undefined;
  const out = shapes.get(logits)?.dims;
  if (!out || out.length !== 2 || out[0] !== 1 || out[1] !== classes) return undefined;
  const alpha = linear.op_type === 'Gemm' ? attrFloat(linear, 'alpha', 1) : 1;
  return { channels: C, classes, scale: alpha / (h * w), weights: m.weights, transposed };
}
