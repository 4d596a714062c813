// Finite-difference tests of the data-movement rules (shape.ts): Flatten, Reshape, Squeeze/Unsqueeze,
// Transpose, Concat, Split, Slice (positive and negative steps), Pad (constant, edge, reflect, wrap,
// cropping pads), Tile, DepthToSpace, SpaceToDepth — in each opset form (attributes vs inputs). A
// data-movement op alone is linear with 0/1 Jacobian entries, so a constant multiplier [W] (`scaled`)
// follows it where useful, giving every output element its own weight (a misplaced gradient then shows).
import { test } from 'node:test';
import { float, floatTensor, int, int64Tensor, ints, makeNode, str } from '../../src/onnx/builder.js';
import type { NodeProto, TensorProto } from '../../src/onnx/proto.js';
import { uniform } from '../helpers/fd.js';
import { assertGradient, count, fd, INT64_MAX, int64TensorExact } from './harness.js';

/** Linear ops: eps 1e-2 is exact up to float32 rounding. */
const EPS = 1e-2;
const BOUND = 1e-4;

const XD = [1, 3, 4, 5];

async function shapeFd(nodes: NodeProto[], opts: { xd?: number[]; initializers?: TensorProto[]; opset: number; seed?: number }) {
  const xd = opts.xd ?? XD;
  return fd({ nodes, inputs: { x: [xd, uniform(count(xd), opts.seed ?? 1)] }, initializers: opts.initializers, opset: opts.opset, eps: EPS });
}

const i64 = (name: string, values: number[]) => int64Tensor(name, [values.length], values);

test('Flatten axis 1 (opset 11)', async () => {
  assertGradient(await shapeFd([makeNode('Flatten', ['x'], ['y'], { axis: int(1) })], { opset: 11 }), BOUND);
});

test('Flatten axis 2 on [1,1,H,W] → [1, H·W] (axis 1 merges into the batch axis, so it must be 1; opset 13)', async () => {
  assertGradient(await shapeFd([makeNode('Flatten', ['x'], ['y'], { axis: int(2) })], { xd: [1, 1, 4, 5], opset: 13 }), BOUND);
});

test('Flatten default axis (1) followed by a weighted sum (opset 13)', async () => {
  const r = await shapeFd([makeNode('Flatten', ['x'], ['f']), makeNode('Mul', ['f', 'w'], ['y'])], {
    opset: 13, initializers: [floatTensor('w', [60], uniform(60, 9))],
  });
  assertGradient(r, BOUND);
});

test('Reshape [1,C,H,W] → [0, 0, -1] (shape with 0 and −1 entries, opset 13)', async () => {
  const r = await shapeFd([makeNode('Reshape', ['x', 's'], ['r']), makeNode('Mul', ['r', 'w'], ['y'])], {
    opset: 13, initializers: [i64('s', [0, 0, -1]), floatTensor('w', [20], uniform(20, 2))],
  });
  assertGradient(r, BOUND);
});

test('Reshape [1,C·H·W] → [1,C,H,W] (opset 11)', async () => {
  const r = await shapeFd([makeNode('Reshape', ['x', 's'], ['r']), makeNode('Mul', ['r', 'w'], ['y'])], {
    xd: [1, 60], opset: 11, initializers: [i64('s', [1, 3, 4, 5]), floatTensor('w', [5], uniform(5, 3))],
  });
  assertGradient(r, BOUND);
});

test('Reshape with allowzero 0 (opset 14)', async () => {
  const r = await shapeFd([makeNode('Reshape', ['x', 's'], ['r'], { allowzero: int(0) }), makeNode('Mul', ['r', 'w'], ['y'])], {
    opset: 14, initializers: [i64('s', [1, 12, 5]), floatTensor('w', [5], uniform(5, 4))],
  });
  assertGradient(r, BOUND);
});

test('Squeeze with axes attribute (opset 11)', async () => {
  const r = await shapeFd([makeNode('Squeeze', ['x'], ['s'], { axes: ints([2]) }), makeNode('Mul', ['s', 'w'], ['y'])], {
    xd: [1, 3, 1, 5], opset: 11, initializers: [floatTensor('w', [5], uniform(5, 5))],
  });
  assertGradient(r, BOUND);
});

