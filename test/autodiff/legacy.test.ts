// Finite-difference tests of the rules at opsets 7 and 8, where the gradient nodes cannot use Where (9),
// Expand (8), ConstantOfShape (9) or Mod (10): activations, pools, a graph of smooth ops and data
// movement, and those opsets' attribute forms (Clip min/max, Dropout ratio, BatchNormalization spatial). Opset 6 is refused (see errors.test.ts): onnxruntime has no opset-6
// kernels for Add, Mul, Dropout or BatchNormalization, so such models cannot run at all.
import { test } from 'node:test';
import { float, floatTensor, int, int64Tensor, ints, makeNode, type AttrValue } from '../../src/onnx/builder.js';
import type { TensorProto } from '../../src/onnx/proto.js';
import { awayFromKinks, uniform } from '../helpers/fd.js';
import { affine, assertGradient, avoid, count, fd } from './harness.js';

const XD = [1, 3, 4, 5];
const N = count(XD);

/** Piecewise-linear ops away from their kinks: eps 1e-3 is exact up to float32 rounding. */
const KINK_EPS = 1e-3;
const KINK_BOUND = 1e-3;
/** Linear ops: eps 1e-2, float32 rounding only. */
const LINEAR_EPS = 1e-2;
const LINEAR_BOUND = 1e-4;

async function unary(op: string, x: Float32Array, opset: number, attrs: Record<string, AttrValue | undefined> = {}, outputs = 1) {
  const outs = ['y', ...Array.from({ length: outputs - 1 }, (_, i) => `aux${i}`)];
  return fd({ nodes: [makeNode(op, ['x'], outs, attrs)], inputs: { x: [XD, x] }, opset, eps: KINK_EPS });
}

for (const opset of [7, 8]) {
  test(`Relu (opset ${opset}: the mask is a float product, not Where)`, async () => {
    assertGradient(await unary('Relu', awayFromKinks(N, opset), opset), KINK_BOUND);
  });

  test(`LeakyRelu alpha 0.2 (opset ${opset})`, async () => {
    assertGradient(await unary('LeakyRelu', awayFromKinks(N, 10 + opset), opset, { alpha: float(0.2) }), KINK_BOUND);
  });

  test(`Clip with min/max attributes −0.5..0.4 (opset ${opset})`, async () => {
    const x = avoid(awayFromKinks(N, 20 + opset), [-0.5, 0.4], 4 * KINK_EPS);
    assertGradient(await unary('Clip', x, opset, { min: float(-0.5), max: float(0.4) }), KINK_BOUND);
  });

  test(`HardSigmoid alpha 0.5 beta 0.6 (opset ${opset})`, async () => {
    const x = avoid(affine(awayFromKinks(N, 30 + opset), 2), [-1.2, 0.8], 4 * KINK_EPS);
    assertGradient(await unary('HardSigmoid', x, opset, { alpha: float(0.5), beta: float(0.6) }), KINK_BOUND);
  });

  test(`Elu alpha 0.7 (opset ${opset})`, async () => {
    assertGradient(await unary('Elu', affine(awayFromKinks(N, 40 + opset), 2), opset, { alpha: float(0.7) }), KINK_BOUND);
  });

  test(`GlobalMaxPool (opset ${opset})`, async () => {
    assertGradient(await unary('GlobalMaxPool', awayFromKinks(N, 50 + opset), opset), KINK_BOUND);
  });

  test(`GlobalAveragePool (opset ${opset}: the broadcast back is an Add of zeros before Expand exists)`, async () => {
    const r = await fd({ nodes: [makeNode('GlobalAveragePool', ['x'], ['y'])], inputs: { x: [XD, uniform(N, 60 + opset)] }, opset, eps: LINEAR_EPS });
    assertGradient(r, LINEAR_BOUND);
  });

  test(`MaxPool 3×3 stride 2 pads 1 (opset ${opset}: ${opset < 8 ? 'no Indices output, windows compared with the output' : 'Indices without Mod'})`, async () => {
    const r = await fd({
      nodes: [makeNode('MaxPool', ['x'], ['y'], { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) })],
      inputs: { x: [[1, 2, 7, 7], awayFromKinks(98, 70 + opset)] },
      opset,
      eps: KINK_EPS,
    });
    assertGradient(r, 1e-2);
  });

  test(`BatchNormalization spatial 0: per-activation statistics [C, H, W] (opset ${opset})`, async () => {
    const stats = (name: string, seed: number, lo: number, hi: number): TensorProto => floatTensor(name, XD.slice(1), uniform(N, seed, lo, hi));
    const r = await fd({
      nodes: [makeNode('BatchNormalization', ['x', 's', 'b', 'm', 'v'], ['y'], { spatial: int(0), epsilon: float(1e-3) })],
      inputs: { x: [XD, uniform(N, 80 + opset)] },
      initializers: [stats('s', 1, 0.5, 2), stats('b', 2, -1, 1), stats('m', 3, -1, 1), stats('v', 4, 0.2, 1.5)],
      opset,
      eps: LINEAR_EPS,
    });
    assertGradient(r, LINEAR_BOUND);
  });
}

test('BatchNormalization spatial 1 (the default) with per-channel statistics (opset 7)', async () => {
  const c = XD[1];
  const r = await fd({
    nodes: [makeNode('BatchNormalization', ['x', 's', 'b', 'm', 'v'], ['y'], { spatial: int(1) })],
    inputs: { x: [XD, uniform(N, 90)] },
    initializers: [
      floatTensor('s', [c], uniform(c, 5, 0.5, 2)), floatTensor('b', [c], uniform(c, 6)),
      floatTensor('m', [c], uniform(c, 7)), floatTensor('v', [c], uniform(c, 8, 0.2, 1.5)),
    ],
    opset: 7,
    eps: LINEAR_EPS,
  });
  assertGradient(r, LINEAR_BOUND);
});

