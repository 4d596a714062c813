import { test } from 'node:test';
import { floatTensor, int, ints, makeNode } from '../../src/onnx/builder.js';
import { awayFromKinks, checkGradient, uniform } from '../helpers/fd.js';
import { assertGradient } from './harness.js';

test('Conv → Relu → MaxPool → GlobalAveragePool → Flatten → Gemm matches finite differences', async () => {
  const r = await checkGradient({
    graph: {
      nodes: [
        makeNode('Conv', ['x', 'w'], ['c'], { pads: ints([1, 1, 1, 1]), strides: ints([1, 1]) }),
        makeNode('Relu', ['c'], ['r']),
        makeNode('MaxPool', ['r'], ['m'], { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) }),
        makeNode('GlobalAveragePool', ['m'], ['g']),
        makeNode('Flatten', ['g'], ['f']),
        makeNode('Gemm', ['f', 'fc'], ['y'], { transB: int(1) }),
      ],
      inputs: [{ name: 'x', dims: [1, 2, 6, 6] }],
      outputs: ['y'],
      initializers: [floatTensor('w', [3, 2, 3, 3], uniform(54, 1)), floatTensor('fc', [4, 3], uniform(12, 2))],
    },
    wrt: ['x'], output: 'y', inputs: { x: awayFromKinks(72, 3) }, eps: 1e-3,
  });
  // Piecewise linear (Relu, MaxPool) on distinct inputs: eps 1e-3, bound 1e-2.
  assertGradient(r, 1e-2);
});
