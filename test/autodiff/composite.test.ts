// Finite-difference tests of small networks: gradient accumulation over fan-out (Sum of contributions),
// a squeeze-excite block, a ConvNeXt-like block, attention heads (MatMul, Einsum), an FPN step, YOLOv5's
// Focus, and export patterns that take integer shape computations on the way (x.view(x.size(0), -1)).
import { test } from 'node:test';
import { float, floatTensor, int, int64Tensor, ints, makeNode, str } from '../../src/onnx/builder.js';
import type { NodeProto, TensorProto } from '../../src/onnx/proto.js';
import { awayFromKinks, uniform } from '../helpers/fd.js';
import { assertGradient, count, fd } from './harness.js';

const w = (name: string, dims: number[], seed: number, lo = -1, hi = 1): TensorProto => floatTensor(name, dims, uniform(count(dims), seed, lo, hi));

/** BatchNormalization with random inference statistics. */
function bn(x: string, y: string, c: number, seed: number): { node: NodeProto; init: TensorProto[] } {
  return {
    node: makeNode('BatchNormalization', [x, `${y}_s`, `${y}_b`, `${y}_m`, `${y}_v`], [y]),
    init: [w(`${y}_s`, [c], seed, 0.5, 1.5), w(`${y}_b`, [c], seed + 1), w(`${y}_m`, [c], seed + 2), w(`${y}_v`, [c], seed + 3, 0.5, 1.5)],
  };
}

test('Residual block (Conv → BN → Relu → Conv → BN → Add x → Relu): fan-out of x sums two contributions', async () => {
  const C = 2;
  const XD = [1, C, 5, 5];
  const bn1 = bn('c1', 'b1', C, 10);
  const bn2 = bn('c2', 'b2', C, 20);
  const r = await fd({
    nodes: [
      makeNode('Conv', ['x', 'w1'], ['c1'], { pads: ints([1, 1, 1, 1]) }),
      bn1.node,
      makeNode('Relu', ['b1'], ['r1']),
      makeNode('Conv', ['r1', 'w2'], ['c2'], { pads: ints([1, 1, 1, 1]) }),
      bn2.node,
      makeNode('Add', ['b2', 'x'], ['s']),
      makeNode('Relu', ['s'], ['y']),
    ],
    inputs: { x: [XD, awayFromKinks(count(XD), 1)] },
    initializers: [w('w1', [C, C, 3, 3], 2, -0.5, 0.5), w('w2', [C, C, 3, 3], 3, -0.5, 0.5), ...bn1.init, ...bn2.init],
    opset: 13,
    // Piecewise linear (two ReLUs): eps 1e-3; the seeds are fixed, and no pre-activation lies within reach of 0.
    eps: 1e-3,
  });
  assertGradient(r, 1e-2);
});

test('Fan-out into three smooth branches (x·tanh(x) + sigmoid(x)) accumulates three contributions (opset 11)', async () => {
  const XD = [1, 2, 3, 4];
  const r = await fd({
    nodes: [
      makeNode('Tanh', ['x'], ['t']),
      makeNode('Mul', ['x', 't'], ['m']),
      makeNode('Sigmoid', ['x'], ['s']),
      makeNode('Add', ['m', 's'], ['y']),
    ],
    inputs: { x: [XD, uniform(count(XD), 4, -2, 2)] },
    opset: 11,
    eps: 1e-2,
  });
  assertGradient(r, 1e-3);
});

test('A branch that does not reach the output (dead end) contributes nothing (opset 13)', async () => {
  const XD = [1, 2, 3, 4];
  const r = await fd({
    nodes: [
      makeNode('Tanh', ['x'], ['t']),
      makeNode('Sigmoid', ['t'], ['dead']),
      makeNode('Exp', ['t'], ['y']),
    ],
    inputs: { x: [XD, uniform(count(XD), 5)] },
    opset: 13,
    eps: 1e-2,
  });
  assertGradient(r, 1e-3);
});

