// Vector-Jacobian rules of the matrix products: Gemm (Linear layers in 2-D) and MatMul (Linear on N-D
// tensors, attention-like products), with broadcasting of batched MatMul.
import { attrFloat, attrInt, float, int, ints } from '../../onnx/index.js';
import { reduceSum, scalar } from '../emit.js';
import type { VjpContext, VjpRule } from '../context.js';

/** Gemm Y = α·A'·B' + β·C (A' = transA ? Aᵀ : A): dA = α·dY·B'ᵀ; A must be [1, F] (batch in axis 0). */
const gemm: VjpRule = (ctx, [dy]) => {
  if (ctx.needs(1) || ctx.needs(2)) ctx.fail('the weights or bias are on the differentiated path');
  if (attrInt(ctx.node, 'transA', 0) !== 0) ctx.fail('transA = 1 puts the batch axis last');
  const b = ctx.node.input[1];
  const alpha = attrFloat(ctx.node, 'alpha', 1);
  const transB = attrInt(ctx.node, 'transB', 0);
  // dA = dY · B'ᵀ: with B' = Bᵀ (transB = 1) that is dY · B, otherwise dY · Bᵀ.
  if (ctx.opset >= 11) {
    return [ctx.op('Gemm', [dy!, b], { transB: int(transB ? 0 : 1), alpha: alpha !== 1 ? float(alpha) : undefined })];
  }
  // Before opset 11 Gemm requires C: use MatMul instead.
  const dA = ctx.op('MatMul', [dy!, transB ? b : ctx.op('Transpose', [b], { perm: ints([1, 0]) })]);
  return [alpha !== 1 ? ctx.op('Mul', [dA, scalar(ctx, alpha)]) : dA];
};

function swapLastTwo(ctx: VjpContext, t: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return ctx.op('Transpose', [t], { perm: ints(perm) });
}

/**
 * MatMul Y = A·B (numpy semantics): dA = dY·Bᵀ, dB = Aᵀ·dY, each summed over the axes it was broadcast
 * along. A path operand keeps its batch axis 0 (K in the gradient).
 */
const matMul: VjpRule = (ctx, [dy]) => {
  const [a, b] = ctx.node.input;
  const ad = ctx.shape(a);
  const bd = ctx.shape(b);
  const yd = ctx.shape(ctx.node.output[0]);
  if (ad.length < 2 || bd.length < 2) ctx.fail('1-D operands of MatMul are not supported');
  const reduceBroadcast = (g: string, opDims: number[]): string => {
    // g has the rank of Y; sum the leading axes the operand did not have, then the broadcast ones.
    const lead = yd.length - opDims.length;
    if (lead > 0) ctx.fail('a path operand of MatMul has a lower rank than the product');
    const axes: number[] = [];
    for (let i = 1; i < yd.length - 2; i++) if (opDims[i] === 1 && yd[i] !== 1) axes.push(i);
    return reduceSum(ctx, g, axes, true);
  };
  return [
    ctx.needs(0) ? reduceBroadcast(ctx.op('MatMul', [dy!, swapLastTwo(ctx, b, bd.length)]), ad) : undefined,
    ctx.needs(1) ? reduceBroadcast(ctx.op('MatMul', [swapLastTwo(ctx, a, ad.length), dy!]), bd) : undefined,
  ];
};

export const linearRules: Record<string, VjpRule> = { Gemm: gemm, MatMul: matMul };
