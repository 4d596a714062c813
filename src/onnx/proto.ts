// ONNX protobuf schema (the subset camserve reads and writes) and typed decode/encode helpers.
// int64 fields decode to `Long` (exact); unknown fields are skipped on decode, so never re-encode a decoded model.
import protobuf from 'protobufjs';
import Long from 'long';

protobuf.util.Long = Long;
protobuf.configure();

// Field numbers follow onnx/onnx.proto (IR version 10). Only what camserve needs is declared.
const ONNX_PROTO = `
syntax = "proto2";
package onnx;
message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; SPARSE_TENSOR = 11;
    TYPE_PROTO = 13; FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10; SPARSE_TENSORS = 12; TYPE_PROTOS = 14; }
  optional string name = 1;
  optional string ref_attr_name = 21;
  optional string doc_string = 13;
  optional AttributeType type = 20;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  optional GraphProto g = 6;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  repeated TensorProto tensors = 10;
  repeated GraphProto graphs = 11;
}
message ValueInfoProto { optional string name = 1; optional TypeProto type = 2; optional string doc_string = 3; }
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  optional string domain = 7;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
}
message StringStringEntryProto { optional string key = 1; optional string value = 2; }
message OperatorSetIdProto { optional string domain = 1; optional int64 version = 2; }
message ModelProto {
  optional int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
}
message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}
message TensorProto {
  enum DataType { UNDEFINED = 0; FLOAT = 1; UINT8 = 2; INT8 = 3; UINT16 = 4; INT16 = 5; INT32 = 6; INT64 = 7;
    STRING = 8; BOOL = 9; FLOAT16 = 10; DOUBLE = 11; UINT32 = 12; UINT64 = 13; COMPLEX64 = 14; COMPLEX128 = 15; BFLOAT16 = 16; }
  enum DataLocation { DEFAULT = 0; EXTERNAL = 1; }
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated bytes string_data = 6;
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional string doc_string = 12;
  optional bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13;
  optional DataLocation data_location = 14;
  repeated double double_data = 10 [packed = true];
  repeated uint64 uint64_data = 11 [packed = true];
}
message TensorShapeProto {
  message Dimension { optional int64 dim_value = 1; optional string dim_param = 2; optional string denotation = 3; }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor { optional int32 elem_type = 1; optional TensorShapeProto shape = 2; }
  optional Tensor tensor_type = 1;
  optional string denotation = 6;
}
`;

const root = protobuf.parse(ONNX_PROTO, { keepCase: true }).root;
const ModelType = root.lookupType('onnx.ModelProto');
const MESSAGE_TYPES = {
  node: root.lookupType('onnx.NodeProto'),
  tensor: root.lookupType('onnx.TensorProto'),
  valueInfo: root.lookupType('onnx.ValueInfoProto'),
  opset: root.lookupType('onnx.OperatorSetIdProto'),
} as const;

export type Int64 = Long | number;

export const AttrType = {
  FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8,
} as const;

export const DataType = {
  FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11, BFLOAT16: 16,
} as const;

export interface AttributeProto {
  name: string;
  type?: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  floats?: number[];
  ints?: Int64[];
  strings?: Uint8Array[];
}

export interface NodeProto {
  input: string[];
  output: string[];
  name?: string;
  op_type: string;
  domain?: string;
  attribute?: AttributeProto[];
}

export interface StringStringEntryProto { key: string; value: string }

export interface TensorProto {
  dims?: Int64[];
  data_type?: number;
  float_data?: number[];
  int32_data?: number[];
  int64_data?: Int64[];
  double_data?: number[];
  name?: string;
  raw_data?: Uint8Array;
  external_data?: StringStringEntryProto[];
  data_location?: number;
}

export interface TensorShapeDim { dim_value?: Int64; dim_param?: string }
export interface TypeProto {
  tensor_type?: { elem_type?: number; shape?: { dim?: TensorShapeDim[] } };
}
export interface ValueInfoProto { name: string; type?: TypeProto }

export interface GraphProto {
  node?: NodeProto[];
  name?: string;
  initializer?: TensorProto[];
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
  value_info?: ValueInfoProto[];
}

export interface OperatorSetIdProto { domain?: string; version?: Int64 }

export interface ModelProto {
  ir_version?: Int64;
  opset_import?: OperatorSetIdProto[];
  producer_name?: string;
  producer_version?: string;
  graph?: GraphProto;
}

/** Decodes a serialized ModelProto. Byte fields are views into `bytes` (no copy of the weights). */
export function decodeModel(bytes: Uint8Array): ModelProto {
  return ModelType.decode(bytes) as unknown as ModelProto;
}

/** Encodes a ModelProto. */
export function encodeModel(model: ModelProto): Uint8Array {
  return ModelType.encode(ModelType.fromObject(model as unknown as Record<string, unknown>)).finish();
}

/** Encodes one message of the schema (a node, tensor, value info or opset import) on its own. */
export function encodeMessage(kind: keyof typeof MESSAGE_TYPES, message: object): Uint8Array {
  const type = MESSAGE_TYPES[kind];
  return type.encode(type.fromObject(message as Record<string, unknown>)).finish();
}

/** Converts a decoded int64 to a JS number (exact below 2^53; larger values throw). */
export function toInt(v: Int64 | undefined | null): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return v;
  const n = v.toNumber();
  if (!Number.isSafeInteger(n) && !(v.equals(Long.MAX_VALUE) || v.equals(Long.MIN_VALUE))) {
    throw new RangeError(`int64 value ${v.toString()} does not fit a JS number`);
  }
  // INT64_MAX / INT64_MIN are used by ONNX as "to the end" markers (Slice); keep them as ±Infinity-like sentinels.
  if (v.equals(Long.MAX_VALUE)) return Number.MAX_SAFE_INTEGER;
  if (v.equals(Long.MIN_VALUE)) return Number.MIN_SAFE_INTEGER;
  return n;
}