test('Squeeze-excite block (GlobalAveragePool → Conv → Relu → Conv → Sigmoid → Mul with the input, opset 13)', async () => {
  const C = 4;
  const XD = [1, C, 4, 4];
  const r = await fd({
    nodes: [
      makeNode('GlobalAveragePool', ['x'], ['p']),
      makeNode('Conv', ['p', 'w1', 'b1'], ['z1']),
      makeNode('Relu', ['z1'], ['r1']),
      makeNode('Conv', ['r1', 'w2', 'b2'], ['z2']),
      makeNode('Sigmoid', ['z2'], ['g']),
      makeNode('Mul', ['x', 'g'], ['y']),
    ],
    inputs: { x: [XD, uniform(count(XD), 6)] },
    // b1 keeps both reduced pre-activations clear of the ReLU kink (|z1| ≳ 0.5 for inputs in [-1, 1]).
    initializers: [w('w1', [2, C, 1, 1], 7, -0.3, 0.3), floatTensor('b1', [2], [0.8, -0.8]), w('w2', [C, 2, 1, 1], 8, -2, 2), w('b2', [C], 9)],
    opset: 13,
    eps: 1e-2,
  });
  assertGradient(r, 1e-3);
});

test('Squeeze-excite block with HardSigmoid gate and HardSwish body (MobileNetV3 style, opset 14)', async () => {
  const C = 4;
  const XD = [1, C, 4, 4];
  const r = await fd({
    nodes: [
      makeNode('Conv', ['x', 'wd'], ['d'], { group: int(C), pads: ints([1, 1, 1, 1]) }),
      makeNode('HardSwish', ['d'], ['h']),
      makeNode('GlobalAveragePool', ['h'], ['p']),
      makeNode('Conv', ['p', 'w1', 'b1'], ['z1']),
      makeNode('Relu', ['z1'], ['r1']),
      makeNode('Conv', ['r1', 'w2', 'b2'], ['z2']),
      makeNode('HardSigmoid', ['z2'], ['g'], { alpha: float(1 / 6), beta: float(0.5) }),
      makeNode('Mul', ['h', 'g'], ['y']),
    ],
    inputs: { x: [XD, awayFromKinks(count(XD), 10)] },
    initializers: [w('wd', [C, 1, 3, 3], 11), w('w1', [2, C, 1, 1], 12, -0.3, 0.3), floatTensor('b1', [2], [0.8, -0.8]), w('w2', [C, 2, 1, 1], 13, -2, 2), w('b2', [C], 14)],
    opset: 14,
    // HardSwish kinks at ±3 lie far outside the depthwise outputs; eps 1e-3 keeps the ReLU on its side.
    eps: 1e-3,
  });
  assertGradient(r, 1e-2);
});

test('ConvNeXt-like block (depthwise Conv → Transpose → LayerNorm → MatMul → Erf-GELU → MatMul → Transpose → layer scale → residual, opset 17)', async () => {
  const C = 4;
  const E = 8;
  const XD = [1, C, 4, 4];
  const r = await fd({
    nodes: [
      makeNode('Conv', ['x', 'dw', 'dwb'], ['d'], { group: int(C), pads: ints([3, 3, 3, 3]), kernel_shape: ints([7, 7]) }),
      makeNode('Transpose', ['d'], ['t'], { perm: ints([0, 2, 3, 1]) }),
      makeNode('LayerNormalization', ['t', 'ln_s', 'ln_b'], ['n'], { axis: int(-1), epsilon: float(1e-6) }),
      makeNode('MatMul', ['n', 'fc1'], ['h0']),
      makeNode('Add', ['h0', 'fc1b'], ['h']),
      // GELU as exported before opset 20: h · 0.5 · (1 + erf(h / √2))
      makeNode('Div', ['h', 'sqrt2'], ['hs']),
      makeNode('Erf', ['hs'], ['e']),
      makeNode('Add', ['e', 'one'], ['e1']),
      makeNode('Mul', ['h', 'e1'], ['he']),
      makeNode('Mul', ['he', 'half'], ['g']),
      makeNode('MatMul', ['g', 'fc2'], ['o0']),
      makeNode('Add', ['o0', 'fc2b'], ['o']),
      makeNode('Transpose', ['o'], ['ot'], { perm: ints([0, 3, 1, 2]) }),
      makeNode('Mul', ['ot', 'gamma'], ['ls']),
      makeNode('Add', ['x', 'ls'], ['y']),
    ],
    inputs: { x: [XD, uniform(count(XD), 15)] },
    initializers: [
      w('dw', [C, 1, 7, 7], 16, -0.3, 0.3), w('dwb', [C], 17),
      w('ln_s', [C], 18, 0.5, 1.5), w('ln_b', [C], 19),
      w('fc1', [C, E], 20), w('fc1b', [E], 21), w('fc2', [E, C], 22), w('fc2b', [C], 23),
      floatTensor('sqrt2', [], [Math.SQRT2]), floatTensor('one', [], [1]), floatTensor('half', [], [0.5]),
      w('gamma', [C, 1, 1], 24, 0.5, 1.5),
    ],
    opset: 17,
    eps: 1e-2,
  });
  assertGradient(r, 2e-3);
});

