// The plain functions the CLI calls: each loads the model in this thread and releases it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { XMLValidator } from 'fast-xml-parser';
import sharp from 'sharp';
import { featureGridPng, graphSvg, histogramsOf, summaryText } from '../../src/cli/inspect.js';
import { FIXTURES, readF32 } from '../helpers/fixtures.js';

const dir = path.join(FIXTURES, 'resnet');

test('summaryText: the table of a model folder', async () => {
  const text = await summaryText(dir);
  assert.match(text, /^Model: resnet/);
  assert.match(text, /layer4\.0\.conv2 +Conv +\[1, 64, 2, 2\] +36,928/);
  assert.match(text, /Total params \(ONNX initializers\): 78,602/);
});

test('graphSvg: SVG, or DOT on request', async () => {
  assert.equal(XMLValidator.validate(await graphSvg(dir, { collapse: 'scope', depth: 1 })), true);
  assert.match(await graphSvg(path.join(dir, 'model.onnx'), { format: 'dot' }), /^digraph model \{/);
});

test('featureGridPng: the grid of a layer for a preprocessed input; histogramsOf counts every element', async () => {
  const x = readF32(dir, 'input.bin');
  const png = await featureGridPng(dir, x, '/relu/Relu_output_0', { nrow: 4, scale: 2, normalize: true });
  const meta = await sharp(png).metadata();
  // 8 maps of 32×32 enlarged to 64×64, 4 per row, padding 2
  assert.deepEqual([meta.width, meta.height], [4 * 66 + 2, 2 * 66 + 2]);
  const h = await histogramsOf(dir, x, undefined, { bins: 10, targets: [9] });
  assert.deepEqual(h.targets, [9]);
  const l = h.layers[0];
  assert.equal(l.activations.counts.reduce((a, b) => a + b, 0), 64 * 2 * 2);
  assert.equal(l.gradients[0].histogram.counts.reduce((a, b) => a + b, 0), 64 * 2 * 2);
});
