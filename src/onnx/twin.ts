// The float twin of a model that onnxruntime can run but camserve cannot differentiate as it is:
// quantized models (dynamic: DynamicQuantizeLinear + ConvInteger/MatMulInteger; static QDQ:
// QuantizeLinear/DequantizeLinear pairs; QOperator: QLinearConv, QLinearMatMul, QGemm and the
// com.microsoft QLinear* ops) and float16/bfloat16 models. Built once at load, as a new model whose
// tensors keep their names:
//   · integer weights × scale become float initializers (per-tensor or per-axis);
//   · a QLinear op becomes its float op followed by a Clip to the range its output can represent (what
//     the quantized op's saturation does: a fused ReLU survives as the Clip at zero), without rounding;
//   · QuantizeLinear on an activation becomes that Clip, DequantizeLinear an Identity (straight-through);
//   · DynamicQuantizeLinear passes its input on with scale 1 and zero point 0, so the integer ops after
//     it compute in real values and the scale products that follow stay right;
//   · float16/bfloat16 initializers, constants, Casts, inputs and outputs become float32.
import Long from 'long';
import { ModelError } from '../errors/index.js';
import { floatTensor, float, makeNode } from './builder.js';
import { attr, attrInt, bfloat16ToFloat, halfToFloat, type OnnxModel, type TensorValue } from './model.js';
import { DataType, toInt, type AttributeProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.js';
import { spliceModel } from './splice.js';

/** Ops of quantized models that the twin replaces. */
export const QUANTIZED_OPS = new Set([
  'QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'ConvInteger', 'MatMulInteger', 'QLinearConv', 'QLinearMatMul',
  'QGemm', 'QLinearAdd', 'QLinearMul', 'QLinearGlobalAveragePool', 'QLinearAveragePool', 'QLinearConcat', 'QLinearSigmoid',
  'QLinearLeakyRelu', 'QLinearSoftmax',
]);

const HALF_TYPES = new Set<number>([DataType.FLOAT16, DataType.BFLOAT16]);

export type TwinKind = 'float twin' | 'fp32 twin';

export interface ModelPrecision {
  /** op types of quantized arithmetic found in the graph */
  quantizedOps: string[];
  /** float16 or bfloat16 inputs, outputs, initializers, constants or casts */
  halfPrecision: boolean;
}

export interface FloatTwin {
  bytes: Uint8Array;
  kind: TwinKind;
  precision: ModelPrecision;
  /** what was rewritten, counted (for logs and GET /models/{id}) */
  notes: string[];
}

/** What, if anything, keeps `model` from being differentiated as it is. */
export function modelPrecision(model: OnnxModel): ModelPrecision {
  const ops = new Set<string>();
  let half = [...model.graph.input, ...model.graph.output].some((v) => HALF_TYPES.has(v.type?.tensor_type?.elem_type ?? 0));
  for (const t of model.graph.initializer) if (HALF_TYPES.has(t.data_type ?? 0)) half = true;
  for (const n of model.nodes) {
    if (QUANTIZED_OPS.has(n.op_type)) ops.add(n.op_type);
    if (n.op_type === 'Cast' && HALF_TYPES.has(attrInt(n, 'to', 0))) half = true;
    if (n.op_type === 'Constant' && HALF_TYPES.has(attr(n, 'value')?.t?.data_type ?? 0)) half = true;
  }
  return { quantizedOps: [...ops].sort(), halfPrecision: half };
}

interface QuantRange { lo: number; hi: number }

/** Representable integer range of a quantized tensor whose zero point has `type` (uint8 without one). */
function integerRange(type: number | undefined): QuantRange {
  switch (type) {
    case DataType.INT8: return { lo: -128, hi: 127 };
    case DataType.UINT16: return { lo: 0, hi: 65535 };
    case DataType.INT16: return { lo: -32768, hi: 32767 };
    case DataType.INT32: return { lo: -(2 ** 31), hi: 2 ** 31 - 1 };
    default: return { lo: 0, hi: 255 };
  }
}

function numbers(v: TensorValue): number[] {
  return Array.from(v.data as ArrayLike<number | bigint>, (x) => Number(x));
}

/**
 * Builds the twin, or returns undefined when the model needs none. ModelError naming the op and node
 * for a quantized form it does not know.
 */
export async function buildFloatTwin(model: OnnxModel): Promise<FloatTwin | undefined> {
  const precision = modelPrecision(model);
  if (precision.quantizedOps.length === 0 && !precision.halfPrecision) return undefined;
  const opset = model.opset;
  const nodes: (number | NodeProto)[] = [];
  const added: TensorProto[] = [];
  /** real values of constants the twin computed (dequantized weights), by tensor name */
  const folded = new Map<string, { dims: number[]; data: Float32Array }>();
  /** tensors produced by DynamicQuantizeLinear: real values with scale 1 */
  const dynamic = new Set<string>();
  /** per-tensor quantization of activations that the twin turned into real values */
  const qparams = new Map<string, { scale: number; zeroPoint: number }>();
  const counts = new Map<string, number>();
  const count = (what: string) => counts.set(what, (counts.get(what) ?? 0) + 1);
  let fresh = 0;
  const tmp = (hint: string) => `camserve/twin/${hint}_${fresh++}`;

  const fail = (n: NodeProto, why: string): never => {
    throw new ModelError(`cannot build the float twin of ${model.file}: ${model.nodeLabel(n)}: ${why}`, { op: n.op_type, node: n.name || n.output[0] });
  };
  const constant = async (name: string | undefined): Promise<TensorValue | undefined> => {
    if (!name) return undefined;
    const f = folded.get(name);
    if (f) return { dims: f.dims, data: f.data, dataType: DataType.FLOAT };
    return model.isConstant(name) ? model.constantValue(name) : undefined;
  };
  const requireConstant = async (n: NodeProto, name: string | undefined, what: string): Promise<TensorValue> => {
    const v = await constant(name);
    if (!v) fail(n, `its ${what} ("${name ?? ''}") must be a constant`);
    return v!;
  };
  /** An integer constant is raw (to dequantize); a float or a folded one is real already. */
  const isRawInteger = (name: string, v: TensorValue) => !folded.has(name) && v.dataType !== DataType.FLOAT && v.dataType !== DataType.FLOAT16 && v.dataType !== DataType.DOUBLE && v.dataType !== DataType.BFLOAT16;

  /** (q − zp) · scale, per tensor or along `axis`. */
  const dequantize = (n: NodeProto, q: TensorValue, scale: TensorValue, zp: TensorValue | undefined, axis: number): Float32Array => {
    const s = numbers(scale);
    const z = zp ? numbers(zp) : [0];
    const data = numbers(q);
    const out = new Float32Array(data.length);
    if (s.length === 1) {
      for (let i = 0; i < data.length; i++) out[i] = (data[i] - z[0]) * s[0];
      return out;
    }
    const ax = axis < 0 ? axis + q.dims.length : axis;
    if (q.dims[ax] !== s.length) fail(n, `a per-axis scale of ${s.length} values does not match axis ${axis} of dims [${q.dims.join(', ')}] (blocked quantization is not supported)`);
    const inner = q.dims.slice(ax + 1).reduce((a, b) => a * b, 1);
    for (let i = 0; i < data.length; i++) {
      const c = Math.floor(i / inner) % s.length;
      out[i] = (data[i] - (z.length > 1 ? z[c] : z[0])) * s[c];
    }
    return out;
  };
  const foldConstant = (name: string, dims: number[], data: Float32Array) => {
    folded.set(name, { dims, data });
    added.push(floatTensor(name, dims, data));
  };

  /** A tensor's real value in the twin: activations are real already; raw integer constants are dequantized here. */
  const realInput = async (n: NodeProto, name: string, scaleName: string | undefined, zpName: string | undefined, axis = 1): Promise<string> => {
    const v = await constant(name);
    if (!v || !isRawInteger(name, v)) return name;
    const scale = await requireConstant(n, scaleName, 'scale');
    const zp = await constant(zpName);
    const out = `camserve/twin/${name}`;
    if (!folded.has(out)) foldConstant(out, v.dims, dequantize(n, v, scale, zp, axis));
    return out;
  };

  /** The float op, then a Clip to the range the quantized output can hold (by its scale and zero point). */
  const withSaturation = async (n: NodeProto, float: NodeProto, scaleName: string | undefined, zpName: string | undefined, out: string) => {
    const scale = scaleName ? await constant(scaleName) : undefined;
    if (!scale) {
      float.output = [out];
      nodes.push(float);
      return;
    }
    const s = numbers(scale);
    const zpv = await constant(zpName);
    const z = zpv ? numbers(zpv) : [0];
    if (s.length !== 1 || z.length !== 1) {
      float.output = [out];
      nodes.push(float);
      return;
    }
    const range = integerRange(zpv?.dataType);
    const mid = `${out}/before_clip`;
    float.output = [mid];
    nodes.push(float);
    pushClip(mid, out, (range.lo - z[0]) * s[0], (range.hi - z[0]) * s[0]);
    qparams.set(out, { scale: s[0], zeroPoint: z[0] });
  };
  const pushClip = (input: string, out: string, lo: number, hi: number) => {
    if (opset >= 11) {
      const lo_ = tmp('min');
      const hi_ = tmp('max');
      added.push(floatTensor(lo_, [], [lo]), floatTensor(hi_, [], [hi]));
      nodes.push(makeNode('Clip', [input, lo_, hi_], [out]));
    } else {
      nodes.push(makeNode('Clip', [input], [out], { min: float(lo), max: float(hi) }));
    }
  };
  const floatNode = (n: NodeProto, op: string, inputs: string[], keepAttrs: (a: AttributeProto) => boolean = () => true): NodeProto => ({
    op_type: op, input: inputs, output: [], name: n.name ? `${n.name}/float` : undefined, attribute: (n.attribute ?? []).filter(keepAttrs),
  });
  /** Bias of an integer op: int32 with scale a_scale × b_scale[c] (zero point 0). */
  const realBias = async (n: NodeProto, name: string | undefined, aScale: string, bScale: string): Promise<string | undefined> => {
    if (!name) return undefined;
    const v = await requireConstant(n, name, 'bias');
    if (!isRawInteger(name, v)) return name;
    const a = numbers(await requireConstant(n, aScale, 'input scale'));
    const b = numbers(await requireConstant(n, bScale, 'weight scale'));
    const data = numbers(v);
    const out = `camserve/twin/${name}`;
    if (!folded.has(out)) foldConstant(out, v.dims, Float32Array.from(data, (x, i) => x * a[0] * (b.length > 1 ? b[i % b.length] : b[0])));
    return out;
  };

  for (let i = 0; i < model.nodes.length; i++) {
    const n = model.nodes[i];
    const inp = n.input;
    const domain = n.domain ?? '';
    const ms = domain === 'com.microsoft';
    if (domain !== '' && domain !== 'ai.onnx' && !ms) {
      nodes.push(i);
      continue;
    }
    switch (n.op_type) {
      case 'DequantizeLinear': {
        const v = await constant(inp[0]);
        if (v && isRawInteger(inp[0], v)) {
          if (attrInt(n, 'block_size', 0) > 0) fail(n, 'blocked quantization is not supported');
          const scale = await requireConstant(n, inp[1], 'scale');
          foldConstant(n.output[0], v.dims, dequantize(n, v, scale, await constant(inp[2]), attrInt(n, 'axis', 1)));
          count('weights dequantized');
        } else {
          nodes.push(makeNode('Identity', [inp[0]], [n.output[0]], {}, n.name));
          count('DequantizeLinear made straight-through');
        }
        continue;
      }
      case 'QuantizeLinear': {
        const v = await constant(inp[0]);
        const scale = await constant(inp[1]);
        const zp = await constant(inp[2]);
        if (v) {
          // A quantized constant: its real value is the constant itself (rounding aside).
          foldConstant(n.output[0], v.dims, Float32Array.from(numbers(v)));
          continue;
        }
        const s = scale ? numbers(scale) : [];
        const z = zp ? numbers(zp) : [0];
        if (s.length === 1 && z.length <= 1) {
          const range = integerRange(zp?.dataType ?? (attrInt(n, 'output_dtype', 0) || undefined));
          pushClip(inp[0], n.output[0], (range.lo - z[0]) * s[0], (range.hi - z[0]) * s[0]);
          qparams.set(n.output[0], { scale: s[0], zeroPoint: z[0] });
        } else {
          nodes.push(makeNode('Identity', [inp[0]], [n.output[0]], {}, n.name));
        }
        count('QuantizeLinear made straight-through (a Clip to its range)');
        continue;
      }
      case 'DynamicQuantizeLinear': {
        const [y, yScale, yZp] = n.output;
        nodes.push(makeNode('Identity', [inp[0]], [y], {}, n.name));
        dynamic.add(y);
        if (yScale) added.push(floatTensor(yScale, [], [1]));
        if (yZp) added.push({ name: yZp, dims: [], data_type: DataType.UINT8, raw_data: Uint8Array.of(0) });
        count('DynamicQuantizeLinear made straight-through');
        continue;
      }
      case 'ConvInteger': case 'MatMulInteger': {
        // Integer ops read (x − x_zp) and (w − w_zp); after a straight-through DynamicQuantizeLinear, x is
        // real with scale 1 and zero point 0, so w − w_zp (unscaled) keeps the scale product after them right.
        const realOperand = async (name: string, zpName: string | undefined, axis: number): Promise<string> => {
          if (dynamic.has(name)) return name;
          const v = await constant(name);
          if (!v || !isRawInteger(name, v)) fail(n, `input "${name}" is neither a constant nor the output of DynamicQuantizeLinear`);
          const out = `camserve/twin/${name}`;
          if (!folded.has(out)) foldConstant(out, v!.dims, dequantize(n, v!, { dims: [], data: Float32Array.of(1), dataType: DataType.FLOAT }, await constant(zpName), axis));
          return out;
        };
        const conv = n.op_type === 'ConvInteger';
        const a = await realOperand(inp[0], inp[2], 0);
        const b = await realOperand(inp[1], inp[3], conv ? 0 : 1);
        // (MatMulInteger's b_zero_point is per column: axis 1 of a 2-D B.)
        nodes.push({ ...floatNode(n, conv ? 'Conv' : 'MatMul', [a, b], () => conv), output: [n.output[0]] });
        count(`${n.op_type} → ${conv ? 'Conv' : 'MatMul'}`);
        continue;
      }
      case 'QLinearConv': {
        // x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B
        const w = await realInput(n, inp[3], inp[4], inp[5], 0);
        const b = await realBias(n, inp[8], inp[1], inp[4]);
        await withSaturation(n, floatNode(n, 'Conv', b ? [inp[0], w, b] : [inp[0], w]), inp[6], inp[7], n.output[0]);
        count('QLinearConv → Conv');
        continue;
      }
      case 'QLinearMatMul': {
        // a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp
        const a = await realInput(n, inp[0], inp[1], inp[2], 0);
        const bv = await constant(inp[3]);
        const b = await realInput(n, inp[3], inp[4], inp[5], bv ? bv.dims.length - 1 : 1);
        await withSaturation(n, floatNode(n, 'MatMul', [a, b]), inp[6], inp[7], n.output[0]);
        count('QLinearMatMul → MatMul');
        continue;
      }
      case 'QGemm': {
        // A, a_scale, a_zp, B, b_scale, b_zp, C, y_scale, y_zp (com.microsoft)
        const transB = attrInt(n, 'transB', 0);
        const bv = await constant(inp[3]);
        const b = await realInput(n, inp[3], inp[4], inp[5], transB ? 0 : (bv?.dims.length ?? 2) - 1);
        const a = await realInput(n, inp[0], inp[1], inp[2], 0);
        const c = await realBias(n, inp[6], inp[1], inp[4]);
        await withSaturation(n, floatNode(n, 'Gemm', c ? [a, b, c] : [a, b]), inp[7], inp[8], n.output[0]);
        count('QGemm → Gemm');
        continue;
      }
      case 'QLinearAdd': case 'QLinearMul': {
        // A, A_scale, A_zp, B, B_scale, B_zp, C_scale, C_zp (com.microsoft)
        const a = await realInput(n, inp[0], inp[1], inp[2]);
        const b = await realInput(n, inp[3], inp[4], inp[5]);
        await withSaturation(n, floatNode(n, n.op_type.slice(7), [a, b]), inp[6], inp[7], n.output[0]);
        count(`${n.op_type} → ${n.op_type.slice(7)}`);
        continue;
      }
      case 'QLinearGlobalAveragePool': case 'QLinearAveragePool': {
        // X, x_scale, x_zp, y_scale, y_zp (com.microsoft)
        if (attrInt(n, 'channels_last', 0) === 1) fail(n, 'channels_last pooling is not supported');
        const op = n.op_type.slice(7);
        await withSaturation(n, floatNode(n, op, [inp[0]], (x) => x.name !== 'channels_last'), inp[3], inp[4], n.output[0]);
        count(`${n.op_type} → ${op}`);
        continue;
      }
      case 'QLinearSigmoid': case 'QLinearLeakyRelu': case 'QLinearSoftmax': {
        // X, X_scale, X_zp, Y_scale, Y_zp (com.microsoft)
        const op = n.op_type.slice(7);
        const keep = (x: AttributeProto) => x.name !== 'opset';
        await withSaturation(n, floatNode(n, op, [inp[0]], keep), inp[3], inp[4], n.output[0]);
        count(`${n.op_type} → ${op}`);
        continue;
      }
      case 'QLinearConcat': {
        // Y_scale, Y_zp, then (X, X_scale, X_zp) per input (com.microsoft)
        const xs: string[] = [];
        for (let k = 2; k < inp.length; k += 3) xs.push(await realInput(n, inp[k], inp[k + 1], inp[k + 2]));
        await withSaturation(n, floatNode(n, 'Concat', xs), inp[0], inp[1], n.output[0]);
        count('QLinearConcat → Concat');
        continue;
      }
      case 'Pad': {
        // On a quantized tensor the pad value is an integer (usually the zero point): its real value.
        const cv = inp[2] ? await constant(inp[2]) : undefined;
        if (cv && isRawInteger(inp[2], cv)) {
          const q = qparams.get(inp[0]);
          const real = q ? (numbers(cv)[0] - q.zeroPoint) * q.scale : 0;
          const name = tmp('pad_value');
          added.push(floatTensor(name, [], [real]));
          nodes.push({ ...n, input: [inp[0], inp[1], name, ...inp.slice(3)] });
          continue;
        }
        break;
      }
      default:
        break;
    }
    if (ms && QUANTIZED_OPS.has(n.op_type)) fail(n, 'this quantized op has no float equivalent here');
    if (ms) {
      nodes.push(i);
      continue;
    }
    // float16 → float32 in what the node itself carries.
    const half = halfAttributes(n);
    if (half) {
      nodes.push(half);
      count('float16 attributes made float32');
    } else {
      nodes.push(i);
    }
  }

  // float16 initializers → float32 (others kept as they are).
  const drop = new Set<string>();
  for (const t of model.graph.initializer) {
    if (!t.name || !HALF_TYPES.has(t.data_type ?? 0)) continue;
    const v = await model.tensorValue(t);
    drop.add(t.name);
    added.push(floatTensor(t.name, v.dims, v.data as Float32Array));
    count('float16 initializers made float32');
  }
  // Initializers nothing reads any more (the integer weights) are left out.
  const read = new Set<string>();
  for (const n of nodes) for (const t of (typeof n === 'number' ? model.nodes[n] : n).input) if (t) read.add(t);
  for (const o of model.graph.output) read.add(o.name);
  for (const t of model.graph.initializer) if (t.name && !read.has(t.name)) drop.add(t.name);
  const keptAdded = added.filter((t) => read.has(t.name ?? '') || !t.name);
  const widen = (v: ValueInfoProto): ValueInfoProto => {
    const et = v.type?.tensor_type?.elem_type ?? 0;
    const quantizedOut = et === DataType.UINT8 || et === DataType.INT8;
    if (!HALF_TYPES.has(et) && !(quantizedOut && precision.quantizedOps.length)) return v;
    return { name: v.name, type: { tensor_type: { elem_type: DataType.FLOAT, ...(v.type?.tensor_type?.shape ? { shape: v.type.tensor_type.shape } : {}) } } };
  };
  const inputs = model.graph.input.filter((v) => !drop.has(v.name)).map(widen);
  const bytes = spliceModel(model.bytes, {
    nodes, dropInitializers: drop, addInitializers: keptAdded, inputs, outputs: model.graph.output.map(widen),
  });
  const kind: TwinKind = precision.quantizedOps.length ? 'float twin' : 'fp32 twin';
  return { bytes, kind, precision, notes: [...counts].map(([what, k]) => `${what}: ${k}`) };
}

/** A copy of a node whose float16 attributes (Cast to, constant tensors) are float32; undefined if it has none. */
function halfAttributes(n: NodeProto): NodeProto | undefined {
  let changed = false;
  const attribute = (n.attribute ?? []).map((a) => {
    if ((a.name === 'to' || a.name === 'dtype') && HALF_TYPES.has(toInt(a.i))) {
      changed = true;
      return { ...a, i: Long.fromNumber(DataType.FLOAT) };
    }
    if (a.t && HALF_TYPES.has(a.t.data_type ?? 0)) {
      changed = true;
      return { ...a, t: widenTensor(a.t) };
    }
    return a;
  });
  return changed ? { ...n, attribute } : undefined;
}

function widenTensor(t: TensorProto): TensorProto {
  const dims = (t.dims ?? []).map(toInt);
  const count = dims.reduce((a, b) => a * b, 1);
  let bits: Uint16Array;
  if (t.raw_data && t.raw_data.length) {
    const copy = new Uint8Array(count * 2);
    copy.set(t.raw_data.subarray(0, count * 2));
    bits = new Uint16Array(copy.buffer);
  } else {
    bits = Uint16Array.from(t.int32_data ?? []);
  }
  return floatTensor(t.name ?? '', dims, Float32Array.from(bits, t.data_type === DataType.FLOAT16 ? halfToFloat : bfloat16ToFloat));
}
