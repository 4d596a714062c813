// A torchsummary-style model summary from the ONNX graph: one row per layer (the nodes of one
// exporter scope, i.e. one PyTorch module call; nodes without a scope are rows of their own), with
// op types, output shape (from the probe run), parameter count, then totals and memory estimates.
import { constantNodes, constantSources, modulePath, type ModelFacts } from './facts.js';

export interface SummaryRow {
  /** module path ("layer4.1.conv1") for scoped nodes, else the node's name */
  layer: string;
  /** exporter scope segments joined with "." ("layer4.layer4.1.conv1"), null for a node without scope */
  scope: string | null;
  /** op types of the row's nodes, in graph order, each once */
  ops: string[];
  nodes: number;
  /** tensors the row produces that are used outside it (or are graph outputs), with their probe dims */
  outputs: { name: string; dims: number[] }[];
  /** elements of the initializers the row's nodes read (each initializer counted in the first row that reads it) */
  params: number;
}

export interface ModelSummary {
  model: string;
  producer: string;
  opset: number;
  input: { name: string; dims: number[] };
  rows: SummaryRow[];
  totals: {
    /** every element of every ONNX initializer (weights, biases, BatchNorm running statistics, folded constants) */
    parameters: number;
    /** initializers no node reads (included in `parameters`) */
    unusedParameters: number;
    /** what PyTorch's `sum(p.numel() for p in model.parameters())` would give, estimated from the graph (see `trainableNotes`) */
    trainableEstimate: number;
    /** each adjustment from `parameters` to `trainableEstimate`, with its size */
    trainableNotes: string[];
  };
  /** MiB (2^20 bytes), as torchsummary prints "MB" */
  sizes: {
    /** the input tensor, float32 */
    inputMB: number;
    /** the rows' output tensors summed once (torchsummary's total_output × 4 bytes) */
    forwardMB: number;
    /** 2 × forwardMB: torchsummary's "Forward/backward pass size" (activations plus their gradients) */
    forwardBackwardMB: number;
    /** bytes of all initializers (their own element types) */
    paramsMB: number;
    /** inputMB + forwardBackwardMB + paramsMB: torchsummary's "Estimated Total Size" */
    totalMB: number;
  };
}

const MB = 1024 * 1024;

function bytesOfType(type: string): number {
  if (/64/.test(type)) return 8;
  if (/16/.test(type)) return 2;
  if (type === 'bool' || /8/.test(type)) return 1;
  return 4;
}

/** Rows and totals of a model. */
export function summarize(facts: ModelFacts): ModelSummary {
  const constant = constantNodes(facts);
  const sources = constantSources(facts, constant);
  const groups = new Map<string, { layer: string; scope: string | null; nodes: number[] }>();
  const groupOf = new Map<number, string>();
  facts.nodes.forEach((n, i) => {
    if (constant.has(i)) return;
    const key = n.scope.length ? `scope:${modulePath(n.scope)}` : `node:${n.name}`;
    let g = groups.get(key);
    if (!g) {
      g = n.scope.length
        ? { layer: modulePath(n.scope), scope: n.scope.join('.'), nodes: [] }
        : { layer: n.name, scope: null, nodes: [] };
      groups.set(key, g);
    }
    g.nodes.push(i);
    groupOf.set(i, key);
  });
  const consumers = new Map<string, number[]>();
  facts.nodes.forEach((n, i) => {
    if (constant.has(i)) return;
    for (const t of n.inputs) if (t) consumers.set(t, [...(consumers.get(t) ?? []), i]);
  });
  const graphOutputs = new Set(facts.outputs);
  const counted = new Set<string>();
  const rows: SummaryRow[] = [];
  let activationBytes = 0;
  for (const [key, g] of groups) {
    let params = 0;
    const ops: string[] = [];
    const outputs: SummaryRow['outputs'] = [];
    for (const i of g.nodes) {
      const n = facts.nodes[i];
      if (!ops.includes(n.op)) ops.push(n.op);
      for (const t of n.inputs) {
        for (const init of (t && sources.get(t)) || []) {
          if (counted.has(init)) continue;
          counted.add(init);
          params += facts.initializers[init].elements;
        }
      }
      for (const o of n.outputs) {
        if (!o) continue;
        const outside = (consumers.get(o) ?? []).some((c) => groupOf.get(c) !== key);
        if (!outside && !graphOutputs.has(o)) continue;
        const t = facts.tensors[o];
        outputs.push({ name: o, dims: t ? [...t.dims] : [] });
        if (t) activationBytes += t.dims.reduce((a, b) => a * b, 1) * bytesOfType(t.type);
      }
    }
    rows.push({ layer: g.layer, scope: g.scope, ops, nodes: g.nodes.length, outputs, params });
  }

  const inits = Object.entries(facts.initializers);
  const parameters = inits.reduce((a, [, t]) => a + t.elements, 0);
  const unusedParameters = inits.reduce((a, [name, t]) => a + (counted.has(name) ? 0 : t.elements), 0);
  const { estimate, notes } = trainableEstimate(facts, constant, sources, parameters);
  const paramBytes = inits.reduce((a, [, t]) => a + t.bytes, 0);
  const inputBytes = facts.input.dims.reduce((a, b) => a * b, 1) * 4;
  const sizes = {
    inputMB: inputBytes / MB,
    forwardMB: activationBytes / MB,
    forwardBackwardMB: (2 * activationBytes) / MB,
    paramsMB: paramBytes / MB,
    totalMB: (inputBytes + 2 * activationBytes + paramBytes) / MB,
  };
  return {
    model: facts.id, producer: facts.producer, opset: facts.opset, input: facts.input, rows,
    totals: { parameters, unusedParameters, trainableEstimate: estimate, trainableNotes: notes },
    sizes,
  };
}

