// Vector-Jacobian rules of convolution, pooling and batch norm: input gradients are transposed convolutions
// (of the weight, a box kernel, or one-hot kernels routing each max's gradient); ConvTranspose's is a Conv.
import { attrInt, attrInts, attrString, type AttrValue, float, int, ints } from '../../onnx/index.js';
import { count, expandTo, scalar, select, slice, unsqueeze } from '../emit.js';
import type { VjpContext, VjpRule } from '../context.js';

export interface WindowGeometry {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** [begin..., end...] as ONNX writes pads */
  pads: number[];
}

/** Kernel, strides, dilations and explicit pads of a Conv/Pool node (auto_pad resolved from static shapes). */
export function windowGeometry(ctx: VjpContext, kernel: number[], inDims: number[], outDims: number[]): WindowGeometry {
  const n = kernel.length;
  const node = ctx.node;
  const strides = attrInts(node, 'strides') ?? Array(n).fill(1);
  const dilations = attrInts(node, 'dilations') ?? Array(n).fill(1);
  let pads = attrInts(node, 'pads') ?? Array(2 * n).fill(0);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  if (autoPad === 'VALID') pads = Array(2 * n).fill(0);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = Array(2 * n).fill(0);
    for (let i = 0; i < n; i++) {
      const inSize = inDims[2 + i];
      const total = Math.max(0, (outDims[2 + i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - inSize);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[n + i] = total - pads[i];
    }
  }
  return { kernel, strides, dilations, pads };
}

/**
 * Attributes of the ConvTranspose that maps a gradient of the window op's output (spatial dims `outDims`)
 * back onto its input (spatial dims `inDims`): same strides, dilations and pads, with output_padding
 * (or a larger end pad, for ceil-mode windows) chosen so the result has exactly the input's size.
 */
export function transposeAttrs(g: WindowGeometry, inDims: number[], outDims: number[], group: number): Record<string, AttrValue> {
  const n = g.kernel.length;
  const pads = [...g.pads];
  const outputPadding: number[] = [];
  for (let i = 0; i < n; i++) {
    const produced = g.strides[i] * (outDims[2 + i] - 1) + (g.kernel[i] - 1) * g.dilations[i] + 1 - pads[i] - pads[n + i];
    const extra = inDims[2 + i] - produced;
    if (extra >= 0) outputPadding.push(extra);
    else {
      outputPadding.push(0);
      pads[n + i] -= extra;
    }
  }
  return {
    kernel_shape: ints(g.kernel), strides: ints(g.strides), dilations: ints(g.dilations), pads: ints(pads),
    output_padding: ints(outputPadding), group: int(group),
  };
}

/** Conv: dX = ConvTranspose(dY, W) with the conv's strides, pads, dilations and groups. */
const conv: VjpRule = (ctx, [dy]) => {
  if (ctx.needs(1) || ctx.needs(2)) ctx.fail('the weights or bias are on the differentiated path');
  const [x, w] = ctx.node.input;
  const xd = ctx.shape(x);
  const yd = ctx.shape(ctx.node.output[0]);
  const wd = ctx.shape(w);
  const kernel = attrInts(ctx.node, 'kernel_shape') ?? wd.slice(2);
  const geom = windowGeometry(ctx, kernel, xd, yd);
  const group = attrInt(ctx.node, 'group', 1);
  return [ctx.op('ConvTranspose', [dy!, w], transposeAttrs(geom, xd, yd, group))];
};

/**
 * ConvTranspose: dX = Conv(dY, W) with the same strides, dilations and groups (the weight [C_in, C_out/g, k...]
 * is read by Conv as [M = C_in, C_out/g, k...]). Only the start pad matters: Y_j = Σ_i X_i·W[(j + pb − s·i)/d],
 * so the Conv pads dY by pb at the start and up to the last position any X reaches at the end (cropping
 * rows beyond it, which output_padding or output_shape add and no X feeds). The start pad is explicit, or,
 * with output_shape or auto_pad SAME_*, derived from the total trimmed off the full output as the spec
 * (and onnxruntime) split it: the odd one at the end for SAME_UPPER, at the start otherwise.
 */
const convTranspose: VjpRule = (ctx, [dy]) => {
  if (ctx.needs(1) || ctx.needs(2)) ctx.fail('the weights or bias are on the differentiated path');
  const n = ctx.node;
  const [x, w] = n.input;
  const xd = ctx.shape(x);
  const yd = ctx.shape(n.output[0]);
  const wd = ctx.shape(w);
  const kernel = attrInts(n, 'kernel_shape') ?? wd.slice(2);
  const rank = kernel.length;
  const strides = attrInts(n, 'strides') ?? Array<number>(rank).fill(1);
  const dilations = attrInts(n, 'dilations') ?? Array<number>(rank).fill(1);
  const outputPadding = attrInts(n, 'output_padding') ?? Array<number>(rank).fill(0);
  const outputShape = attrInts(n, 'output_shape');
  const autoPad = attrString(n, 'auto_pad', 'NOTSET');
  const head = (i: number): number => {
    if (autoPad === 'VALID') return 0;
    if ((outputShape && outputShape.length > 0) || autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
      // The padding that trims the full output to the requested size (output_shape, or in·stride for SAME).
      const full = strides[i] * (xd[2 + i] - 1) + outputPadding[i] + (kernel[i] - 1) * dilations[i] + 1;
      const total = Math.max(0, full - yd[2 + i]);
      return autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : total - Math.floor(total / 2);
    }
    return (attrInts(n, 'pads') ?? [])[i] ?? 0;
  };
  const begin: number[] = [];
  const end: number[] = [];
  const crop: number[] = [];
  for (let i = 0; i < rank; i++) {
    const pb = head(i);
    // One past the last output position an input element reaches.
    const reach = strides[i] * (xd[2 + i] - 1) + (kernel[i] - 1) * dilations[i] + 1 - pb;
    begin.push(pb);
    end.push(Math.max(0, reach - yd[2 + i]));
    crop.push(Math.min(reach, yd[2 + i]));
  }
  const axes = crop.map((_, i) => 2 + i).filter((a) => crop[a - 2] < yd[a]);
  const g = axes.length ? slice(ctx, dy!, axes.map(() => 0), axes.map((a) => crop[a - 2]), axes) : dy!;
  return [ctx.op('Conv', [g, w], {
    kernel_shape: ints(kernel), strides: ints(strides), dilations: ints(dilations), pads: ints([...begin, ...end]),
    group: int(attrInt(n, 'group', 1)),
  })];
};

/** GlobalAveragePool: dX = dY / (H·W), broadcast over the spatial axes. */
const globalAveragePool: VjpRule = (ctx, [dy]) => {
  const xd = ctx.shape(ctx.node.input[0]);
  return [expandTo(ctx, ctx.op('Mul', [dy!, scalar(ctx, 1 / count(xd.slice(2)))]), xd)];
};

/** GlobalMaxPool: dX = dY where x is its channel's maximum (x ≥ y), else 0; ties each get the gradient. */
const globalMaxPool: VjpRule = (ctx, [dy]) => {
  const mask = ctx.op('Not', [ctx.op('Less', [ctx.node.input[0], ctx.node.output[0]])]);
  return [select(ctx, mask, dy!, 0)];
};

/** For every output position, how many input elements its window averaged over (ONNX/PyTorch semantics). */
function averageDivisors(geom: WindowGeometry, inDims: number[], outDims: number[], countIncludePad: boolean): Float32Array {
  const n = geom.kernel.length;
  const outSpatial = outDims.slice(2);
  const total = outSpatial.reduce((a, b) => a * b, 1);
  const div = new Float32Array(total);
  const idx = Array(n).fill(0);
  for (let flat = 0; flat < total; flat++) {
    let rem = flat;
    for (let i = n - 1; i >= 0; i--) {
      idx[i] = rem % outSpatial[i];
      rem = Math.floor(rem / outSpatial[i]);
    }
    let taps = 1;
    for (let i = 0; i < n; i++) {
      const start = idx[i] * geom.strides[i] - geom.pads[i];
      const lo = countIncludePad ? -geom.pads[i] : 0;
      const hi = countIncludePad ? inDims[2 + i] + geom.pads[n + i] : inDims[2 + i];
      // Window taps start + j·dilation, j < kernel, that fall inside [lo, hi).
      let inside = 0;
      for (let j = 0; j < geom.kernel[i]; j++) {
        const p = start + j * geom.dilations[i];
        if (p >= lo && p < hi) inside++;
      }
      taps *= inside;
    }
    div[flat] = taps > 0 ? 1 / taps : 0;
  }
  return div;
}

/** AveragePool (any rank, dilations of opset 19): dX = ConvTranspose(dY / divisor, box kernel of ones) per channel. */
const averagePool: VjpRule = (ctx, [dy]) => {
  const x = ctx.node.input[0];
  const xd = ctx.shape(x);
  const yd = ctx.shape(ctx.node.output[0]);
  const kernel = attrInts(ctx.node, 'kernel_shape')!;
  const geom = windowGeometry(ctx, kernel, xd, yd);
  const channels = xd[1];
  const inv = averageDivisors(geom, xd, yd, attrInt(ctx.node, 'count_include_pad', 0) === 1);
  const scaled = ctx.op('Mul', [dy!, ctx.constF(inv, [1, 1, ...yd.slice(2)])]);
  const w = ctx.constF(new Float32Array(channels * count(kernel)).fill(1), [channels, 1, ...kernel]);
  return [ctx.op('ConvTranspose', [scaled, w], transposeAttrs(geom, xd, yd, channels))];
};

/** a mod m for non-negative int64 a (Mod exists since opset 10; before, a − (a / m)·m). */
function modulo(ctx: VjpContext, a: string, m: number): string {
  const mc = ctx.constI([m], []);
  if (ctx.opset >= 10) return ctx.op('Mod', [a, mc]);
  return ctx.op('Sub', [a, ctx.op('Mul', [ctx.op('Div', [a, mc]), mc])]);
}

/** An int64 constant that varies along one axis of a rank-`rank` tensor and broadcasts along the others. */
function alongAxis(ctx: VjpContext, values: number[], axis: number, rank: number): string {
  const dims = Array<number>(rank).fill(1);
  dims[axis] = values.length;
  return ctx.constI(values, dims);
}

/**
 * For each output of a MaxPool, the offset (0..kk−1, row-major in the window) of the input element its
 * maximum came from, from the Indices output of a MaxPool re-run on the input (opset 8+). An index is the
 * flat position in the input; its coordinate along each spatial axis, minus the window start, divided by
 * the dilation, is the offset along that axis.
 */
function offsetsFromIndices(ctx: VjpContext, x: string, geom: WindowGeometry, inSp: number[], outSp: number[]): string {
  const n = inSp.length;
  const rank = n + 2;
  const attrs: Record<string, AttrValue | undefined> = {
    kernel_shape: ints(geom.kernel), strides: ints(geom.strides), pads: ints(geom.pads),
  };
  // dilations and ceil_mode exist since MaxPool-10; earlier opsets reject them as unknown attributes.
  if (ctx.opset >= 10) {
    attrs.dilations = ints(geom.dilations);
    attrs.ceil_mode = int(attrInt(ctx.node, 'ceil_mode', 0));
  }
  // Indices are row-major (storage_order 0, the default) whatever the forward node asked for.
  const [, indices] = ctx.emit('MaxPool', [x], attrs, 2);
  const pos = modulo(ctx, indices, count(inSp));
  let offset: string | undefined;
  for (let i = 0; i < n; i++) {
    const stride = count(inSp.slice(i + 1));
    let coord = stride > 1 ? ctx.op('Div', [pos, ctx.constI([stride], [])]) : pos;
    if (i > 0) coord = modulo(ctx, coord, inSp[i]);
    const start = alongAxis(ctx, Array.from({ length: outSp[i] }, (_, o) => o * geom.strides[i] - geom.pads[i]), 2 + i, rank);
    let d = ctx.op('Sub', [coord, start]);
    if (geom.dilations[i] !== 1) d = ctx.op('Div', [d, ctx.constI([geom.dilations[i]], [])]);
    const weight = count(geom.kernel.slice(i + 1));
    if (weight !== 1) d = ctx.op('Mul', [d, ctx.constI([weight], [])]);
    offset = offset ? ctx.op('Add', [offset, d]) : d;
  }
  return offset!;
}

/**
 * The same offsets without an Indices output (MaxPool before opset 8 has none, nor dilations or ceil mode):
 * the windows are gathered by a grouped Conv with one-hot kernels over the input padded with the lowest
 * float, and the first window element equal to the output (ArgMax of the matches) is the offset.
 */
function offsetsByComparison(ctx: VjpContext, x: string, y: string, geom: WindowGeometry, C: number, outSp: number[]): string {
  const n = geom.kernel.length;
  const kk = count(geom.kernel);
  const padded = ctx.op('Pad', [x], { pads: ints([0, 0, ...geom.pads.slice(0, n), 0, 0, ...geom.pads.slice(n)]), value: float(-3.4028234663852886e38) });
  const oneHot = new Float32Array(C * kk * kk);
  for (let c = 0; c < C; c++) for (let o = 0; o < kk; o++) oneHot[(c * kk + o) * kk + o] = 1;
  const windows = ctx.op('Conv', [padded, ctx.constF(oneHot, [C * kk, 1, ...geom.kernel])], {
    kernel_shape: ints(geom.kernel), strides: ints(geom.strides), group: int(C),
  });
  const stacked = ctx.op('Reshape', [windows, ctx.constI([1, C, kk, ...outSp])]);
  // An element ≥ the window's maximum is equal to it.
  const hits = ctx.op('Cast', [ctx.op('Not', [ctx.op('Less', [stacked, unsqueeze(ctx, y, [2])])])], { to: int(1) });
  return ctx.op('ArgMax', [hits], { axis: int(2), keepdims: int(0) });
}

/**
 * MaxPool (1-D, 2-D, 3-D): the gradient of each output goes to the input element its maximum came from.
 * Each output's window offset (0..kk−1) is found (offsetsFromIndices / offsetsByComparison); the gradient
 * is split into kk masked channels per input channel and put back by a grouped ConvTranspose whose
 * kernels are one-hot at each offset (overlapping windows add up, as they must).
 */
const maxPool: VjpRule = (ctx, [dy]) => {
  const [x] = ctx.node.input;
  const y = ctx.node.output[0];
  const xd = ctx.shape(x);
  const yd = ctx.shape(y);
  if (xd.length < 3) ctx.fail('max pooling needs spatial axes');
  const kernel = attrInts(ctx.node, 'kernel_shape')!;
  const geom = windowGeometry(ctx, kernel, xd, yd);
  const C = xd[1];
  const inSp = xd.slice(2);
  const outSp = yd.slice(2);
  const kk = count(kernel);
  const offset = ctx.opset >= 8 ? offsetsFromIndices(ctx, x, geom, inSp, outSp) : offsetsByComparison(ctx, x, y, geom, C, outSp);

  const offsets = alongAxis(ctx, Array.from({ length: kk }, (_, i) => i), 2, xd.length + 1);
  const mask = ctx.op('Cast', [ctx.op('Equal', [unsqueeze(ctx, offset, [2]), offsets])], { to: int(1) });
  const routed = ctx.op('Mul', [unsqueeze(ctx, dy!, [2]), mask]);
  const stacked = ctx.op('Reshape', [routed, ctx.constI([-1, C * kk, ...outSp])]);

  const oneHot = new Float32Array(C * kk * kk);
  for (let c = 0; c < C; c++) for (let o = 0; o < kk; o++) oneHot[(c * kk + o) * kk + o] = 1;
  const weight = ctx.constF(oneHot, [C * kk, 1, ...kernel]);
  return [ctx.op('ConvTranspose', [stacked, weight], transposeAttrs(geom, xd, yd, C))];
};

/** BatchNormalization (inference): dX = dY ⊙ scale / √(var + ε), per channel. */
const batchNorm: VjpRule = (ctx, [dy]) => {
  if ([1, 2, 3, 4].some((i) => ctx.needs(i))) ctx.fail('the batch-norm parameters are on the differentiated path');
  if (attrInt(ctx.node, 'training_mode', 0) === 1) ctx.fail('training-mode batch normalization is not supported');
  const [x, scale, , , variance] = ctx.node.input;
  const xd = ctx.shape(x);
  const eps = ctx.node.attribute?.find((a) => a.name === 'epsilon')?.f ?? 1e-5;
  const factor = ctx.op('Div', [scale, ctx.op('Sqrt', [ctx.op('Add', [variance, scalar(ctx, eps)])])]);
  // spatial = 0 (opsets 7–8): the statistics are per activation, [C, D1, ...], not per channel.
  const perActivation = ctx.opset < 9 && attrInt(ctx.node, 'spatial', 1) === 0;
  const bshape = perActivation ? [1, ...ctx.shape(scale)] : [1, xd[1], ...Array(xd.length - 2).fill(1)];
  const f = ctx.op('Reshape', [factor, ctx.constI(bshape)]);
  return [ctx.op('Mul', [dy!, f])];
};

export const convRules: Record<string, VjpRule> = {
  Conv: conv,
  ConvTranspose: convTranspose,
  GlobalAveragePool: globalAveragePool,
  GlobalMaxPool: globalMaxPool,
  AveragePool: averagePool,
  MaxPool: maxPool,
  BatchNormalization: batchNorm,
};