test('Squeeze with axes attribute, negative axis (opset 12)', async () => {
  const r = await shapeFd([makeNode('Squeeze', ['x'], ['y'], { axes: ints([-1]) })], { xd: [1, 3, 4, 1], opset: 12 });
  assertGradient(r, BOUND);
});

test('Squeeze with axes input (opset 13)', async () => {
  const r = await shapeFd([makeNode('Squeeze', ['x', 'axes'], ['s']), makeNode('Mul', ['s', 'w'], ['y'])], {
    xd: [1, 3, 1, 5, 1], opset: 13, initializers: [i64('axes', [2, -1]), floatTensor('w', [5], uniform(5, 6))],
  });
  assertGradient(r, BOUND);
});

test('Squeeze with axes input (opset 18)', async () => {
  const r = await shapeFd([makeNode('Squeeze', ['x', 'axes'], ['y'])], { xd: [1, 1, 4, 5], opset: 18, initializers: [i64('axes', [1])] });
  assertGradient(r, BOUND);
});

test('Unsqueeze with axes attribute (opset 11)', async () => {
  const r = await shapeFd([makeNode('Unsqueeze', ['x'], ['u'], { axes: ints([2, 4]) }), makeNode('Mul', ['u', 'w'], ['y'])], {
    xd: [1, 3, 5], opset: 11, initializers: [floatTensor('w', [5, 1], uniform(5, 7))],
  });
  assertGradient(r, BOUND);
});

test('Unsqueeze with axes input (opset 13)', async () => {
  const r = await shapeFd([makeNode('Unsqueeze', ['x', 'axes'], ['u']), makeNode('Mul', ['u', 'w'], ['y'])], {
    xd: [1, 3, 5], opset: 13, initializers: [i64('axes', [-1]), floatTensor('w', [5, 1], uniform(5, 8))],
  });
  assertGradient(r, BOUND);
});

test('Unsqueeze with axes input (opset 18)', async () => {
  const r = await shapeFd([makeNode('Unsqueeze', ['x', 'axes'], ['y'])], { xd: [1, 3, 5], opset: 18, initializers: [i64('axes', [1])] });
  assertGradient(r, BOUND);
});

test('Transpose NCHW → NHWC, weighted, and back to NCHW (ConvNeXt layout round trip, opset 13)', async () => {
  const r = await shapeFd([
    makeNode('Transpose', ['x'], ['t'], { perm: ints([0, 2, 3, 1]) }),
    makeNode('Mul', ['t', 'w'], ['m']),
    makeNode('Transpose', ['m'], ['y'], { perm: ints([0, 3, 1, 2]) }),
  ], { opset: 13, initializers: [floatTensor('w', [5, 3], uniform(15, 10))] });
  assertGradient(r, BOUND);
});

test('Transpose NCHW → NHWC alone, weighted per channel (opset 11)', async () => {
  const r = await shapeFd([makeNode('Transpose', ['x'], ['t'], { perm: ints([0, 2, 3, 1]) }), makeNode('Mul', ['t', 'w'], ['y'])], {
    opset: 11, initializers: [floatTensor('w', [3], uniform(3, 11))],
  });
  assertGradient(r, BOUND);
});

test('Transpose of a rank-3 tensor [1,T,D] → [1,D,T] (opset 17)', async () => {
  const r = await shapeFd([makeNode('Transpose', ['x'], ['t'], { perm: ints([0, 2, 1]) }), makeNode('Mul', ['t', 'w'], ['y'])], {
    xd: [1, 4, 6], opset: 17, initializers: [floatTensor('w', [4], uniform(4, 12))],
  });
  assertGradient(r, BOUND);
});

async function concatFd(opset: number, axis: number) {
  // x1 [1,2,4,5], x2 constant [1,1,4,5], x3 [1,3,4,5] along the channel axis.
  return fd({
    nodes: [makeNode('Concat', ['a', 'k', 'b'], ['c'], { axis: int(axis) }), makeNode('Mul', ['c', 'w'], ['y'])],
    inputs: { a: [[1, 2, 4, 5], uniform(40, 13)], b: [[1, 3, 4, 5], uniform(60, 14)] },
    initializers: [floatTensor('k', [1, 1, 4, 5], uniform(20, 15)), floatTensor('w', [6, 1, 1], uniform(6, 16))],
    opset,
    eps: EPS,
  });
}

