// Finite-difference tests of the unary element-wise rules (activations and friends). Smooth ops use
// eps 1e-2 on uniform inputs; piecewise ops use eps 1e-3 on inputs kept ≥ 4·eps away from their kinks.
import { test } from 'node:test';
import { float, floatTensor, int, makeNode, tensorAttr, type AttrValue } from '../../src/onnx/builder.js';
import { DataType, type NodeProto, type TensorProto } from '../../src/onnx/proto.js';
import { awayFromKinks, uniform } from '../helpers/fd.js';
import { affine, assertGradient, avoid, boolTensor, count, fd } from './harness.js';

const XD = [1, 3, 4, 5];
const N = count(XD);

/** Smooth ops: central differences with eps 1e-2 have truncation error ~eps²·|f'''|/6 ≈ 2e-5. */
const SMOOTH_EPS = 1e-2;
const SMOOTH_BOUND = 1e-3;
/** Piecewise-linear ops away from kinks: exact up to float32 rounding (~1e-5 at eps 1e-3). */
const KINK_EPS = 1e-3;
const KINK_BOUND = 1e-3;

interface UnaryCase {
  op: string;
  x: Float32Array;
  attrs?: Record<string, AttrValue | undefined>;
  /** extra constant inputs after x (initializers; '' for a skipped optional input) */
  extra?: string[];
  initializers?: TensorProto[];
  before?: NodeProto[];
  outputs?: number;
  opset?: number;
  eps: number;
}

function unaryFd(c: UnaryCase) {
  const outs = ['y', ...Array.from({ length: (c.outputs ?? 1) - 1 }, (_, i) => `aux${i}`)];
  return fd({
    nodes: [...(c.before ?? []), makeNode(c.op, ['x', ...(c.extra ?? [])], outs, c.attrs ?? {})],
    inputs: { x: [XD, c.x] },
    initializers: c.initializers,
    opset: c.opset,
    eps: c.eps,
  });
}

const kinky = (seed: number, scale = 1) => affine(awayFromKinks(N, seed), scale);
const smooth = (seed: number, lo = -1, hi = 1) => uniform(N, seed, lo, hi);

test('Relu (opset 11): gradient passes where x > 0, zero elsewhere', async () => {
  assertGradient(await unaryFd({ op: 'Relu', x: kinky(1), opset: 11, eps: KINK_EPS }), KINK_BOUND);
});

test('Relu (opset 14)', async () => {
  assertGradient(await unaryFd({ op: 'Relu', x: kinky(2), opset: 14, eps: KINK_EPS }), KINK_BOUND);
});

test('LeakyRelu alpha 0.1 (opset 11)', async () => {
  assertGradient(await unaryFd({ op: 'LeakyRelu', x: kinky(3), attrs: { alpha: float(0.1) }, opset: 11, eps: KINK_EPS }), KINK_BOUND);
});

test('LeakyRelu alpha 0.3, slope checked on negative inputs only (opset 16)', async () => {
  // All inputs negative: the whole gradient is alpha·seed, so a wrong alpha cannot hide behind the positive half.
  const x = awayFromKinks(N, 4).map((v) => -Math.abs(v));
  assertGradient(await unaryFd({ op: 'LeakyRelu', x, attrs: { alpha: float(0.3) }, opset: 16, eps: KINK_EPS }), KINK_BOUND);
});

test('LeakyRelu default alpha 0.01 (opset 13)', async () => {
  assertGradient(await unaryFd({ op: 'LeakyRelu', x: kinky(5), opset: 13, eps: KINK_EPS }), KINK_BOUND);
});

const scalarF = (name: string, v: number) => floatTensor(name, [], [v]);

test('Clip with min and max inputs (opset 11)', async () => {
  const x = avoid(kinky(6), [-0.5, 0.4], 4 * KINK_EPS);
  const r = await unaryFd({ op: 'Clip', x, extra: ['lo', 'hi'], initializers: [scalarF('lo', -0.5), scalarF('hi', 0.4)], opset: 11, eps: KINK_EPS });
  assertGradient(r, KINK_BOUND);
});

test('Clip with only min (max input omitted, opset 12)', async () => {
  const x = avoid(kinky(7), [-0.3], 4 * KINK_EPS);
  const r = await unaryFd({ op: 'Clip', x, extra: ['lo'], initializers: [scalarF('lo', -0.3)], opset: 12, eps: KINK_EPS });
  assertGradient(r, KINK_BOUND);
});

