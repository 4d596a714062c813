import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ModelRuntime } from '../../src/engine/runtime.js';
import { OnnxModel } from '../../src/onnx/model.js';
import { FIXTURES, listFixtures } from '../helpers/fixtures.js';
import { buildModelBytes } from '../helpers/graph.js';
import { uniform } from '../helpers/fd.js';
import { floatTensor, int, ints, makeNode } from '../../src/onnx/builder.js';

test('the default layer is the last channels-first feature map before global pooling', async () => {
  // What pytorch-grad-cam users pick (the fixture's first case), except SqueezeNet, whose last spatial map
  // is its convolutional classifier's ReLU (one channel per class).
  for (const f of listFixtures()) {
    const rt = await ModelRuntime.load(f.dir);
    const expected = f.family === 'squeezenet' ? '/classifier/classifier.2/Relu_output_0' : f.cases[0].layer;
    assert.equal(rt.info.defaultLayer, expected, f.name);
    assert.ok(rt.info.candidateLayers.every((c) => c.dims.length === 4 && c.dims[2] * c.dims[3] > 1), f.name);
    await rt.release();
  }
});

test('channels-last tensors (ConvNeXt LayerNorm after Transpose) are not candidate layers', async () => {
  const rt = await ModelRuntime.load(path.join(FIXTURES, 'convnext'));
  assert.ok(!rt.info.candidateLayers.some((c) => c.name.includes('/classifier/')));
  await rt.release();
});

test('the logits are the input of a final Softmax, and that is what gets differentiated', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-softmax-'));
  await writeFile(path.join(dir, 'model.onnx'), buildModelBytes({
    nodes: [
      makeNode('Conv', ['x', 'w'], ['c'], { pads: ints([1, 1, 1, 1]) }),
      makeNode('Relu', ['c'], ['r']),
      makeNode('GlobalAveragePool', ['r'], ['g']),
      makeNode('Flatten', ['g'], ['f']),
      makeNode('Gemm', ['f', 'fc'], ['z'], { transB: int(1) }),
      makeNode('Softmax', ['z'], ['prob'], { axis: int(1) }),
    ],
    inputs: [{ name: 'x', dims: [1, 3, 8, 8] }],
    outputs: ['prob'],
    initializers: [floatTensor('w', [4, 3, 3, 3], uniform(108, 1)), floatTensor('fc', [5, 4], uniform(20, 2))],
  }));
  const rt = await ModelRuntime.load(dir);
  assert.equal(rt.info.logits, 'z');
  assert.equal(rt.info.defaultLayer, 'r');
  const r = await rt.activationsAndGradients(uniform(192, 3), ['r'], [2]);
  // For GAP → linear, dz_c/dr = W_c / (h·w) at every position.
  const g = r.gradients.r;
  const fc = uniform(20, 2);
  for (let k = 0; k < 4; k++) assert.ok(Math.abs(g[k * 64 + 17] - fc[2 * 4 + k] / 64) < 1e-6);
  await rt.release();
  await rm(dir, { recursive: true, force: true });
});

test('a model whose external data file is missing is refused with an error naming the file', async () => {
  const file = path.join(FIXTURES, 'resnet-extdata', 'model.onnx');
  const bytes = await readFile(file);
  await assert.rejects(OnnxModel.fromBytes(bytes, '/nonexistent/dir/model.onnx'), /external data file "model\.onnx\.data" is missing/);
});

test('a model with external data loads and explains like the same model with embedded weights', async () => {
  const a = await ModelRuntime.load(path.join(FIXTURES, 'resnet'));
  const b = await ModelRuntime.load(path.join(FIXTURES, 'resnet-extdata'));
  assert.deepEqual(b.info.externalData, ['model.onnx.data']);
  const input = new Float32Array(3 * 64 * 64).map((_, i) => Math.sin(i));
  const ra = await a.explain({ input, method: 'gradcam', targets: [3] });
  const rb = await b.explain({ input: input.slice(), method: 'gradcam', targets: [3] });
  assert.deepEqual(Array.from(rb.explanations[0].map.data), Array.from(ra.explanations[0].map.data));
  await a.release();
  await b.release();
});