test('Concat axis 1 of three inputs, the middle one constant (opset 11)', async () => {
  assertGradient(await concatFd(11, 1), BOUND);
});

test('Concat axis −3 (= 1) of three inputs, the middle one constant (opset 13)', async () => {
  assertGradient(await concatFd(13, -3), BOUND);
});

test('Concat along the last axis of the same tensor twice (opset 13)', async () => {
  const r = await shapeFd([makeNode('Concat', ['x', 'x'], ['c'], { axis: int(-1) }), makeNode('Mul', ['c', 'w'], ['y'])], {
    opset: 13, initializers: [floatTensor('w', [10], uniform(10, 17))],
  });
  assertGradient(r, BOUND);
});

/** Split x [1,4,3,5] along channels into s0 [1,1,3,5] and s1 [1,3,3,5]; y = s0 ⊙ s1 (each part weighted by the other). */
function splitProduct(split: NodeProto, extra: NodeProto[] = []): NodeProto[] {
  return [split, ...extra, makeNode('Mul', ['s0', 's1'], ['y'])];
}

test('Split with the split attribute [1, 3] (opset 11)', async () => {
  const r = await shapeFd(splitProduct(makeNode('Split', ['x'], ['s0', 's1'], { axis: int(1), split: ints([1, 3]) })), { xd: [1, 4, 3, 5], opset: 11 });
  assertGradient(r, BOUND * 10);
});

test('Split into equal parts without sizes (opset 12)', async () => {
  const r = await shapeFd(splitProduct(makeNode('Split', ['x'], ['s0', 's1'], { axis: int(-1) })), { xd: [1, 2, 3, 6], opset: 12 });
  assertGradient(r, BOUND * 10);
});

test('Split with the split input [2, 2, 1] along the last axis (opset 13)', async () => {
  const r = await fd({
    nodes: [
      makeNode('Split', ['x', 'sizes'], ['s0', 's1', 's2'], { axis: int(3) }),
      makeNode('Mul', ['s0', 's1'], ['m']),
      makeNode('Add', ['m', 's2'], ['y']),
    ],
    inputs: { x: [[1, 2, 3, 5], uniform(30, 18)] },
    initializers: [i64('sizes', [2, 2, 1])],
    opset: 13,
    eps: EPS,
  });
  assertGradient(r, BOUND * 10);
});

test('Split with the split input (opset 17)', async () => {
  const r = await fd({
    nodes: splitProduct(makeNode('Split', ['x', 'sizes'], ['s0', 's1'], { axis: int(1) })),
    inputs: { x: [[1, 4, 3, 5], uniform(60, 19)] },
    initializers: [i64('sizes', [1, 3])],
    opset: 17,
    eps: EPS,
  });
  assertGradient(r, BOUND * 10);
});

test('Split with num_outputs 2 (opset 18)', async () => {
  const r = await shapeFd(splitProduct(makeNode('Split', ['x'], ['s0', 's1'], { axis: int(1), num_outputs: int(2) })), { xd: [1, 4, 3, 5], opset: 18 });
  assertGradient(r, BOUND * 10);
});

test('Split with num_outputs 3 on an uneven axis (7 → 3, 3, 1; opset 18)', async () => {
  const r = await fd({
    nodes: [
      makeNode('Split', ['x'], ['s0', 's1', 's2'], { axis: int(-1), num_outputs: int(3) }),
      makeNode('Mul', ['s0', 's1'], ['m']),
      makeNode('Mul', ['m', 's2'], ['y']),
    ],
    inputs: { x: [[1, 2, 3, 7], uniform(42, 20)] },
    opset: 18,
    eps: EPS,
  });
  assertGradient(r, BOUND * 10);
});

test('Split with an unused first output: zeros are concatenated for it (opset 13)', async () => {
  const r = await fd({
    nodes: [makeNode('Split', ['x', 'sizes'], ['s0', 's1'], { axis: int(1) }), makeNode('Mul', ['s1', 'w'], ['y'])],
    inputs: { x: [[1, 4, 3, 5], uniform(60, 21)] },
    initializers: [i64('sizes', [2, 2]), floatTensor('w', [5], uniform(5, 22))],
    opset: 13,
    eps: EPS,
  });
  assertGradient(r, BOUND);
});

