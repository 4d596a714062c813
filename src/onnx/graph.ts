// Graph analysis for explanations: which tensor holds the logits, which tensors can be target layers
// (and which is the default), and the head sub-graph between the target layers and the logits.
import Long from 'long';
import { ModelError, attrInts, type OnnxModel } from './model.js';
import { encodeModel, type NodeProto, type TensorProto } from './proto.js';
import type { TensorInfo } from './session.js';

/** Ops after which the graph output is a normalised score, not a logit: CAM differentiates their input. */
const SCORE_HEADS = new Set(['Softmax', 'LogSoftmax', 'Sigmoid']);
/** Ops that only pool or move data: a feature map they produce is not preferred as the default layer. */
const NOT_A_FEATURE = new Set(['MaxPool', 'AveragePool', 'Pad', 'Reshape', 'Transpose', 'Identity', 'Dropout', 'Slice']);

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

export interface CandidateLayer {
  name: string;
  dims: number[];
  op: string;
  node: string;
}

/**
 * Candidate target layers: 4-D float tensors with spatial size > 1, computed from the image input, that
 * the logits depend on, in topological order. The default is the last such tensor produced by a
 * feature op (not a pooling/reshaping op): the last spatial feature map before global pooling.
 */
export function candidateLayers(
  model: OnnxModel, shapes: Map<string, TensorInfo>, logits: string, inputLayout: 'NCHW' | 'NHWC' = 'NCHW',
): { candidates: CandidateLayer[]; defaultLayer: string | undefined } {
  const up = ancestorsOf(model, logits);
  // Layout of each tensor computed from the input: channels-last after Transpose [0,2,3,1] (ConvNeXt's
  // LayerNorm, Keras exports) until [0,3,1,2]. Only channels-first maps are feature maps [1,C,h,w].
  const layout = new Map<string, 'NCHW' | 'NHWC'>(model.inputs.map((i) => [i.name, inputLayout]));
  const candidates: CandidateLayer[] = [];
  for (const n of model.nodes) {
    const from = n.input.find((i) => layout.has(i));
    if (from === undefined) continue;
    let out = layout.get(from)!;
    if (n.op_type === 'Transpose') {
      const perm = attrInts(n, 'perm')?.join(',');
      if (perm === '0,2,3,1') out = 'NHWC';
      else if (perm === '0,3,1,2') out = 'NCHW';
    }
    for (const o of n.output) {
      if (!o) continue;
      layout.set(o, out);
      const s = shapes.get(o);
      if (out !== 'NCHW' || !s || s.type !== 'float32' || s.dims.length !== 4 || !up.has(o)) continue;
      if (s.dims[2] * s.dims[3] <= 1) continue;
      candidates.push({ name: o, dims: s.dims, op: n.op_type, node: n.name || o });
    }
  }
  const features = candidates.filter((c) => !NOT_A_FEATURE.has(c.op));
  const chosen = features.length ? features[features.length - 1] : candidates[candidates.length - 1];
  return { candidates, defaultLayer: chosen?.name };
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