test('Single-head self-attention (x·Wq, x·Wk, x·Wv, softmax(q·kᵀ/√d)·v): MatMul with both operands on the path (opset 13)', async () => {
  const T = 4;
  const D = 6;
  const r = await fd({
    nodes: [
      makeNode('MatMul', ['x', 'wq'], ['q']),
      makeNode('MatMul', ['x', 'wk'], ['k']),
      makeNode('MatMul', ['x', 'wv'], ['v']),
      makeNode('Transpose', ['k'], ['kt'], { perm: ints([0, 2, 1]) }),
      makeNode('MatMul', ['q', 'kt'], ['s0']),
      makeNode('Mul', ['s0', 'scale'], ['s']),
      makeNode('Softmax', ['s'], ['a'], { axis: int(-1) }),
      makeNode('MatMul', ['a', 'v'], ['y']),
    ],
    inputs: { x: [[1, T, D], uniform(T * D, 25)] },
    initializers: [w('wq', [D, D], 26), w('wk', [D, D], 27), w('wv', [D, D], 28), floatTensor('scale', [], [1 / Math.sqrt(D)])],
    opset: 13,
    eps: 1e-2,
  });
  assertGradient(r, 1e-3);
});

test('x.view(x.size(0), -1) export (Shape → Gather → Unsqueeze → Concat → Reshape) → Gemm: integer side path carries no gradient (opset 11)', async () => {
  const XD = [1, 2, 3, 3];
  const r = await fd({
    nodes: [
      makeNode('Conv', ['x', 'wc'], ['c'], { pads: ints([1, 1, 1, 1]) }),
      makeNode('Shape', ['c'], ['shape']),
      makeNode('Gather', ['shape', 'zero'], ['n'], { axis: int(0) }),
      makeNode('Unsqueeze', ['n'], ['n1'], { axes: ints([0]) }),
      makeNode('Concat', ['n1', 'minus1'], ['target'], { axis: int(0) }),
      makeNode('Reshape', ['c', 'target'], ['f']),
      makeNode('Gemm', ['f', 'fc', 'fcb'], ['y'], { transB: int(1) }),
    ],
    inputs: { x: [XD, uniform(count(XD), 29)] },
    initializers: [
      w('wc', [2, 2, 3, 3], 30), int64Tensor('zero', [], [0]), int64Tensor('minus1', [1], [-1]),
      w('fc', [3, 18], 31), w('fcb', [3], 32),
    ],
    opset: 11,
    eps: 1e-2,
  });
  assertGradient(r, 1e-3);
});

test('Classifier head with two targets: gradients of the image and of a second input at once (opset 13)', async () => {
  const XD = [1, 2, 4, 4];
  const r = await fd({
    nodes: [
      makeNode('Conv', ['x', 'wc'], ['c'], { pads: ints([1, 1, 1, 1]) }),
      makeNode('Mul', ['c', 'mask'], ['m']),
      makeNode('GlobalAveragePool', ['m'], ['p']),
      makeNode('Flatten', ['p'], ['f']),
      makeNode('Gemm', ['f', 'fc'], ['y'], { transB: int(1) }),
    ],
    inputs: { x: [XD, uniform(count(XD), 33)], mask: [[1, 1, 4, 4], uniform(16, 34, 0, 2)] },
    initializers: [w('wc', [3, 2, 3, 3], 35), w('fc', [5, 3], 36, -3, 3)],
    opset: 13,
    eps: 1e-2,
  });
  assertGradient(r, 1e-3);
});

