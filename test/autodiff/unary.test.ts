// Finite-difference tests of the unary rules added for real models: Selu, Celu, ThresholdedRelu, Softsign,
// Abs, Log, Sin, Cos, and the piecewise-constant Sign, Floor, Ceil, Round (zero gradient), each at the
// first opset it exists in onnxruntime (from 7) and at a recent one.
import { test } from 'node:test';
import { float, makeNode, type AttrValue } from '../../src/onnx/builder.js';
import { awayFromKinks, uniform } from '../helpers/fd.js';
import { affine, assertGradient, avoid, count, fd } from './harness.js';

const XD = [1, 3, 4, 5];
const N = count(XD);

/** Smooth ops: eps 1e-2 gives truncation ~eps²·|f'''|/6 ≈ 2e-5 on these ranges. */
const SMOOTH_EPS = 1e-2;
const SMOOTH_BOUND = 1e-3;
/** Ops with a kink (Selu, Celu, ThresholdedRelu, Abs at 0) on inputs kept away from it: eps 1e-3. */
const KINK_EPS = 1e-3;
const KINK_BOUND = 1e-3;

async function unaryFd(op: string, x: Float32Array, opset: number, eps: number, attrs: Record<string, AttrValue | undefined> = {}) {
  return fd({ nodes: [makeNode(op, ['x'], ['y'], attrs)], inputs: { x: [XD, x] }, opset, eps });
}

const kinky = (seed: number, scale = 1) => affine(awayFromKinks(N, seed), scale);

for (const opset of [7, 13]) {
  test(`Selu default alpha and gamma (opset ${opset})`, async () => {
    assertGradient(await unaryFd('Selu', kinky(1 + opset, 2), opset, KINK_EPS), KINK_BOUND);
  });

  test(`Softsign (opset ${opset})`, async () => {
    assertGradient(await unaryFd('Softsign', avoid(uniform(N, 3 + opset, -3, 3), [0], 0.05), opset, SMOOTH_EPS), SMOOTH_BOUND);
  });

  test(`Abs (opset ${opset})`, async () => {
    assertGradient(await unaryFd('Abs', kinky(5 + opset), opset, KINK_EPS), KINK_BOUND);
  });

  test(`Log on positive inputs (opset ${opset})`, async () => {
    // 1/x on [0.5, 2]: |f'''| = 2/x³ ≤ 16, so eps 3e-3 keeps truncation near 2.4e-5.
    assertGradient(await unaryFd('Log', uniform(N, 7 + opset, 0.5, 2), opset, 3e-3), SMOOTH_BOUND);
  });

  test(`Sin (opset ${opset})`, async () => {
    assertGradient(await unaryFd('Sin', uniform(N, 9 + opset, -3, 3), opset, SMOOTH_EPS), SMOOTH_BOUND);
  });

  test(`Cos (opset ${opset})`, async () => {
    assertGradient(await unaryFd('Cos', uniform(N, 11 + opset, -3, 3), opset, SMOOTH_EPS), SMOOTH_BOUND);
  });
}

test('Selu alpha 1.5, gamma 2 (opset 6 attributes, model at opset 8)', async () => {
  assertGradient(await unaryFd('Selu', kinky(20, 2), 8, KINK_EPS, { alpha: float(1.5), gamma: float(2) }), KINK_BOUND);
});

test('Celu default alpha (opset 12)', async () => {
  assertGradient(await unaryFd('Celu', kinky(21, 2), 12, KINK_EPS), KINK_BOUND);
});

test('Celu alpha 0.5 (opset 18)', async () => {
  assertGradient(await unaryFd('Celu', kinky(22, 2), 18, KINK_EPS, { alpha: float(0.5) }), KINK_BOUND);
});

test('ThresholdedRelu default alpha 1 (opset 10)', async () => {
  const x = avoid(uniform(N, 23, -2, 3), [1], 4 * KINK_EPS);
  assertGradient(await unaryFd('ThresholdedRelu', x, 10, KINK_EPS), KINK_BOUND);
});

test('ThresholdedRelu alpha 0.3 (opset 13)', async () => {
  const x = avoid(uniform(N, 24, -1, 1), [0.3], 4 * KINK_EPS);
  assertGradient(await unaryFd('ThresholdedRelu', x, 13, KINK_EPS, { alpha: float(0.3) }), KINK_BOUND);
});

/**
 * Piecewise-constant ops have zero gradient: y = x·w + op(x) must have the gradient w alone. The inputs
 * stay ≥ 0.05 from every jump (integers for Floor/Ceil, half-integers for Round, 0 for Sign), so ±eps
 * never crosses one and the numerical derivative of op(x) is exactly 0.
 */
async function zeroGradFd(op: string, opset: number, jumps: (v: number) => number, seed: number) {
  const x = uniform(N, seed, -3, 3).map((v) => {
    const d = v - jumps(v);
    return Math.abs(d) < 0.05 ? jumps(v) + (d < 0 ? -0.1 : 0.1) : v;
  });
  return fd({
    nodes: [makeNode('Mul', ['x', 'w'], ['xw']), makeNode(op, ['x'], ['z']), makeNode('Add', ['xw', 'z'], ['y'])],
    inputs: { x: [XD, x], w: [XD, uniform(N, seed + 1, 0.5, 1.5)] },
    wrt: ['x'],
    opset,
    eps: KINK_EPS,
  });
}

test('Floor contributes a zero gradient (opset 7)', async () => {
  assertGradient(await zeroGradFd('Floor', 7, Math.round, 30), KINK_BOUND);
});

test('Ceil contributes a zero gradient (opset 13)', async () => {
  assertGradient(await zeroGradFd('Ceil', 13, Math.round, 31), KINK_BOUND);
});

test('Round contributes a zero gradient (opset 11)', async () => {
  assertGradient(await zeroGradFd('Round', 11, (v) => Math.floor(v) + 0.5, 32), KINK_BOUND);
});

test('Sign contributes a zero gradient (opset 9)', async () => {
  assertGradient(await zeroGradFd('Sign', 9, () => 0, 33), KINK_BOUND);
});

test('Sign contributes a zero gradient (opset 13)', async () => {
  assertGradient(await zeroGradFd('Sign', 13, () => 0, 34), KINK_BOUND);
});
