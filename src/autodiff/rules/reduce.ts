// Vector-Jacobian rules of reductions and normalisations: Reduce* (broadcast back, times ∂y/∂x), Softmax
// (y ⊙ (dy − Σ dy ⊙ y)), Layer-, Instance- and GroupNormalization, LRN.
import { attrFloat, attrInt, attrInts, int } from '../../onnx/index.js';
import { count, expandTo, normAxis, reduceMean, reduceSum, reshapeGrad, scalar, sign, unsqueeze } from '../emit.js';
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
  if (norm.includes(0) && !ctx.perSeed) ctx.fail('reduction over the batch axis');
  return norm;
}

/**
 * A reduction whose gradient is dx = dy ⊙ factor(x, y), with y and dy given back their reduced axes (as
 * size 1, keepdims = 0 undone) so that they broadcast against x. An empty axes list with
 * noop_with_empty_axes reduces nothing, and onnxruntime still applies the element-wise part (x², |x|,
 * log x ...): the same formulas cover it.
 */
function reduceWith(factor: (ctx: VjpContext, x: string, y: string, axes: number[]) => string, reducedFactor = false): VjpRule {
  return (ctx, [dy]) => {
    const x = ctx.node.input[0];
    const xd = ctx.shape(x);
    const axes = reduceAxes(ctx, 18, xd.length);
    const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
    const y = keep ? ctx.node.output[0] : unsqueeze(ctx, ctx.node.output[0], axes);
    const g = keep ? dy! : unsqueeze(ctx, dy!, axes);
    const dx = ctx.op('Mul', [g, factor(ctx, x, y, axes)]);
    // A factor with the reduced shape (it does not depend on x) is broadcast back over the reduced axes.
    return [reducedFactor ? expandTo(ctx, dx, xd) : dx];
  };
}

/**
 * ReduceMax / ReduceMin: the gradient goes to the extremal elements, shared equally between ties (as
 * PyTorch's amax/amin). An element not below the maximum (not above the minimum) is equal to it.
 */
function reduceExtremum(isMax: boolean): VjpRule {
  return reduceWith((ctx, x, y, axes) => {
    const hit = ctx.op('Cast', [ctx.op('Not', [ctx.op(isMax ? 'Less' : 'Greater', [x, y])])], { to: int(1) });
    return ctx.op('Div', [hit, reduceSum(ctx, hit, axes, true)]);
  });
}

/** ReduceL1 y = Σ|x|: dx = dy ⊙ sign(x). */
const reduceL1 = reduceWith((ctx, x) => sign(ctx, x));

/** ReduceL2 y = √Σx²: dx = dy ⊙ x / y, and 0 where y = 0 (all x = 0 there: x / (y + 1) is 0). */
const reduceL2 = reduceWith((ctx, x, y) => {
  const zero = ctx.op('Cast', [ctx.op('Not', [ctx.op('Greater', [y, scalar(ctx, 0)])])], { to: int(1) });
  return ctx.op('Div', [x, ctx.op('Add', [y, zero])]);
});

/** ReduceSumSquare y = Σx²: dx = 2·dy ⊙ x. */
const reduceSumSquare = reduceWith((ctx, x) => ctx.op('Mul', [x, scalar(ctx, 2)]));

/** ReduceLogSumExp y = log Σeˣ: dx = dy ⊙ e^(x − y) (the softmax over the reduced axes). */
const reduceLogSumExp = reduceWith((ctx, x, y) => ctx.op('Exp', [ctx.op('Sub', [x, y])]));

/** ReduceLogSum y = log Σx: dx = dy / Σx = dy ⊙ e^(−y), the same for every reduced element. */
const reduceLogSum = reduceWith((ctx, _x, y) => ctx.op('Exp', [ctx.op('Neg', [y])]), true);

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
  if (axis === 0 && !ctx.perSeed) ctx.fail(`${ctx.node.op_type} over the batch axis`);
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
 * The gradient of a normalisation over `axes` (x̂ = (x − μ)/σ, σ = √(var + ε)) given ĝ = dy ⊙ scale:
 * dx = (ĝ − mean(ĝ) − x̂ ⊙ mean(ĝ ⊙ x̂)) / σ.
 */
function normalisationGrad(ctx: VjpContext, x: string, ghat: string, axes: number[], eps: number): string {
  const mu = reduceMean(ctx, x, axes, true);
  const xc = ctx.op('Sub', [x, mu]);
  const variance = reduceMean(ctx, ctx.op('Mul', [xc, xc]), axes, true);
  const invStd = ctx.op('Reciprocal', [ctx.op('Sqrt', [ctx.op('Add', [variance, scalar(ctx, eps)])])]);
  const xhat = ctx.op('Mul', [xc, invStd]);
  const m1 = reduceMean(ctx, ghat, axes, true);
  const m2 = reduceMean(ctx, ctx.op('Mul', [ghat, xhat]), axes, true);
  const inner = ctx.op('Sub', [ctx.op('Sub', [ghat, m1]), ctx.op('Mul', [xhat, m2])]);
  return ctx.op('Mul', [inner, invStd]);
}

/** LayerNormalization over axes [axis, rank), scale broadcast over the normalised axes. */
const layerNorm: VjpRule = (ctx, [dy]) => {
  if (ctx.needs(1) || ctx.needs(2)) ctx.fail('the scale or bias is on the differentiated path');
  const [x, scale] = ctx.node.input;
  const rank = ctx.shape(x).length;
  const axis = normAxis(attrInt(ctx.node, 'axis', -1), rank);
  if (axis === 0 && !ctx.perSeed) ctx.fail('normalisation over the batch axis');
  const axes = Array.from({ length: rank - axis }, (_, i) => axis + i);
  return [normalisationGrad(ctx, x, ctx.op('Mul', [dy!, scale]), axes, attrFloat(ctx.node, 'epsilon', 1e-5))];
};

