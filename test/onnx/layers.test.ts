// The layer rule on small graphs the fixtures do not cover: prefix tokens found from the patch grid
// (DeiT's class + distillation tokens) or from a square remainder (register tokens), declared ones
// (model.json `tokens`), a BatchNormalization after the last activation, and 1-D strips of text-line models.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { floatTensor, int, int64Tensor, ints, makeNode } from '../../src/onnx/builder.js';
import { findLayers } from '../../src/onnx/layers.js';
import { OnnxModel } from '../../src/onnx/model.js';
import { probeShapes } from '../../src/onnx/session.js';
import { uniform } from '../helpers/fd.js';
import { buildModelBytes, type TestGraph } from '../helpers/graph.js';

async function layersOf(g: TestGraph, opts: Parameters<typeof findLayers>[3] = {}) {
  const model = await OnnxModel.fromBytes(buildModelBytes(g), 'test.onnx');
  const [input] = g.inputs;
  const dims = input.dims.map(Number);
  const shapes = await probeShapes(model, { [input.name]: new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims) });
  return findLayers(model, shapes, 'y', opts);
}

/** A one-block ViT: 4×4 patches of 8 channels, `prefix` learnt tokens in front, attention, class-token head. */
function tinyVit(prefix: number, patchConv = true): TestGraph {
  const C = 8;
  const nodes = [
    ...(patchConv
      ? [makeNode('Conv', ['x', 'wp'], ['patches'], { strides: ints([8, 8]), kernel_shape: ints([8, 8]) }), makeNode('Reshape', ['patches', 'flat'], ['p3'])]
      : [makeNode('Reshape', ['x', 'flat'], ['p3'])]),
    makeNode('Transpose', ['p3'], ['grid'], { perm: ints([0, 2, 1]) }),
    makeNode('Concat', ['prefixTokens', 'grid'], ['tokens'], { axis: int(1) }),
    makeNode('LayerNormalization', ['tokens', 'g1', 'b1'], ['ln1'], { axis: int(-1) }),
    makeNode('MatMul', ['ln1', 'wq'], ['q']),
    makeNode('MatMul', ['ln1', 'wk'], ['k']),
    makeNode('Transpose', ['k'], ['kT'], { perm: ints([0, 2, 1]) }),
    makeNode('MatMul', ['q', 'kT'], ['s']),
    makeNode('Softmax', ['s'], ['a'], { axis: int(-1) }),
    makeNode('MatMul', ['a', 'ln1'], ['o']),
    makeNode('Add', ['o', 'tokens'], ['r']),
    makeNode('LayerNormalization', ['r', 'g2', 'b2'], ['ln2'], { axis: int(-1) }),
    makeNode('Gather', ['ln2', 'zero'], ['cls'], { axis: int(1) }),
    makeNode('Gemm', ['cls', 'head'], ['y'], { transB: int(1) }),
  ];
  return {
    nodes,
    inputs: [{ name: 'x', dims: patchConv ? [1, 3, 32, 32] : [1, C, 4, 4] }],
    outputs: ['y'],
    opset: 17,
    initializers: [
      floatTensor('wp', [C, 3, 8, 8], uniform(C * 192, 1)), int64Tensor('flat', [3], [1, C, 16]),
      floatTensor('prefixTokens', [1, prefix, C], uniform(prefix * C, 2)),
      floatTensor('g1', [C], uniform(C, 3)), floatTensor('b1', [C], uniform(C, 4)), floatTensor('g2', [C], uniform(C, 5)), floatTensor('b2', [C], uniform(C, 6)),
      floatTensor('wq', [C, C], uniform(C * C, 7)), floatTensor('wk', [C, C], uniform(C * C, 8)),
      int64Tensor('zero', [], [0]), floatTensor('head', [5, C], uniform(5 * C, 9)),
    ].filter((t) => patchConv || t.name !== 'wp'),
  };
}

