// Finite-difference tests of the reductions and normalisations (reduce.ts): ReduceSum/ReduceMean and
// ReduceMax/Min/L1/L2/SumSquare/LogSumExp/LogSum in the attribute and input forms of their axes, with
// keepdims 0 and 1; Softmax in its pre-13 (coerced 2-D) and 13+ (single axis) semantics;
// Layer-, Instance- and GroupNormalization, LRN.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { float, floatTensor, int, int64Tensor, ints, makeNode, type AttrValue } from '../../src/onnx/builder.js';
import { awayFromKinks, uniform } from '../helpers/fd.js';
import { assertGradient, count, fd } from './harness.js';

/** Reductions are linear: eps 1e-2 is exact up to rounding. */
const LINEAR_EPS = 1e-2;
const LINEAR_BOUND = 1e-4;
/** Softmax and LayerNormalization are smooth: eps 1e-2, truncation error ~eps² ≈ 1e-4 of the curvature. */
const SMOOTH_EPS = 1e-2;
const SMOOTH_BOUND = 1e-3;

const XD = [1, 3, 4, 5];

async function reduceFd(op: string, opts: { axes?: number[]; axesInput?: boolean; keepdims?: number; attrs?: Record<string, AttrValue | undefined>; opset: number; xd?: number[] }) {
  const xd = opts.xd ?? XD;
  const inputs = ['x'];
  const initializers = [];
  const attrs: Record<string, AttrValue | undefined> = { ...opts.attrs, keepdims: opts.keepdims !== undefined ? int(opts.keepdims) : undefined };
  if (opts.axes && opts.axesInput) {
    inputs.push('axes');
    initializers.push(int64Tensor('axes', [opts.axes.length], opts.axes));
  } else if (opts.axes) attrs.axes = ints(opts.axes);
  return fd({
    nodes: [makeNode(op, inputs, ['y'], attrs)],
    inputs: { x: [xd, uniform(count(xd), 1)] },
    initializers,
    opset: opts.opset,
    eps: LINEAR_EPS,
  });
}

test('ReduceSum axes attribute [2, 3], keepdims 1 (opset 11)', async () => {
  assertGradient(await reduceFd('ReduceSum', { axes: [2, 3], keepdims: 1, opset: 11 }), LINEAR_BOUND);
});

test('ReduceSum axes attribute [−1], keepdims 0 (opset 12)', async () => {
  assertGradient(await reduceFd('ReduceSum', { axes: [-1], keepdims: 0, opset: 12 }), LINEAR_BOUND);
});

test('ReduceSum axes input [1], keepdims 1 (opset 13)', async () => {
  assertGradient(await reduceFd('ReduceSum', { axes: [1], axesInput: true, keepdims: 1, opset: 13 }), LINEAR_BOUND);
});

test('ReduceSum axes input [1, −1], keepdims 0 (opset 13)', async () => {
  assertGradient(await reduceFd('ReduceSum', { axes: [1, -1], axesInput: true, keepdims: 0, opset: 13 }), LINEAR_BOUND);
});

test('ReduceSum axes input [2], default keepdims (opset 18)', async () => {
  assertGradient(await reduceFd('ReduceSum', { axes: [2], axesInput: true, opset: 18 }), LINEAR_BOUND);
});

test('ReduceSum without axes and noop_with_empty_axes 1 is the identity (opset 13)', async () => {
  assertGradient(await reduceFd('ReduceSum', { attrs: { noop_with_empty_axes: int(1) }, opset: 13 }), LINEAR_BOUND);
});

test('ReduceMean axes attribute [2, 3], keepdims 1 (opset 11)', async () => {
  assertGradient(await reduceFd('ReduceMean', { axes: [2, 3], keepdims: 1, opset: 11 }), LINEAR_BOUND);
});

test('ReduceMean axes attribute [−2, −1], keepdims 1 (global average, opset 13)', async () => {
  assertGradient(await reduceFd('ReduceMean', { axes: [-2, -1], keepdims: 1, opset: 13 }), LINEAR_BOUND);
});

