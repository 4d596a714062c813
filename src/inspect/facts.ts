// The facts about a model that the summary and the graph view need, as plain data: nodes with their
// exporter scopes, the probe-run shape of every tensor, initializer sizes, and the nodes the explain
// graph differentiates. Built once per model where the model lives (an inference worker, or the CLI),
// small enough to post to the HTTP thread, and the only input of summary.ts and graph.ts.
import { bytesPer, nodesOnPath, toInt } from '../onnx/index.js';
import type { ModelRuntime } from '../engine/index.js';

export interface FactNode {
  /** the node's name, or `<op>:<first output>` for an unnamed node (unique either way) */
  name: string;
  op: string;
  inputs: string[];
  outputs: string[];
  /** exporter scope segments, e.g. ['layer4', 'layer4.1', 'conv1'] for "/layer4/layer4.1/conv1/Conv"; [] when none */
  scope: string[];
}

export interface InitializerFact {
  dims: number[];
  dataType: number;
  elements: number;
  bytes: number;
}

export interface ModelFacts {
  id: string;
  producer: string;
  producerVersion: string;
  opset: number;
  input: { name: string; dims: number[] };
  logits: string;
  numClasses: number;
  defaultLayer: string;
  nodes: FactNode[];
  /** static dims and element type of every tensor the probe run saw (node outputs, the input, initializers) */
  tensors: Record<string, { dims: number[]; type: string }>;
  initializers: Record<string, InitializerFact>;
  /** graph outputs, in order */
  outputs: string[];
  /** indices into `nodes` of the nodes between the default layer and the logits that the explain graph
   *  differentiates (autodiff's nodesOnPath over float tensors, as buildGradientPatch uses it) */
  pathNodes: number[];
}

/**
 * Scope segments of a node name written by PyTorch's ONNX exporter: "/layer4/layer4.1/conv1/Conv" →
 * ['layer4', 'layer4.1', 'conv1'] (the last segment is the op). Names without a leading "/" (other
 * exporters, or nodes the exporter added, e.g. "Identity_0") and top-level ones ("/Relu") have none.
 */
export function scopeOf(nodeName: string): string[] {
  if (!nodeName.startsWith('/')) return [];
  const parts = nodeName.split('/').slice(1, -1);
  return parts.every((p) => p !== '') ? parts : [];
}

/**
 * The PyTorch module path of scope segments: a segment that extends the previous one by ".<name>" (a
 * container's child, "layer4" → "layer4.1") replaces it, other segments are appended:
 * ['layer4', 'layer4.1', 'conv1'] → "layer4.1.conv1";
 * ['features', 'features.1', 'features.1.0', 'block', 'block.0'] → "features.1.0.block.0".
 */
export function modulePath(scope: readonly string[]): string {
  const out: string[] = [];
  let prev: string | undefined;
  for (const seg of scope) {
    if (prev !== undefined && seg.startsWith(`${prev}.`) && out.length) out[out.length - 1] = seg;
    else out.push(seg);
    prev = seg;
  }
  return out.join('.');
}

/** Facts of a loaded model (the probe shapes and the graph the runtime already holds). */
export function modelFacts(rt: ModelRuntime): ModelFacts {
  const { model, info } = rt;
  // ModelRuntime keeps the probe run's element types private and tensorDims() gives dims only; the
  // types decide which tensors the backward pass goes through (integer shape arithmetic is not on it).
  const shapes = rt.tensorInfos();
  const tensors: ModelFacts['tensors'] = {};
  for (const [name, s] of shapes) tensors[name] = { dims: [...s.dims], type: s.type };
  const initializers: ModelFacts['initializers'] = {};
  for (const t of model.graph.initializer) {
    if (!t.name) continue;
    const dims = (t.dims ?? []).map(toInt);
    const elements = dims.reduce((a, b) => a * b, 1);
    initializers[t.name] = { dims, dataType: t.data_type ?? 0, elements, bytes: elements * bytesPer(t.data_type ?? 0) };
  }
  const floating = (name: string) => /float/.test(shapes.get(name)?.type ?? 'float32');
  return {
    id: info.id,
    producer: model.proto.producer_name ?? '',
    producerVersion: model.proto.producer_version ?? '',
    opset: info.opset,
    input: { name: info.inputName, dims: [...info.inputDims] },
    logits: info.logits,
    numClasses: info.numClasses,
    defaultLayer: info.defaultLayer,
    nodes: model.nodes.map((n) => ({
      name: n.name || `${n.op_type}:${n.output[0] ?? ''}`,
      op: n.op_type,
      inputs: [...n.input],
      outputs: [...n.output],
      scope: scopeOf(n.name ?? ''),
    })),
    tensors,
    initializers,
    outputs: model.outputs.map((o) => o.name),
    pathNodes: nodesOnPath(model, [info.defaultLayer], info.logits, floating),
  };
}

/** Nodes whose inputs are all constant (initializers, Constant outputs): aliases and folded constants, not layers. */
export function constantNodes(facts: ModelFacts): Set<number> {
  const constant = new Set<string>(Object.keys(facts.initializers));
  const out = new Set<number>();
  facts.nodes.forEach((n, i) => {
    if (n.inputs.every((t) => !t || constant.has(t))) {
      out.add(i);
      for (const o of n.outputs) if (o) constant.add(o);
    }
  });
  return out;
}

/** For each tensor computed only from constants: the initializers it derives from (e.g. an Identity of a weight). */
export function constantSources(facts: ModelFacts, constant: Set<number>): Map<string, string[]> {
  const sources = new Map<string, string[]>();
  for (const name of Object.keys(facts.initializers)) sources.set(name, [name]);
  for (const i of constant) {
    const n = facts.nodes[i];
    const from = [...new Set(n.inputs.flatMap((t) => (t ? sources.get(t) ?? [] : [])))];
    for (const o of n.outputs) if (o) sources.set(o, from);
  }
  return sources;
}
