// Emitters shared by the rules: ops whose signature or existence changed between opsets (axes as attribute
// or input, Where/Expand/ConstantOfShape before 9/8/9) written once, and per-axis linear maps (Resize, Pad).
import { int, ints } from '../onnx/index.js';
import type { VjpContext } from './context.js';

/** ReduceSum over `axes` (axes became an input in opset 13). */
export function reduceSum(ctx: VjpContext, x: string, axes: readonly number[], keepdims: boolean): string {
  if (axes.length === 0) return x;
  if (ctx.opset >= 13) return ctx.op('ReduceSum', [x, ctx.constI(axes)], { keepdims: int(keepdims ? 1 : 0) });
  return ctx.op('ReduceSum', [x], { axes: ints(axes), keepdims: int(keepdims ? 1 : 0) });
}

/** Unsqueeze at `axes` (axes became an input in opset 13). */
export function unsqueeze(ctx: VjpContext, x: string, axes: readonly number[]): string {
  if (axes.length === 0) return x;
  if (ctx.opset >= 13) return ctx.op('Unsqueeze', [x, ctx.constI(axes)]);
  return ctx.op('Unsqueeze', [x], { axes: ints(axes) });
}

/** Reshape a gradient to `forwardDims` with its batch axis kept dynamic (K): target [-1, ...dims[1:]]. */
export function reshapeGrad(ctx: VjpContext, g: string, forwardDims: readonly number[]): string {
  if (forwardDims.length === 0) ctx.fail('a scalar tensor on the path has no batch axis');
  return ctx.op('Reshape', [g, ctx.constI([-1, ...forwardDims.slice(1)])]);
}

/** Slice along axes with constant bounds (attributes before opset 10, inputs since). */
export function slice(ctx: VjpContext, x: string, starts: number[], ends: number[], axes: number[], steps?: number[]): string {
  if (ctx.opset < 10) {
    if (steps && steps.some((s) => s !== 1)) ctx.fail(`strided slices need opset 10 (the model has opset ${ctx.opset})`);
    return ctx.op('Slice', [x], { starts: ints(starts), ends: ints(ends), axes: ints(axes) });
  }
  const inputs = [x, ctx.constI(starts), ctx.constI(ends), ctx.constI(axes)];
  if (steps) inputs.push(ctx.constI(steps));
  return ctx.op('Slice', inputs);
}

/** Pad with zeros (pads an attribute before opset 11, an input since). */
export function padZeros(ctx: VjpContext, x: string, pads: readonly number[]): string {
  if (pads.every((p) => p === 0)) return x;
  if (ctx.opset < 11) return ctx.op('Pad', [x], { pads: ints(pads) });
  return ctx.op('Pad', [x, ctx.constI(pads)], {});
}

/**
 * Sum a gradient of the broadcast result (forward dims `outDims`) down to an operand's forward dims
 * `inDims` (numpy broadcasting). Axis 0 is the batch axis: the gradient keeps its K there.
 */
export function reduceToShape(ctx: VjpContext, g: string, outDims: readonly number[], inDims: readonly number[]): string {
  if (ctx.perSeed) return unbroadcast(ctx, g, outDims, inDims, 0);
  if (inDims.length !== outDims.length) {
    ctx.fail(`a path operand of rank ${inDims.length} broadcast to rank ${outDims.length} has no batch axis`);
  }
  const axes: number[] = [];
  for (let i = 1; i < outDims.length; i++) if (inDims[i] === 1 && outDims[i] !== 1) axes.push(i);
  return reduceSum(ctx, g, axes, true);
}

/**
 * One seed per run: sum a gradient of dims `outDims` down to `inDims` over every broadcast axis, axis 0
 * and the leading axes the operand lacked included, leaving the last `keepLast` axes alone (MatMul's
 * matrix axes); reshaped to the operand's rank.
 */
export function unbroadcast(ctx: VjpContext, g: string, outDims: readonly number[], inDims: readonly number[], keepLast: number): string {
  const lead = outDims.length - inDims.length;
  if (lead < 0) ctx.fail(`an operand of rank ${inDims.length} is larger than the result's rank ${outDims.length}`);
  const axes: number[] = [];
  for (let i = 0; i < outDims.length - keepLast; i++) {
    if (i < lead || (inDims[i - lead] === 1 && outDims[i] !== 1)) axes.push(i);
  }
  const summed = reduceSum(ctx, g, axes, true);
  return lead > 0 ? ctx.op('Reshape', [summed, ctx.constI([...inDims])]) : summed;
}

/** Normalises a possibly negative axis. */
export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** ReduceMean over `axes` (axes became an input in opset 18). */
export function reduceMean(ctx: VjpContext, x: string, axes: readonly number[], keepdims: boolean): string {
  if (ctx.opset >= 18) return ctx.op('ReduceMean', [x, ctx.constI(axes)], { keepdims: int(keepdims ? 1 : 0) });
  return ctx.op('ReduceMean', [x], { axes: ints(axes), keepdims: int(keepdims ? 1 : 0) });
}

/**
 * Zeros shaped like a gradient of a tensor with forward dims `forwardDims`, its K taken from `like`.
 * ConstantOfShape exists since opset 9; before, a [K, 1, ...] column of zeros (0 · Σ like) is broadcast
 * against a constant of zeros.
 */
