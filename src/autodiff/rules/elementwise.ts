// Vector-Jacobian rules of element-wise ops: activations (dx = dy ⊙ f'(x)) and broadcasting arithmetic
// (the gradient of a broadcast operand is summed over the axes it was broadcast along).
import { attrFloat, attrInt } from '../../onnx/model.js';
import { reduceToShape, scalar } from '../emit.js';
import type { VjpContext, VjpRule } from '../types.js';

const x0 = (ctx: VjpContext) => ctx.node.input[0];
const y0 = (ctx: VjpContext) => ctx.node.output[0];

/** dx = dy ⊙ factor, where `factor` is built from forward tensors. */
function scaled(factor: (ctx: VjpContext) => string): VjpRule {
  return (ctx, [dy]) => [ctx.op('Mul', [dy!, factor(ctx)])];
}

/** dx = dy where `mask` holds, else 0. */
function masked(mask: (ctx: VjpContext) => string): VjpRule {
  return (ctx, [dy]) => [ctx.op('Where', [mask(ctx), dy!, scalar(ctx, 0)])];
}

const passThrough: VjpRule = (_ctx, [dy]) => [dy];

/** Relu: dx = dy where x > 0 (PyTorch's choice at x = 0: zero). */
const relu = masked((ctx) => ctx.op('Greater', [x0(ctx), scalar(ctx, 0)]));

/** LeakyRelu: dx = dy ⊙ (x > 0 ? 1 : alpha). */
const leakyRelu = scaled((ctx) => ctx.op('Where', [
  ctx.op('Greater', [x0(ctx), scalar(ctx, 0)]), scalar(ctx, 1), scalar(ctx, attrFloat(ctx.node, 'alpha', 0.01)),
]));

/** Clip: dx = dy where min ≤ x ≤ max (bounds are attributes before opset 11, optional inputs after). */
const clip: VjpRule = (ctx, [dy]) => {
  const x = x0(ctx);
  let lo: string | undefined;
  let hi: string | undefined;
  if (ctx.opset < 11) {
    lo = scalar(ctx, attrFloat(ctx.node, 'min', -3.4028234663852886e38));
    hi = scalar(ctx, attrFloat(ctx.node, 'max', 3.4028234663852886e38));
  } else {
    lo = ctx.node.input[1] || undefined;
    hi = ctx.node.input[2] || undefined;
  }
  let mask: string | undefined;
  if (lo) mask = ctx.op('Not', [ctx.op('Less', [x, lo])]);
  if (hi) {
    const m = ctx.op('Not', [ctx.op('Greater', [x, hi])]);
    mask = mask ? ctx.op('And', [mask, m]) : m;
  }
  return [mask ? ctx.op('Where', [mask, dy!, scalar(ctx, 0)]) : dy];
};

/** Sigmoid: dx = dy ⊙ y(1 − y). */
const sigmoid = scaled((ctx) => {
  const y = y0(ctx);
  return ctx.op('Mul', [y, ctx.op('Sub', [scalar(ctx, 1), y])]);
});

/** HardSigmoid y = max(0, min(1, αx + β)): dx = α·dy where 0 < αx + β < 1. */
const hardSigmoid: VjpRule = (ctx, [dy]) => {
  const alpha = attrFloat(ctx.node, 'alpha', 0.2);
  const beta = attrFloat(ctx.node, 'beta', 0.5);
  const z = ctx.op('Add', [ctx.op('Mul', [x0(ctx), scalar(ctx, alpha)]), scalar(ctx, beta)]);
  const inside = ctx.op('And', [ctx.op('Greater', [z, scalar(ctx, 0)]), ctx.op('Less', [z, scalar(ctx, 1)])]);
  return [ctx.op('Where', [inside, ctx.op('Mul', [dy!, scalar(ctx, alpha)]), scalar(ctx, 0)])];
};

/** HardSwish y = x·relu6(x + 3)/6: dx = dy ⊙ (x < −3 ? 0 : x > 3 ? 1 : x/3 + 1/2), as PyTorch. */
const hardSwish = scaled((ctx) => {
  const x = x0(ctx);
  const mid = ctx.op('Add', [ctx.op('Mul', [x, scalar(ctx, 1 / 3)]), scalar(ctx, 0.5)]);
  const upper = ctx.op('Where', [ctx.op('Greater', [x, scalar(ctx, 3)]), scalar(ctx, 1), mid]);
  return ctx.op('Where', [ctx.op('Less', [x, scalar(ctx, -3)]), scalar(ctx, 0), upper]);
});

