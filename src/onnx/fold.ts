// Shape arithmetic folded into constants. Exporters trace `x.shape` into Shape → Gather → Unsqueeze →
// Concat chains (torchvision's Swin windows, ViT's class-token expansion) that feed Reshape, Slice and
// Expand; for a fixed input size their values are fixed, and gradient rules need them as constants.
// Every integer tensor computed from shapes and constants only is replaced by its probed value.
import { int64Tensor } from './builder.js';
import type { OnnxModel } from './model.js';
import type { TensorProto } from './proto.js';
import type { TensorInfo } from './session.js';
import { spliceModel } from './splice.js';

/** Ops whose output depends only on their inputs' shapes. */
const SHAPE_OPS = new Set(['Shape', 'Size']);

/**
 * The model's bytes with every integer tensor that depends on shapes and constants only (and whose value
 * the probe run recorded in `values`) turned into an initializer, and the nodes that only computed such
 * tensors dropped. Returns undefined when nothing folds.
 */
export function foldShapeArithmetic(model: OnnxModel, values: ReadonlyMap<string, number[]>, shapes: ReadonlyMap<string, TensorInfo>): Uint8Array | undefined {
  const shapeOnly = new Set<string>(model.initializers.keys());
  for (const n of model.nodes) {
    const only = SHAPE_OPS.has(n.op_type) || n.input.every((i) => !i || shapeOnly.has(i));
    if (only) for (const o of n.output) if (o) shapeOnly.add(o);
  }
  const folded = new Map<string, TensorProto>();
  for (const n of model.nodes) {
    if (n.op_type === 'Constant') continue;
    for (const o of n.output) {
      if (!o || !shapeOnly.has(o) || model.initializers.has(o)) continue;
      const v = values.get(o);
      const s = shapes.get(o);
      if (v && s?.type === 'int64') folded.set(o, int64Tensor(o, s.dims, v));
    }
  }
  if (folded.size === 0) return undefined;
  // A node goes when all its outputs are folded; its outputs that something still reads become initializers.
  const kept: number[] = [];
  const dropped: number[] = [];
  model.nodes.forEach((n, i) => {
    if (n.op_type !== 'Constant' && n.output.every((o) => !o || folded.has(o))) dropped.push(i);
    else kept.push(i);
  });
  if (dropped.length === 0) return undefined;
  const read = new Set<string>();
  for (const i of kept) for (const t of model.nodes[i].input) if (t) read.add(t);
  for (const o of model.graph.output) read.add(o.name);
  const adds = dropped.flatMap((i) => model.nodes[i].output.filter((o) => o && read.has(o)).map((o) => folded.get(o)!));
  return spliceModel(model.bytes, { nodes: kept, addInitializers: adds });
}
