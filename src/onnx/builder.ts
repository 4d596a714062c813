// Small builders for ONNX protos (after onnx/helper.py: make_node, make_tensor, make_value_info),
// so graph-emitting code reads like the maths.
import Long from 'long';
import { AttrType, DataType, type AttributeProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.js';

/** An attribute value with its ONNX type made explicit (JS numbers alone cannot tell INT from FLOAT). */
export type AttrValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: TensorProto };

export const int = (value: number): AttrValue => ({ kind: 'int', value });
export const float = (value: number): AttrValue => ({ kind: 'float', value });
export const ints = (value: readonly number[]): AttrValue => ({ kind: 'ints', value });
export const floats = (value: readonly number[]): AttrValue => ({ kind: 'floats', value });
export const str = (value: string): AttrValue => ({ kind: 'string', value });
export const tensorAttr = (value: TensorProto): AttrValue => ({ kind: 'tensor', value });

function makeAttribute(name: string, a: AttrValue): AttributeProto {
  switch (a.kind) {
    case 'int': return { name, type: AttrType.INT, i: Long.fromNumber(a.value) };
    case 'float': return { name, type: AttrType.FLOAT, f: a.value };
    case 'ints': return { name, type: AttrType.INTS, ints: a.value.map((v) => Long.fromNumber(v)) };
    case 'floats': return { name, type: AttrType.FLOATS, floats: [...a.value] };
    case 'string': return { name, type: AttrType.STRING, s: new TextEncoder().encode(a.value) };
    case 'tensor': return { name, type: AttrType.TENSOR, t: a.value };
  }
}

/** make_node: one ONNX node in the default domain. Attributes whose value is undefined are left out. */
export function makeNode(
  opType: string, inputs: readonly string[], outputs: readonly string[],
  attrs: Record<string, AttrValue | undefined> = {}, name?: string,
): NodeProto {
  const attribute: AttributeProto[] = [];
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) attribute.push(makeAttribute(k, v));
  return { op_type: opType, input: [...inputs], output: [...outputs], attribute, name: name ?? outputs[0] };
}

/** A float32 tensor proto with raw_data. */
export function floatTensor(name: string, dims: readonly number[], values: ArrayLike<number>): TensorProto {
  const data = Float32Array.from(values as ArrayLike<number>);
  return {
    name, dims: dims.map((d) => Long.fromNumber(d)), data_type: DataType.FLOAT,
    raw_data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

/** An int64 tensor proto with raw_data. */
export function int64Tensor(name: string, dims: readonly number[], values: readonly number[]): TensorProto {
  const data = BigInt64Array.from(values.map((v) => BigInt(v)));
  return {
    name, dims: dims.map((d) => Long.fromNumber(d)), data_type: DataType.INT64,
    raw_data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

/** make_tensor_value_info: a tensor value with element type and dims (a string dim is symbolic). */
export function makeValueInfo(name: string, elemType: number, dims?: readonly (number | string)[]): ValueInfoProto {
  const shape = dims === undefined ? undefined : {
    dim: dims.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: Long.fromNumber(d) })),
  };
  return { name, type: { tensor_type: { elem_type: elemType, ...(shape ? { shape } : {}) } } };
}
