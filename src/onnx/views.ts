// Views: a layer explained through a reshaping of the model's tensor X (token grids, channels-last maps,
// row 0 of a fixed batch) becomes a real tensor of the graph. X's producer writes X#pre instead; the view
// V = f(X#pre) ([1, C, h, w]) and its side tensors (the prefix tokens) are computed from it; X = g(V, side)
// is rebuilt from them for every consumer. f and g only slice, reshape, transpose and concatenate, so
// X is unchanged, V lies on every path from X to the logits, and its gradient is X's gradient carried
// through the same reshaping: pytorch-grad-cam's reshape_transform applied to activations and gradients.
import { int, ints, int64Tensor, makeNode } from './builder.js';
import type { ViewSpec } from './layers.js';
import { viewName } from './layers.js';
import type { OnnxModel } from './model.js';
import type { NodeProto, TensorProto } from './proto.js';
import { spliceModel } from './splice.js';

class ViewEmitter {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private k = 0;
  constructor(private readonly opset: number, private readonly prefix: string) {}

  name(hint: string): string {
    return `${this.prefix}/${hint}_${this.k++}`;
  }

  node(op: string, inputs: string[], attrs: Parameters<typeof makeNode>[3] = {}, out?: string): string {
    const o = out ?? this.name(op);
    this.nodes.push(makeNode(op, inputs, [o], attrs, this.name(`node_${op}`)));
    return o;
  }

  ints(values: number[]): string {
    const n = this.name('c');
    this.initializers.push(int64Tensor(n, [values.length], values));
    return n;
  }

  /** x[starts:ends] along `axis` (Slice with inputs from opset 10, attributes before). */
  slice(x: string, axis: number, start: number, end: number, out?: string): string {
    if (this.opset >= 10) return this.node('Slice', [x, this.ints([start]), this.ints([end]), this.ints([axis])], {}, out);
    return this.node('Slice', [x], { starts: ints([start]), ends: ints([end]), axes: ints([axis]) }, out);
  }

  /** Zeros appended along axis 0 up to `rows` rows (Pad with inputs from opset 11, attributes before). */
  padRows(x: string, rank: number, rows: number, out?: string): string {
    const pads = Array<number>(2 * rank).fill(0);
    pads[rank] = rows - 1;
    if (this.opset >= 11) return this.node('Pad', [x, this.ints(pads)], {}, out);
    return this.node('Pad', [x], { pads: ints(pads) }, out);
  }
}

/** The nodes of one view: forward (X#pre → V, side) and inverse (V, side → X). */
function viewNodes(v: ViewSpec, pre: string, opset: number): { nodes: NodeProto[]; initializers: TensorProto[] } {
  const e = new ViewEmitter(opset, `camserve/view/${v.source}`);
  const rank = v.sourceDims.length;
  const x0 = v.rows ? e.slice(pre, 0, 0, 1) : pre;
  const V = viewName(v);
  let back: string;
  if (v.kind === 'tokens') {
    const [, T, C] = v.sourceDims;
    const p = v.prefix ?? 0;
    const [h, w] = v.grid!;
    const gridTokens = p > 0 ? e.slice(x0, 1, p, T) : x0;
    const hwc = e.node('Reshape', [gridTokens, e.ints([0, h, w, C])]);
    e.node('Transpose', [hwc], { perm: ints([0, 3, 1, 2]) }, V);
    const side = p > 0 ? e.slice(x0, 1, 0, p) : undefined;
    const hwcBack = e.node('Transpose', [V], { perm: ints([0, 2, 3, 1]) });
    const tokens = e.node('Reshape', [hwcBack, e.ints([0, h * w, C])]);
    back = side ? e.node('Concat', [side, tokens], { axis: int(1) }) : tokens;
  } else if (v.kind === 'channels-last') {
    e.node('Transpose', [x0], { perm: ints([0, 3, 1, 2]) }, V);
    back = e.node('Transpose', [V], { perm: ints([0, 2, 3, 1]) });
  } else if (v.kind === 'dequantized') {
    const q = v.quantization!;
    const args = (x: string) => [x, q.scale, ...(q.zeroPoint ? [q.zeroPoint] : [])];
    e.node('DequantizeLinear', args(x0), {}, V);
    back = e.node('QuantizeLinear', args(V));
  } else {
    e.node('Identity', [x0], {}, V);
    back = e.node('Identity', [V]);
  }
  if (v.rows) back = e.padRows(back, rank, v.rows);
  e.node('Identity', [back], {}, v.source);
  return e;
}

/**
 * The model's bytes with the views spliced in (the producers of their sources renamed); the nodes of a
 * view follow the producer of its source, so the graph stays in topological order.
 */
export function spliceViews(model: OnnxModel, views: readonly ViewSpec[]): Uint8Array {
  const bySource = new Map(views.map((v) => [v.source, v]));
  const nodes: (number | NodeProto)[] = [];
  const initializers: TensorProto[] = [];
  model.nodes.forEach((n, i) => {
    const mine = n.output.filter((o) => bySource.has(o));
    if (!mine.length) {
      nodes.push(i);
      return;
    }
    nodes.push({ ...n, output: n.output.map((o) => (bySource.has(o) ? `${o}#pre` : o)) });
    for (const o of mine) {
      const built = viewNodes(bySource.get(o)!, `${o}#pre`, model.opset);
      nodes.push(...built.nodes);
      initializers.push(...built.initializers);
    }
  });
  return spliceModel(model.bytes, { nodes, addInitializers: initializers, dropValueInfo: true });
}