test('Split with an unused last output (opset 11)', async () => {
  const r = await fd({
    nodes: [makeNode('Split', ['x'], ['s0', 's1'], { axis: int(2), split: ints([1, 2]) }), makeNode('Mul', ['s0', 'w'], ['y'])],
    inputs: { x: [[1, 2, 3, 5], uniform(30, 23)] },
    initializers: [floatTensor('w', [5], uniform(5, 24))],
    opset: 11,
    eps: EPS,
  });
  assertGradient(r, BOUND);
});

/** Slice followed by a weighted product, so every kept element has its own weight. */
async function sliceFd(opts: { xd?: number[]; starts: number[] | bigint[]; ends: number[] | bigint[]; axes?: number[]; steps?: number[]; opset: number; wDims: number[] }) {
  const big = (name: string, v: number[] | bigint[]) => int64TensorExact(name, [v.length], (v as (number | bigint)[]).map((x) => BigInt(x)));
  const inputs = ['x', 'starts', 'ends'];
  const initializers = [big('starts', opts.starts), big('ends', opts.ends), floatTensor('w', opts.wDims, uniform(count(opts.wDims), 25))];
  if (opts.axes) {
    inputs.push('axes');
    initializers.push(i64('axes', opts.axes));
  }
  if (opts.steps) {
    if (!opts.axes) throw new Error('steps need axes');
    inputs.push('steps');
    initializers.push(i64('steps', opts.steps));
  }
  return shapeFd([makeNode('Slice', inputs, ['s']), makeNode('Mul', ['s', 'w'], ['y'])], { xd: opts.xd, initializers, opset: opts.opset });
}

test('Slice with starts/ends/axes inputs (opset 10)', async () => {
  assertGradient(await sliceFd({ starts: [1], ends: [3], axes: [2], opset: 10, wDims: [5] }), BOUND);
});

test('Slice with negative starts and ends (x[..., -4:-1], opset 11)', async () => {
  assertGradient(await sliceFd({ starts: [-4], ends: [-1], axes: [-1], opset: 11, wDims: [3] }), BOUND);
});

test('Slice x[:, 2:] with end INT64_MAX, as PyTorch exports it (opset 13)', async () => {
  assertGradient(await sliceFd({ xd: [1, 5, 3, 4], starts: [2], ends: [INT64_MAX], axes: [1], steps: [1], opset: 13, wDims: [3, 1, 1] }), BOUND);
});

test('Slice on two axes with an end past the dimension (clamped) and steps 1 (opset 13)', async () => {
  assertGradient(await sliceFd({ starts: [1, 0], ends: [100, 3], axes: [2, 3], steps: [1, 1], opset: 13, wDims: [3] }), BOUND);
});

test('Slice without axes (starts/ends for every axis, batch kept whole; opset 13)', async () => {
  assertGradient(await sliceFd({ starts: [0, 1, 1, 0], ends: [INT64_MAX, 3n, 4n, 4n], opset: 13, wDims: [4] }), BOUND);
});

test('Slice with starts/ends/axes attributes (opset 9)', async () => {
  const r = await shapeFd([
    makeNode('Slice', ['x'], ['s'], { starts: ints([1, -3]), ends: ints([3, 1000]), axes: ints([1, 3]) }),
    makeNode('Mul', ['s', 'w'], ['y']),
  ], { opset: 9, initializers: [floatTensor('w', [3], uniform(3, 26))] });
  assertGradient(r, BOUND);
});

test('Slice with step 2 (x[:, :, ::2], YOLOv5 Focus style; opset 13)', async () => {
  assertGradient(await sliceFd({ xd: [1, 3, 6, 5], starts: [0], ends: [INT64_MAX], axes: [2], steps: [2], opset: 13, wDims: [5] }), BOUND);
});

test('Slice with steps 2 and 3 on two axes, odd starts, the last window short (x[..., 1::2, 1:5:3]; opset 11)', async () => {
  assertGradient(await sliceFd({ xd: [1, 2, 7, 6], starts: [1, 1], ends: [100, 5], axes: [2, 3], steps: [2, 3], opset: 11, wDims: [2] }), BOUND);
});