/** Tanh: dx = dy ⊙ (1 − y²). */
const tanh = scaled((ctx) => {
  const y = y0(ctx);
  return ctx.op('Sub', [scalar(ctx, 1), ctx.op('Mul', [y, y])]);
});

/** Erf: dx = dy ⊙ 2/√π·exp(−x²). */
const erf = scaled((ctx) => {
  const x = x0(ctx);
  const e = ctx.op('Exp', [ctx.op('Neg', [ctx.op('Mul', [x, x])])]);
  return ctx.op('Mul', [e, scalar(ctx, 2 / Math.sqrt(Math.PI))]);
});

/** Exp: dx = dy ⊙ y. */
const exp = scaled((ctx) => y0(ctx));

/** Sqrt: dx = dy ⊙ 0.5 / y. */
const sqrt = scaled((ctx) => ctx.op('Div', [scalar(ctx, 0.5), y0(ctx)]));

/** Neg: dx = −dy. */
const neg: VjpRule = (ctx, [dy]) => [ctx.op('Neg', [dy!])];

/** Pow with a constant exponent p: dx = dy ⊙ p·x^(p−1). */
const pow: VjpRule = (ctx, [dy]) => {
  if (ctx.needs(1)) ctx.fail('the exponent is on the differentiated path');
  const p = ctx.requireConstant(ctx.node.input[1], 'exponent');
  if (p.length !== 1) ctx.fail('only a scalar exponent is supported');
  const f = ctx.op('Mul', [ctx.op('Pow', [x0(ctx), scalar(ctx, p[0] - 1)]), scalar(ctx, p[0])]);
  return [ctx.op('Mul', [dy!, f])];
};

/** Cast between float tensors is the identity for gradients. */
const cast: VjpRule = (ctx, [dy]) => {
  if (attrInt(ctx.node, 'to', 1) !== 1) ctx.fail('only a cast to float32 can be differentiated');
  return [dy];
};

/** Add: dA = Σ_broadcast dy, dB likewise. */
const add: VjpRule = (ctx, [dy]) => {
  const yd = ctx.shape(y0(ctx));
  return ctx.node.input.map((t, i) => (ctx.needs(i) ? reduceToShape(ctx, dy!, yd, ctx.shape(t)) : undefined));
};

/** Sub: dA = Σ dy, dB = −Σ dy. */
const sub: VjpRule = (ctx, [dy]) => {
  const yd = ctx.shape(y0(ctx));
  const [a, b] = ctx.node.input;
  return [
    ctx.needs(0) ? reduceToShape(ctx, dy!, yd, ctx.shape(a)) : undefined,
    ctx.needs(1) ? reduceToShape(ctx, ctx.op('Neg', [dy!]), yd, ctx.shape(b)) : undefined,
  ];
};

/** Mul: dA = Σ dy ⊙ B, dB = Σ dy ⊙ A. */
const mul: VjpRule = (ctx, [dy]) => {
  const yd = ctx.shape(y0(ctx));
  const [a, b] = ctx.node.input;
  return [
    ctx.needs(0) ? reduceToShape(ctx, ctx.op('Mul', [dy!, b]), yd, ctx.shape(a)) : undefined,
    ctx.needs(1) ? reduceToShape(ctx, ctx.op('Mul', [dy!, a]), yd, ctx.shape(b)) : undefined,
  ];
};

/** Div: dA = Σ dy / B, dB = −Σ dy ⊙ y / B. */
const div: VjpRule = (ctx, [dy]) => {
  const y = y0(ctx);
  const yd = ctx.shape(y);
  const [a, b] = ctx.node.input;
  return [
    ctx.needs(0) ? reduceToShape(ctx, ctx.op('Div', [dy!, b]), yd, ctx.shape(a)) : undefined,
    ctx.needs(1) ? reduceToShape(ctx, ctx.op('Neg', [ctx.op('Div', [ctx.op('Mul', [dy!, y]), b])]), yd, ctx.shape(b)) : undefined,
  ];
};

export const elementwiseRules: Record<string, VjpRule> = {
  Relu: relu,
  LeakyRelu: leakyRelu,
  Clip: clip,
  Sigmoid: sigmoid,
  HardSigmoid: hardSigmoid,
  HardSwish: hardSwish,
  Tanh: tanh,
  Erf: erf,
  Exp: exp,
  Sqrt: sqrt,
  Neg: neg,
  Pow: pow,
  Cast: cast,
  Identity: passThrough,
  Dropout: passThrough,
  Add: add,
  Sub: sub,
  Mul: mul,
  Div: div,
};