test('DeiT-like: class and distillation tokens found from the patch grid; the default is the LayerNorm before attention', async () => {
  const { candidates, defaultLayer } = await layersOf(tinyVit(2));
  const ln1 = candidates.find((c) => c.tensor === 'ln1')!;
  assert.equal(defaultLayer, ln1.name);
  assert.deepEqual([ln1.view?.kind, ln1.view?.prefix, ln1.view?.grid], ['tokens', 2, [4, 4]]);
  assert.match(ln1.why, /after 2 prefix tokens \(class and distillation tokens, as DeiT\); default/);
  // After the attention only the class token reaches the head.
  assert.match(candidates.find((c) => c.tensor === 'ln2')!.why, /only the prefix tokens reach the logits/);
});

test('register tokens without a patch convolution: the prefix is what leaves a square grid; model.json can declare it', async () => {
  const found = await layersOf(tinyVit(5, false));
  const ln1 = found.candidates.find((c) => c.tensor === 'ln1')!;
  assert.deepEqual([ln1.view?.prefix, ln1.view?.grid], [5, [4, 4]]);
  // Declared: a 2×8 grid after 5 tokens (not square: detection alone would not find it).
  const declared = await layersOf(tinyVit(5, false), { tokens: { prefix: 5, grid: [2, 8] } });
  const d = declared.candidates.find((c) => c.tensor === 'ln1')!;
  assert.deepEqual([d.view?.prefix, d.view?.grid, d.dims], [5, [2, 8], [1, 8, 2, 8]]);
});

/** Conv → Relu (→ BatchNormalization) → GAP → Gemm, or a text-line CNN whose last map is a strip. */
function cnn(kind: 'bn-last' | 'strip'): TestGraph {
  const nodes = kind === 'bn-last'
    ? [
      makeNode('Conv', ['x', 'w1'], ['c1'], { pads: ints([1, 1, 1, 1]) }),
      makeNode('Relu', ['c1'], ['r1']),
      makeNode('BatchNormalization', ['r1', 's', 'b', 'm', 'v'], ['bn']),
      makeNode('GlobalAveragePool', ['bn'], ['g']),
      makeNode('Flatten', ['g'], ['f']),
      makeNode('Gemm', ['f', 'fc'], ['y'], { transB: int(1) }),
    ]
    : [
      makeNode('Conv', ['x', 'w1'], ['c1'], { pads: ints([1, 1, 1, 1]) }),
      makeNode('Relu', ['c1'], ['r1']), // 4×8×32
      makeNode('Conv', ['r1', 'w2'], ['c2'], { kernel_shape: ints([8, 1]) }),
      makeNode('Relu', ['c2'], ['strip']), // 4×1×32: one row per text column
      makeNode('GlobalAveragePool', ['strip'], ['g']),
      makeNode('Flatten', ['g'], ['f']),
      makeNode('Gemm', ['f', 'fc'], ['y'], { transB: int(1) }),
    ];
  return {
    nodes,
    inputs: [{ name: 'x', dims: kind === 'strip' ? [1, 1, 8, 32] : [1, 1, 8, 8] }],
    outputs: ['y'],
    initializers: [
      floatTensor('w1', [4, 1, 3, 3], uniform(36, 1)), floatTensor('w2', [4, 4, 8, 1], uniform(128, 2)), floatTensor('fc', [3, 4], uniform(12, 3)),
      floatTensor('s', [4], [1, 1, 1, 1]), floatTensor('b', [4], [0, 0, 0, 0]), floatTensor('m', [4], [0, 0, 0, 0]), floatTensor('v', [4], [1, 1, 1, 1]),
    ],
  };
}

test('a BatchNormalization after the last activation: the activation is the default, the BN output says why not', async () => {
  const { candidates, defaultLayer } = await layersOf(cnn('bn-last'));
  assert.equal(defaultLayer, 'r1');
  assert.match(candidates.find((c) => c.name === 'bn')!.why, /BatchNormalization output after the last activation: the activation before it is preferred/);
});

test('a text-line CNN: the 2-D map is the default, the 1×32 strip is offered with its reason', async () => {
  const { candidates, defaultLayer } = await layersOf(cnn('strip'));
  assert.equal(defaultLayer, 'r1');
  assert.match(candidates.find((c) => c.name === 'strip')!.why, /4×1×32 Relu output; a 1×32 strip: one spatial side is 1, so its map is one-dimensional/);
});
