// Vector-Jacobian rules of resampling (Resize, Upsample): both are linear in x and separable by axis, so
// dX applies, per resized axis, the transpose of a constant interpolation matrix built from the static shapes.
import { attr, attrFloat, attrInt, attrInts, attrString } from '../../onnx/index.js';
import { applyAxisMapsT, count, normAxis, reduceSum, type AxisMap } from '../emit.js';
import type { VjpContext, VjpRule } from '../context.js';

type Mode = 'nearest' | 'linear' | 'cubic';

/** How one resampling node maps output coordinates to input ones, as onnxruntime's CPU kernel does. */
interface Sampling {
  mode: Mode;
  /** coordinate_transformation_mode ('asymmetric' before Resize-11 and for Upsample) */
  coordinates: string;
  /** nearest_mode; 'simple' before Resize-11 and for Upsample (truncate when upsampling, ceil when downsampling) */
  nearest: string;
  cubicA: number;
  excludeOutside: boolean;
  /** one scale per axis, float32 as the kernel uses them in the coordinate transforms */
  scales: number[];
}

const f32 = Math.fround;

/** The input coordinate of output index x along one axis, in float32 arithmetic as onnxruntime computes it. */
function originalCoordinate(s: Sampling, x: number, scale: number, outLen: number, inLen: number): number {
  switch (s.coordinates) {
    case 'asymmetric': return f32(x / scale);
    case 'pytorch_half_pixel': return outLen > 1 ? f32(f32(f32(x + 0.5) / scale) - 0.5) : 0;
    case 'tf_half_pixel_for_nn': return f32(f32(x + 0.5) / scale);
    case 'align_corners': return outLen === 1 ? 0 : f32(f32(x * (inLen - 1)) / (outLen - 1));
    case 'half_pixel_symmetric': {
      const adjustment = f32(outLen / f32(scale * inLen));
      const offset = f32(f32(inLen / 2) * f32(1 - adjustment));
      // The kernel adds the double literal 0.5 here, so this part is in double precision.
      return f32(offset + (x + 0.5) / scale - 0.5);
    }
    default: return f32(f32(f32(x + 0.5) / scale) - 0.5); // half_pixel
  }
}

/** std::round: halves away from zero. */
const roundAway = (v: number) => Math.sign(v) * Math.round(Math.abs(v));

/** The input index a nearest-mode output takes, before clamping. */
function nearestIndex(mode: string, xo: number, downsampling: boolean): number {
  switch (mode) {
    case 'simple': return downsampling ? Math.ceil(xo) : Math.trunc(xo);
    case 'round_prefer_ceil': return roundAway(xo);
    case 'floor': return Math.floor(xo);
    case 'ceil': return Math.ceil(xo);
    default: return xo === Math.trunc(xo) + 0.5 ? Math.floor(xo) : roundAway(xo); // round_prefer_floor
  }
}