test('ReduceMean axes attribute [1], keepdims 0 (opset 13)', async () => {
  assertGradient(await reduceFd('ReduceMean', { axes: [1], keepdims: 0, opset: 13 }), LINEAR_BOUND);
});

test('ReduceMean axes input [2, 3], keepdims 0 (opset 18)', async () => {
  assertGradient(await reduceFd('ReduceMean', { axes: [2, 3], axesInput: true, keepdims: 0, opset: 18 }), LINEAR_BOUND);
});

test('ReduceMean axes input [−1], keepdims 1 (opset 18)', async () => {
  assertGradient(await reduceFd('ReduceMean', { axes: [-1], axesInput: true, keepdims: 1, opset: 18 }), LINEAR_BOUND);
});

async function softmaxFd(xd: number[], axis: number | undefined, opset: number) {
  return fd({
    nodes: [makeNode('Softmax', ['x'], ['y'], { axis: axis !== undefined ? int(axis) : undefined })],
    inputs: { x: [xd, uniform(count(xd), 2, -2, 2)] },
    opset,
    eps: SMOOTH_EPS,
  });
}

test('Softmax axis 1 on a rank-3 tensor at opset 11 normalises over axes 1 and 2 together (coerced 2-D)', async () => {
  assertGradient(await softmaxFd([1, 3, 4], 1, 11), SMOOTH_BOUND);
});

test('Softmax default axis (1) on a rank-4 tensor at opset 12 (coerced 2-D over C·H·W)', async () => {
  assertGradient(await softmaxFd([1, 2, 3, 4], undefined, 12), SMOOTH_BOUND);
});

test('Softmax axis 2 on a rank-3 tensor at opset 11 (last axis only)', async () => {
  assertGradient(await softmaxFd([1, 3, 5], 2, 11), SMOOTH_BOUND);
});

test('Softmax axis −1 on a rank-3 tensor (opset 13)', async () => {
  assertGradient(await softmaxFd([1, 3, 5], -1, 13), SMOOTH_BOUND);
});

test('Softmax default axis (−1) on [1, N] logits (opset 13)', async () => {
  assertGradient(await softmaxFd([1, 8], undefined, 13), SMOOTH_BOUND);
});

test('Softmax axis 1 on a rank-3 tensor at opset 13 normalises over axis 1 only', async () => {
  assertGradient(await softmaxFd([1, 4, 3], 1, 13), SMOOTH_BOUND);
});

async function layerNormFd(xd: number[], axis: number | undefined, opset: number, epsilon?: number) {
  const normDims = xd.slice(axis === undefined ? -1 : axis);
  return fd({
    nodes: [makeNode('LayerNormalization', ['x', 'scale', 'bias'], ['y'], {
      axis: axis !== undefined ? int(axis) : undefined, epsilon: epsilon !== undefined ? float(epsilon) : undefined,
    })],
    inputs: { x: [xd, uniform(count(xd), 3, -2, 2)] },
    initializers: [floatTensor('scale', normDims, uniform(count(normDims), 4, 0.5, 1.5)), floatTensor('bias', normDims, uniform(count(normDims), 5))],
    opset,
    eps: SMOOTH_EPS,
  });
}

test('LayerNormalization axis −1 on an NHWC tensor with scale and bias (opset 17)', async () => {
  assertGradient(await layerNormFd([1, 3, 4, 6], -1, 17, 1e-6), SMOOTH_BOUND);
});

test('LayerNormalization default axis (−1), default epsilon (opset 18)', async () => {
  assertGradient(await layerNormFd([1, 4, 5], undefined, 18), SMOOTH_BOUND);
});

test('LayerNormalization axis −2 (normalised over the last two axes, opset 17)', async () => {
  assertGradient(await layerNormFd([1, 3, 4, 5], -2, 17), SMOOTH_BOUND);
});

test('LayerNormalization axis 1 on [1, T, D] (all but the batch axis, opset 17)', async () => {
  assertGradient(await layerNormFd([1, 3, 6], 1, 17, 1e-5), SMOOTH_BOUND);
});