test('Attention scale computed from the shape (Shape → Gather → Cast → Sqrt, then Div): a float tensor derived from integers carries no gradient (opset 13)', async () => {
  const T = 3;
  const D = 4;
  const r = await fd({
    nodes: [
      makeNode('MatMul', ['x', 'wq'], ['q']),
      makeNode('Shape', ['q'], ['shape']),
      makeNode('Gather', ['shape', 'last'], ['d'], { axis: int(0) }),
      makeNode('Cast', ['d'], ['df'], { to: int(1) }),
      makeNode('Sqrt', ['df'], ['sd']),
      makeNode('Div', ['q', 'sd'], ['s']),
      makeNode('Softmax', ['s'], ['y'], { axis: int(-1) }),
    ],
    inputs: { x: [[1, T, D], uniform(T * D, 37, -2, 2)] },
    initializers: [w('wq', [D, D], 38, -2, 2), int64Tensor('last', [], [2])],
    opset: 13,
    eps: 1e-2,
  });
  assertGradient(r, 1e-3);
});

test('FPN top-down step (Conv stride 2 → Resize nearest ×2 → Add lateral 1×1 Conv → Relu; opset 11 export)', async () => {
  const x = [1, 2, 4, 4];
  const r = await fd({
    nodes: [
      makeNode('Conv', ['x', 'w_down'], ['top'], { strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) }),
      makeNode('Resize', ['top', 'roi', 'scales'], ['up'], { mode: str('nearest'), coordinate_transformation_mode: str('asymmetric'), nearest_mode: str('floor') }),
      makeNode('Conv', ['x', 'w_lat'], ['lat']),
      makeNode('Add', ['up', 'lat'], ['s']),
      makeNode('Relu', ['s'], ['y']),
    ],
    inputs: { x: [x, awayFromKinks(count(x), 60)] },
    initializers: [w('w_down', [3, 2, 3, 3], 61), w('w_lat', [3, 2, 1, 1], 62), floatTensor('roi', [0], []), floatTensor('scales', [4], [1, 1, 2, 2])],
    opset: 11,
    eps: 1e-3,
  });
  assertGradient(r, 1e-2);
});

test('YOLOv5 Focus (four strided Slices → Concat → Conv → SiLU as x·Sigmoid(x); opset 13)', async () => {
  const x = [1, 2, 4, 6];
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [w('w_focus', [3, 8, 1, 1], 70), int64Tensor('axes', [2], [2, 3]), int64Tensor('steps', [2], [2, 2]), int64Tensor('end', [2], [100, 100])];
  [[0, 0], [1, 0], [0, 1], [1, 1]].forEach(([h, v], i) => {
    initializers.push(int64Tensor(`start${i}`, [2], [h, v]));
    nodes.push(makeNode('Slice', ['x', `start${i}`, 'end', 'axes', 'steps'], [`q${i}`]));
  });
  nodes.push(
    makeNode('Concat', ['q0', 'q1', 'q2', 'q3'], ['cat'], { axis: int(1) }),
    makeNode('Conv', ['cat', 'w_focus'], ['c']),
    makeNode('Sigmoid', ['c'], ['sg']),
    makeNode('Mul', ['c', 'sg'], ['y']),
  );
  const r = await fd({ nodes, inputs: { x: [x, uniform(count(x), 71, -2, 2)] }, initializers, opset: 13, eps: 1e-2 });
  assertGradient(r, 1e-3);
});

test('Attention written with Einsum (scores bhid,bhjd->bhij → Softmax → bhij,bhjd->bhid), q, k, v all from x (opset 13)', async () => {
  const x = [1, 2, 3, 4];
  const r = await fd({
    nodes: [
      makeNode('Mul', ['x', 'wq'], ['q']),
      makeNode('Mul', ['x', 'wk'], ['k']),
      makeNode('Mul', ['x', 'wv'], ['v']),
      makeNode('Einsum', ['q', 'k'], ['s'], { equation: str('bhid,bhjd->bhij') }),
      makeNode('Softmax', ['s'], ['a'], { axis: int(-1) }),
      makeNode('Einsum', ['a', 'v'], ['y'], { equation: str('bhij,bhjd->bhid') }),
    ],
    inputs: { x: [x, uniform(count(x), 80)] },
    initializers: [w('wq', [4], 81), w('wk', [4], 82), w('wv', [4], 83)],
    opset: 13,
    eps: 1e-2,
  });
  assertGradient(r, 1e-3);
});
