// Vector-Jacobian rules of reductions and normalisations: ReduceSum/ReduceMean (broadcast back),
// Softmax (y ⊙ (dy − Σ dy ⊙ y)) and LayerNormalization.
import { attrFloat, attrInt, attrInts } from '../../onnx/index.js';
import { expandTo, normAxis, reduceMean, reduceSum, scalar, unsqueeze } from '../emit.js';
import type { VjpContext, VjpRule } from '../context.js';

/** Axes a Reduce* node reduces over (attribute before opset 13/18, input after), normalised. */
function reduceAxes(ctx: VjpContext, inputSince: number, rank: number): number[] {
  const n = ctx.node;
  let axes: number[] | undefined;
  if (ctx.opset >= inputSince) axes = n.input[1] ? ctx.requireConstant(n.input[1], 'axes') : undefined;
  else axes = attrInts(n, 'axes');
  if (!axes || axes.length === 0) {
    if (ctx.opset >= inputSince && attrInt(n, 'noop_with_empty_axes', 0) === 1) return [];
    axes = Array.from({ length: rank }, (_, i) => i);
  }
  const norm = axes.map((a) => normAxis(a, rank)).sort((a, b) => a - b);
  if (norm.includes(0)) ctx.fail('reduction over the batch axis');
  return norm;
}

function reduceBack(inputSince: number, mean: boolean): VjpRule {
  return (ctx, [dy]) => {
    const xd = ctx.shape(ctx.node.input[0]);
    const axes = reduceAxes(ctx, inputSince, xd.length);
    if (axes.length === 0) return [dy];
    let g = attrInt(ctx.node, 'keepdims', 1) ? dy! : unsqueeze(ctx, dy!, axes);
    if (mean) g = ctx.op('Mul', [g, scalar(ctx, 1 / axes.reduce((a, ax) => a * xd[ax], 1))]);
    return [expandTo(ctx, g, xd)];
  };
}

/**
 * The axes a Softmax/LogSoftmax normalises over: before opset 13 all axes from `axis` on (the input
 * coerced to 2-D; default axis 1); from 13 the one axis (default −1).
 */
function softmaxAxes(ctx: VjpContext, rank: number): number[] {
  const axis = normAxis(attrInt(ctx.node, 'axis', ctx.opset >= 13 ? -1 : 1), rank);
  if (axis === 0) ctx.fail(`${ctx.node.op_type} over the batch axis`);
  return ctx.opset >= 13 ? [axis] : Array.from({ length: rank - axis }, (_, i) => axis + i);
}

/** Softmax: dx = y ⊙ (dy − Σ_axes dy ⊙ y). */
const softmax: VjpRule = (ctx, [dy]) => {
  const y = ctx.node.output[0];
  const axes = softmaxAxes(ctx, ctx.shape(y).length);
  const s = reduceSum(ctx, ctx.op('Mul', [dy!, y]), axes, true);
  return [ctx.op('Mul', [y, ctx.op('Sub', [dy!, s])])];
};

/** LogSoftmax: dx = dy − eʸ ⊙ Σ_axes dy (eʸ is the softmax). */
const logSoftmax: VjpRule = (ctx, [dy]) => {
  const y = ctx.node.output[0];
  const axes = softmaxAxes(ctx, ctx.shape(y).length);
  return [ctx.op('Sub', [dy!, ctx.op('Mul', [ctx.op('Exp', [y]), reduceSum(ctx, dy!, axes, true)])])];
};

/**
 * LayerNormalization over axes [axis, rank): with x̂ = (x − μ)/σ and ĝ = dy ⊙ scale,
 * dx = (ĝ − mean(ĝ) − x̂ ⊙ mean(ĝ ⊙ x̂)) / σ.
 */
const layerNorm: VjpRule = (ctx, [dy]) => {
  if (ctx.needs(1) || ctx.needs(2)) ctx.fail('the scale or bias is on the differentiated path');
  const [x, scale] = ctx.node.input;
  const rank = ctx.shape(x).length;
  const axis = normAxis(attrInt(ctx.node, 'axis', -1), rank);
  if (axis === 0) ctx.fail('normalisation over the batch axis');
  const axes = Array.from({ length: rank - axis }, (_, i) => axis + i);
  const eps = attrFloat(ctx.node, 'epsilon', 1e-5);
  const mu = reduceMean(ctx, x, axes, true);
  const xc = ctx.op('Sub', [x, mu]);
  const variance = reduceMean(ctx, ctx.op('Mul', [xc, xc]), axes, true);
  const invStd = ctx.op('Reciprocal', [ctx.op('Sqrt', [ctx.op('Add', [variance, scalar(ctx, eps)])])]);
  const xhat = ctx.op('Mul', [xc, invStd]);
  const ghat = ctx.op('Mul', [dy!, scale]);
  const m1 = reduceMean(ctx, ghat, axes, true);
  const m2 = reduceMean(ctx, ctx.op('Mul', [ghat, xhat]), axes, true);
  const inner = ctx.op('Sub', [ctx.op('Sub', [ghat, m1]), ctx.op('Mul', [xhat, m2])]);
  return [ctx.op('Mul', [inner, invStd])];
};

export const reduceRules: Record<string, VjpRule> = {
  ReduceSum: reduceBack(13, false),
  ReduceMean: reduceBack(18, true),
  Softmax: softmax,
  LogSoftmax: logSoftmax,
  LayerNormalization: layerNorm,
};