/**
 * PyTorch's parameter count, estimated from the ONNX graph. ONNX initializers differ from
 * `model.parameters()` in three known ways, each undone here:
 *
 * 1. BatchNormalization's running mean and variance (inputs 3 and 4) are buffers in PyTorch, not
 *    parameters: subtracted (any exporter).
 * 2. In eval mode PyTorch's exporter folds a BatchNorm that follows a Conv into the Conv: the Conv then
 *    reads an anonymous weight ("onnx::Conv_N", from constant folding) and a bias of C elements, where
 *    PyTorch had a bias-free conv (torchvision's convention before BatchNorm) plus BatchNorm's γ and β
 *    (2·C): +C per such Conv (PyTorch exports only).
 * 3. The exporter keeps one initializer for parameters of equal value and reads it through Identity
 *    nodes (e.g. several all-zero biases); PyTorch counted each: + the elements per such Identity
 *    (PyTorch exports only).
 * Not recoverable: a folded conv that had its own bias (then PyTorch had C more), and weights tied
 * on purpose (PyTorch counts those once, like ONNX).
 */
function trainableEstimate(facts: ModelFacts, constant: Set<number>, sources: Map<string, string[]>, parameters: number): { estimate: number; notes: string[] } {
  const notes: string[] = [];
  let estimate = parameters;
  const pytorch = /pytorch/i.test(facts.producer);
  const seen = new Set<string>();
  let running = 0;
  let runningNodes = 0;
  let folded = 0;
  let foldedNodes = 0;
  let dedup = 0;
  let dedupNodes = 0;
  facts.nodes.forEach((n, i) => {
    if (constant.has(i)) {
      if (pytorch && n.op === 'Identity' && n.inputs[0] && facts.initializers[n.inputs[0]]) {
        dedup += facts.initializers[n.inputs[0]].elements;
        dedupNodes++;
      }
      return;
    }
    if (n.op === 'BatchNormalization') {
      let any = false;
      for (const t of [n.inputs[3], n.inputs[4]]) {
        for (const init of (t && sources.get(t)) || []) {
          if (seen.has(init)) continue;
          seen.add(init);
          running += facts.initializers[init].elements;
          any = true;
        }
      }
      if (any) runningNodes++;
    }
    if (pytorch && n.op === 'Conv' && n.inputs[1]?.startsWith('onnx::') && n.inputs[2] && facts.initializers[n.inputs[1]]) {
      folded += facts.initializers[n.inputs[1]].dims[0] ?? 0;
      foldedNodes++;
    }
  });
  if (running) {
    estimate -= running;
    notes.push(`−${running} BatchNorm running mean/var of ${runningNodes} BatchNormalization node(s): buffers, not parameters`);
  }
  if (folded) {
    estimate += folded;
    notes.push(`+${folded} for ${foldedNodes} Conv node(s) with a folded BatchNorm (anonymous "onnx::" weights): PyTorch had γ and β (2·C) where ONNX has a bias (C)`);
  }
  if (dedup) {
    estimate += dedup;
    notes.push(`+${dedup} for ${dedupNodes} Identity node(s) reading a shared initializer: the exporter merged parameters of equal value`);
  }
  return { estimate, notes };
}

function fmtInt(n: number): string {
  return n.toLocaleString('en-US');
}

function fmtDims(dims: number[]): string {
  return `[${dims.join(', ')}]`;
}

/** The summary as aligned plain text, laid out like torchsummary's. */
export function formatSummary(s: ModelSummary): string {
  const header = ['Layer', 'Ops', 'Output Shape', 'Param #'];
  const body = s.rows.map((r) => [
    r.layer,
    r.ops.join(', '),
    r.outputs.length ? r.outputs.map((o) => fmtDims(o.dims)).join(' ') : '—',
    fmtInt(r.params),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((row) => row[c].length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c === 3 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd();
  const total = widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1);
  const rule = (ch: string) => ch.repeat(Math.max(total, 64));
  const mb = (v: number) => v.toFixed(2);
  const t = s.totals;
  const out = [
    `Model: ${s.model}  (producer ${s.producer || 'unknown'}, opset ${s.opset}, input ${s.input.name} ${fmtDims(s.input.dims)})`,
    rule('-'),
    line(header),
    rule('='),
    ...body.map(line),
    rule('='),
    `Total params (ONNX initializers): ${fmtInt(t.parameters)}`,
    `Trainable params (PyTorch estimate): ${fmtInt(t.trainableEstimate)}`,
    ...t.trainableNotes.map((n) => `  ${n}`),
    ...(t.unusedParameters ? [`Unused initializers: ${fmtInt(t.unusedParameters)} elements`] : []),
    rule('-'),
    `Input size (MB): ${mb(s.sizes.inputMB)}`,
    `Forward pass size (MB): ${mb(s.sizes.forwardMB)}`,
    `Forward/backward pass size (MB): ${mb(s.sizes.forwardBackwardMB)}  (2 × forward, as torchsummary)`,
    `Params size (MB): ${mb(s.sizes.paramsMB)}`,
    `Estimated Total Size (MB): ${mb(s.sizes.totalMB)}`,
    rule('-'),
  ];
  return `${out.join('\n')}\n`;
}