/** InstanceNormalization: per channel over the spatial axes, scale [C] reshaped to [C, 1, ...]. */
const instanceNorm: VjpRule = (ctx, [dy]) => {
  if (ctx.needs(1) || ctx.needs(2)) ctx.fail('the scale or bias is on the differentiated path');
  const [x, scale] = ctx.node.input;
  const xd = ctx.shape(x);
  if (xd.length < 3) ctx.fail('instance normalisation needs spatial axes');
  const axes = Array.from({ length: xd.length - 2 }, (_, i) => 2 + i);
  const s = ctx.op('Reshape', [scale, ctx.constI([xd[1], ...axes.map(() => 1)])]);
  return [normalisationGrad(ctx, x, ctx.op('Mul', [dy!, s]), axes, attrFloat(ctx.node, 'epsilon', 1e-5))];
};

/**
 * GroupNormalization (opset 18: scale and bias per group; 21: per channel): x viewed as [1, G, C/G·spatial]
 * and normalised over the last axis, with ĝ = dy ⊙ scale (per channel) viewed the same way.
 */
const groupNorm: VjpRule = (ctx, [dy]) => {
  if (ctx.needs(1) || ctx.needs(2)) ctx.fail('the scale or bias is on the differentiated path');
  const [x, scale] = ctx.node.input;
  const xd = ctx.shape(x);
  if (xd.length < 3) ctx.fail('group normalisation needs spatial axes');
  const c = xd[1];
  const groups = attrInt(ctx.node, 'num_groups', 1);
  const ones = xd.slice(2).map(() => 1);
  const perChannel = ctx.opset >= 21
    ? scale
    : expandTo(ctx, ctx.op('Reshape', [scale, ctx.constI([groups, 1])]), [groups, c / groups]);
  const ghat = ctx.op('Mul', [dy!, ctx.op('Reshape', [perChannel, ctx.constI([c, ...ones])])]);
  const view = [-1, groups, (c / groups) * count(xd.slice(2))];
  const xg = ctx.op('Reshape', [x, ctx.constI(view)]);
  const gg = ctx.op('Reshape', [ghat, ctx.constI(view)]);
  return [reshapeGrad(ctx, normalisationGrad(ctx, xg, gg, [2], attrFloat(ctx.node, 'epsilon', 1e-5)), xd)];
};

/**
 * LRN across channels: y = x ⊙ s^(−β), s = bias + α/size · Σ_window x², the window of channel c being
 * [c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉]. With the window sum as a 1×1 Conv by a band matrix B,
 * dx = dy ⊙ s^(−β) − (2αβ/size) · x ⊙ Bᵀ(dy ⊙ x ⊙ s^(−β−1)).
 */
const lrn: VjpRule = (ctx, [dy]) => {
  const n = ctx.node;
  const x = n.input[0];
  const xd = ctx.shape(x);
  if (xd.length < 3) ctx.fail('LRN needs spatial axes');
  const c = xd[1];
  const size = attrInt(n, 'size', 1);
  const alpha = attrFloat(n, 'alpha', 1e-4);
  const beta = attrFloat(n, 'beta', 0.75);
  const bias = attrFloat(n, 'bias', 1);
  const before = Math.floor((size - 1) / 2);
  const after = Math.ceil((size - 1) / 2);
  const band = new Float32Array(c * c);
  const bandT = new Float32Array(c * c);
  for (let o = 0; o < c; o++) {
    for (let i = Math.max(0, o - before); i <= Math.min(c - 1, o + after); i++) {
      band[o * c + i] = 1;
      bandT[i * c + o] = 1;
    }
  }
  const windowSum = (t: string, m: Float32Array) => ctx.op('Conv', [t, ctx.constF(m, [c, c, ...xd.slice(2).map(() => 1)])]);
  const s = ctx.op('Add', [ctx.op('Mul', [windowSum(ctx.op('Mul', [x, x]), band), scalar(ctx, alpha / size)]), scalar(ctx, bias)]);
  const sPow = ctx.op('Pow', [s, scalar(ctx, -beta)]);
  const inner = ctx.op('Mul', [ctx.op('Mul', [dy!, x]), ctx.op('Div', [sPow, s])]);
  const cross = ctx.op('Mul', [ctx.op('Mul', [x, windowSum(inner, bandT)]), scalar(ctx, (2 * alpha * beta) / size)]);
  return [ctx.op('Sub', [ctx.op('Mul', [dy!, sPow]), cross])];
};

export const reduceRules: Record<string, VjpRule> = {
  ReduceSum: reduceBack(13, false),
  ReduceMean: reduceBack(18, true),
  Softmax: softmax,
  LogSoftmax: logSoftmax,
  LayerNormalization: layerNorm,
  InstanceNormalization: instanceNorm,
  LRN: lrn,
  GroupNormalization: groupNorm,
  ReduceMax: reduceExtremum(true),
  ReduceMin: reduceExtremum(false),
  ReduceL1: reduceL1,
  ReduceL2: reduceL2,
  ReduceSumSquare: reduceSumSquare,
  ReduceLogSumExp: reduceLogSumExp,
  ReduceLogSum: reduceLogSum,
};
