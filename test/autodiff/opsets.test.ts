// Two small graphs built in the form each opset requires and checked at opsets 7 to 21, so that every
// emitter (Slice, Pad, Unsqueeze, ReduceSum, ReduceMean, Mod, Gemm, and Where/Expand/ConstantOfShape with
// their stand-ins before opsets 9/8/9) produces nodes valid at the model's opset: a CNN (Conv → BN → Relu
// → MaxPool → ReduceMean → Squeeze → Gemm → Softmax) and a data-movement graph (Slice → Pad → Split →
// SE gate → AveragePool).
import { test } from 'node:test';
import { floatTensor, int, int64Tensor, ints, makeNode } from '../../src/onnx/builder.js';
import type { NodeProto, TensorProto } from '../../src/onnx/proto.js';
import { awayFromKinks, uniform } from '../helpers/fd.js';
import { assertGradient, count, fd } from './harness.js';

const C = 3;
const XD = [1, 2, 6, 6];

function cnn(opset: number): { nodes: NodeProto[]; initializers: TensorProto[] } {
  const initializers: TensorProto[] = [
    floatTensor('w', [C, 2, 3, 3], uniform(C * 18, 2, -0.5, 0.5)),
    floatTensor('bn_s', [C], uniform(C, 3, 0.5, 1.5)), floatTensor('bn_b', [C], uniform(C, 4)),
    floatTensor('bn_m', [C], uniform(C, 5)), floatTensor('bn_v', [C], uniform(C, 6, 0.5, 1.5)),
    floatTensor('fc', [4, C], uniform(4 * C, 7, -2, 2)), floatTensor('fc_b', [4], uniform(4, 8)),
  ];
  const axes = [2, 3];
  const squeeze = [2, 3];
  let reduce: NodeProto;
  if (opset >= 18) {
    initializers.push(int64Tensor('r_axes', [2], axes));
    reduce = makeNode('ReduceMean', ['m', 'r_axes'], ['p'], { keepdims: int(1) });
  } else reduce = makeNode('ReduceMean', ['m'], ['p'], { axes: ints(axes), keepdims: int(1) });
  let sq: NodeProto;
  if (opset >= 13) {
    initializers.push(int64Tensor('s_axes', [2], squeeze));
    sq = makeNode('Squeeze', ['p', 's_axes'], ['f']);
  } else sq = makeNode('Squeeze', ['p'], ['f'], { axes: ints(squeeze) });
  return {
    nodes: [
      makeNode('Conv', ['x', 'w'], ['c'], { pads: ints([1, 1, 1, 1]) }),
      makeNode('BatchNormalization', ['c', 'bn_s', 'bn_b', 'bn_m', 'bn_v'], ['b']),
      makeNode('Relu', ['b'], ['r']),
      makeNode('MaxPool', ['r'], ['m'], { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) }),
      reduce,
      sq,
      makeNode('Gemm', ['f', 'fc', 'fc_b'], ['z'], { transB: int(1) }),
      makeNode('Softmax', ['z'], ['y'], { axis: int(1) }),
    ],
    initializers,
  };
}

for (const opset of [7, 8, 9, 11, 12, 13, 17, 18, 21]) {
  test(`small CNN (Conv, BN, Relu, MaxPool, ReduceMean, Squeeze, Gemm, Softmax) at opset ${opset}`, async () => {
    const { nodes, initializers } = cnn(opset);
    const r = await fd({
      nodes,
      inputs: { x: [XD, awayFromKinks(count(XD), 1)] },
      initializers,
      opset,
      // Relu and MaxPool are piecewise linear: eps 1e-3 (the fixed data keeps kinks and ties out of reach).
      eps: 1e-3,
    });
    assertGradient(r, 1e-3);
  });
}

/**
 * Data movement in each opset's form: Slice x[:, :, 1:], Pad back, Split along channels with the second
 * part unused (its zero gradient is built with Shape/Slice/Concat/ConstantOfShape), a [1,C,1,1] gate from
 * GlobalAveragePool (its gradient is a ReduceSum), AveragePool.
 */
function movement(opset: number): { nodes: NodeProto[]; initializers: TensorProto[] } {
  const initializers: TensorProto[] = [];
  const nodes: NodeProto[] = [];
  if (opset >= 10) {
    initializers.push(int64Tensor('sl_s', [1], [1]), int64Tensor('sl_e', [1], [1000]), int64Tensor('sl_a', [1], [2]));
    nodes.push(makeNode('Slice', ['x', 'sl_s', 'sl_e', 'sl_a'], ['s']));
  } else nodes.push(makeNode('Slice', ['x'], ['s'], { starts: ints([1]), ends: ints([1000]), axes: ints([2]) }));
  const pads = [0, 0, 1, 0, 0, 0, 0, 1];
  if (opset >= 11) {
    initializers.push(int64Tensor('pads', [8], pads));
    nodes.push(makeNode('Pad', ['s', 'pads'], ['p']));
  } else nodes.push(makeNode('Pad', ['s'], ['p'], { pads: ints(pads) }));
  if (opset >= 18) nodes.push(makeNode('Split', ['p'], ['a', 'unused'], { axis: int(1), num_outputs: int(2) }));
  else if (opset >= 13) {
    initializers.push(int64Tensor('split', [2], [2, 2]));
    nodes.push(makeNode('Split', ['p', 'split'], ['a', 'unused'], { axis: int(1) }));
  } else nodes.push(makeNode('Split', ['p'], ['a', 'unused'], { axis: int(1), split: ints([2, 2]) }));
  nodes.push(
    makeNode('GlobalAveragePool', ['a'], ['g']),
    makeNode('Sigmoid', ['g'], ['gs']),
    makeNode('Mul', ['a', 'gs'], ['m']),
    makeNode('AveragePool', ['m'], ['y'], { kernel_shape: ints([2, 2]), strides: ints([1, 1]) }),
  );
  return { nodes, initializers };
}

for (const opset of [7, 8, 9, 11, 13, 17, 18, 21]) {
  test(`data movement (Slice, Pad, Split with an unused part, SE gate, AveragePool) at opset ${opset}`, async () => {
    const { nodes, initializers } = movement(opset);
    const xd = [1, 4, 4, 5];
    const r = await fd({ nodes, inputs: { x: [xd, uniform(count(xd), 9, -2, 2)] }, initializers, opset, eps: 1e-2 });
    assertGradient(r, 1e-3);
  });
}