export function zerosGrad(ctx: VjpContext, like: string, forwardDims: readonly number[]): string {
  if (ctx.perSeed) {
    if (ctx.opset >= 9) return ctx.op('ConstantOfShape', [ctx.constI([...forwardDims])]);
    return ctx.constF(new Float32Array(count(forwardDims)), [...forwardDims]);
  }
  if (ctx.opset < 9) {
    const column = ctx.op('Mul', [reduceSum(ctx, ctx.op('Flatten', [like], { axis: int(1) }), [1], true), scalar(ctx, 0)]);
    const k = ctx.op('Reshape', [column, ctx.constI([-1, ...forwardDims.slice(1).map(() => 1)])]);
    return ctx.op('Add', [k, ctx.constF(new Float32Array(count(forwardDims)), [1, ...forwardDims.slice(1)])]);
  }
  const k = slice(ctx, ctx.op('Shape', [like]), [0], [1], [0]);
  const shape = ctx.op('Concat', [k, ctx.constI(forwardDims.slice(1))], { axis: int(0) });
  return ctx.op('ConstantOfShape', [shape]);
}

/**
 * Broadcast a gradient to forward dims (keeps the gradient's K in axis 0). Expand exists since opset 8;
 * before, adding a constant of zeros with the forward dims broadcasts the same way.
 */
export function expandTo(ctx: VjpContext, g: string, forwardDims: readonly number[]): string {
  if (ctx.opset < 8) return ctx.op('Add', [g, ctx.constF(new Float32Array(count(forwardDims)), [1, ...forwardDims.slice(1)])]);
  return ctx.op('Expand', [g, ctx.constI([...forwardDims])]);
}

/**
 * Where(cond, a, b), numbers standing for float scalars. Where exists since opset 9; before, the same
 * selection in arithmetic: a·cond + b·¬cond (the operands are finite gradients and factors).
 */
export function select(ctx: VjpContext, cond: string, a: string | number, b: string | number): string {
  const t = (v: string | number) => (typeof v === 'number' ? scalar(ctx, v) : v);
  if (ctx.opset >= 9) return ctx.op('Where', [cond, t(a), t(b)]);
  const mask = (c: string) => ctx.op('Cast', [c], { to: int(1) });
  if (b === 0) return ctx.op('Mul', [t(a), mask(cond)]);
  if (a === 0) return ctx.op('Mul', [t(b), mask(ctx.op('Not', [cond]))]);
  if (typeof a === 'number' && typeof b === 'number') return ctx.op('Add', [scalar(ctx, b), ctx.op('Mul', [mask(cond), scalar(ctx, a - b)])]);
  return ctx.op('Add', [ctx.op('Mul', [t(a), mask(cond)]), ctx.op('Mul', [t(b), mask(ctx.op('Not', [cond]))])]);
}

/** sign(x) as float (0 at 0), from two comparisons: the Sign op only exists since opset 9. */
export function sign(ctx: VjpContext, x: string): string {
  const positive = ctx.op('Cast', [ctx.op('Greater', [x, scalar(ctx, 0)])], { to: int(1) });
  const negative = ctx.op('Cast', [ctx.op('Less', [x, scalar(ctx, 0)])], { to: int(1) });
  return ctx.op('Sub', [positive, negative]);
}

/** Number of elements of dims. */
export function count(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** A linear map along one axis: forward y = M·x along `axis`, M row-major [rows (output length), cols (input length)]. */
export interface AxisMap {
  axis: number;
  matrix: Float32Array;
  rows: number;
  cols: number;
}

/**
 * The gradient of a separable linear op (Resize, Pad's reflect/edge/wrap modes): along each mapped axis
 * dX = Mᵀ·dY, applied one axis at a time with MatMul against constant matrices. `dims` are the forward
 * dims of the op's output; each step turns the axis' length from `rows` into `cols`. The last axis is
 * a right product, the one before a left product, and any other axis is folded to [−1, rows, rest] first.
 */
export function applyAxisMapsT(ctx: VjpContext, g: string, dims: readonly number[], maps: readonly AxisMap[]): string {
  const cur = [...dims];
  const rank = cur.length;
  for (const m of maps) {
    if (m.axis === 0) ctx.fail('the batch axis is resampled');
    const mat = ctx.constF(m.matrix, [m.rows, m.cols]);
    if (m.axis === rank - 1) g = ctx.op('MatMul', [g, mat]);
    else {
      const t = ctx.constF(transpose2d(m.matrix, m.rows, m.cols), [m.cols, m.rows]);
      if (m.axis === rank - 2) g = ctx.op('MatMul', [t, g]);
      else {
        const folded = ctx.op('Reshape', [g, ctx.constI([-1, m.rows, count(cur.slice(m.axis + 1))])]);
        const product = ctx.op('MatMul', [t, folded]);
        const unfolded = [...cur.slice(1)];
        unfolded[m.axis - 1] = m.cols;
        g = ctx.op('Reshape', [product, ctx.constI([-1, ...unfolded])]);
      }
    }
    cur[m.axis] = m.cols;
  }
  return g;
}

function transpose2d(m: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = m[r * cols + c];
  return t;
}

/** A float scalar constant. */
export function scalar(ctx: VjpContext, v: number): string {
  return ctx.constF([v], []);
}
