// An ONNX model held as its original bytes plus a decoded view for analysis: producers, consumers,
// initializers, attributes, opset, external data. Patches are appended to the bytes, never re-encoded.
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { ModelError } from '../errors/index.js';
import { containedFile } from './files.js';
import {
  AttrType, DataType, decodeModel, encodeModel, toInt,
  type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto,
} from './proto.js';

export interface ExternalRef { location: string; offset: number; length: number }

/** A decoded constant. float16 and bfloat16 data arrive widened to float32 (`dataType` keeps the stored type). */
export interface TensorValue { dims: number[]; data: Float32Array | BigInt64Array | Int32Array | Uint8Array | Int8Array | Int16Array | Uint16Array; dataType: number }

/** IEEE half-precision bits → number. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** bfloat16 bits → number (the high half of a float32). */
export function bfloat16ToFloat(h: number): number {
  const u = new Uint32Array([h << 16]);
  return new Float32Array(u.buffer)[0];
}

export interface ValueInfo { name: string; elemType: number; dims: (number | string)[] | undefined }

function valueInfo(v: ValueInfoProto): ValueInfo {
  const t = v.type?.tensor_type;
  const dims = t?.shape?.dim?.map((d) => (d.dim_param ? d.dim_param : d.dim_value !== undefined && d.dim_value !== null ? toInt(d.dim_value) : '?'));
  return { name: v.name, elemType: t?.elem_type ?? 0, dims };
}

export class OnnxModel {
  readonly proto: ModelProto;
  readonly graph: Required<Pick<GraphProto, 'node' | 'initializer' | 'input' | 'output'>>;
  readonly nodes: NodeProto[];
  /** tensor name → index of the node that produces it */
  readonly producer = new Map<string, number>();
  /** tensor name → indices of the nodes that read it */
  readonly consumers = new Map<string, number[]>();
  readonly initializers = new Map<string, TensorProto>();
  /** Graph inputs that are not initializers (what a caller must feed). */
  readonly inputs: ValueInfo[];
  readonly outputs: ValueInfo[];
  /** Files (relative to `dir`) that hold external weights. */
  readonly externalFiles: string[];

  private constructor(readonly bytes: Uint8Array, readonly dir: string, readonly file: string) {
    this.proto = decodeModel(bytes);
    const g = this.proto.graph ?? {};
    this.graph = { node: g.node ?? [], initializer: g.initializer ?? [], input: g.input ?? [], output: g.output ?? [] };
    this.nodes = this.graph.node;
    this.nodes.forEach((n, i) => {
      for (const o of n.output) if (o) this.producer.set(o, i);
      for (const inp of n.input) {
        if (!inp) continue;
        const list = this.consumers.get(inp);
        if (list) list.push(i); else this.consumers.set(inp, [i]);
      }
    });
    for (const t of this.graph.initializer) if (t.name) this.initializers.set(t.name, t);
    this.inputs = this.graph.input.filter((v) => !this.initializers.has(v.name)).map(valueInfo);
    this.outputs = this.graph.output.map(valueInfo);
    const files = new Set<string>();
    for (const t of this.graph.initializer) if (t.data_location === 1) files.add(this.externalRef(t).location);
    this.externalFiles = [...files];
  }

  /** Reads `file` (and checks that its external data files exist). */
  static async load(file: string): Promise<OnnxModel> {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (e) {
      throw new ModelError(`cannot read ${file}: ${(e as Error).message}`);
    }
    return OnnxModel.fromBytes(bytes, file);
  }

  static async fromBytes(bytes: Uint8Array, file: string): Promise<OnnxModel> {
    let m: OnnxModel;
    try {
      m = new OnnxModel(bytes, path.dirname(path.resolve(file)), path.resolve(file));
    } catch (e) {
      throw new ModelError(`${file} is not a valid ONNX model: ${(e as Error).message}`);
    }
    if (!m.proto.graph) throw new ModelError(`${file} has no graph`);
    for (const loc of m.externalFiles) await containedFile(m.dir, loc, 'external data file');
    return m;
  }

