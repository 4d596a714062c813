// Vector-Jacobian rules of element-wise ops: activations (dx = dy ⊙ f'(x)) and broadcasting arithmetic
// (the gradient of a broadcast operand is summed over the axes it was broadcast along).
import { attrFloat, attrInt, attrString } from '../../onnx/index.js';
import { reduceToShape, scalar, select, sign } from '../emit.js';
import type { VjpContext, VjpRule } from '../context.js';

const x0 = (ctx: VjpContext) => ctx.node.input[0];
const y0 = (ctx: VjpContext) => ctx.node.output[0];

/** dx = dy ⊙ factor, where `factor` is built from forward tensors. */
function scaled(factor: (ctx: VjpContext) => string): VjpRule {
  return (ctx, [dy]) => [ctx.op('Mul', [dy!, factor(ctx)])];
}

/** dx = dy where `mask` holds, else 0. */
function masked(mask: (ctx: VjpContext) => string): VjpRule {
  return (ctx, [dy]) => [select(ctx, mask(ctx), dy!, 0)];
}

const passThrough: VjpRule = (_ctx, [dy]) => [dy];

/**
 * Dropout: the identity at inference (opsets 7–11 have no training flag). A constant training_mode = true
 * (opset 12+) makes the output random, so no gradient can be stated, unless the ratio is a constant 0
 * (torchvision's Swin exports its attention dropout so): then it is the identity too.
 */
const dropout: VjpRule = (ctx, [dy]) => {
  const training = ctx.opset >= 12 ? ctx.node.input[2] : undefined;
  const ratio = ctx.opset >= 12 && ctx.node.input[1] ? ctx.constant(ctx.node.input[1]) : undefined;
  if (training && ctx.constant(training)?.[0] && !(ratio && ratio[0] === 0)) ctx.fail('training_mode is true: the dropout mask is random');
  return [dy];
};

/**
 * Relu: dx = dy where x > 0 (PyTorch's choice at x = 0: zero). Guided (guided backpropagation,
 * Springenberg et al. 2015, as pytorch-grad-cam's GuidedBackpropReLU): dx = dy where x > 0 and dy > 0.
 */
const relu: VjpRule = (ctx, [dy]) => {
  const positive = ctx.op('Greater', [x0(ctx), scalar(ctx, 0)]);
  if (ctx.relu !== 'guided') return [select(ctx, positive, dy!, 0)];
  return [select(ctx, ctx.op('And', [positive, ctx.op('Greater', [dy!, scalar(ctx, 0)])]), dy!, 0)];
};

/** LeakyRelu: dx = dy ⊙ (x > 0 ? 1 : alpha). */
const leakyRelu = scaled((ctx) => select(ctx, ctx.op('Greater', [x0(ctx), scalar(ctx, 0)]), 1, attrFloat(ctx.node, 'alpha', 0.01)));

/** Clip: dx = dy where min ≤ x ≤ max (bounds are attributes before opset 11, optional inputs after). */
const clip: VjpRule = (ctx, [dy]) => {
  const x = x0(ctx);
  let lo: string | undefined;
  let hi: string | undefined;
  if (ctx.opset < 11) {
    lo = scalar(ctx, attrFloat(ctx.node, 'min', -3.4028234663852886e38));
    hi = scalar(ctx, attrFloat(ctx.node, 'max', 3.4028234663852886e38));
  } else {
    if (ctx.needs(1) || ctx.needs(2)) ctx.fail('a clip bound is on the differentiated path');
    lo = ctx.node.input[1] || undefined;
    hi = ctx.node.input[2] || undefined;
  }
  let mask: string | undefined;
  if (lo) mask = ctx.op('Not', [ctx.op('Less', [x, lo])]);
  if (hi) {
    const m = ctx.op('Not', [ctx.op('Greater', [x, hi])]);
    mask = mask ? ctx.op('And', [mask, m]) : m;
  }
  return [mask ? select(ctx, mask, dy!, 0) : dy];
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
  return [select(ctx, inside, ctx.op('Mul', [dy!, scalar(ctx, alpha)]), 0)];
};

