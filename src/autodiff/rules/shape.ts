// Vector-Jacobian rules of the ops that only move or copy elements: reshapes and Transpose, DepthToSpace,
// SpaceToDepth (undone), Concat/Split, Slice/Pad (each other's inverse), Expand, Tile, Gather (summed back).
import { attrInt, attrInts, attrString, int, ints } from '../../onnx/index.js';
import { applyAxisMapsT, normAxis, padZeros, reduceSum, reduceToShape, reshapeGrad, slice, unsqueeze, zerosGrad, type AxisMap } from '../emit.js';
import type { VjpContext, VjpRule } from '../context.js';

/** Reshape, Flatten, Squeeze, Unsqueeze: dX = dY reshaped to X's dims (batch axis kept as K). */
const reshapeBack: VjpRule = (ctx, [dy]) => [reshapeGrad(ctx, dy!, ctx.shape(ctx.node.input[0]))];

/** Transpose: dX = Transpose(dY, inverse perm). The batch axis must stay first. */
const transpose: VjpRule = (ctx, [dy]) => {
  const rank = ctx.shape(ctx.node.input[0]).length;
  const perm = attrInts(ctx.node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  if (perm[0] !== 0 && !ctx.perSeed) ctx.fail('the permutation moves the batch axis');
  const inverse = new Array<number>(rank);
  perm.forEach((p, i) => { inverse[p] = i; });
  return [ctx.op('Transpose', [dy!], { perm: ints(inverse) })];
};

/** Concat: dX_i = the slice of dY along the axis that X_i filled. */
const concat: VjpRule = (ctx, [dy]) => {
  const yd = ctx.shape(ctx.node.output[0]);
  const axis = normAxis(attrInt(ctx.node, 'axis', 0), yd.length);
  if (axis === 0 && !ctx.perSeed) ctx.fail('concatenation along the batch axis');
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
  if (axis === 0 && !ctx.perSeed) ctx.fail('split along the batch axis');
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

/**
 * Slice: dX = dY put back where the slice came from, zeros elsewhere. Per axis with |step| > 1 the gradient
 * is first spread out (Unsqueeze, zero Pad, Reshape: each element followed by step − 1 zeros); a negative
 * step is a reversal (Slice with step −1) of the positive one from the lowest selected index. A final zero
 * Pad places the result at [start, dims − end).
 */
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
  const cur = [...ctx.shape(n.output[0])];
  const pads = new Array<number>(2 * rank).fill(0);
  let g = dy!;
  starts.forEach((s, i) => {
    const axis = normAxis(axes ? axes[i] : i, rank);
    let step = steps ? steps[i] : 1;
    if (step === 0) ctx.fail('a slice step of 0');
    const taken = cur[axis];
    // Slices without an axes input name every axis; keeping (or reversing) the whole batch axis is harmless.
    if (axis === 0 && !ctx.perSeed) {
      if (taken !== xd[0]) ctx.fail('slicing the batch axis');
      return;
    }
    if (taken === 0) ctx.fail('an empty slice');
    let first = clampIndex(s, xd[axis], step);
    if (step < 0) {
      // Reverse, so the gradient runs from the lowest selected index upwards with step −step.
      g = slice(ctx, g, [-1], [Number.MIN_SAFE_INTEGER], [axis], [-1]);
      first += (taken - 1) * step;
      step = -step;
    }
    if (step > 1) {
      const spread = new Array<number>(2 * (rank + 1)).fill(0);
      spread[rank + 1 + axis + 1] = step - 1;
      g = padZeros(ctx, unsqueeze(ctx, g, [axis + 1]), spread);
      cur[axis] = taken * step;
      g = ctx.op('Reshape', [g, ctx.constI([-1, ...cur.slice(1)])]);
      // The zeros after the last element may run past the input's end.
      const room = xd[axis] - first;
      if (cur[axis] > room) {
        g = slice(ctx, g, [0], [room], [axis]);
        cur[axis] = room;
      }
    }
    pads[axis] = first;
    pads[rank + axis] = xd[axis] - first - cur[axis];
  });
  return [padZeros(ctx, g, pads)];
};

/**
 * Where output index o of a padded axis reads its value from (an index of the input), or −1 for the
 * constant: negative pads first crop the input (as onnxruntime does), then the mode fills the positive
 * pads — edge repeats the border, reflect mirrors without repeating it, wrap continues periodically.
 */
function padSource(mode: string, o: number, inLen: number, begin: number, end: number): number {
  const lo = Math.max(0, -begin);
  const len = inLen - lo - Math.max(0, -end);
  const rel = o - Math.max(0, begin);
  const mod = (a: number, m: number) => ((a % m) + m) % m;
  let k: number;
  if (mode === 'constant') k = rel >= 0 && rel < len ? rel : -1;
  else if (mode === 'edge') k = Math.min(Math.max(rel, 0), len - 1);
  else if (mode === 'wrap') k = mod(rel, len);
  else {
    const period = 2 * (len - 1);
    const r = len === 1 ? 0 : mod(rel, period);
    k = r < len ? r : period - r;
  }
  return k < 0 ? -1 : lo + k;
}

/**
 * Pad. Constant mode: dX = the slice of dY that X occupies, zero-padded where negative pads cropped X.
 * Edge, reflect and wrap copy elements into the pads: the op is a 0/1 matrix per padded axis and
 * dX = Mᵀ·dY along each (pads are a few elements; the matrices are [out, in] per axis).
 */
const pad: VjpRule = (ctx, [dy]) => {
  const n = ctx.node;
  const xd = ctx.shape(n.input[0]);
  const yd = ctx.shape(n.output[0]);
  const rank = xd.length;
  const mode = attrString(n, 'mode', 'constant');
  if (!['constant', 'edge', 'reflect', 'wrap'].includes(mode)) ctx.fail(`unknown padding mode "${mode}"`);
  if (ctx.opset >= 11 && ctx.needs(2)) ctx.fail('the constant value is on the differentiated path');
  let pads = ctx.opset < 11 ? attrInts(n, 'pads')! : ctx.requireConstant(n.input[1], 'pads');
  if (ctx.opset >= 18 && n.input[3]) {
    const axes = ctx.requireConstant(n.input[3], 'axes').map((a) => normAxis(a, rank));
    const full = new Array<number>(2 * rank).fill(0);
    axes.forEach((a, i) => { full[a] = pads[i]; full[rank + a] = pads[axes.length + i]; });
    pads = full;
  }
  if (pads[0] !== 0 || pads[rank] !== 0) ctx.fail('padding the batch axis');
  const padded = Array.from({ length: rank - 1 }, (_, i) => i + 1).filter((a) => pads[a] !== 0 || pads[rank + a] !== 0);
  if (padded.length === 0) return [dy];
  if (mode === 'constant') {
    // Positive pads are cut off the gradient; negative ones (a crop) become zeros again.
    const kept = (a: number) => xd[a] - Math.max(0, -pads[a]) - Math.max(0, -pads[rank + a]);
    const g = slice(ctx, dy!, padded.map((a) => Math.max(0, pads[a])), padded.map((a) => Math.max(0, pads[a]) + kept(a)), padded);
    return [padZeros(ctx, g, pads.map((p) => Math.max(0, -p)))];
  }
  const maps: AxisMap[] = padded.map((axis) => {
    const inLen = xd[axis];
    const outLen = yd[axis];
    const kept = inLen - Math.max(0, -pads[axis]) - Math.max(0, -pads[rank + axis]);
    const widest = Math.max(pads[axis], pads[rank + axis]);
    // Wider pads are undefined for reflect (onnxruntime refuses them) and wrap (onnxruntime's output then
    // is not periodic), so their gradient cannot be stated.
    if (mode === 'reflect' && widest > kept - 1) ctx.fail(`reflect padding by ${widest} needs more than ${kept} input elements along axis ${axis}`);
    if (mode === 'wrap' && widest > kept) ctx.fail(`wrap padding by ${widest} is wider than the ${kept} input elements along axis ${axis}`);
    const matrix = new Float32Array(outLen * inLen);
    for (let o = 0; o < outLen; o++) {
      const i = padSource(mode, o, inLen, pads[axis], pads[rank + axis]);
      if (i >= 0) matrix[o * inLen + i] = 1;
    }
    return { axis, matrix, rows: outLen, cols: inLen };
  });
  return [applyAxisMapsT(ctx, dy!, yd, maps)];
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
  if (axis === 0 && !ctx.perSeed) ctx.fail('gathering along the batch axis');
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

/**
 * Tile (repeats input, opset 6+): output index t·d + i along an axis is a copy of x[i], so dX = dY viewed
 * as [K, r1, d1, r2, d2, ...] and summed over the repeat axes.
 */
const tile: VjpRule = (ctx, [dy]) => {
  const n = ctx.node;
  if (ctx.needs(1)) ctx.fail('the repeats are on the differentiated path');
  const xd = ctx.shape(n.input[0]);
  const repeats = ctx.requireConstant(n.input[1], 'repeats');
  if (repeats[0] !== 1) ctx.fail('tiling the batch axis');
  const view: number[] = [-1];
  const summed: number[] = [];
  for (let a = 1; a < xd.length; a++) {
    if (repeats[a] !== 1) {
      summed.push(view.length);
      view.push(repeats[a]);
    }
    view.push(xd[a]);
  }
  if (summed.length === 0) return [dy];
  return [reduceSum(ctx, ctx.op('Reshape', [dy!, ctx.constI(view)]), summed, false)];
};

/** dX of an op that is Reshape(X) → Transpose(perm) → Reshape: dY viewed as `view` (the transposed shape without its batch), the inverse permutation, reshaped to X. */
function unpermute(ctx: VjpContext, dy: string, view: number[], perm: number[], inDims: number[]): string {
  const inverse = new Array<number>(perm.length);
  perm.forEach((p, i) => { inverse[p] = i; });
  const t = ctx.op('Transpose', [ctx.op('Reshape', [dy, ctx.constI([-1, ...view])])], { perm: ints(inverse) });
  return reshapeGrad(ctx, t, inDims);
}

/**
 * DepthToSpace: X [N, C·b², H, W] is viewed as [N, b, b, C, H, W] (DCR) or [N, C, b, b, H, W] (CRD, opset 11),
 * transposed to [N, C, H, b, W, b] and flattened; the gradient undoes the permutation.
 */
const depthToSpace: VjpRule = (ctx, [dy]) => {
  const xd = ctx.shape(ctx.node.input[0]);
  if (xd.length !== 4) ctx.fail('only 4-D DepthToSpace is supported');
  const b = attrInt(ctx.node, 'blocksize', 0);
  const [, cb, h, w] = xd;
  const c = cb / (b * b);
  const crd = attrString(ctx.node, 'mode', 'DCR') === 'CRD';
  return [unpermute(ctx, dy!, [c, h, b, w, b], crd ? [0, 1, 4, 2, 5, 3] : [0, 3, 4, 1, 5, 2], xd)];
};

/** SpaceToDepth: X [N, C, H·b, W·b] viewed as [N, C, H, b, W, b], transposed to [N, b, b, C, H, W] and flattened. */
const spaceToDepth: VjpRule = (ctx, [dy]) => {
  const xd = ctx.shape(ctx.node.input[0]);
  if (xd.length !== 4) ctx.fail('only 4-D SpaceToDepth is supported');
  const b = attrInt(ctx.node, 'blocksize', 0);
  const [, c, h, w] = xd;
  return [unpermute(ctx, dy!, [b, b, c, h / b, w / b], [0, 3, 5, 1, 2, 4], xd)];
};

export const shapeRules: Record<string, VjpRule> = {
  Tile: tile,
  DepthToSpace: depthToSpace,
  SpaceToDepth: spaceToDepth,
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