  private externalDataCache?: Promise<{ path: string; data: Uint8Array }[]>;

  /** The external weight files' bytes (read once), as onnxruntime's `externalData` session option wants them. */
  externalData(): Promise<{ path: string; data: Uint8Array }[]> {
    this.externalDataCache ??= Promise.all(this.externalFiles.map(async (f) => ({ path: f, data: await readFile(path.resolve(this.dir, f)) })));
    return this.externalDataCache;
  }

  /** Version of the default ONNX domain the model imports. */
  get opset(): number {
    const o = (this.proto.opset_import ?? []).find((x) => !x.domain || x.domain === 'ai.onnx');
    return o ? toInt(o.version) : 1;
  }

  node(i: number): NodeProto { return this.nodes[i]; }

  nodeLabel(n: NodeProto): string { return `${n.op_type} node "${n.name || n.output[0]}"`; }

  isConstant(name: string): boolean {
    if (this.initializers.has(name)) return true;
    const p = this.producer.get(name);
    return p !== undefined && this.nodes[p].op_type === 'Constant';
  }

  private externalRef(t: TensorProto): ExternalRef {
    const kv = new Map((t.external_data ?? []).map((e) => [e.key, e.value]));
    const location = kv.get('location');
    if (!location) throw new ModelError(`initializer ${t.name} has external data without a location`);
    return { location, offset: Number(kv.get('offset') ?? 0), length: Number(kv.get('length') ?? -1) };
  }

  /** Value of a constant tensor (initializer or Constant node), or undefined if `name` is not constant. */
  async constantValue(name: string): Promise<TensorValue | undefined> {
    let t = this.initializers.get(name);
    if (!t) {
      const p = this.producer.get(name);
      if (p === undefined || this.nodes[p].op_type !== 'Constant') return undefined;
      const n = this.nodes[p];
      const a = n.attribute?.find((x) => x.name === 'value');
      if (a?.t) t = a.t;
      else {
        const v = n.attribute?.find((x) => x.name === 'value_ints' || x.name === 'value_int' || x.name === 'value_float' || x.name === 'value_floats');
        if (!v) return undefined;
        if (v.name === 'value_ints') return { dims: [v.ints?.length ?? 0], data: BigInt64Array.from((v.ints ?? []).map((x) => BigInt(toInt(x)))), dataType: DataType.INT64 };
        if (v.name === 'value_int') return { dims: [], data: BigInt64Array.of(BigInt(toInt(v.i))), dataType: DataType.INT64 };
        if (v.name === 'value_float') return { dims: [], data: Float32Array.of(v.f ?? 0), dataType: DataType.FLOAT };
        return { dims: [v.floats?.length ?? 0], data: Float32Array.from(v.floats ?? []), dataType: DataType.FLOAT };
      }
    }
    return this.tensorValue(t);
  }

