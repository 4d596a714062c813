// Finite-difference tests of the pooling and normalisation rules of conv.ts: GlobalAveragePool,
// AveragePool (divisors with and without padding, ceil mode, dilations; 1-D to 3-D), MaxPool (argmax
// routing through a one-hot ConvTranspose, 1-D to 3-D; inputs with distinct values so no argmax flips
// under ±eps) and BatchNormalization.
import { test } from 'node:test';
import { float, floatTensor, int, ints, makeNode, type AttrValue } from '../../src/onnx/builder.js';
import { awayFromKinks, uniform } from '../helpers/fd.js';
import { assertGradient, count, fd } from './harness.js';

/** Pools with linear gradients (average): eps 1e-2, only float32 rounding. */
const LINEAR_EPS = 1e-2;
const LINEAR_BOUND = 1e-4;
/** MaxPool is piecewise linear: eps 1e-3 on distinct values (gaps ≥ 0.004 between any two). */
const MAX_EPS = 1e-3;
const MAX_BOUND = 1e-2;

async function poolFd(op: string, xd: number[], attrs: Record<string, AttrValue | undefined>, opset?: number, seed = 1) {
  const piecewise = op === 'MaxPool' || op === 'GlobalMaxPool';
  return fd({
    nodes: [makeNode(op, ['x'], ['y'], attrs)],
    inputs: { x: [xd, piecewise ? awayFromKinks(count(xd), seed) : uniform(count(xd), seed)] },
    opset,
    eps: piecewise ? MAX_EPS : LINEAR_EPS,
  });
}

test('GlobalAveragePool (opset 11)', async () => {
  assertGradient(await poolFd('GlobalAveragePool', [1, 3, 5, 6], {}, 11), LINEAR_BOUND);
});

test('GlobalAveragePool (opset 13)', async () => {
  assertGradient(await poolFd('GlobalAveragePool', [1, 4, 4, 4], {}, 13), LINEAR_BOUND);
});

test('AveragePool 2×2 stride 2, no pads', async () => {
  assertGradient(await poolFd('AveragePool', [1, 2, 6, 6], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) }, 11), LINEAR_BOUND);
});

test('AveragePool 3×3 stride 2 pads 1, count_include_pad 0 (border windows divide by fewer)', async () => {
  const attrs = { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]), count_include_pad: int(0) };
  assertGradient(await poolFd('AveragePool', [1, 2, 7, 7], attrs, 11), LINEAR_BOUND);
});

test('AveragePool 3×3 stride 2 pads 1, count_include_pad 1 (every window divides by 9)', async () => {
  const attrs = { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]), count_include_pad: int(1) };
  assertGradient(await poolFd('AveragePool', [1, 2, 8, 8], attrs, 13), LINEAR_BOUND);
});

test('AveragePool 3×3 stride 2, ceil_mode 1 (last window hangs over the edge), count_include_pad 0', async () => {
  const attrs = { kernel_shape: ints([3, 3]), strides: ints([2, 2]), ceil_mode: int(1) };
  assertGradient(await poolFd('AveragePool', [1, 2, 8, 8], attrs, 17), LINEAR_BOUND);
});

test('AveragePool 3×3 stride 2 pads 1, ceil_mode 1, count_include_pad 1', async () => {
  const attrs = { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]), ceil_mode: int(1), count_include_pad: int(1) };
  assertGradient(await poolFd('AveragePool', [1, 2, 8, 8], attrs, 13), LINEAR_BOUND);
});

test('AveragePool 2×2 stride 2, ceil_mode 1 on an odd input (last window half outside), count_include_pad 1', async () => {
  const attrs = { kernel_shape: ints([2, 2]), strides: ints([2, 2]), ceil_mode: int(1), count_include_pad: int(1) };
  assertGradient(await poolFd('AveragePool', [1, 2, 7, 7], attrs, 17), LINEAR_BOUND);
});

test('AveragePool non-square kernel 2×3, strides [1, 2], asymmetric pads [0, 1, 1, 0]', async () => {
  const attrs = { kernel_shape: ints([2, 3]), strides: ints([1, 2]), pads: ints([0, 1, 1, 0]) };
  assertGradient(await poolFd('AveragePool', [1, 2, 5, 7], attrs, 13), LINEAR_BOUND);
});

test('MaxPool 2×2 stride 2 (opset 11)', async () => {
  assertGradient(await poolFd('MaxPool', [1, 2, 8, 8], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) }, 11), MAX_BOUND);
});

test('MaxPool 3×3 stride 2 pad 1: overlapping windows add their gradients (opset 13)', async () => {
  const attrs = { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) };
  assertGradient(await poolFd('MaxPool', [1, 2, 7, 7], attrs, 13), MAX_BOUND);
});

