// Finite-difference tests of the Conv rule (dX = ConvTranspose(dY, W)): every geometry that changes the
// transposed convolution's attributes — strides, explicit and automatic pads, dilations, groups, kernel
// shapes, and input sizes that leave rows uncovered (output_padding); and of ConvTranspose (dX = Conv(dY, W)).
import { test } from 'node:test';
import { floatTensor, int, ints, makeNode, str, type AttrValue } from '../../src/onnx/builder.js';
import { uniform } from '../helpers/fd.js';
import { assertGradient, count, fd } from './harness.js';

interface ConvCase {
  cin: number;
  cout: number;
  hw: [number, number];
  kernel: [number, number];
  attrs?: Record<string, AttrValue | undefined>;
  group?: number;
  bias?: boolean;
  opset?: number;
  seed?: number;
}

/** Conv is linear in x: eps 1e-2 has no truncation error, only float32 rounding. */
const EPS = 1e-2;
const BOUND = 1e-3;

async function convFd(c: ConvCase) {
  const group = c.group ?? 1;
  const seed = c.seed ?? 1;
  const xd = [1, c.cin, ...c.hw];
  const wd = [c.cout, c.cin / group, ...c.kernel];
  const initializers = [floatTensor('w', wd, uniform(count(wd), seed + 1))];
  const inputs = ['x', 'w'];
  if (c.bias ?? true) {
    initializers.push(floatTensor('b', [c.cout], uniform(c.cout, seed + 2)));
    inputs.push('b');
  }
  return fd({
    nodes: [makeNode('Conv', inputs, ['y'], { ...c.attrs, group: group !== 1 ? int(group) : undefined })],
    inputs: { x: [xd, uniform(count(xd), seed)] },
    initializers,
    opset: c.opset,
    eps: EPS,
  });
}

test('Conv 3×3, stride 1, symmetric pads 1, with bias (opset 11)', async () => {
  const r = await convFd({ cin: 2, cout: 3, hw: [6, 6], kernel: [3, 3], attrs: { pads: ints([1, 1, 1, 1]) }, opset: 11 });
  assertGradient(r, BOUND);
});

test('Conv 3×3, stride 1, no pads, without bias (opset 13)', async () => {
  const r = await convFd({ cin: 2, cout: 3, hw: [6, 5], kernel: [3, 3], bias: false, opset: 13 });
  assertGradient(r, BOUND);
});

test('Conv 3×3, stride 2, pads 1, odd input 7×7 (no output_padding)', async () => {
  const r = await convFd({ cin: 2, cout: 3, hw: [7, 7], kernel: [3, 3], attrs: { strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) } });
  assertGradient(r, BOUND);
});

test('Conv 3×3, stride 2, pads 1, even input 8×8 (output_padding 1, last row uncovered)', async () => {
  const r = await convFd({ cin: 2, cout: 3, hw: [8, 8], kernel: [3, 3], attrs: { strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) }, opset: 17 });
  assertGradient(r, BOUND);
});

test('Conv 3×3, stride 2, asymmetric pads [0, 1, 1, 0] (begin ≠ end)', async () => {
  const r = await convFd({ cin: 2, cout: 2, hw: [7, 6], kernel: [3, 3], attrs: { strides: ints([2, 2]), pads: ints([0, 1, 1, 0]) } });
  assertGradient(r, BOUND);
});

test('Conv 3×3, stride 1, asymmetric pads [1, 0, 2, 1] (bottom/right heavier)', async () => {
  const r = await convFd({ cin: 2, cout: 2, hw: [5, 6], kernel: [3, 3], attrs: { pads: ints([1, 0, 2, 1]) }, opset: 11 });
  assertGradient(r, BOUND);
});

test('Conv auto_pad SAME_UPPER, stride 2, even input (total pad 1, extra at the end)', async () => {
  const r = await convFd({ cin: 2, cout: 3, hw: [8, 8], kernel: [3, 3], attrs: { auto_pad: str('SAME_UPPER'), strides: ints([2, 2]) } });
  assertGradient(r, BOUND);
});

test('Conv auto_pad SAME_UPPER, stride 1, 4×4 kernel (odd total pad 3)', async () => {
  const r = await convFd({ cin: 2, cout: 2, hw: [6, 7], kernel: [4, 4], attrs: { auto_pad: str('SAME_UPPER') }, opset: 11 });
  assertGradient(r, BOUND);
});

test('Conv auto_pad SAME_LOWER, stride 2, even input (extra pad at the beginning)', async () => {
  const r = await convFd({ cin: 2, cout: 3, hw: [8, 6], kernel: [3, 3], attrs: { auto_pad: str('SAME_LOWER'), strides: ints([2, 2]) } });
  assertGradient(r, BOUND);
});

