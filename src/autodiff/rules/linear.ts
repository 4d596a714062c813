// Vector-Jacobian rules of the matrix products: Gemm (Linear layers in 2-D), MatMul (Linear on N-D
// tensors, attention-like products, with broadcasting) and Einsum (each operand's gradient an Einsum).
import { attrFloat, attrInt, attrString, float, int, ints, str } from '../../onnx/index.js';
import { expandTo, reduceSum, scalar, unbroadcast, unsqueeze } from '../emit.js';
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
    if (ctx.perSeed) return unbroadcast(ctx, g, yd, opDims, 2);
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

/** An Einsum equation with its ellipses spelt out as letters and its output made explicit. */
interface EinsumTerms {
  inputs: string[][];
  output: string[];
}

const LETTERS = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'];

/**
 * Parses an Einsum equation for operands of the given ranks. An ellipsis stands for the same leading
 * letters in every term (right-aligned, as numpy broadcasts), taken from the letters the equation does
 * not use; without "->" the output is the ellipsis, then the letters used once, in alphabetical order.
 */
function parseEinsum(ctx: VjpContext, equation: string, ranks: number[]): EinsumTerms {
  const eq = equation.replace(/\s+/g, '');
  const [lhs, rhs] = eq.split('->');
  const terms = lhs.split(',');
  if (terms.length !== ranks.length) ctx.fail(`the equation "${equation}" has ${terms.length} terms for ${ranks.length} operands`);
  const used = new Set(eq.replace(/[^A-Za-z]/g, ''));
  const fresh = LETTERS.filter((c) => !used.has(c));
  const ellipsisRanks = terms.map((t, i) => (t.includes('...') ? ranks[i] - t.replace('...', '').length : 0));
  const e = Math.max(0, ...ellipsisRanks);
  if (e > fresh.length) ctx.fail('the ellipsis covers more axes than there are free letters');
  const ellipsis = fresh.slice(0, e);
  const spell = (t: string, k: number): string[] => {
    if (!t.includes('...')) return [...t];
    const [before, after] = t.split('...');
    return [...before, ...ellipsis.slice(e - k), ...after];
  };
  const inputs = terms.map((t, i) => spell(t, ellipsisRanks[i]));
  inputs.forEach((t, i) => {
    if (t.length !== ranks[i]) ctx.fail(`term "${terms[i]}" of "${equation}" does not fit an operand of rank ${ranks[i]}`);
  });
  let output: string[];
  if (rhs === undefined) {
    const uses = new Map<string, number>();
    for (const t of inputs) for (const c of t) uses.set(c, (uses.get(c) ?? 0) + 1);
    output = [...ellipsis, ...[...uses].filter(([c, k]) => k === 1 && !ellipsis.includes(c)).map(([c]) => c).sort()];
  } else output = spell(rhs, e);
  return { inputs, output };
}

/**
 * Einsum (opset 12): the gradient of operand i is an Einsum of dY with the other operands, whose output
 * is operand i's term. Its batch letter (axis 0) must lead the output too, so that dY's K lands on axis 0;
 * the other operands hold that letter with size 1 and lose it (Reshape). Letters only operand i has
 * (summed there alone) cannot appear in an Einsum output: they are left out and broadcast back (Expand).
 * A letter repeated within one term (a diagonal or trace) and broadcasting between operands are refused.
 */
const einsum: VjpRule = (ctx, [dy]) => {
  const n = ctx.node;
  const equation = attrString(n, 'equation', '');
  const dims = n.input.map((t) => ctx.shape(t));
  const { inputs, output } = parseEinsum(ctx, equation, dims.map((d) => d.length));
  for (const t of [...inputs, output]) {
    if (new Set(t).size !== t.length) ctx.fail(`a letter repeats within a term of "${equation}" (diagonals are not supported)`);
  }
  const size = new Map<string, number>();
  inputs.forEach((t, i) => t.forEach((c, k) => {
    const d = dims[i][k];
    const seen = size.get(c);
    if (seen !== undefined && seen !== d && seen !== 1 && d !== 1) ctx.fail(`letter ${c} has sizes ${seen} and ${d}`);
    if (seen === undefined || seen === 1) size.set(c, d);
  }));
  return inputs.map((term, i) => {
    if (!ctx.needs(i)) return undefined;
    const batch = term[0];
    if (output[0] !== batch && !ctx.perSeed) ctx.fail(`the batch axis (${batch} of operand ${i}) does not lead the output "${output.join('')}"`);
    const operands = [dy!];
    const terms = [output.join('')];
    inputs.forEach((other, j) => {
      if (j === i) return;
      let t = n.input[j];
      const k = other.indexOf(batch);
      if (k >= 0) {
        if (dims[j][k] !== 1) ctx.fail(`operand ${j} broadcasts the batch letter ${batch} to ${dims[j][k]}`);
        t = ctx.op('Reshape', [t, ctx.constI(dims[j].filter((_, a) => a !== k))]);
      }
      other.forEach((c, a) => {
        if (c !== batch && dims[j][a] !== size.get(c)) ctx.fail(`operand ${j} broadcasts letter ${c} (${dims[j][a]} against ${size.get(c)})`);
      });
      operands.push(t);
      terms.push(other.filter((c) => c !== batch).join(''));
    });
    term.forEach((c, a) => {
      if (c !== batch && dims[i][a] !== size.get(c)) ctx.fail(`operand ${i} broadcasts letter ${c} (${dims[i][a]} against ${size.get(c)})`);
    });
    const elsewhere = new Set([...output, ...inputs.filter((_, j) => j !== i).flat()]);
    const kept = term.filter((c) => elsewhere.has(c));
    let g = ctx.op('Einsum', operands, { equation: str(`${terms.join(',')}->${kept.join('')}`) });
    if (kept.length < term.length) {
      g = unsqueeze(ctx, g, term.flatMap((c, a) => (elsewhere.has(c) ? [] : [a])));
      g = expandTo(ctx, g, dims[i]);
    }
    return g;
  });
};

export const linearRules: Record<string, VjpRule> = { Gemm: gemm, MatMul: matMul, Einsum: einsum };
