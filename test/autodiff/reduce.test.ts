// Finite-difference tests of the reductions and normalisations (reduce.ts): ReduceSum/ReduceMean in the
// attribute and input forms of their axes, with keepdims 0 and 1; Softmax in its pre-13 (coerced 2-D)
// and 13+ (single axis) semantics; LayerNormalization.
import { test } from 'node:test';
import { float, floatTensor, int, int64Tensor, ints, makeNode, type AttrValue } from '../../src/onnx/builder.js';
import { uniform } from '../helpers/fd.js';
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
