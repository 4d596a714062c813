// Finite-difference tests of the rules added beyond the first rule table: Reciprocal, Softplus, Elu,
// PRelu, Mish, Gelu (opset 20), Sum, Mean, Max, Min, Expand, GlobalMaxPool, LogSoftmax, Gather, Where.
import { test } from 'node:test';
import { float, floatTensor, int, int64Tensor, makeNode, str, type AttrValue } from '../../src/onnx/builder.js';
import { awayFromKinks, uniform } from '../helpers/fd.js';
import { affine, assertGradient, avoid, awayFromZero, boolTensor, count, fd } from './harness.js';

const XD = [1, 3, 4, 5];
const N = count(XD);
const SD = [1, 3, 1, 1];

const SMOOTH_EPS = 1e-2;
const SMOOTH_BOUND = 1e-3;
const KINK_EPS = 1e-3;
const KINK_BOUND = 1e-3;

async function unaryFd(op: string, x: Float32Array, opset: number, eps: number, attrs: Record<string, AttrValue | undefined> = {}) {
  return fd({ nodes: [makeNode(op, ['x'], ['y'], attrs)], inputs: { x: [XD, x] }, opset, eps });
}

test('Reciprocal, inputs away from 0 (opset 13)', async () => {
  // 1/x has |d³/dx³| = 6/x⁴ ≤ 96 for |x| ≥ 0.5: eps 3e-3 keeps truncation below ~1.5e-4.
  assertGradient(await unaryFd('Reciprocal', awayFromZero(N, 1, 0.5, 1.5), 13, 3e-3), SMOOTH_BOUND);
});

test('Reciprocal (opset 11)', async () => {
  assertGradient(await unaryFd('Reciprocal', awayFromZero(N, 2, 0.5, 1.5), 11, 3e-3), SMOOTH_BOUND);
});

test('Softplus (opset 13)', async () => {
  assertGradient(await unaryFd('Softplus', uniform(N, 3, -3, 3), 13, SMOOTH_EPS), SMOOTH_BOUND);
});

test('Elu alpha 0.7 (opset 13)', async () => {
  assertGradient(await unaryFd('Elu', affine(awayFromKinks(N, 4), 2), 13, KINK_EPS, { alpha: float(0.7) }), KINK_BOUND);
});

test('Elu default alpha (opset 11)', async () => {
  assertGradient(await unaryFd('Elu', affine(awayFromKinks(N, 5), 2), 11, KINK_EPS), KINK_BOUND);
});

test('PRelu with a per-channel constant slope [C,1,1] (opset 13)', async () => {
  const r = await fd({
    nodes: [makeNode('PRelu', ['x', 'slope'], ['y'])],
    inputs: { x: [XD, awayFromKinks(N, 6)] },
    initializers: [floatTensor('slope', [3, 1, 1], [0.1, 0.25, -0.5])],
    opset: 13,
    eps: KINK_EPS,
  });
  assertGradient(r, KINK_BOUND);
});

test('PRelu with a scalar-like slope [1] (opset 9)', async () => {
  const r = await fd({
    nodes: [makeNode('PRelu', ['x', 'slope'], ['y'])],
    inputs: { x: [XD, awayFromKinks(N, 7)] },
    initializers: [floatTensor('slope', [1], [0.25])],
    opset: 9,
    eps: KINK_EPS,
  });
  assertGradient(r, KINK_BOUND);
});

test('Mish (opset 18)', async () => {
  assertGradient(await unaryFd('Mish', uniform(N, 8, -3, 3), 18, SMOOTH_EPS), SMOOTH_BOUND);
});

test('Gelu exact (approximate none, opset 20)', async () => {
  assertGradient(await unaryFd('Gelu', uniform(N, 9, -3, 3), 20, SMOOTH_EPS), SMOOTH_BOUND);
});

test('Gelu tanh approximation (opset 20)', async () => {
  assertGradient(await unaryFd('Gelu', uniform(N, 10, -3, 3), 20, SMOOTH_EPS, { approximate: str('tanh') }), SMOOTH_BOUND);
});