  /** Decodes a TensorProto's data (raw, typed fields or external file). */
  async tensorValue(t: TensorProto): Promise<TensorValue> {
    const dims = (t.dims ?? []).map(toInt);
    const count = dims.reduce((a, b) => a * b, 1);
    const dataType = t.data_type ?? 0;
    let raw = t.raw_data && t.raw_data.length > 0 ? t.raw_data : undefined;
    if (t.data_location === 1) {
      const ref = this.externalRef(t);
      const fh = await open(path.resolve(this.dir, ref.location), 'r');
      try {
        const size = ref.length >= 0 ? ref.length : count * bytesPer(dataType);
        const buf = Buffer.alloc(size);
        await fh.read(buf, 0, size, ref.offset);
        raw = buf;
      } finally {
        await fh.close();
      }
    }
    const copy = (n: number) => {
      const b = new Uint8Array(n);
      b.set(raw!.subarray(0, n));
      return b.buffer;
    };
    switch (dataType) {
      case DataType.FLOAT:
        return { dims, dataType, data: raw ? new Float32Array(copy(count * 4)) : Float32Array.from(t.float_data ?? []) };
      case DataType.INT64:
        return { dims, dataType, data: raw ? new BigInt64Array(copy(count * 8)) : BigInt64Array.from((t.int64_data ?? []).map((x) => BigInt(toInt(x)))) };
      case DataType.INT32:
        return { dims, dataType, data: raw ? new Int32Array(copy(count * 4)) : Int32Array.from(t.int32_data ?? []) };
      case DataType.DOUBLE:
        return { dims, dataType, data: raw ? Float32Array.from(new Float64Array(copy(count * 8))) : Float32Array.from(t.double_data ?? []) };
      case DataType.BOOL: case DataType.UINT8:
        return { dims, dataType, data: raw ? new Uint8Array(copy(count)) : Uint8Array.from(t.int32_data ?? []) };
      case DataType.INT8:
        return { dims, dataType, data: raw ? new Int8Array(copy(count)) : Int8Array.from(t.int32_data ?? []) };
      case DataType.INT16:
        return { dims, dataType, data: raw ? new Int16Array(copy(count * 2)) : Int16Array.from(t.int32_data ?? []) };
      case DataType.UINT16:
        return { dims, dataType, data: raw ? new Uint16Array(copy(count * 2)) : Uint16Array.from(t.int32_data ?? []) };
      case DataType.FLOAT16: case DataType.BFLOAT16: {
        // Stored as 16-bit patterns (raw, or one per int32_data entry).
        const bits = raw ? new Uint16Array(copy(count * 2)) : Uint16Array.from(t.int32_data ?? []);
        const widen = dataType === DataType.FLOAT16 ? halfToFloat : bfloat16ToFloat;
        return { dims, dataType, data: Float32Array.from(bits, widen) };
      }
      default:
        throw new ModelError(`tensor ${t.name}: data type ${dataType} is not supported`);
    }
  }

  /** Constant tensor as plain numbers (ints or floats); throws naming the tensor when not constant. */
  async constantNumbers(name: string, what: string): Promise<number[]> {
    const v = await this.constantValue(name);
    if (!v) throw new ModelError(`${what}: tensor "${name}" must be a constant (initializer or Constant node)`);
    return Array.from(v.data as ArrayLike<number | bigint>, (x) => Number(x));
  }

  /** Serialises a patch (extra nodes, inputs, outputs, initializers) appended to the original bytes.
   *  Protobuf merges repeated fields of concatenated messages, so the weights are never re-encoded. */
  withPatch(patch: GraphProto): Uint8Array {
    const extra = encodeModel({ graph: patch });
    const out = new Uint8Array(this.bytes.length + extra.length);
    out.set(this.bytes, 0);
    out.set(extra, this.bytes.length);
    return out;
  }
}

export function bytesPer(dataType: number): number {
  switch (dataType) {
    case DataType.DOUBLE: case DataType.INT64: return 8;
    case DataType.FLOAT: case DataType.INT32: return 4;
    case DataType.FLOAT16: case DataType.BFLOAT16: case DataType.INT16: case DataType.UINT16: return 2;
    default: return 1;
  }
}

export function attr(n: NodeProto, name: string): AttributeProto | undefined {
  return n.attribute?.find((a) => a.name === name);
}
export function attrInt(n: NodeProto, name: string, dflt: number): number {
  const a = attr(n, name);
  return a && (a.type === AttrType.INT || a.i !== undefined) ? toInt(a.i) : dflt;
}
export function attrFloat(n: NodeProto, name: string, dflt: number): number {
  const a = attr(n, name);
  return a && a.f !== undefined && a.f !== null ? a.f : dflt;
}
export function attrInts(n: NodeProto, name: string): number[] | undefined {
  const a = attr(n, name);
  return a ? (a.ints ?? []).map(toInt) : undefined;
}
export function attrString(n: NodeProto, name: string, dflt: string): string {
  const a = attr(n, name);
  return a?.s ? new TextDecoder().decode(a.s) : dflt;
}