test('MaxPool 3×3 stride 1 pad 1: heavily overlapping windows (one input wins many windows)', async () => {
  const attrs = { kernel_shape: ints([3, 3]), strides: ints([1, 1]), pads: ints([1, 1, 1, 1]) };
  assertGradient(await poolFd('MaxPool', [1, 2, 6, 6], attrs, 17), MAX_BOUND);
});

test('MaxPool 3×3 stride 2, ceil_mode 1 (last window hangs over the edge)', async () => {
  const attrs = { kernel_shape: ints([3, 3]), strides: ints([2, 2]), ceil_mode: int(1) };
  assertGradient(await poolFd('MaxPool', [1, 2, 8, 8], attrs, 17), MAX_BOUND);
});

test('MaxPool 2×2 stride 2, ceil_mode 1 on an odd input', async () => {
  const attrs = { kernel_shape: ints([2, 2]), strides: ints([2, 2]), ceil_mode: int(1) };
  assertGradient(await poolFd('MaxPool', [1, 2, 7, 7], attrs, 12), MAX_BOUND);
});

test('MaxPool 3×3 stride 2 pad 1, ceil_mode 1 (opset 11)', async () => {
  const attrs = { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]), ceil_mode: int(1) };
  assertGradient(await poolFd('MaxPool', [1, 2, 8, 8], attrs, 11), MAX_BOUND);
});

test('MaxPool 2×2 dilation 2 stride 1', async () => {
  const attrs = { kernel_shape: ints([2, 2]), dilations: ints([2, 2]) };
  assertGradient(await poolFd('MaxPool', [1, 2, 6, 6], attrs, 12), MAX_BOUND);
});

test('MaxPool 3×3 dilation 2 stride 2 pads 2', async () => {
  const attrs = { kernel_shape: ints([3, 3]), dilations: ints([2, 2]), strides: ints([2, 2]), pads: ints([2, 2, 2, 2]) };
  assertGradient(await poolFd('MaxPool', [1, 2, 7, 7], attrs, 13), MAX_BOUND);
});

test('MaxPool non-square kernel 2×3, strides [2, 1], pads [0, 1, 0, 1]', async () => {
  const attrs = { kernel_shape: ints([2, 3]), strides: ints([2, 1]), pads: ints([0, 1, 0, 1]) };
  assertGradient(await poolFd('MaxPool', [1, 2, 6, 5], attrs, 13), MAX_BOUND);
});

test('MaxPool 3×3 stride 2 pad 1 at opset 9 (no dilations / ceil_mode attributes)', async () => {
  const attrs = { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) };
  assertGradient(await poolFd('MaxPool', [1, 2, 7, 7], attrs, 9), MAX_BOUND);
});

test('MaxPool 1-D kernel 3 stride 2 pads 1 (opset 13)', async () => {
  const attrs = { kernel_shape: ints([3]), strides: ints([2]), pads: ints([1, 1]) };
  assertGradient(await poolFd('MaxPool', [1, 3, 9], attrs, 13), MAX_BOUND);
});

test('MaxPool 1-D kernel 2 dilation 2, ceil_mode 1 (opset 12)', async () => {
  const attrs = { kernel_shape: ints([2]), dilations: ints([2]), strides: ints([2]), ceil_mode: int(1) };
  assertGradient(await poolFd('MaxPool', [1, 2, 8], attrs, 12), MAX_BOUND);
});

test('MaxPool 1-D kernel 2 stride 2 (opset 8: Indices without Mod)', async () => {
  assertGradient(await poolFd('MaxPool', [1, 2, 8], { kernel_shape: ints([2]), strides: ints([2]) }, 8), MAX_BOUND);
});

test('MaxPool 3-D 2×2×2 stride 2 (opset 13)', async () => {
  assertGradient(await poolFd('MaxPool', [1, 2, 4, 4, 4], { kernel_shape: ints([2, 2, 2]), strides: ints([2, 2, 2]) }, 13), MAX_BOUND);
});

test('MaxPool 3-D 3×2×3, strides [1, 2, 2], pads [1, 0, 1, 1, 0, 1] (opset 11)', async () => {
  const attrs = { kernel_shape: ints([3, 2, 3]), strides: ints([1, 2, 2]), pads: ints([1, 0, 1, 1, 0, 1]) };
  assertGradient(await poolFd('MaxPool', [1, 2, 3, 4, 5], attrs, 11), MAX_BOUND);
});

test('MaxPool 3-D 2×2×2 stride 1 (opset 7: windows compared with the output)', async () => {
  assertGradient(await poolFd('MaxPool', [1, 2, 3, 4, 3], { kernel_shape: ints([2, 2, 2]) }, 7), MAX_BOUND);
});

