// Finite-difference tests of Resize (opsets 10, 11, 13, 18, 19) and Upsample (opsets 7–9) against
// onnxruntime's own forward: nearest with every nearest_mode, linear (bi-, tri-linear, NHWC) and cubic,
// every coordinate_transformation_mode but tf_crop_and_resize, scales or sizes, and the opset-18 axes and
// keep_aspect_ratio_policy. Non-integer factors make every coordinate transform and rounding rule show.
// Resize and Upsample are linear in x: eps 1e-2 is exact up to float32 rounding. Upsample-10 (deprecated)
// has no onnxruntime kernel, so Upsample is tested at 7, 8 and 9 only.
import { test } from 'node:test';
import { floatTensor, int, int64Tensor, ints, makeNode, str, type AttrValue } from '../../src/onnx/builder.js';
import type { TensorProto } from '../../src/onnx/proto.js';
import { uniform } from '../helpers/fd.js';
import { assertGradient, count, fd } from './harness.js';

const EPS = 1e-2;
const BOUND = 1e-4;

const XD = [1, 2, 5, 6];

interface ResizeCase {
  opset: number;
  mode?: string;
  coordinates?: string;
  nearest?: string;
  attrs?: Record<string, AttrValue | undefined>;
  /** the scales input (one per axis, or per entry of the axes attribute) */
  scales?: number[];
  /** the sizes input instead */
  sizes?: number[];
  xd?: number[];
  seed?: number;
}

/** One Resize node with its inputs in the opset's form: [x, scales] (10), [x, roi, scales, sizes] (11–12), optional since 13. */
async function resizeFd(c: ResizeCase) {
  const xd = c.xd ?? XD;
  const initializers: TensorProto[] = [];
  const inputs = ['x'];
  if (c.opset < 11) {
    initializers.push(floatTensor('scales', [c.scales!.length], c.scales!));
    inputs.push('scales');
  } else {
    const legacy = c.opset < 13;
    if (legacy) initializers.push(floatTensor('roi', [0], []));
    inputs.push(legacy ? 'roi' : '');
    if (c.scales) {
      initializers.push(floatTensor('scales', [c.scales.length], c.scales));
      inputs.push('scales');
    } else {
      if (legacy) initializers.push(floatTensor('no_scales', [0], []));
      inputs.push(legacy ? 'no_scales' : '');
      initializers.push(int64Tensor('sizes', [c.sizes!.length], c.sizes!));
      inputs.push('sizes');
    }
  }
  const attrs: Record<string, AttrValue | undefined> = {
    mode: c.mode ? str(c.mode) : undefined,
    coordinate_transformation_mode: c.coordinates ? str(c.coordinates) : undefined,
    nearest_mode: c.nearest ? str(c.nearest) : undefined,
    ...c.attrs,
  };
  return fd({
    nodes: [makeNode('Resize', inputs, ['y'], attrs)],
    inputs: { x: [xd, uniform(count(xd), c.seed ?? 1)] },
    initializers,
    opset: c.opset,
    eps: EPS,
  });
}

// Resize-10: scales input only, asymmetric coordinates, nearest truncates (ceil when downsampling).
test('Resize-10 nearest ×2 (the 2× fast path of the kernel)', async () => {
  assertGradient(await resizeFd({ opset: 10, scales: [1, 1, 2, 2] }), BOUND);
});

test('Resize-10 nearest scales [1, 1, 1.5, 0.5] (up along H, down along W: ceil)', async () => {
  assertGradient(await resizeFd({ opset: 10, scales: [1, 1, 1.5, 0.5] }), BOUND);
});

test('Resize-10 linear scales [1, 1, 2, 2.5]', async () => {
  assertGradient(await resizeFd({ opset: 10, mode: 'linear', scales: [1, 1, 2, 2.5] }), BOUND);
});

test('Resize-10 linear downsampling scales [1, 1, 0.6, 0.5]', async () => {
  assertGradient(await resizeFd({ opset: 10, mode: 'linear', scales: [1, 1, 0.6, 0.5] }), BOUND);
});

// Resize-11: roi, scales (empty with sizes), sizes; coordinate and nearest modes.
const NEAREST_MODES = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];
const COORDINATES = ['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn'];