test('Sum of three inputs, one broadcast [1,C,1,1] and one constant (opset 13)', async () => {
  const r = await fd({
    nodes: [makeNode('Sum', ['a', 's', 'k'], ['y'])],
    inputs: { a: [XD, uniform(N, 11)], s: [SD, uniform(3, 12)] },
    initializers: [floatTensor('k', [5], uniform(5, 13))],
    opset: 13,
    eps: SMOOTH_EPS,
  });
  assertGradient(r, 1e-4);
});

test('Mean of three inputs, one broadcast [1,C,1,1] and one constant (opset 11)', async () => {
  const r = await fd({
    nodes: [makeNode('Mean', ['a', 's', 'k'], ['y'])],
    inputs: { a: [XD, uniform(N, 14)], s: [SD, uniform(3, 15)] },
    initializers: [floatTensor('k', [5], uniform(5, 16))],
    opset: 11,
    eps: SMOOTH_EPS,
  });
  assertGradient(r, 1e-4);
});

/** Two path operands with values at least 0.02 apart everywhere, so the winner never flips under ±eps. */
function separated(seed: number): [Float32Array, Float32Array] {
  const a = uniform(N, seed);
  const b = uniform(N, seed + 1);
  return [a, b.map((v, i) => (Math.abs(v - a[i]) < 0.02 ? a[i] + 0.04 : v))];
}

test('Max of two path operands: each gets the gradient where it wins (opset 13)', async () => {
  const [a, b] = separated(17);
  const r = await fd({ nodes: [makeNode('Max', ['a', 'b'], ['y'])], inputs: { a: [XD, a], b: [XD, b] }, opset: 13, eps: KINK_EPS });
  assertGradient(r, KINK_BOUND);
});

test('Max(x, 0) with a constant scalar (ReLU written as Max, opset 12)', async () => {
  const r = await fd({
    nodes: [makeNode('Max', ['x', 'zero'], ['y'])],
    inputs: { x: [XD, awayFromKinks(N, 19)] },
    initializers: [floatTensor('zero', [], [0])],
    opset: 12,
    eps: KINK_EPS,
  });
  assertGradient(r, KINK_BOUND);
});

test('Min of [1,C,H,W] and a broadcast [1,C,1,1] path operand (opset 13)', async () => {
  const a = avoid(uniform(N, 20), [-0.4, 0.1, 0.6], 0.02);
  const r = await fd({
    nodes: [makeNode('Min', ['a', 's'], ['y'])],
    inputs: { a: [XD, a], s: [SD, Float32Array.of(-0.4, 0.1, 0.6)] },
    opset: 13,
    eps: KINK_EPS,
  });
  assertGradient(r, KINK_BOUND);
});

test('Min(x, 6) with a constant (opset 11)', async () => {
  const x = avoid(affine(awayFromKinks(N, 21), 8), [6], 4 * KINK_EPS);
  const r = await fd({
    nodes: [makeNode('Min', ['x', 'six'], ['y'])],
    inputs: { x: [XD, x] },
    initializers: [floatTensor('six', [1], [6])],
    opset: 11,
    eps: KINK_EPS,
  });
  assertGradient(r, KINK_BOUND);
});

test('Expand [1,C,1,1] → [1,C,H,W]: the gradient is summed over H and W (opset 13)', async () => {
  const r = await fd({
    nodes: [makeNode('Expand', ['s', 'shape'], ['e']), makeNode('Mul', ['e', 'w'], ['y'])],
    inputs: { s: [SD, uniform(3, 22)] },
    initializers: [int64Tensor('shape', [4], [1, 3, 4, 5]), floatTensor('w', XD, uniform(N, 23))],
    opset: 13,
    eps: SMOOTH_EPS,
  });
  assertGradient(r, 1e-4);
});

test('GlobalMaxPool routes each channel gradient to its maximum (opset 13)', async () => {
  const r = await fd({ nodes: [makeNode('GlobalMaxPool', ['x'], ['y'])], inputs: { x: [XD, awayFromKinks(N, 24)] }, opset: 13, eps: KINK_EPS });
  assertGradient(r, KINK_BOUND);
});

