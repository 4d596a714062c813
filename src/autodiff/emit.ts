// Opset-aware emitters shared by the rules: the ops whose signature changed between opsets
// (axes as attribute or input, split sizes, ...) are written once here.
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
  if (inDims.length !== outDims.length) {
    ctx.fail(`a path operand of rank ${inDims.length} broadcast to rank ${outDims.length} has no batch axis`);
  }
  const axes: number[] = [];
  for (let i = 1; i < outDims.length; i++) if (inDims[i] === 1 && outDims[i] !== 1) axes.push(i);
  return reduceSum(ctx, g, axes, true);
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

/** Zeros shaped like a gradient of a tensor with forward dims `forwardDims`, its K taken from `like`. */
export function zerosGrad(ctx: VjpContext, like: string, forwardDims: readonly number[]): string {
  const k = slice(ctx, ctx.op('Shape', [like]), [0], [1], [0]);
  const shape = ctx.op('Concat', [k, ctx.constI(forwardDims.slice(1))], { axis: int(0) });
  return ctx.op('ConstantOfShape', [shape]);
}

/** Broadcast a gradient to forward dims (Expand keeps the gradient's K in axis 0). */
export function expandTo(ctx: VjpContext, g: string, forwardDims: readonly number[]): string {
  return ctx.op('Expand', [g, ctx.constI([...forwardDims])]);
}

/** A float scalar constant. */
export function scalar(ctx: VjpContext, v: number): string {
  return ctx.constF([v], []);
}