/** ReduceMax/Min and ReduceL1 are piecewise: eps 1e-3 on distinct values away from 0 (no tie or sign flips). */
const KINK_EPS = 1e-3;
const KINK_BOUND = 1e-3;

interface ReduceCase {
  op: string;
  x: Float32Array;
  axes?: number[];
  keepdims?: number;
  noop?: boolean;
  opset: number;
  eps: number;
}

/** A reduction with axes in its opset's form (attribute before 18, input since) followed by a weighting. */
async function reductionFd(c: ReduceCase) {
  const initializers = [];
  const attrs: Record<string, AttrValue | undefined> = { keepdims: c.keepdims !== undefined ? int(c.keepdims) : undefined };
  const inputs = ['x'];
  if (c.opset >= 18) {
    if (c.noop) attrs.noop_with_empty_axes = int(1);
    if (c.axes) {
      inputs.push('axes');
      initializers.push(int64Tensor('axes', [c.axes.length], c.axes));
    }
  } else if (c.axes) attrs.axes = ints(c.axes);
  return fd({ nodes: [makeNode(c.op, inputs, ['y'], attrs)], inputs: { x: [XD, c.x] }, initializers, opset: c.opset, eps: c.eps });
}

const N = count(XD);
const distinct = (seed: number) => awayFromKinks(N, seed);

test('ReduceMax axes [2, 3], keepdims 1 (global max pooling as exported, opset 13)', async () => {
  assertGradient(await reductionFd({ op: 'ReduceMax', x: distinct(11), axes: [2, 3], keepdims: 1, opset: 13, eps: KINK_EPS }), KINK_BOUND);
});

test('ReduceMax axes [1], keepdims 0 (channel max, CBAM-style; opset 11)', async () => {
  assertGradient(await reductionFd({ op: 'ReduceMax', x: distinct(12), axes: [1], keepdims: 0, opset: 11, eps: KINK_EPS }), KINK_BOUND);
});

test('ReduceMax axes input [−1], keepdims 0 (opset 18)', async () => {
  assertGradient(await reductionFd({ op: 'ReduceMax', x: distinct(13), axes: [-1], keepdims: 0, opset: 18, eps: KINK_EPS }), KINK_BOUND);
});

test('ReduceMax with a tie: both tied elements get half the gradient (opset 13)', async () => {
  // Every row of the last axis holds its maximum twice; a one-sided perturbation of one tied element
  // moves the max by eps (up) or not at all (down), so the central difference is exactly 1/2.
  const x = distinct(14);
  for (let r = 0; r < N / 5; r++) {
    const row = x.subarray(r * 5, r * 5 + 5);
    const m = Math.max(...row);
    row[(row.indexOf(m) + 2) % 5] = m;
  }
  assertGradient(await reductionFd({ op: 'ReduceMax', x, axes: [3], keepdims: 1, opset: 13, eps: KINK_EPS }), KINK_BOUND);
});

test('ReduceMin axes [2, 3], keepdims 1 (opset 12)', async () => {
  assertGradient(await reductionFd({ op: 'ReduceMin', x: distinct(15), axes: [2, 3], keepdims: 1, opset: 12, eps: KINK_EPS }), KINK_BOUND);
});

test('ReduceMin axes input [1, 3], keepdims 0 (opset 20)', async () => {
  assertGradient(await reductionFd({ op: 'ReduceMin', x: distinct(16), axes: [1, 3], keepdims: 0, opset: 20, eps: KINK_EPS }), KINK_BOUND);
});

test('ReduceMax without axes and noop_with_empty_axes 1 is the identity (opset 18)', async () => {
  assertGradient(await reductionFd({ op: 'ReduceMax', x: distinct(17), noop: true, opset: 18, eps: KINK_EPS }), KINK_BOUND);
});

test('ReduceL1 axes [1], keepdims 1 (opset 13)', async () => {
  assertGradient(await reductionFd({ op: 'ReduceL1', x: distinct(18), axes: [1], keepdims: 1, opset: 13, eps: KINK_EPS }), KINK_BOUND);
});

