// Vector-Jacobian rules of the ops that only move elements: reshapes (gradient reshaped back),
// Transpose (inverse permutation), Concat/Split (slice/concatenate), Slice/Pad (pad/slice).
import { attrInt, attrInts, attrString, int, ints } from '../../onnx/index.js';
import { normAxis, padZeros, reduceToShape, reshapeGrad, slice, unsqueeze, zerosGrad } from '../emit.js';
import type { VjpRule } from '../context.js';

/** Reshape, Flatten, Squeeze, Unsqueeze: dX = dY reshaped to X's dims (batch axis kept as K). */
const reshapeBack: VjpRule = (ctx, [dy]) => [reshapeGrad(ctx, dy!, ctx.shape(ctx.node.input[0]))];

/** Transpose: dX = Transpose(dY, inverse perm). The batch axis must stay first. */
const transpose: VjpRule = (ctx, [dy]) => {
  const rank = ctx.shape(ctx.node.input[0]).length;
  const perm = attrInts(ctx.node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  if (perm[0] !== 0) ctx.fail('the permutation moves the batch axis');
  const inverse = new Array<number>(rank);
  perm.forEach((p, i) => { inverse[p] = i; });
  return [ctx.op('Transpose', [dy!], { perm: ints(inverse) })];
};

/** Concat: dX_i = the slice of dY along the axis that X_i filled. */
const concat: VjpRule = (ctx, [dy]) => {
  const yd = ctx.shape(ctx.node.output[0]);
  const axis = normAxis(attrInt(ctx.node, 'axis', 0), yd.length);
  if (axis === 0) ctx.fail('concatenation along the batch axis');
  let offset = 0;
  return ctx.node.input.map((t, i) => {
    const len = ctx.shape(t)[axis];
    const start = offset;
    offset += len;
    return ctx.needs(i) ? slice(ctx, dy!, [start], [start + len], [axis]) : undefined;
  });
};

/** Split: dX = Concat of the output gradients along the axis (zeros for outputs off the path). */
const split: VjpRule = (ctx, dOut) => {
  const xd = ctx.shape(ctx.node.input[0]);
  const axis = normAxis(attrInt(ctx.node, 'axis', 0), xd.length);
  if (axis === 0) ctx.fail('split along the batch axis');
  const any = dOut.find((g) => g !== undefined)!;
  const parts = ctx.node.output.map((o, i) => dOut[i] ?? zerosGrad(ctx, any, ctx.shape(o)));
  return [ctx.op('Concat', parts, { axis: int(axis) })];
};

function clampIndex(v: number, dim: number, step: number): number {
  let i = v < 0 ? v + dim : v;
  if (step > 0) i = Math.min(Math.max(i, 0), dim);
  else i = Math.min(Math.max(i, -1), dim - 1);
  return i;
}

/** Slice (unit steps): dX = dY zero-padded back to X's extent (pads = [starts, dims − ends] after clamping). */
const sliceRule: VjpRule = (ctx, [dy]) => {
  const xd = ctx.shape(ctx.node.input[0]);
  const n = ctx.node;
  let starts: number[];
  let ends: number[];
  let axes: number[] | undefined;
  let steps: number[] | undefined;
  if (ctx.opset < 10) {
    starts = attrInts(n, 'starts')!;
    ends = attrInts(n, 'ends')!;
    axes = attrInts(n, 'axes');
  } else {
    starts = ctx.requireConstant(n.input[1], 'starts');
    ends = ctx.requireConstant(n.input[2], 'ends');
    axes = n.input[3] ? ctx.requireConstant(n.input[3], 'axes') : undefined;
    steps = n.input[4] ? ctx.requireConstant(n.input[4], 'steps') : undefined;
  }
  const rank = xd.length;
  const pads = new Array<number>(2 * rank).fill(0);
  starts.forEach((s, i) => {
    const axis = normAxis(axes ? axes[i] : i, rank);
    const step = steps ? steps[i] : 1;
    if (step !== 1) ctx.fail('strided slicing is not supported');
    const b = clampIndex(s, xd[axis], 1);
    const e = Math.max(b, clampIndex(ends[i], xd[axis], 1));
    // Slices without an axes input name every axis; keeping the whole batch axis is harmless.
    if (axis === 0 && (b !== 0 || e !== xd[0])) ctx.fail('slicing the batch axis');
    pads[axis] = b;
    pads[rank + axis] = xd[axis] - e;
  });
  return [padZeros(ctx, dy!, pads)];
};

/** Pad (constant mode): dX = the slice of dY that X occupies. */
const pad: VjpRule = (ctx, [dy]) => {
  const n = ctx.node;
  const xd = ctx.shape(n.input[0]);
  const rank = xd.length;
  if (attrString(n, 'mode', 'constant') !== 'constant') ctx.fail('only constant padding is supported');
  let pads = ctx.opset < 11 ? attrInts(n, 'pads')! : ctx.requireConstant(n.input[1], 'pads');
  if (ctx.opset >= 18 && n.input[3]) {
    const axes = ctx.requireConstant(n.input[3], 'axes').map((a) => normAxis(a, rank));
    const full = new Array<number>(2 * rank).fill(0);
    axes.forEach((a, i) => { full[a] = pads[i]; full[rank + a] = pads[axes.length + i]; });
    pads = full;
  }
  if (pads[0] !== 0 || pads[rank] !== 0) ctx.fail('padding the batch axis');
  const axes: number[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  for (let a = 1; a < rank; a++) {
    if (pads[a] === 0 && pads[rank + a] === 0) continue;
    axes.push(a);
    starts.push(pads[a]);
    ends.push(pads[a] + xd[a]);
  }
  // Negative pads crop; the slice above then starts before 0, which a zero-pad of the gradient handles.
  if (starts.some((s) => s < 0) || ends.some((e, i) => e > ctx.shape(n.output[0])[axes[i]])) {
    ctx.fail('negative (cropping) pads are not supported');
  }
  return [axes.length ? slice(ctx, dy!, starts, ends, axes) : dy];
};

/** Expand (numpy broadcasting to a shape): dX = dY summed over the axes X was broadcast along. */
const expand: VjpRule = (ctx, [dy]) => {
  const x = ctx.node.input[0];
  return [reduceToShape(ctx, dy!, ctx.shape(ctx.node.output[0]), ctx.shape(x))];
};

/**
 * Gather along `axis` with constant indices of rank 0 or 1 (x[:, 0] for a class token, a channel subset):
 * dX = dY contracted with the one-hot matrix M[j, i] = [indices_j = i] along the axis (repeated indices add).
 * A scalar index first gets its axis back by Unsqueeze.
 */
const gather: VjpRule = (ctx, [dy]) => {
  const [x, idx] = ctx.node.input;
  const xd = ctx.shape(x);
  const rank = xd.length;
  const axis = normAxis(attrInt(ctx.node, 'axis', 0), rank);
  if (axis === 0) ctx.fail('gathering along the batch axis');
  const indices = ctx.requireConstant(idx, 'indices');
  const idxRank = ctx.shape(idx).length;
  if (idxRank > 1) ctx.fail('only scalar or 1-D indices are supported');
  const dim = xd[axis];
  const oneHot = new Float32Array(indices.length * dim);
  indices.forEach((v, j) => { oneHot[j * dim + (v < 0 ? v + dim : v)] = 1; });
  const g = idxRank === 0 ? unsqueeze(ctx, dy!, [axis]) : dy!;
  const m = ctx.constF(oneHot, [indices.length, dim]);
  if (axis === rank - 1) return [ctx.op('MatMul', [g, m])];
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm.splice(axis, 1);
  perm.push(axis);
  const inverse = new Array<number>(rank);
  perm.forEach((p, i) => { inverse[p] = i; });
  const moved = ctx.op('MatMul', [ctx.op('Transpose', [g], { perm: ints(perm) }), m]);
  return [ctx.op('Transpose', [moved], { perm: ints(inverse) })];
};

export const shapeRules: Record<string, VjpRule> = {
  Gather: gather,
  Expand: expand,
  Reshape: reshapeBack,
  Flatten: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Transpose: transpose,
  Concat: concat,
  Split: split,
  Slice: sliceRule,
  Pad: pad,
};