test('Slice with step −1 (a flip, x[..., ::-1]; opset 13)', async () => {
  assertGradient(await sliceFd({ starts: [-1], ends: [-INT64_MAX], axes: [-1], steps: [-1], opset: 13, wDims: [5] }), BOUND);
});

test('Slice with step −2 from an inner start (x[:, :, 4:0:-2]; opset 10)', async () => {
  assertGradient(await sliceFd({ xd: [1, 2, 6, 3], starts: [4], ends: [0], axes: [2], steps: [-2], opset: 10, wDims: [3] }), BOUND);
});

test('Slice with step −3 on channels and 2 on width, no axes list for the rest (opset 18)', async () => {
  assertGradient(await sliceFd({ xd: [1, 7, 3, 5], starts: [6, 0], ends: [-100, 5], axes: [1, 3], steps: [-3, 2], opset: 18, wDims: [3] }), BOUND);
});

test('Slice with step −1 on the batch axis of size 1 and 2 on the last (opset 13)', async () => {
  assertGradient(await sliceFd({ starts: [0, 1], ends: [-INT64_MAX, 5n], axes: [0, 3], steps: [-1, 2], opset: 13, wDims: [2] }), BOUND);
});

async function padModeFd(mode: string, pads: number[], opset: number, xd = XD, axes?: number[]) {
  const inputs = ['x'];
  const initializers = [];
  const attrs = { mode: str(mode), pads: opset < 11 ? ints(pads) : undefined };
  if (opset >= 11) {
    inputs.push('pads');
    initializers.push(i64('pads', pads));
    if (axes) {
      inputs.push('', 'axes');
      initializers.push(i64('axes', axes));
    }
  }
  return shapeFd([makeNode('Pad', inputs, ['y'], attrs)], { xd, initializers, opset, seed: 40 });
}

test('Pad reflect, pads attribute (opset 2 form, model at opset 10)', async () => {
  assertGradient(await padModeFd('reflect', [0, 0, 1, 2, 0, 0, 2, 1], 10), BOUND);
});

test('Pad reflect with the pads input, up to size − 1 on one side (opset 11)', async () => {
  assertGradient(await padModeFd('reflect', [0, 0, 3, 0, 0, 0, 1, 4], 11), BOUND);
});

test('Pad reflect on the channel axis (opset 13)', async () => {
  assertGradient(await padModeFd('reflect', [0, 2, 0, 0, 0, 1, 0, 0], 13), BOUND);
});

test('Pad edge, pads attribute (opset 7)', async () => {
  assertGradient(await padModeFd('edge', [0, 0, 2, 1, 0, 0, 1, 3], 7), BOUND);
});

test('Pad edge wider than the input (replicates the border many times, opset 13)', async () => {
  assertGradient(await padModeFd('edge', [0, 0, 6, 0, 0, 0, 0, 7], 13, [1, 2, 3, 4]), BOUND);
});

test('Pad edge with the axes input [−1] (opset 18)', async () => {
  assertGradient(await padModeFd('edge', [2, 1], 18, XD, [-1]), BOUND);
});

test('Pad reflect with a negative (cropping) pad on the other side (crop first, then reflect; opset 13)', async () => {
  assertGradient(await padModeFd('reflect', [0, 0, 2, -1, 0, 0, -1, 2], 13), BOUND);
});

test('Pad constant with negative pads (a crop on one side; opset 11)', async () => {
  assertGradient(await padModeFd('constant', [0, 0, -1, 2, 0, 0, 1, -2], 11), BOUND);
});

test('Pad wrap (opset 19)', async () => {
  assertGradient(await padModeFd('wrap', [0, 0, 2, 1, 0, 0, 1, 3], 19), BOUND);
});

test('Pad wrap with the axes input [2] (opset 21)', async () => {
  assertGradient(await padModeFd('wrap', [3, 2], 21, XD, [2]), BOUND);
});

test('Pad constant mode with the pads input and a constant value (opset 11)', async () => {
  const r = await shapeFd([makeNode('Pad', ['x', 'pads', 'v'], ['p'], { mode: str('constant') }), makeNode('Mul', ['p', 'w'], ['y'])], {
    opset: 11, initializers: [i64('pads', [0, 0, 1, 2, 0, 0, 2, 1]), floatTensor('v', [], [0.5]), floatTensor('w', [8], uniform(8, 27))],
  });
  assertGradient(r, BOUND);
});