/** HardSwish y = x·relu6(x + 3)/6: dx = dy ⊙ (x < −3 ? 0 : x > 3 ? 1 : x/3 + 1/2), as PyTorch. */
const hardSwish = scaled((ctx) => {
  const x = x0(ctx);
  const mid = ctx.op('Add', [ctx.op('Mul', [x, scalar(ctx, 1 / 3)]), scalar(ctx, 0.5)]);
  const upper = select(ctx, ctx.op('Greater', [x, scalar(ctx, 3)]), 1, mid);
  return select(ctx, ctx.op('Less', [x, scalar(ctx, -3)]), 0, upper);
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

/** Reciprocal y = 1/x: dx = −dy ⊙ y². */
const reciprocal = scaled((ctx) => {
  const y = y0(ctx);
  return ctx.op('Neg', [ctx.op('Mul', [y, y])]);
});

/** Softplus y = log(1 + eˣ): dx = dy ⊙ σ(x). */
const softplus = scaled((ctx) => ctx.op('Sigmoid', [x0(ctx)]));

/** Elu: dx = dy ⊙ (x > 0 ? 1 : y + alpha). */
const elu = scaled((ctx) => {
  const alpha = attrFloat(ctx.node, 'alpha', 1);
  return select(ctx, ctx.op('Greater', [x0(ctx), scalar(ctx, 0)]), 1, ctx.op('Add', [y0(ctx), scalar(ctx, alpha)]));
});

/** PRelu with a constant slope (broadcast against x): dx = dy ⊙ (x > 0 ? 1 : slope). */
const prelu: VjpRule = (ctx, [dy]) => {
  if (ctx.needs(1)) ctx.fail('the slope is on the differentiated path');
  const f = select(ctx, ctx.op('Greater', [x0(ctx), scalar(ctx, 0)]), 1, ctx.node.input[1]);
  return [ctx.op('Mul', [dy!, f])];
};

/** Mish y = x·tanh(softplus(x)): with ω = tanh(softplus(x)), dx = dy ⊙ (ω + x·(1 − ω²)·σ(x)). */
const mish = scaled((ctx) => {
  const x = x0(ctx);
  const w = ctx.op('Tanh', [ctx.op('Softplus', [x])]);
  const sech2 = ctx.op('Sub', [scalar(ctx, 1), ctx.op('Mul', [w, w])]);
  return ctx.op('Add', [w, ctx.op('Mul', [ctx.op('Mul', [x, sech2]), ctx.op('Sigmoid', [x])])]);
});

/**
 * Gelu (opset 20). approximate = 'none': y = x·Φ(x), dx = dy ⊙ (Φ(x) + x·φ(x)) with Φ(x) = (1 + erf(x/√2))/2,
 * φ(x) = e^(−x²/2)/√(2π). approximate = 'tanh': y = x·(1 + t)/2 with t = tanh(√(2/π)·(x + 0.044715x³)),
 * dx = dy ⊙ ((1 + t)/2 + x·(1 − t²)·√(2/π)·(1 + 3·0.044715x²)/2).
 */
const gelu = scaled((ctx) => {
  const x = x0(ctx);
  const x2 = ctx.op('Mul', [x, x]);
  if (attrString(ctx.node, 'approximate', 'none') === 'tanh') {
    const c = Math.sqrt(2 / Math.PI);
    const inner = ctx.op('Mul', [ctx.op('Add', [x, ctx.op('Mul', [ctx.op('Mul', [x2, x]), scalar(ctx, 0.044715)])]), scalar(ctx, c)]);
    const t = ctx.op('Tanh', [inner]);
    const half = ctx.op('Mul', [ctx.op('Add', [t, scalar(ctx, 1)]), scalar(ctx, 0.5)]);
    const dInner = ctx.op('Add', [ctx.op('Mul', [x2, scalar(ctx, 3 * 0.044715 * c)]), scalar(ctx, c)]);
    const sech2 = ctx.op('Sub', [scalar(ctx, 1), ctx.op('Mul', [t, t])]);
    return ctx.op('Add', [half, ctx.op('Mul', [ctx.op('Mul', [ctx.op('Mul', [x, sech2]), dInner]), scalar(ctx, 0.5)])]);
  }
  const cdf = ctx.op('Mul', [ctx.op('Add', [ctx.op('Erf', [ctx.op('Mul', [x, scalar(ctx, Math.SQRT1_2)])]), scalar(ctx, 1)]), scalar(ctx, 0.5)]);
  const pdf = ctx.op('Mul', [ctx.op('Exp', [ctx.op('Mul', [x2, scalar(ctx, -0.5)])]), scalar(ctx, 1 / Math.sqrt(2 * Math.PI))]);
  return ctx.op('Add', [cdf, ctx.op('Mul', [x, pdf])]);
});

/** Selu y = γ·(x > 0 ? x : α(eˣ − 1)): dx = dy ⊙ (x > 0 ? γ : y + γα). */
const selu = scaled((ctx) => {
  const alpha = attrFloat(ctx.node, 'alpha', 1.67326319217681884765625);
  const gamma = attrFloat(ctx.node, 'gamma', 1.05070102214813232421875);
  return select(ctx, ctx.op('Greater', [x0(ctx), scalar(ctx, 0)]), gamma, ctx.op('Add', [y0(ctx), scalar(ctx, gamma * alpha)]));
});

/** Celu y = max(0, x) + min(0, α(e^(x/α) − 1)): dx = dy ⊙ (x > 0 ? 1 : e^(x/α)). */
const celu = scaled((ctx) => {
  const x = x0(ctx);
  const alpha = attrFloat(ctx.node, 'alpha', 1);
  return select(ctx, ctx.op('Greater', [x, scalar(ctx, 0)]), 1, ctx.op('Exp', [ctx.op('Mul', [x, scalar(ctx, 1 / alpha)])]));
});

/** ThresholdedRelu y = x > α ? x : 0: dx = dy where x > α. */
const thresholdedRelu = masked((ctx) => ctx.op('Greater', [x0(ctx), scalar(ctx, attrFloat(ctx.node, 'alpha', 1))]));

/** Softsign y = x / (1 + |x|): dx = dy / (1 + |x|)². */
const softsign = scaled((ctx) => {
  const d = ctx.op('Add', [ctx.op('Abs', [x0(ctx)]), scalar(ctx, 1)]);
  return ctx.op('Reciprocal', [ctx.op('Mul', [d, d])]);
});

/** Abs: dx = dy ⊙ sign(x) (0 at x = 0, as PyTorch). */
const abs = scaled((ctx) => sign(ctx, x0(ctx)));

/** Log: dx = dy / x. */
const log: VjpRule = (ctx, [dy]) => [ctx.op('Div', [dy!, x0(ctx)])];

/** Sin: dx = dy ⊙ cos(x). */
const sin = scaled((ctx) => ctx.op('Cos', [x0(ctx)]));

/** Cos: dx = −dy ⊙ sin(x). */
const cos = scaled((ctx) => ctx.op('Neg', [ctx.op('Sin', [x0(ctx)])]));

/** Piecewise-constant ops (Sign, Floor, Ceil, Round): the gradient is zero wherever it exists. */
const zero: VjpRule = (ctx, [dy]) => [ctx.op('Mul', [dy!, scalar(ctx, 0)])];

/** Sum (variadic, broadcasting): dX_i = Σ_broadcast dy. */
const sum: VjpRule = (ctx, [dy]) => {
  const yd = ctx.shape(y0(ctx));
  return ctx.node.input.map((t, i) => (ctx.needs(i) ? reduceToShape(ctx, dy!, yd, ctx.shape(t)) : undefined));
};

/** Mean (variadic, broadcasting): dX_i = Σ_broadcast dy / n. */
const mean: VjpRule = (ctx, [dy]) => {
  const yd = ctx.shape(y0(ctx));
  const g = ctx.op('Mul', [dy!, scalar(ctx, 1 / ctx.node.input.length)]);
  return ctx.node.input.map((t, i) => (ctx.needs(i) ? reduceToShape(ctx, g, yd, ctx.shape(t)) : undefined));
};

/**
 * Max / Min (variadic, broadcasting): dX_i = Σ_broadcast dy ⊙ [x_i is the extremum], the mask being
 * x_i ≥ y for Max (x_i ≤ y for Min). Tied inputs each get the full gradient.
 */
function extremum(isMax: boolean): VjpRule {
  return (ctx, [dy]) => {
    const y = y0(ctx);
    const yd = ctx.shape(y);
    return ctx.node.input.map((t, i) => {
      if (!ctx.needs(i)) return undefined;
      const mask = ctx.op('Not', [ctx.op(isMax ? 'Less' : 'Greater', [t, y])]);
      return reduceToShape(ctx, select(ctx, mask, dy!, 0), yd, ctx.shape(t));
    });
  };
}

/** Where(cond, A, B): dA = Σ_broadcast dy where cond, dB = Σ_broadcast dy where not cond. */
const where: VjpRule = (ctx, [dy]) => {
  const [cond, a, b] = ctx.node.input;
  const yd = ctx.shape(y0(ctx));
  const zero = scalar(ctx, 0);
  return [
    undefined,
    ctx.needs(1) ? reduceToShape(ctx, ctx.op('Where', [cond, dy!, zero]), yd, ctx.shape(a)) : undefined,
    ctx.needs(2) ? reduceToShape(ctx, ctx.op('Where', [cond, zero, dy!]), yd, ctx.shape(b)) : undefined,
  ];
};

export const elementwiseRules: Record<string, VjpRule> = {
  Selu: selu,
  Celu: celu,
  ThresholdedRelu: thresholdedRelu,
  Softsign: softsign,
  Abs: abs,
  Log: log,
  Sin: sin,
  Cos: cos,
  Sign: zero,
  Floor: zero,
  Ceil: zero,
  Round: zero,
  Where: where,
  Reciprocal: reciprocal,
  Softplus: softplus,
  Elu: elu,
  PRelu: prelu,
  Mish: mish,
  Gelu: gelu,
  Sum: sum,
  Mean: mean,
  Max: extremum(true),
  Min: extremum(false),
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
  Dropout: dropout,
  Add: add,
  Sub: sub,
  Mul: mul,
  Div: div,
};