test('ReduceL1 axes input [2, 3], keepdims 0 (opset 18)', async () => {
  assertGradient(await reductionFd({ op: 'ReduceL1', x: distinct(19), axes: [2, 3], keepdims: 0, opset: 18, eps: KINK_EPS }), KINK_BOUND);
});

test('ReduceL2 axes [1], keepdims 1 (feature normalisation, opset 11)', async () => {
  assertGradient(await reductionFd({ op: 'ReduceL2', x: uniform(N, 20, -2, 2), axes: [1], keepdims: 1, opset: 11, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('ReduceL2 axes input [−1], keepdims 0 (opset 18)', async () => {
  assertGradient(await reductionFd({ op: 'ReduceL2', x: uniform(N, 21, -2, 2), axes: [-1], keepdims: 0, opset: 18, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('ReduceL2 with an all-zero slice: its gradient is 0, not NaN (opset 13)', async () => {
  // A constant mask zeroes channel 0 before the reduction, so its norm is 0 (where √ has no derivative)
  // whatever x holds. The rule must give that slice the gradient 0; a NaN there would survive the mask.
  const x = uniform(N, 22, -2, 2);
  const r = await fd({
    nodes: [makeNode('Mul', ['x', 'mask'], ['xm']), makeNode('ReduceL2', ['xm'], ['y'], { axes: ints([2, 3]), keepdims: int(1) })],
    inputs: { x: [XD, x] },
    initializers: [floatTensor('mask', [3, 1, 1], [0, 1, 1])],
    opset: 13,
    eps: SMOOTH_EPS,
  });
  assertGradient(r, SMOOTH_BOUND);
  for (const g of r.gradients.x) assert.ok(Number.isFinite(g), 'the gradient of a zero slice must be finite');
});

test('ReduceSumSquare axes [2, 3], keepdims 0 (opset 13)', async () => {
  assertGradient(await reductionFd({ op: 'ReduceSumSquare', x: uniform(N, 23, -2, 2), axes: [2, 3], keepdims: 0, opset: 13, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('ReduceSumSquare axes input [1], keepdims 1 (opset 18)', async () => {
  assertGradient(await reductionFd({ op: 'ReduceSumSquare', x: uniform(N, 24, -2, 2), axes: [1], keepdims: 1, opset: 18, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('ReduceSumSquare without axes and noop_with_empty_axes 1 squares element-wise (as onnxruntime does; opset 18)', async () => {
  assertGradient(await reductionFd({ op: 'ReduceSumSquare', x: uniform(N, 25, -2, 2), noop: true, opset: 18, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('ReduceLogSumExp axes [1], keepdims 1 (opset 13)', async () => {
  assertGradient(await reductionFd({ op: 'ReduceLogSumExp', x: uniform(N, 26, -2, 2), axes: [1], keepdims: 1, opset: 13, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('ReduceLogSumExp axes input [2, 3], keepdims 0 (opset 18)', async () => {
  assertGradient(await reductionFd({ op: 'ReduceLogSumExp', x: uniform(N, 27, -2, 2), axes: [2, 3], keepdims: 0, opset: 18, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('ReduceLogSum axes [3], keepdims 0 on positive inputs (opset 11)', async () => {
  assertGradient(await reductionFd({ op: 'ReduceLogSum', x: uniform(N, 28, 0.5, 2), axes: [3], keepdims: 0, opset: 11, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

test('ReduceLogSum axes input [1, 2], keepdims 1 (opset 18)', async () => {
  assertGradient(await reductionFd({ op: 'ReduceLogSum', x: uniform(N, 29, 0.5, 2), axes: [1, 2], keepdims: 1, opset: 18, eps: SMOOTH_EPS }), SMOOTH_BOUND);
});

async function instanceNormFd(xd: number[], opset: number, epsilon?: number) {
  const c = xd[1];
  return fd({
    nodes: [makeNode('InstanceNormalization', ['x', 'scale', 'bias'], ['y'], { epsilon: epsilon !== undefined ? float(epsilon) : undefined })],
    inputs: { x: [xd, uniform(count(xd), 30 + opset, -2, 2)] },
    initializers: [floatTensor('scale', [c], uniform(c, 31, 0.5, 1.5)), floatTensor('bias', [c], uniform(c, 32))],
    opset,
    eps: SMOOTH_EPS,
  });
}

test('InstanceNormalization on [1, C, H, W], default epsilon (opset 7)', async () => {
  assertGradient(await instanceNormFd([1, 3, 4, 5], 7), SMOOTH_BOUND);
});

test('InstanceNormalization on [1, C, L] (1-D), epsilon 1e-3 (opset 13)', async () => {
  assertGradient(await instanceNormFd([1, 4, 6], 13, 1e-3), SMOOTH_BOUND);
});

test('InstanceNormalization on [1, C, D, H, W] (3-D), epsilon 0.1 (opset 21)', async () => {
  assertGradient(await instanceNormFd([1, 2, 2, 3, 3], 21, 0.1), SMOOTH_BOUND);
});

async function lrnFd(xd: number[], attrs: Record<string, AttrValue | undefined>, opset: number) {
  return fd({ nodes: [makeNode('LRN', ['x'], ['y'], attrs)], inputs: { x: [xd, uniform(count(xd), 40 + opset, -2, 2)] }, opset, eps: SMOOTH_EPS });
}

test('LRN size 5, AlexNet constants alpha 1e-4, beta 0.75, bias 1 (opset 7)', async () => {
  // alpha 1e-4 makes the cross-channel term tiny; the next tests make it matter.
  assertGradient(await lrnFd([1, 7, 3, 3], { size: int(5), alpha: float(1e-4), beta: float(0.75), bias: float(1) }, 7), SMOOTH_BOUND);
});

test('LRN size 3, alpha 0.5, beta 0.75, bias 2 (a strong cross-channel term; opset 13)', async () => {
  assertGradient(await lrnFd([1, 5, 3, 4], { size: int(3), alpha: float(0.5), beta: float(0.75), bias: float(2) }, 13), SMOOTH_BOUND);
});

// onnxruntime's LRN kernel only takes odd sizes, so the uneven window of an even size is not tested.
test('LRN size 5 over 6 channels, alpha 1, beta 0.5, bias 1.5 (windows cut at both ends; opset 13)', async () => {
  assertGradient(await lrnFd([1, 6, 2, 3], { size: int(5), alpha: float(1), beta: float(0.5), bias: float(1.5) }, 13), SMOOTH_BOUND);
});

async function groupNormFd(xd: number[], groups: number, opset: number, epsilon?: number) {
  const n = opset >= 21 ? xd[1] : groups;
  return fd({
    nodes: [makeNode('GroupNormalization', ['x', 'scale', 'bias'], ['y'], { num_groups: int(groups), epsilon: epsilon !== undefined ? float(epsilon) : undefined })],
    inputs: { x: [xd, uniform(count(xd), 50 + opset, -2, 2)] },
    initializers: [floatTensor('scale', [n], uniform(n, 51, 0.5, 1.5)), floatTensor('bias', [n], uniform(n, 52))],
    opset,
    eps: SMOOTH_EPS,
  });
}

test('GroupNormalization 2 groups of 3 channels, scale per group (opset 18)', async () => {
  assertGradient(await groupNormFd([1, 6, 3, 2], 2, 18), SMOOTH_BOUND);
});

test('GroupNormalization 2 groups of 2 channels, scale per channel, epsilon 1e-3 (opset 21)', async () => {
  assertGradient(await groupNormFd([1, 4, 3, 3], 2, 21, 1e-3), SMOOTH_BOUND);
});

test('GroupNormalization 1 group on a rank-3 tensor (LayerNorm over C and L, opset 21)', async () => {
  assertGradient(await groupNormFd([1, 3, 5], 1, 21), SMOOTH_BOUND);
});