NEAREST_MODES.forEach((nearest, i) => {
  const coordinates = COORDINATES[i % COORDINATES.length];
  test(`Resize-11 nearest, nearest_mode ${nearest}, ${coordinates}, sizes 5×6 → 8×9`, async () => {
    assertGradient(await resizeFd({ opset: 11, nearest, coordinates, sizes: [1, 2, 8, 9], seed: 10 + i }), BOUND);
  });
  test(`Resize-11 nearest, nearest_mode ${nearest}, ${COORDINATES[(i + 2) % COORDINATES.length]}, downsampling scales [1, 1, 0.5, 0.7]`, async () => {
    assertGradient(await resizeFd({ opset: 11, nearest, coordinates: COORDINATES[(i + 2) % COORDINATES.length], scales: [1, 1, 0.5, 0.7], seed: 20 + i }), BOUND);
  });
});

test('Resize-11 nearest, tf_half_pixel_for_nn, scales [1, 1, 1.7, 2.2]', async () => {
  assertGradient(await resizeFd({ opset: 11, coordinates: 'tf_half_pixel_for_nn', scales: [1, 1, 1.7, 2.2] }), BOUND);
});

for (const coordinates of ['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric']) {
  test(`Resize-11 linear, ${coordinates}, sizes 5×6 → 7×11`, async () => {
    assertGradient(await resizeFd({ opset: 11, mode: 'linear', coordinates, sizes: [1, 2, 7, 11], seed: 30 }), BOUND);
  });
}

test('Resize-12 linear, pytorch_half_pixel, downsampling to one row (length-1 output: coordinate 0)', async () => {
  assertGradient(await resizeFd({ opset: 12, mode: 'linear', coordinates: 'pytorch_half_pixel', sizes: [1, 2, 1, 4] }), BOUND);
});

// Resize-13: roi, scales and sizes optional.
test('Resize-13 linear, half_pixel, scales ×2 (F.interpolate bilinear, align_corners=False)', async () => {
  assertGradient(await resizeFd({ opset: 13, mode: 'linear', scales: [1, 1, 2, 2] }), BOUND);
});

test('Resize-13 linear, align_corners, sizes (F.interpolate bilinear, align_corners=True)', async () => {
  assertGradient(await resizeFd({ opset: 13, mode: 'linear', coordinates: 'align_corners', sizes: [1, 2, 9, 13] }), BOUND);
});

test('Resize-13 nearest, asymmetric, floor, scales ×2 (F.interpolate nearest as exported)', async () => {
  assertGradient(await resizeFd({ opset: 13, coordinates: 'asymmetric', nearest: 'floor', scales: [1, 1, 2, 2] }), BOUND);
});

test('Resize-13 linear on an NHWC tensor, scales [1, 1.5, 2, 1]', async () => {
  assertGradient(await resizeFd({ opset: 13, mode: 'linear', scales: [1, 1.5, 2, 1], xd: [1, 4, 5, 3] }), BOUND);
});

test('Resize-13 trilinear on [1, C, D, H, W], sizes', async () => {
  assertGradient(await resizeFd({ opset: 13, mode: 'linear', sizes: [1, 2, 5, 4, 6], xd: [1, 2, 3, 3, 4] }), BOUND);
});

test('Resize-13 linear on a rank-3 tensor [1, C, L], scales [1, 1, 2.5]', async () => {
  assertGradient(await resizeFd({ opset: 13, mode: 'linear', scales: [1, 1, 2.5], xd: [1, 3, 6] }), BOUND);
});

test('Resize-13 nearest on a rank-3 tensor, channels resized too, scales [1, 2, 1.5]', async () => {
  assertGradient(await resizeFd({ opset: 13, scales: [1, 2, 1.5], xd: [1, 3, 6] }), BOUND);
});

test('Resize-13 cubic, half_pixel, scales ×2 (bicubic; edge indices clamped)', async () => {
  assertGradient(await resizeFd({ opset: 13, mode: 'cubic', scales: [1, 1, 2, 2] }), BOUND);
});

test('Resize-13 cubic, align_corners, cubic_coeff_a −0.5, exclude_outside 1, sizes', async () => {
  const attrs = { cubic_coeff_a: { kind: 'float' as const, value: -0.5 }, exclude_outside: int(1) };
  assertGradient(await resizeFd({ opset: 13, mode: 'cubic', coordinates: 'align_corners', sizes: [1, 2, 8, 7], attrs }), BOUND);
});

