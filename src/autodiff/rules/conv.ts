// Vector-Jacobian rules of convolution and pooling. Each input gradient is a ConvTranspose: of the
// conv weight (Conv), of a constant box kernel (AveragePool) or of one-hot kernels that route each
// output's gradient to the input position its max came from (MaxPool).
import { attrInt, attrInts, attrString, type AttrValue, int, ints } from '../../onnx/index.js';
import { expandTo, scalar, unsqueeze } from '../emit.js';
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

/** GlobalAveragePool: dX = dY / (H·W), broadcast over the spatial axes. */
const globalAveragePool: VjpRule = (ctx, [dy]) => {
  const xd = ctx.shape(ctx.node.input[0]);
  const count = xd.slice(2).reduce((a, b) => a * b, 1);
  return [expandTo(ctx, ctx.op('Mul', [dy!, scalar(ctx, 1 / count)]), xd)];
};

/** GlobalMaxPool: dX = dY where x is its channel's maximum (x ≥ y), else 0; ties each get the gradient. */
const globalMaxPool: VjpRule = (ctx, [dy]) => {
  const mask = ctx.op('Not', [ctx.op('Less', [ctx.node.input[0], ctx.node.output[0]])]);
  return [ctx.op('Where', [mask, dy!, scalar(ctx, 0)])];
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
    let count = 1;
    for (let i = 0; i < n; i++) {
      const start = idx[i] * geom.strides[i] - geom.pads[i];
      const end = start + geom.kernel[i];
      const lo = countIncludePad ? -geom.pads[i] : 0;
      const hi = countIncludePad ? inDims[2 + i] + geom.pads[n + i] : inDims[2 + i];
      count *= Math.max(0, Math.min(end, hi) - Math.max(start, lo));
    }
    div[flat] = count > 0 ? 1 / count : 0;
  }
  return div;
}

/** AveragePool: dX = ConvTranspose(dY / divisor, box kernel of ones) per channel. */
const averagePool: VjpRule = (ctx, [dy]) => {
  const x = ctx.node.input[0];
  const xd = ctx.shape(x);
  const yd = ctx.shape(ctx.node.output[0]);
  const kernel = attrInts(ctx.node, 'kernel_shape')!;
  const geom = windowGeometry(ctx, kernel, xd, yd);
  if (geom.dilations.some((d) => d !== 1)) ctx.fail('dilated average pooling is not supported');
  const channels = xd[1];
  const inv = averageDivisors(geom, xd, yd, attrInt(ctx.node, 'count_include_pad', 0) === 1);
  const scaled = ctx.op('Mul', [dy!, ctx.constF(inv, [1, 1, ...yd.slice(2)])]);
  const kSize = kernel.reduce((a, b) => a * b, 1);
  const w = ctx.constF(new Float32Array(channels * kSize).fill(1), [channels, 1, ...kernel]);
  return [ctx.op('ConvTranspose', [scaled, w], transposeAttrs(geom, xd, yd, channels))];
};

/** a mod m for non-negative int64 a (Mod exists since opset 10; before, a − (a / m)·m). */
function modulo(ctx: VjpContext, a: string, m: number): string {
  const mc = ctx.constI([m], []);
  if (ctx.opset >= 10) return ctx.op('Mod', [a, mc]);
  return ctx.op('Sub', [a, ctx.op('Mul', [ctx.op('Div', [a, mc]), mc])]);
}

/**
 * MaxPool: the gradient of each output goes to the input element its maximum came from. A MaxPool
 * with the Indices output is re-run on the input; each output's window offset (0..kh·kw−1) is derived
 * from the index; the gradient is split into kh·kw masked channels per input channel and put back by a
 * grouped ConvTranspose whose kernels are one-hot at each offset (overlapping windows add up, as they must).
 */
const maxPool: VjpRule = (ctx, [dy]) => {
  const x = ctx.node.input[0];
  const xd = ctx.shape(x);
  const yd = ctx.shape(ctx.node.output[0]);
  if (xd.length !== 4) ctx.fail('only 2-D max pooling is supported');
  if (attrInt(ctx.node, 'storage_order', 0) !== 0) ctx.fail('storage_order = 1 is not supported');
  const kernel = attrInts(ctx.node, 'kernel_shape')!;
  const geom = windowGeometry(ctx, kernel, xd, yd);
  const [, C, H, W] = xd;
  const [, , Ho, Wo] = yd;
  const [kh, kw] = kernel;
  const kk = kh * kw;

  const attrs: Record<string, AttrValue | undefined> = {
    kernel_shape: ints(kernel), strides: ints(geom.strides), pads: ints(geom.pads),
  };
  // dilations and ceil_mode exist since MaxPool-10; earlier opsets reject them as unknown attributes.
  if (ctx.opset >= 10) {
    attrs.dilations = ints(geom.dilations);
    attrs.ceil_mode = int(attrInt(ctx.node, 'ceil_mode', 0));
  }
  const [, indices] = ctx.emit('MaxPool', [x], attrs, 2);

  // Spatial position of each maximum, then its offset inside its window.
  const pos = modulo(ctx, indices, H * W);
  const h = ctx.op('Div', [pos, ctx.constI([W], [])]);
  const w = modulo(ctx, pos, W);
  const rowStart = ctx.constI(Array.from({ length: Ho }, (_, i) => i * geom.strides[0] - geom.pads[0]), [1, 1, Ho, 1]);
  const colStart = ctx.constI(Array.from({ length: Wo }, (_, i) => i * geom.strides[1] - geom.pads[1]), [1, 1, 1, Wo]);
  const dh = ctx.op('Div', [ctx.op('Sub', [h, rowStart]), ctx.constI([geom.dilations[0]], [])]);
  const dw = ctx.op('Div', [ctx.op('Sub', [w, colStart]), ctx.constI([geom.dilations[1]], [])]);
  const offset = ctx.op('Add', [ctx.op('Mul', [dh, ctx.constI([kw], [])]), dw]);

  const offsets = ctx.constI(Array.from({ length: kk }, (_, i) => i), [1, 1, kk, 1, 1]);
  const mask = ctx.op('Cast', [ctx.op('Equal', [unsqueeze(ctx, offset, [2]), offsets])], { to: int(1) });
  const routed = ctx.op('Mul', [unsqueeze(ctx, dy!, [2]), mask]);
  const stacked = ctx.op('Reshape', [routed, ctx.constI([-1, C * kk, Ho, Wo])]);

  const oneHot = new Float32Array(C * kk * kk);
  for (let c = 0; c < C; c++) for (let o = 0; o < kk; o++) oneHot[(c * kk + o) * kk + o] = 1;
  const weight = ctx.constF(oneHot, [C * kk, 1, kh, kw]);
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
  const bshape = [1, xd[1], ...Array(xd.length - 2).fill(1)];
  const f = ctx.op('Reshape', [factor, ctx.constI(bshape)]);
  return [ctx.op('Mul', [dy!, f])];
};

export const convRules: Record<string, VjpRule> = {
  Conv: conv,
  GlobalAveragePool: globalAveragePool,
  GlobalMaxPool: globalMaxPool,
  AveragePool: averagePool,
  MaxPool: maxPool,
  BatchNormalization: batchNorm,
};