test('MaxPool with storage_order 1 (column-major Indices output, opset 8): the rule re-runs its own MaxPool', async () => {
  const attrs = { kernel_shape: ints([2, 2]), strides: ints([2, 2]), storage_order: int(1) };
  assertGradient(await poolFd('MaxPool', [1, 2, 6, 6], attrs, 8), MAX_BOUND);
});

test('MaxPool 3×3 stride 2 with storage_order 1 and its Indices output present on the node (opset 12)', async () => {
  const xd = [1, 2, 6, 6];
  const r = await fd({
    nodes: [makeNode('MaxPool', ['x'], ['y', 'idx'], { kernel_shape: ints([3, 3]), strides: ints([2, 2]), storage_order: int(1) })],
    inputs: { x: [xd, awayFromKinks(count(xd), 7)] },
    opset: 12,
    eps: MAX_EPS,
  });
  assertGradient(r, MAX_BOUND);
});

test('AveragePool 1-D kernel 3 stride 2 pads 1, count_include_pad 0 (opset 11)', async () => {
  const attrs = { kernel_shape: ints([3]), strides: ints([2]), pads: ints([1, 1]) };
  assertGradient(await poolFd('AveragePool', [1, 3, 9], attrs, 11), LINEAR_BOUND);
});

test('AveragePool 3-D 2×3×2 stride [2, 1, 2], pads on the middle axis (opset 13)', async () => {
  const attrs = { kernel_shape: ints([2, 3, 2]), strides: ints([2, 1, 2]), pads: ints([0, 1, 0, 0, 1, 0]) };
  assertGradient(await poolFd('AveragePool', [1, 2, 4, 5, 4], attrs, 13), LINEAR_BOUND);
});

test('AveragePool 3-D ceil_mode 1, count_include_pad 1 (opset 17)', async () => {
  const attrs = { kernel_shape: ints([2, 2, 2]), strides: ints([2, 2, 2]), ceil_mode: int(1), count_include_pad: int(1) };
  assertGradient(await poolFd('AveragePool', [1, 2, 3, 5, 3], attrs, 17), LINEAR_BOUND);
});

test('AveragePool 2×2 dilation 2 (opset 19)', async () => {
  const attrs = { kernel_shape: ints([2, 2]), dilations: ints([2, 2]) };
  assertGradient(await poolFd('AveragePool', [1, 2, 6, 6], attrs, 19), LINEAR_BOUND);
});

test('AveragePool 3×3 dilation 2 stride 2 pads 2, count_include_pad 0 (border windows divide by their taps, opset 19)', async () => {
  const attrs = { kernel_shape: ints([3, 3]), dilations: ints([2, 2]), strides: ints([2, 2]), pads: ints([2, 2, 2, 2]) };
  assertGradient(await poolFd('AveragePool', [1, 2, 7, 7], attrs, 19), LINEAR_BOUND);
});

test('AveragePool 1-D kernel 3 dilation 2 pads 1, count_include_pad 1 (opset 19)', async () => {
  const attrs = { kernel_shape: ints([3]), dilations: ints([2]), pads: ints([1, 1]), count_include_pad: int(1) };
  assertGradient(await poolFd('AveragePool', [1, 2, 9], attrs, 19), LINEAR_BOUND);
});

/** BatchNormalization in inference mode is affine per channel: eps 1e-2 is exact up to rounding. */
async function batchNormFd(opset: number, epsilon?: number) {
  const c = 3;
  const xd = [1, c, 4, 5];
  return fd({
    nodes: [makeNode('BatchNormalization', ['x', 'scale', 'bias', 'mean', 'var'], ['y'], { epsilon: epsilon !== undefined ? float(epsilon) : undefined })],
    inputs: { x: [xd, uniform(count(xd), 3)] },
    initializers: [
      floatTensor('scale', [c], uniform(c, 4, 0.5, 2)), floatTensor('bias', [c], uniform(c, 5)),
      floatTensor('mean', [c], uniform(c, 6)), floatTensor('var', [c], uniform(c, 7, 0.2, 1.5)),
    ],
    opset,
    eps: LINEAR_EPS,
  });
}

test('BatchNormalization (inference, opset 11, default epsilon)', async () => {
  assertGradient(await batchNormFd(11), LINEAR_BOUND);
});

test('BatchNormalization (inference, opset 14, epsilon 1e-3)', async () => {
  assertGradient(await batchNormFd(14, 1e-3), LINEAR_BOUND);
});

test('BatchNormalization (inference, opset 15, epsilon 0.1 — the epsilon attribute matters)', async () => {
  assertGradient(await batchNormFd(15, 0.1), LINEAR_BOUND);
});