test('Clip with only max (min input empty, opset 13)', async () => {
  const x = avoid(kinky(8), [0.2], 4 * KINK_EPS);
  const r = await unaryFd({ op: 'Clip', x, extra: ['', 'hi'], initializers: [scalarF('hi', 0.2)], opset: 13, eps: KINK_EPS });
  assertGradient(r, KINK_BOUND);
});

test('Clip 0..6 with bounds from Constant nodes (ReLU6 as exported, opset 13)', async () => {
  const x = avoid(kinky(9, 8), [0, 6], 4 * KINK_EPS);
  const r = await unaryFd({
    op: 'Clip', x, extra: ['lo', 'hi'], opset: 13, eps: KINK_EPS,
    before: [
      makeNode('Constant', [], ['lo'], { value: tensorAttr(scalarF('lo_v', 0)) }),
      makeNode('Constant', [], ['hi'], { value: tensorAttr(scalarF('hi_v', 6)) }),
    ],
  });
  assertGradient(r, KINK_BOUND);
});

test('Clip without bounds is the identity (opset 13)', async () => {
  assertGradient(await unaryFd({ op: 'Clip', x: smooth(10), opset: 13, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('Sigmoid (opset 11)', async () => {
  assertGradient(await unaryFd({ op: 'Sigmoid', x: smooth(11, -3, 3), opset: 11, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('Sigmoid (opset 13)', async () => {
  assertGradient(await unaryFd({ op: 'Sigmoid', x: smooth(12, -3, 3), opset: 13, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('HardSigmoid default alpha 0.2, beta 0.5 (kinks at ±2.5, opset 11)', async () => {
  const x = avoid(kinky(13, 4), [-2.5, 2.5], 4 * KINK_EPS);
  assertGradient(await unaryFd({ op: 'HardSigmoid', x, opset: 11, eps: KINK_EPS }), KINK_BOUND);
});

test('HardSigmoid alpha 0.5, beta 0.6 (kinks at −1.2 and 0.8, opset 13)', async () => {
  const x = avoid(kinky(14, 2), [-1.2, 0.8], 4 * KINK_EPS);
  const r = await unaryFd({ op: 'HardSigmoid', x, attrs: { alpha: float(0.5), beta: float(0.6) }, opset: 13, eps: KINK_EPS });
  assertGradient(r, KINK_BOUND);
});

test('HardSwish (opset 14): 0 below −3, x/3 + 1/2 between, 1 above 3', async () => {
  const x = avoid(kinky(15, 4.5), [-3, 3], 4 * KINK_EPS);
  // Between the kinks y = x(x + 3)/6 is quadratic, so central differences are exact there up to rounding.
  assertGradient(await unaryFd({ op: 'HardSwish', x, opset: 14, eps: KINK_EPS }), KINK_BOUND);
});

test('HardSwish (opset 18)', async () => {
  const x = avoid(kinky(16, 4.5), [-3, 3], 4 * KINK_EPS);
  assertGradient(await unaryFd({ op: 'HardSwish', x, opset: 18, eps: KINK_EPS }), KINK_BOUND);
});

test('Tanh (opset 11)', async () => {
  assertGradient(await unaryFd({ op: 'Tanh', x: smooth(17, -2, 2), opset: 11, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('Tanh (opset 13)', async () => {
  assertGradient(await unaryFd({ op: 'Tanh', x: smooth(18, -2, 2), opset: 13, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('Erf (opset 11)', async () => {
  assertGradient(await unaryFd({ op: 'Erf', x: smooth(19, -2, 2), opset: 11, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('Erf (opset 13)', async () => {
  assertGradient(await unaryFd({ op: 'Erf', x: smooth(20, -2, 2), opset: 13, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('Exp (opset 11)', async () => {
  assertGradient(await unaryFd({ op: 'Exp', x: smooth(21, -1, 1), opset: 11, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('Exp (opset 13)', async () => {
  assertGradient(await unaryFd({ op: 'Exp', x: smooth(22, -1, 1), opset: 13, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('Sqrt on positive inputs (opset 11)', async () => {
  assertGradient(await unaryFd({ op: 'Sqrt', x: smooth(23, 0.3, 2), opset: 11, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('Sqrt on positive inputs (opset 13)', async () => {
  assertGradient(await unaryFd({ op: 'Sqrt', x: smooth(24, 0.3, 2), opset: 13, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('Neg (opset 11)', async () => {
  assertGradient(await unaryFd({ op: 'Neg', x: smooth(25), opset: 11, eps: SMOOTH_EPS }), 1e-4);
});

test('Neg (opset 13)', async () => {
  assertGradient(await unaryFd({ op: 'Neg', x: smooth(26), opset: 13, eps: SMOOTH_EPS }), 1e-4);
});

test('Pow with constant exponent 2 (opset 11)', async () => {
  const r = await unaryFd({ op: 'Pow', x: smooth(27, -2, 2), extra: ['p'], initializers: [scalarF('p', 2)], opset: 11, eps: SMOOTH_EPS });
  assertGradient(r, SMOOTH_BOUND);
});

test('Pow with constant exponent 3 on negative and positive bases (opset 13)', async () => {
  const r = await unaryFd({ op: 'Pow', x: smooth(28, -2, 2), extra: ['p'], initializers: [scalarF('p', 3)], opset: 13, eps: SMOOTH_EPS });
  assertGradient(r, SMOOTH_BOUND);
});

test('Pow with exponent 2 from a Constant node of shape [1] (opset 15)', async () => {
  const r = await unaryFd({
    op: 'Pow', x: smooth(29, -2, 2), extra: ['p'], opset: 15, eps: SMOOTH_EPS,
    before: [makeNode('Constant', [], ['p'], { value: tensorAttr(floatTensor('p_v', [1], [2])) })],
  });
  assertGradient(r, SMOOTH_BOUND);
});

test('Pow with a fractional exponent 1.5 on positive bases (opset 13)', async () => {
  const r = await unaryFd({ op: 'Pow', x: smooth(30, 0.3, 2), extra: ['p'], initializers: [scalarF('p', 1.5)], opset: 13, eps: SMOOTH_EPS });
  assertGradient(r, SMOOTH_BOUND);
});

test('Identity (opset 13)', async () => {
  assertGradient(await unaryFd({ op: 'Identity', x: smooth(31), opset: 13, eps: SMOOTH_EPS }), 1e-4);
});

test('Dropout in inference, ratio attribute and mask output (opset 11)', async () => {
  const r = await unaryFd({ op: 'Dropout', x: smooth(32), attrs: { ratio: float(0.5) }, outputs: 2, opset: 11, eps: SMOOTH_EPS });
  assertGradient(r, 1e-4);
});

test('Dropout in inference, ratio input (opset 13)', async () => {
  const r = await unaryFd({ op: 'Dropout', x: smooth(33), extra: ['ratio'], initializers: [scalarF('ratio', 0.3)], opset: 13, eps: SMOOTH_EPS });
  assertGradient(r, 1e-4);
});

test('Cast float → float (opset 13)', async () => {
  assertGradient(await unaryFd({ op: 'Cast', x: smooth(34), attrs: { to: int(DataType.FLOAT) }, opset: 13, eps: SMOOTH_EPS }), 1e-4);
});

test('Cast float → float (opset 19, saturate attribute era)', async () => {
  assertGradient(await unaryFd({ op: 'Cast', x: smooth(35), attrs: { to: int(DataType.FLOAT) }, opset: 19, eps: SMOOTH_EPS }), 1e-4);
});

test('Mul(x, x): one tensor in both inputs of a node gets both contributions (2x)', async () => {
  const r = await fd({
    nodes: [makeNode('Mul', ['x', 'x'], ['y'])],
    inputs: { x: [XD, smooth(36, -2, 2)] },
    opset: 13,
    eps: SMOOTH_EPS,
  });
  assertGradient(r, SMOOTH_BOUND);
});

test('Dropout with ratio and a constant training_mode = false (opset 12)', async () => {
  const r = await unaryFd({
    op: 'Dropout', x: smooth(37), extra: ['ratio', 'training'], opset: 12, eps: SMOOTH_EPS,
    initializers: [scalarF('ratio', 0.3), boolTensor('training', [], [false])],
  });
  assertGradient(r, 1e-4);
});