/** Keys' cubic convolution weights of the four neighbours x0 − 1 .. x0 + 2 at fraction t (onnxruntime's GetCubicCoeffs). */
function cubicWeights(t: number, a: number): number[] {
  const s = Math.abs(t);
  return [
    ((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a,
    ((a + 2) * s - (a + 3)) * s * s + 1,
    ((a + 2) * (1 - s) - (a + 3)) * (1 - s) * (1 - s) + 1,
    ((a * (2 - s) - 5 * a) * (2 - s) + 8 * a) * (2 - s) - 4 * a,
  ];
}

/** The [outLen, inLen] interpolation matrix of one axis: y = M·x along it. */
function axisMatrix(s: Sampling, scale: number, inLen: number, outLen: number): Float32Array {
  const m = new Float32Array(outLen * inLen);
  const clamp = (i: number) => Math.min(Math.max(i, 0), inLen - 1);
  for (let o = 0; o < outLen; o++) {
    const xo = originalCoordinate(s, o, scale, outLen, inLen);
    const row = o * inLen;
    if (s.mode === 'nearest') {
      m[row + clamp(nearestIndex(s.nearest, xo, scale < 1))] = 1;
    } else if (s.mode === 'linear') {
      // Clamped to the input, then the two neighbours weighted by the distance to the other one.
      const v = Math.max(0, Math.min(xo, inLen - 1));
      const i1 = Math.min(Math.trunc(v), inLen - 1);
      const i2 = Math.min(i1 + 1, inLen - 1);
      if (i1 === i2) m[row + i1] = 1;
      else {
        m[row + i1] += f32(Math.abs(v - i2));
        m[row + i2] += f32(Math.abs(v - i1));
      }
    } else {
      // Cubic: four neighbours, indices clamped to the edge; exclude_outside drops the outside ones and
      // renormalises the rest.
      const x0 = Math.floor(xo);
      const w = cubicWeights(f32(xo - x0), s.cubicA);
      if (s.excludeOutside) for (let i = 0; i < 4; i++) if (x0 - 1 + i < 0 || x0 - 1 + i >= inLen) w[i] = 0;
      const sum = s.excludeOutside ? w.reduce((a, b) => a + b, 0) : 1;
      for (let i = 0; i < 4; i++) m[row + clamp(x0 - 1 + i)] += w[i] / sum;
    }
  }
  return m;
}

function isIdentity(m: Float32Array, n: number): boolean {
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (m[r * n + c] !== (r === c ? 1 : 0)) return false;
  return true;
}

/** The factor f when the matrix repeats each input f times in a row (integer-factor nearest upsampling), else 0. */
function repeatFactor(m: Float32Array, rows: number, cols: number): number {
  const f = rows / cols;
  if (!Number.isInteger(f) || f < 2) return 0;
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) if (m[r * cols + c] !== (c === Math.floor(r / f) ? 1 : 0)) return 0;
  return f;
}

/**
 * dX for a resampling of X (forward dims inDims) to Y (outDims). Axes that repeat each element f times
 * (nearest upsampling by an integer factor, the common case) are summed in one Reshape + ReduceSum; the
 * others apply Mᵀ by MatMul. Axes whose scale is 1 are untouched.
 */
function resampleGrad(ctx: VjpContext, dy: string, s: Sampling): string {
  const inDims = ctx.shape(ctx.node.input[0]);
  const outDims = ctx.shape(ctx.node.output[0]);
  if (s.scales.length !== inDims.length) ctx.fail(`${s.scales.length} scales for a rank-${inDims.length} input`);
  // Same dims everywhere: the kernel copies the input.
  if (inDims.every((d, i) => d === outDims[i])) return dy;
  const maps: AxisMap[] = [];
  const cur = [...outDims];
  const view: number[] = [-1];
  const repeated: number[] = [];
  for (let axis = 0; axis < inDims.length; axis++) {
    const rows = outDims[axis];
    const cols = inDims[axis];
    // A scale of exactly 1 maps index i to i (the kernel skips the coordinate transform).
    const matrix = s.scales[axis] === 1 && rows === cols ? undefined : axisMatrix(s, s.scales[axis], cols, rows);
    const f = matrix ? repeatFactor(matrix, rows, cols) : 0;
    if (axis > 0 && f > 0) {
      view.push(cols);
      repeated.push(view.length);
      view.push(f);
      cur[axis] = cols;
      continue;
    }
    if (axis > 0) view.push(rows);
    if (matrix && !(rows === cols && isIdentity(matrix, rows))) maps.push({ axis, matrix, rows, cols });
  }
  let g = dy;
  if (repeated.length) g = reduceSum(ctx, ctx.op('Reshape', [g, ctx.constI(view)]), repeated, false);
  // The largest reduction first keeps the intermediate gradients small.
  maps.sort((a, b) => a.cols / a.rows - b.cols / b.rows);
  return applyAxisMapsT(ctx, g, cur, maps);
}

function samplingMode(ctx: VjpContext): Mode {
  const mode = attrString(ctx.node, 'mode', 'nearest');
  if (mode === 'nearest' || mode === 'linear' || mode === 'cubic') return mode;
  if (mode === 'bilinear') return 'linear';
  return ctx.fail(`unknown interpolation mode "${mode}"`);
}

/** A constant float input the rule must read (a resampling's scales). */
function constantScales(ctx: VjpContext, name: string | undefined): number[] {
  if (!name) ctx.fail('the scales input is missing');
  if (ctx.needs(ctx.node.input.indexOf(name))) ctx.fail('the scales are on the differentiated path');
  return ctx.requireConstant(name, 'scales').map(f32);
}

/**
 * Upsample (opset 7–9; deprecated by Resize-10): scales as an attribute (7–8) or input (9), asymmetric
 * coordinates, nearest index truncated.
 */
const upsample: VjpRule = (ctx, [dy]) => {
  const given = attr(ctx.node, 'scales')?.floats;
  const scales = ctx.opset >= 9 ? constantScales(ctx, ctx.node.input[1]) : given ? given.map(f32) : ctx.fail('the scales attribute is missing');
  return [resampleGrad(ctx, dy!, { mode: samplingMode(ctx), coordinates: 'asymmetric', nearest: 'simple', cubicA: -0.75, excludeOutside: false, scales })];
};

/**
 * The per-axis scales a Resize uses in its coordinate transforms: the scales input when it is not empty
 * (spread over `axes` since opset 18), else out/in from the sizes, adjusted by keep_aspect_ratio_policy.
 */
function resizeScales(ctx: VjpContext, rank: number): number[] {
  const n = ctx.node;
  if (ctx.opset < 11) return constantScales(ctx, n.input[1]);
  const inDims = ctx.shape(n.input[0]);
  const outDims = ctx.shape(n.output[0]);
  const axes = ctx.opset >= 18 ? (attrInts(n, 'axes') ?? []).map((a) => normAxis(a, rank)) : [];
  const scalesName = n.input[2];
  if (scalesName && count(ctx.shape(scalesName)) > 0) {
    const given = constantScales(ctx, scalesName);
    if (axes.length === 0) return given;
    const full = Array<number>(rank).fill(1);
    axes.forEach((a, i) => { full[a] = given[i]; });
    return full;
  }
  if (!n.input[3]) ctx.fail('neither scales nor sizes are given');
  const policy = ctx.opset >= 18 ? attrString(n, 'keep_aspect_ratio_policy', 'stretch') : 'stretch';
  if (policy === 'stretch') return inDims.map((d, i) => (d === 0 ? 1 : f32(outDims[i] / d)));
  // not_larger / not_smaller: one scale, the smallest / largest of sizes/in over the resized axes.
  const sizes = ctx.requireConstant(n.input[3], 'sizes');
  const resized = axes.length ? axes : Array.from({ length: rank }, (_, i) => i);
  const requested = Array.from({ length: rank }, (_, i) => i).map((i) => {
    const k = axes.length ? axes.indexOf(i) : i;
    return k < 0 ? inDims[i] : sizes[k];
  });
  const ratios = resized.map((a) => f32(requested[a] / inDims[a]));
  const one = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
  return Array.from({ length: rank }, (_, i) => (resized.includes(i) ? one : 1));
}

/**
 * Resize (opset 10+): nearest with every nearest_mode, linear (bi-/trilinear) and cubic, with every
 * coordinate_transformation_mode but tf_crop_and_resize; scales or sizes (constant scales are needed:
 * the coordinate transforms use their exact values). Anti-aliasing (opset 18+) is refused.
 */
const resize: VjpRule = (ctx, [dy]) => {
  const n = ctx.node;
  const rank = ctx.shape(n.input[0]).length;
  const coordinates = ctx.opset >= 11 ? attrString(n, 'coordinate_transformation_mode', 'half_pixel') : 'asymmetric';
  if (coordinates === 'tf_crop_and_resize') ctx.fail('coordinate_transformation_mode tf_crop_and_resize (a crop by roi with extrapolation) is not supported');
  if (ctx.opset >= 18 && attrInt(n, 'antialias', 0) !== 0) ctx.fail('antialias = 1 (a wider filter when downsampling) is not supported');
  const mode = samplingMode(ctx);
  return [resampleGrad(ctx, dy!, {
    mode,
    coordinates,
    nearest: ctx.opset >= 11 ? attrString(n, 'nearest_mode', 'round_prefer_floor') : 'simple',
    cubicA: attrFloat(n, 'cubic_coeff_a', -0.75),
    excludeOutside: attrInt(n, 'exclude_outside', 0) === 1,
    scales: resizeScales(ctx, rank),
  })];
};

export const resizeRules: Record<string, VjpRule> = { Resize: resize, Upsample: upsample };