test('GlobalMaxPool (opset 11)', async () => {
  const r = await fd({ nodes: [makeNode('GlobalMaxPool', ['x'], ['y'])], inputs: { x: [XD, awayFromKinks(N, 25)] }, opset: 11, eps: KINK_EPS });
  assertGradient(r, KINK_BOUND);
});

test('LogSoftmax axis −1 (opset 13)', async () => {
  const r = await fd({ nodes: [makeNode('LogSoftmax', ['x'], ['y'], { axis: int(-1) })], inputs: { x: [[1, 3, 5], uniform(15, 26, -2, 2)] }, opset: 13, eps: SMOOTH_EPS });
  assertGradient(r, SMOOTH_BOUND);
});

test('LogSoftmax axis 1 on a rank-3 tensor at opset 11 (coerced 2-D over axes 1 and 2)', async () => {
  const r = await fd({ nodes: [makeNode('LogSoftmax', ['x'], ['y'], { axis: int(1) })], inputs: { x: [[1, 3, 5], uniform(15, 27, -2, 2)] }, opset: 11, eps: SMOOTH_EPS });
  assertGradient(r, SMOOTH_BOUND);
});

test('Gather with a scalar index along axis 1 (ViT class token x[:, 0], opset 13)', async () => {
  const r = await fd({
    nodes: [makeNode('Gather', ['x', 'i'], ['y'], { axis: int(1) })],
    inputs: { x: [[1, 4, 6], uniform(24, 28)] },
    initializers: [int64Tensor('i', [], [0])],
    opset: 13,
    eps: SMOOTH_EPS,
  });
  assertGradient(r, 1e-4);
});

test('Gather with 1-D indices, one negative and one repeated, along the channel axis (opset 11)', async () => {
  const r = await fd({
    nodes: [makeNode('Gather', ['x', 'i'], ['g'], { axis: int(1) }), makeNode('Mul', ['g', 'w'], ['y'])],
    inputs: { x: [XD, uniform(N, 29)] },
    initializers: [int64Tensor('i', [4], [2, -3, 2, 1]), floatTensor('w', [4, 1, 1], uniform(4, 30))],
    opset: 11,
    eps: SMOOTH_EPS,
  });
  assertGradient(r, 1e-4);
});

test('Gather with 1-D indices along the last axis (opset 13)', async () => {
  const r = await fd({
    nodes: [makeNode('Gather', ['x', 'i'], ['y'], { axis: int(-1) })],
    inputs: { x: [XD, uniform(N, 31)] },
    initializers: [int64Tensor('i', [3], [4, 0, 4])],
    opset: 13,
    eps: SMOOTH_EPS,
  });
  assertGradient(r, 1e-4);
});

test('Where with both branches on the path and a constant broadcast condition (opset 13)', async () => {
  const r = await fd({
    nodes: [makeNode('Where', ['c', 'a', 'b'], ['y'])],
    inputs: { a: [XD, uniform(N, 32)], b: [SD, uniform(3, 33)] },
    initializers: [boolTensor('c', [5], [true, false, true, true, false])],
    opset: 13,
    eps: SMOOTH_EPS,
  });
  assertGradient(r, 1e-4);
});

test('Where with a data-dependent mask (x > 0 ? x : 0.1·x, a hand-written LeakyReLU; opset 11)', async () => {
  const r = await fd({
    nodes: [
      makeNode('Greater', ['x', 'zero'], ['m']),
      makeNode('Mul', ['x', 'slope'], ['xs']),
      makeNode('Where', ['m', 'x', 'xs'], ['y']),
    ],
    inputs: { x: [XD, awayFromKinks(N, 34)] },
    initializers: [floatTensor('zero', [], [0]), floatTensor('slope', [], [0.1])],
    opset: 11,
    eps: KINK_EPS,
  });
  assertGradient(r, KINK_BOUND);
});