test('Conv auto_pad SAME_LOWER, stride 1, 2×2 kernel (odd total pad 1 at the beginning)', async () => {
  const r = await convFd({ cin: 2, cout: 2, hw: [5, 6], kernel: [2, 2], attrs: { auto_pad: str('SAME_LOWER') }, opset: 17 });
  assertGradient(r, BOUND);
});

test('Conv auto_pad VALID, stride 2, even input (last row uncovered)', async () => {
  const r = await convFd({ cin: 2, cout: 3, hw: [8, 7], kernel: [3, 3], attrs: { auto_pad: str('VALID'), strides: ints([2, 2]) } });
  assertGradient(r, BOUND);
});

test('Conv dilation 2, pads 2, stride 1', async () => {
  const r = await convFd({ cin: 2, cout: 3, hw: [7, 7], kernel: [3, 3], attrs: { dilations: ints([2, 2]), pads: ints([2, 2, 2, 2]) } });
  assertGradient(r, BOUND);
});

test('Conv dilation 2, stride 2, no pads, even input', async () => {
  const r = await convFd({ cin: 2, cout: 2, hw: [8, 8], kernel: [3, 3], attrs: { dilations: ints([2, 2]), strides: ints([2, 2]) }, opset: 11 });
  assertGradient(r, BOUND);
});

test('Conv group = 2 (4 → 6 channels)', async () => {
  const r = await convFd({ cin: 4, cout: 6, hw: [5, 5], kernel: [3, 3], group: 2, attrs: { pads: ints([1, 1, 1, 1]) } });
  assertGradient(r, BOUND);
});

test('Conv depthwise (group = channels = 4), stride 2, pads 1', async () => {
  const r = await convFd({ cin: 4, cout: 4, hw: [6, 6], kernel: [3, 3], group: 4, attrs: { strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) }, opset: 11 });
  assertGradient(r, BOUND);
});

test('Conv depthwise with channel multiplier 2 (group = 3, 3 → 6 channels)', async () => {
  const r = await convFd({ cin: 3, cout: 6, hw: [5, 5], kernel: [3, 3], group: 3, attrs: { pads: ints([1, 1, 1, 1]) }, opset: 17 });
  assertGradient(r, BOUND);
});

test('Conv 1×1, stride 1 (pointwise)', async () => {
  const r = await convFd({ cin: 4, cout: 3, hw: [5, 5], kernel: [1, 1] });
  assertGradient(r, BOUND);
});

test('Conv 1×1, stride 2, even input (ResNet downsample shortcut; every other row dropped)', async () => {
  const r = await convFd({ cin: 3, cout: 4, hw: [6, 6], kernel: [1, 1], attrs: { strides: ints([2, 2]) }, bias: false, opset: 11 });
  assertGradient(r, BOUND);
});

test('Conv non-square kernel 1×5 with pads [0, 2, 0, 2]', async () => {
  const r = await convFd({ cin: 2, cout: 2, hw: [5, 6], kernel: [1, 5], attrs: { pads: ints([0, 2, 0, 2]) } });
  assertGradient(r, BOUND);
});

test('Conv non-square kernel 3×2 with non-square strides [2, 1] and no pads', async () => {
  const r = await convFd({ cin: 2, cout: 3, hw: [8, 5], kernel: [3, 2], attrs: { strides: ints([2, 1]) }, opset: 17 });
  assertGradient(r, BOUND);
});

test('Conv kernel_shape attribute given explicitly, stride 3 (gaps between windows)', async () => {
  const r = await convFd({ cin: 2, cout: 2, hw: [8, 8], kernel: [2, 2], attrs: { kernel_shape: ints([2, 2]), strides: ints([3, 3]) } });
  assertGradient(r, BOUND);
});

test('Conv 1-D (kernel 3, stride 2, pads 1)', async () => {
  const xd = [1, 2, 9];
  const r = await fd({
    nodes: [makeNode('Conv', ['x', 'w', 'b'], ['y'], { strides: ints([2]), pads: ints([1, 1]) })],
    inputs: { x: [xd, uniform(count(xd), 5)] },
    initializers: [floatTensor('w', [3, 2, 3], uniform(18, 6)), floatTensor('b', [3], uniform(3, 7))],
    eps: EPS,
  });
  assertGradient(r, BOUND);
});