test('Resize-13 cubic, asymmetric, downsampling sizes 5×6 → 3×4', async () => {
  assertGradient(await resizeFd({ opset: 13, mode: 'cubic', coordinates: 'asymmetric', sizes: [1, 2, 3, 4] }), BOUND);
});

// Resize-18: axes attribute, keep_aspect_ratio_policy.
test('Resize-18 linear with axes [2, 3] and scales for those axes only', async () => {
  assertGradient(await resizeFd({ opset: 18, mode: 'linear', scales: [1.5, 2], attrs: { axes: ints([2, 3]) } }), BOUND);
});

test('Resize-18 nearest with axes [−1] and sizes for the last axis only', async () => {
  assertGradient(await resizeFd({ opset: 18, sizes: [10], attrs: { axes: ints([-1]) } }), BOUND);
});

test('Resize-18 linear, keep_aspect_ratio_policy not_larger (one scale, the smaller of 8/5 and 20/6)', async () => {
  assertGradient(await resizeFd({ opset: 18, mode: 'linear', sizes: [8, 20], attrs: { axes: ints([2, 3]), keep_aspect_ratio_policy: str('not_larger') } }), BOUND);
});

test('Resize-18 nearest, keep_aspect_ratio_policy not_smaller, sizes for every axis', async () => {
  assertGradient(await resizeFd({ opset: 18, sizes: [1, 2, 6, 6], attrs: { keep_aspect_ratio_policy: str('not_smaller') } }), BOUND);
});

// Resize-19: half_pixel_symmetric.
test('Resize-19 linear, half_pixel_symmetric, scales [1, 1, 1.7, 2.5]', async () => {
  assertGradient(await resizeFd({ opset: 19, mode: 'linear', coordinates: 'half_pixel_symmetric', scales: [1, 1, 1.7, 2.5] }), BOUND);
});

test('Resize-19 nearest, half_pixel_symmetric, sizes 5×6 → 3×11', async () => {
  assertGradient(await resizeFd({ opset: 19, coordinates: 'half_pixel_symmetric', sizes: [1, 2, 3, 11] }), BOUND);
});

test('Resize-19 linear, half_pixel, same sizes as the input (the kernel copies)', async () => {
  assertGradient(await resizeFd({ opset: 19, mode: 'linear', sizes: XD }), BOUND);
});

// Upsample: scales attribute (7–8) or input (9); asymmetric coordinates, nearest index truncated.
async function upsampleFd(opset: number, mode: string, scales: number[]) {
  const attrs: Record<string, AttrValue> = { mode: str(mode) };
  const initializers: TensorProto[] = [];
  const inputs = ['x'];
  if (opset < 9) attrs.scales = { kind: 'floats', value: scales };
  else {
    initializers.push(floatTensor('scales', [4], scales));
    inputs.push('scales');
  }
  return fd({ nodes: [makeNode('Upsample', inputs, ['y'], attrs)], inputs: { x: [XD, uniform(count(XD), 40 + opset)] }, initializers, opset, eps: EPS });
}

test('Upsample-7 nearest, scales attribute [1, 1, 2, 2]', async () => {
  assertGradient(await upsampleFd(7, 'nearest', [1, 1, 2, 2]), BOUND);
});

test('Upsample-7 linear, scales attribute [1, 1, 2, 1.5]', async () => {
  assertGradient(await upsampleFd(7, 'linear', [1, 1, 2, 1.5]), BOUND);
});

test('Upsample-8 nearest, scales attribute [1, 1, 3, 1.5]', async () => {
  assertGradient(await upsampleFd(8, 'nearest', [1, 1, 3, 1.5]), BOUND);
});

test('Upsample-9 nearest, scales input [1, 1, 2, 2]', async () => {
  assertGradient(await upsampleFd(9, 'nearest', [1, 1, 2, 2]), BOUND);
});

test('Upsample-9 linear, scales input [1, 1, 1.5, 2.5]', async () => {
  assertGradient(await upsampleFd(9, 'linear', [1, 1, 1.5, 2.5]), BOUND);
});
