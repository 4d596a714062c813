// Builds small ONNX models in tests (the graphs PyTorch 1.13 cannot export, and random graphs for
// finite-difference checks of the gradient rules).
import { makeValueInfo } from '../../src/onnx/builder.js';
import { DataType, encodeModel, type NodeProto, type TensorProto } from '../../src/onnx/proto.js';
import Long from 'long';

export interface TestGraph {
  nodes: NodeProto[];
  inputs: { name: string; dims: readonly (number | string)[]; elemType?: number }[];
  outputs: string[];
  initializers?: TensorProto[];
  opset?: number;
}

export function buildModelBytes(g: TestGraph): Uint8Array {
  return encodeModel({
    ir_version: Long.fromNumber(g.opset !== undefined && g.opset >= 21 ? 10 : 8),
    opset_import: [{ domain: '', version: Long.fromNumber(g.opset ?? 13) }],
    producer_name: 'camserve-tests',
    graph: {
      name: 'test',
      node: g.nodes,
      initializer: g.initializers ?? [],
      input: g.inputs.map((i) => makeValueInfo(i.name, i.elemType ?? DataType.FLOAT, i.dims)),
      output: g.outputs.map((o) => ({ name: o })),
    },
  });
}