test('PRelu with a per-channel slope [C,1,1] (opset 7)', async () => {
  const r = await fd({
    nodes: [makeNode('PRelu', ['x', 'slope'], ['y'])],
    inputs: { x: [XD, awayFromKinks(N, 91)] },
    initializers: [floatTensor('slope', [3, 1, 1], [0.1, 0.25, -0.5])],
    opset: 7,
    eps: KINK_EPS,
  });
  assertGradient(r, KINK_BOUND);
});

test('Max of two path operands of the same shape (opset 7: no broadcasting yet)', async () => {
  const a = uniform(N, 92);
  const b = uniform(N, 93).map((v, i) => (Math.abs(v - a[i]) < 0.02 ? a[i] + 0.04 : v));
  const r = await fd({ nodes: [makeNode('Max', ['a', 'b'], ['y'])], inputs: { a: [XD, a], b: [XD, b] }, opset: 7, eps: KINK_EPS });
  assertGradient(r, KINK_BOUND);
});

test('Min with a constant of the same shape (opset 8)', async () => {
  const k = uniform(N, 94);
  const x = uniform(N, 95).map((v, i) => (Math.abs(v - k[i]) < 0.02 ? k[i] + 0.04 : v));
  const r = await fd({ nodes: [makeNode('Min', ['x', 'k'], ['y'])], inputs: { x: [XD, x] }, initializers: [floatTensor('k', XD, k)], opset: 8, eps: KINK_EPS });
  assertGradient(r, KINK_BOUND);
});

test('Dropout with the ratio attribute, one output (opset 7)', async () => {
  assertGradient(await unary('Dropout', uniform(N, 96), 7, { ratio: float(0.4) }), LINEAR_BOUND);
});

test('Dropout with the ratio attribute and the mask output (opset 10)', async () => {
  assertGradient(await unary('Dropout', uniform(N, 97), 10, { ratio: float(0.4) }, 2), LINEAR_BOUND);
});

test('Sum and Mean of same-shaped operands (opset 7: no broadcasting yet)', async () => {
  const r = await fd({
    nodes: [makeNode('Sum', ['a', 'b', 'k'], ['s']), makeNode('Mean', ['s', 'a'], ['y'])],
    inputs: { a: [XD, uniform(N, 98)], b: [XD, uniform(N, 99)] },
    initializers: [floatTensor('k', XD, uniform(N, 100))],
    opset: 7,
    eps: LINEAR_EPS,
  });
  assertGradient(r, LINEAR_BOUND);
});

/**
 * Smooth ops and data movement in one graph at opsets 7 and 8: Tanh, Softplus, Concat, Gather, Mul, Add,
 * Sqrt, Reciprocal, Pow, Div, Sub, Exp, ReduceSum (axes attribute), Expand (opset 8 only), Transpose,
 * Flatten, MatMul and LogSoftmax — each rule's emitters checked at an opset without Where, Expand (7),
 * ConstantOfShape or Mod.
 */
for (const opset of [7, 8]) {
  test(`smooth ops and data movement in one graph (opset ${opset})`, async () => {
    const nodes = [
      makeNode('Tanh', ['x'], ['a']),
      makeNode('Softplus', ['x'], ['b']),
      makeNode('Concat', ['a', 'b'], ['c'], { axis: int(1) }),
      makeNode('Gather', ['c', 'idx'], ['g'], { axis: int(1) }),
      makeNode('Mul', ['g', 'g'], ['g2']),
      makeNode('Add', ['g2', 'one'], ['g2p']),
      makeNode('Sqrt', ['g2p'], ['s']),
      makeNode('Reciprocal', ['s'], ['r']),
      makeNode('Pow', ['x', 'two'], ['p']),
      makeNode('Div', ['p', 's'], ['d']),
      makeNode('Sub', ['d', 'r'], ['e0']),
      makeNode('Mul', ['x', 'half'], ['xh']),
      makeNode('Exp', ['xh'], ['ex']),
      makeNode('ReduceSum', ['ex'], ['rs'], { axes: ints([3]), keepdims: int(1) }),
      ...(opset >= 8 ? [makeNode('Expand', ['rs', 'shape'], ['rse'])] : [makeNode('Add', ['rs', 'zeros'], ['rse'])]),
      makeNode('Add', ['e0', 'rse'], ['e']),
      makeNode('Transpose', ['e'], ['t'], { perm: ints([0, 1, 3, 2]) }),
      makeNode('Flatten', ['t'], ['f'], { axis: int(1) }),
      makeNode('MatMul', ['f', 'w'], ['m']),
      makeNode('LogSoftmax', ['m'], ['y'], { axis: int(1) }),
    ];
    const r = await fd({
      nodes,
      inputs: { x: [XD, uniform(N, 200 + opset)] },
      initializers: [
        int64Tensor('idx', [3], [0, 4, 2]), floatTensor('one', [], [1]), floatTensor('two', [], [2]), floatTensor('half', [], [0.5]),
        int64Tensor('shape', [4], XD), floatTensor('zeros', XD, new Float32Array(N)), floatTensor('w', [N, 6], uniform(N * 6, 210, -0.3, 0.3)),
      ],
      opset,
      // Smooth: eps 1e-2, truncation ~eps² of the curvature.
      eps: 1e-2,
    });
    assertGradient(r, 1e-3);
  });
}
