// A new model from an old one at the protobuf wire level: the graph's nodes, initializers, inputs and
// outputs replaced as told, every other field (functions, metadata, sparse initializers, fields this
// schema does not declare) and every untouched node and initializer copied byte for byte.
import type { NodeProto, OperatorSetIdProto, TensorProto, ValueInfoProto } from './proto.js';
import { encodeMessage } from './proto.js';

interface RawField { field: number; wire: number; start: number; end: number; valueStart: number; valueEnd: number }

function readVarint(buf: Uint8Array, pos: number): [value: number, next: number] {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    const b = buf[pos++];
    if (b === undefined) throw new RangeError('truncated varint');
    value += (b & 0x7f) * mul;
    if (b < 0x80) return [value, pos];
    mul *= 128;
  }
  throw new RangeError('varint too long');
}

/** The top-level fields of one serialized message, in order. */
function scanFields(buf: Uint8Array): RawField[] {
  const out: RawField[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const [key, p1] = readVarint(buf, pos);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    let valueStart = p1;
    let valueEnd: number;
    switch (wire) {
      case 0: valueEnd = readVarint(buf, p1)[1]; break;
      case 1: valueEnd = p1 + 8; break;
      case 5: valueEnd = p1 + 4; break;
      case 2: {
        const [len, p2] = readVarint(buf, p1);
        valueStart = p2;
        valueEnd = p2 + len;
        break;
      }
      default: throw new RangeError(`unsupported protobuf wire type ${wire} (field ${field})`);
    }
    if (valueEnd > buf.length) throw new RangeError(`field ${field} runs past the end of the message`);
    out.push({ field, wire, start, end: valueEnd, valueStart, valueEnd });
    pos = valueEnd;
  }
  return out;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** Builds a message from pieces: raw bytes kept as they are, length-delimited fields written fresh. */
class Writer {
  private readonly parts: Uint8Array[] = [];
  private size = 0;

  raw(bytes: Uint8Array): void {
    this.parts.push(bytes);
    this.size += bytes.length;
  }

  message(field: number, payload: Uint8Array): void {
    this.raw(Uint8Array.from([...varint(field * 8 + 2), ...varint(payload.length)]));
    this.raw(payload);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

// Field numbers of onnx.proto.
const MODEL_GRAPH = 7;
const MODEL_OPSET = 8;
const GRAPH = { node: 1, initializer: 5, input: 11, output: 12, valueInfo: 13 } as const;
const TENSOR_NAME = 8;

export interface GraphEdit {
  /** The new graph's nodes in order: a number keeps the original node of that index byte for byte. */
  nodes: (number | NodeProto)[];
  /** Original initializers to leave out, by name. */
  dropInitializers?: ReadonlySet<string>;
  /** Initializers to add (after the kept ones). */
  addInitializers?: readonly TensorProto[];
  /** Replacement graph inputs (default: kept). */
  inputs?: readonly ValueInfoProto[];
  /** Replacement graph outputs (default: kept). */
  outputs?: readonly ValueInfoProto[];
  /** Drop the graph's value_info (shapes and types of intermediates, stale after a rewrite); default true. */
  dropValueInfo?: boolean;
  /** Replacement opset imports (default: kept). */
  opsetImports?: readonly OperatorSetIdProto[];
}

/** Name of a serialized TensorProto, read without decoding its data. */
function tensorName(buf: Uint8Array): string {
  for (const f of scanFields(buf)) {
    if (f.field === TENSOR_NAME && f.wire === 2) return new TextDecoder().decode(buf.subarray(f.valueStart, f.valueEnd));
  }
  return '';
}

/**
 * The model `bytes` with its graph edited. Several graph fields (a model with appended patches) are
 * merged as protobuf merges them: their contents concatenated.
 */
export function spliceModel(bytes: Uint8Array, edit: GraphEdit): Uint8Array {
  const top = scanFields(bytes);
  const graphFields = top.filter((f) => f.field === MODEL_GRAPH && f.wire === 2);
  const graphBytes = new Writer();
  for (const f of graphFields) graphBytes.raw(bytes.subarray(f.valueStart, f.valueEnd));
  const graph = graphBytes.finish();
  const gFields = scanFields(graph);
  const slice = (f: RawField) => graph.subarray(f.valueStart, f.valueEnd);
  const rawNodes = gFields.filter((f) => f.field === GRAPH.node).map(slice);

  const g = new Writer();
  // Fields other than the edited ones keep their place before the nodes (name, doc string, sparse
  // initializers, quantization annotations, …); order of distinct fields does not matter to protobuf.
  const edited = new Set<number>([GRAPH.node, GRAPH.initializer, GRAPH.valueInfo, ...(edit.inputs ? [GRAPH.input] : []), ...(edit.outputs ? [GRAPH.output] : [])]);
  for (const f of gFields) if (!edited.has(f.field)) g.raw(graph.subarray(f.start, f.end));
  for (const n of edit.nodes) {
    if (typeof n === 'number') {
      const raw = rawNodes[n];
      if (!raw) throw new RangeError(`node ${n} is not in the model`);
      g.message(GRAPH.node, raw);
    } else {
      g.message(GRAPH.node, encodeMessage('node', n));
    }
  }
  for (const f of gFields) {
    if (f.field !== GRAPH.initializer) continue;
    if (edit.dropInitializers?.size && edit.dropInitializers.has(tensorName(slice(f)))) continue;
    g.raw(graph.subarray(f.start, f.end));
  }
  for (const t of edit.addInitializers ?? []) g.message(GRAPH.initializer, encodeMessage('tensor', t));
  for (const v of edit.inputs ?? []) g.message(GRAPH.input, encodeMessage('valueInfo', v));
  for (const v of edit.outputs ?? []) g.message(GRAPH.output, encodeMessage('valueInfo', v));
  if (edit.dropValueInfo === false) for (const f of gFields) if (f.field === GRAPH.valueInfo) g.raw(graph.subarray(f.start, f.end));

  const m = new Writer();
  let graphWritten = false;
  for (const f of top) {
    if (f.field === MODEL_GRAPH && f.wire === 2) {
      if (!graphWritten) m.message(MODEL_GRAPH, g.finish());
      graphWritten = true;
      continue;
    }
    if (f.field === MODEL_OPSET && edit.opsetImports) continue;
    m.raw(bytes.subarray(f.start, f.end));
  }
  if (!graphWritten) m.message(MODEL_GRAPH, g.finish());
  for (const o of edit.opsetImports ?? []) m.message(MODEL_OPSET, encodeMessage('opset', o));
  return m.finish();
}