test('Pad constant mode on the channel axis, no constant value (opset 13)', async () => {
  const r = await shapeFd([makeNode('Pad', ['x', 'pads'], ['p']), makeNode('Mul', ['p', 'w'], ['y'])], {
    opset: 13, initializers: [i64('pads', [0, 2, 0, 0, 0, 1, 0, 0]), floatTensor('w', [6, 1, 1], uniform(6, 28))],
  });
  assertGradient(r, BOUND);
});

test('Pad with the axes input [2, −1] (opset 18)', async () => {
  const r = await shapeFd([makeNode('Pad', ['x', 'pads', '', 'axes'], ['p']), makeNode('Mul', ['p', 'w'], ['y'])], {
    opset: 18, initializers: [i64('pads', [1, 0, 0, 3]), i64('axes', [2, -1]), floatTensor('w', [8], uniform(8, 29))],
  });
  assertGradient(r, BOUND);
});

test('Pad with the axes input, one axis (opset 19)', async () => {
  const r = await shapeFd([makeNode('Pad', ['x', 'pads', 'v', 'axes'], ['p']), makeNode('Mul', ['p', 'w'], ['y'])], {
    opset: 19, initializers: [i64('pads', [2, 1]), floatTensor('v', [], [0]), i64('axes', [1]), floatTensor('w', [6, 1, 1], uniform(6, 30))],
  });
  assertGradient(r, BOUND);
});

test('Pad with the pads attribute (opset 10)', async () => {
  const r = await shapeFd([makeNode('Pad', ['x'], ['p'], { pads: ints([0, 0, 1, 1, 0, 0, 1, 0]), value: float(0) }), makeNode('Mul', ['p', 'w'], ['y'])], {
    opset: 10, initializers: [floatTensor('w', [6], uniform(6, 31))],
  });
  assertGradient(r, BOUND);
});

test('Tile repeats [1, 2, 1, 3] (every copy adds to its source, opset 7)', async () => {
  assertGradient(await shapeFd([makeNode('Tile', ['x', 'r'], ['y'])], { opset: 7, initializers: [i64('r', [1, 2, 1, 3])] }), BOUND);
});

test('Tile repeats [1, 1, 2, 1] (opset 13)', async () => {
  assertGradient(await shapeFd([makeNode('Tile', ['x', 'r'], ['y'])], { opset: 13, initializers: [i64('r', [1, 1, 2, 1])] }), BOUND);
});

test('Tile of a rank-3 tensor, repeats [1, 3, 2] (opset 13)', async () => {
  assertGradient(await shapeFd([makeNode('Tile', ['x', 'r'], ['y'])], { xd: [1, 2, 3], opset: 13, initializers: [i64('r', [1, 3, 2])] }), BOUND);
});

test('DepthToSpace blocksize 2, DCR (the default; opset 7)', async () => {
  assertGradient(await shapeFd([makeNode('DepthToSpace', ['x'], ['y'], { blocksize: int(2) })], { xd: [1, 8, 2, 3], opset: 7 }), BOUND);
});

test('DepthToSpace blocksize 2, mode DCR (opset 11)', async () => {
  assertGradient(await shapeFd([makeNode('DepthToSpace', ['x'], ['y'], { blocksize: int(2), mode: str('DCR') })], { xd: [1, 12, 3, 2], opset: 11 }), BOUND);
});

test('DepthToSpace blocksize 3, mode CRD (pixel shuffle; opset 13)', async () => {
  assertGradient(await shapeFd([makeNode('DepthToSpace', ['x'], ['y'], { blocksize: int(3), mode: str('CRD') })], { xd: [1, 18, 2, 2], opset: 13 }), BOUND);
});

test('SpaceToDepth blocksize 2 (opset 7)', async () => {
  assertGradient(await shapeFd([makeNode('SpaceToDepth', ['x'], ['y'], { blocksize: int(2) })], { xd: [1, 2, 4, 6], opset: 7 }), BOUND);
});

test('SpaceToDepth blocksize 3 (opset 13)', async () => {
  assertGradient(await shapeFd([makeNode('SpaceToDepth', ['x'], ['y'], { blocksize: int(3) })], { xd: [1, 3, 6, 3], opset: 13 }), BOUND);
});