/** ConvTranspose x [1, cin, ...spatial] with weight [cin, cout/group, ...kernel] and a bias. */
async function convTransposeFd(cin: number, cout: number, spatial: number[], kernel: number[], attrs: Record<string, AttrValue | undefined>, opset = 13, group = 1) {
  const xd = [1, cin, ...spatial];
  const wd = [cin, cout / group, ...kernel];
  return fd({
    nodes: [makeNode('ConvTranspose', ['x', 'w', 'b'], ['y'], { ...attrs, group: group !== 1 ? int(group) : undefined })],
    inputs: { x: [xd, uniform(count(xd), 50)] },
    initializers: [floatTensor('w', wd, uniform(count(wd), 51)), floatTensor('b', [cout], uniform(cout, 52))],
    opset,
    eps: EPS,
  });
}

test('ConvTranspose 2×2 stride 2 (U-Net upsampling; dX is a Conv with the same weight, opset 7)', async () => {
  assertGradient(await convTransposeFd(3, 2, [3, 4], [2, 2], { strides: ints([2, 2]) }, 7), BOUND);
});

test('ConvTranspose 4×4 stride 2 pads 1 (DCGAN, opset 11)', async () => {
  assertGradient(await convTransposeFd(2, 3, [3, 3], [4, 4], { strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) }, 11), BOUND);
});

test('ConvTranspose 3×3 stride 2 pads 1 output_padding 1 (rows no input reaches, opset 13)', async () => {
  assertGradient(await convTransposeFd(2, 2, [3, 4], [3, 3], { strides: ints([2, 2]), pads: ints([1, 1, 1, 1]), output_padding: ints([1, 1]) }), BOUND);
});

test('ConvTranspose 3×3 stride 2, asymmetric pads [0, 1, 2, 0] (opset 13)', async () => {
  assertGradient(await convTransposeFd(2, 2, [3, 3], [3, 3], { strides: ints([2, 2]), pads: ints([0, 1, 2, 0]) }), BOUND);
});

test('ConvTranspose 3×3 dilation 2, stride 1, pads 1 (opset 13)', async () => {
  assertGradient(await convTransposeFd(2, 2, [4, 3], [3, 3], { dilations: ints([2, 2]), pads: ints([1, 1, 1, 1]) }), BOUND);
});

test('ConvTranspose groups 2 (4 → 6 channels), stride 2 (opset 13)', async () => {
  assertGradient(await convTransposeFd(4, 6, [3, 3], [2, 3], { strides: ints([2, 1]) }, 13, 2), BOUND);
});

test('ConvTranspose depthwise (group = channels = 3), 3×3 stride 2 pads 1 (opset 17)', async () => {
  assertGradient(await convTransposeFd(3, 3, [3, 4], [3, 3], { strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) }, 17, 3), BOUND);
});

test('ConvTranspose with output_shape 6×8 (pads derived: odd total, the extra at the start; opset 13)', async () => {
  assertGradient(await convTransposeFd(2, 2, [3, 4], [3, 3], { strides: ints([2, 2]), output_shape: ints([6, 8]) }), BOUND);
});

test('ConvTranspose with output_shape and auto_pad SAME_UPPER (odd total: the extra at the end; opset 13)', async () => {
  assertGradient(await convTransposeFd(2, 2, [3, 4], [3, 3], { strides: ints([2, 2]), output_shape: ints([6, 8]), auto_pad: str('SAME_UPPER') }), BOUND);
});

test('ConvTranspose with output_shape larger than the full output (extra rows only the bias feeds; opset 13)', async () => {
  assertGradient(await convTransposeFd(2, 2, [3, 3], [2, 2], { strides: ints([2, 2]), output_shape: ints([7, 7]) }), BOUND);
});

test('ConvTranspose auto_pad SAME_LOWER (output in·stride, the odd pad at the start; opset 13)', async () => {
  assertGradient(await convTransposeFd(2, 2, [3, 3], [3, 3], { strides: ints([2, 2]), auto_pad: str('SAME_LOWER') }), BOUND);
});

test('ConvTranspose auto_pad SAME_UPPER (the odd pad at the end; opset 11)', async () => {
  assertGradient(await convTransposeFd(2, 2, [3, 4], [3, 3], { strides: ints([2, 2]), auto_pad: str('SAME_UPPER') }, 11), BOUND);
});

test('ConvTranspose 1-D kernel 4 stride 2 pads 1 (opset 13)', async () => {
  assertGradient(await convTransposeFd(2, 3, [5], [4], { strides: ints([2]), pads: ints([1, 1]) }), BOUND);
});

test('ConvTranspose 3-D 2×2×2 stride 2 (opset 13)', async () => {
  assertGradient(await convTransposeFd(2, 2, [2, 3, 2], [2, 2, 2], { strides: ints([2, 2, 2]) }), BOUND);
});
