// The model summary: scopes, rows, totals against the ONNX initializers and against PyTorch's own
// parameter count (reference.json `params`, written by tools/fixtures/generate.py).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { modelFacts, modulePath, scopeOf, type ModelFacts } from '../../src/inspect/facts.js';
import { formatSummary, summarize } from '../../src/inspect/summary.js';
import { ModelRuntime } from '../../src/engine/runtime.js';
import { OnnxModel } from '../../src/onnx/model.js';
import { listFixtures } from '../helpers/fixtures.js';

const fixtures = listFixtures();
const facts = new Map<string, ModelFacts>();

before(async () => {
  for (const f of fixtures) {
    const rt = await ModelRuntime.load(f.dir, { intraOpThreads: 1 });
    facts.set(f.name, modelFacts(rt));
    await rt.release();
  }
});
after(() => facts.clear());

test('scopes and module paths of PyTorch exporter node names', () => {
  assert.deepEqual(scopeOf('/layer4/layer4.1/conv1/Conv'), ['layer4', 'layer4.1', 'conv1']);
  assert.equal(modulePath(scopeOf('/layer4/layer4.1/conv1/Conv')), 'layer4.1.conv1');
  assert.equal(modulePath(scopeOf('/features/features.1/features.1.0/block/block.0/block.0.0/Conv')), 'features.1.0.block.0.0');
  assert.equal(modulePath(scopeOf('/layer1/layer1.0/relu_1/Relu')), 'layer1.0.relu_1');
  assert.deepEqual(scopeOf('/Relu'), []);
  assert.deepEqual(scopeOf('Identity_0'), []);
  assert.deepEqual(scopeOf(''), []);
});

test('total parameters = the elements of every ONNX initializer (decoded independently)', async () => {
  assert.ok(fixtures.length >= 5, 'fixtures are missing');
  for (const f of fixtures) {
    const model = await OnnxModel.load(path.join(f.dir, 'model.onnx'));
    let elements = 0;
    for (const t of model.graph.initializer) elements += (await model.tensorValue(t)).data.length;
    const s = summarize(facts.get(f.name)!);
    assert.equal(s.totals.parameters, elements, f.name);
    // Rows count each initializer once (in the first row that reads it); unread ones are reported apart.
    assert.equal(s.rows.reduce((a, r) => a + r.params, 0) + s.totals.unusedParameters, elements, f.name);
  }
});

/**
 * Why ONNX and PyTorch counts differ, per fixture (tools/fixtures/generate.py exports in eval mode with
 * constant folding):
 * - folded-bn: Conv+BatchNorm pairs are folded into one Conv with an anonymous weight ("onnx::Conv_N")
 *   and a bias of C; PyTorch had a bias-free conv plus BatchNorm γ, β (2·C): ONNX has C fewer per Conv.
 * - running-stats: a BatchNorm that does not follow a Conv (DenseNet's norm1 after a Concat) stays a
 *   BatchNormalization node whose running mean and var (2·C) are initializers but PyTorch buffers.
 * - dedup: the exporter stores equal parameters once (VGG's all-zero conv biases) and reads them
 *   through Identity nodes; PyTorch counts each.
 * ConvNeXt (LayerNorm, no BatchNorm) and SqueezeNet (no normalisation) agree exactly.
 */
const EXPECTED_ADJUSTMENTS: Record<string, string[]> = {
  convnext: [],
  densenet: ['running-stats', 'folded-bn'],
  efficientnet: ['folded-bn'],
  mobilenetv2: ['folded-bn'],
  mobilenetv3: ['folded-bn'],
  resnet: ['folded-bn'],
  'resnet-extdata': ['folded-bn'],
  squeezenet: [],
  vgg: ['dedup'],
};

test('trainableEstimate = PyTorch\'s parameter count exactly, with each adjustment named', () => {
  for (const f of fixtures) {
    const s = summarize(facts.get(f.name)!);
    assert.equal(s.totals.trainableEstimate, f.params, `${f.name}: ONNX ${s.totals.parameters}, notes ${s.totals.trainableNotes.join('; ')}`);
    const kinds = s.totals.trainableNotes.map((n) => (/running/.test(n) ? 'running-stats' : /folded/.test(n) ? 'folded-bn' : /Identity/.test(n) ? 'dedup' : n));
    if (f.name in EXPECTED_ADJUSTMENTS) assert.deepEqual(kinds.sort(), [...EXPECTED_ADJUSTMENTS[f.name]].sort(), f.name);
    if (kinds.length === 0) assert.equal(s.totals.parameters, f.params, f.name);
    // Each note carries its signed size; together they are the difference.
    const delta = s.totals.trainableNotes.reduce((a, n) => a + Number(/^([+−])(\d+)/.exec(n)![2]) * (n.startsWith('−') ? -1 : 1), 0);
    assert.equal(s.totals.parameters + delta, f.params, f.name);
  }
});

test('rows: one per module call with its ops, output shape and parameters (ResNet)', () => {
  const s = summarize(facts.get('resnet')!);
  const row = (layer: string) => s.rows.find((r) => r.layer === layer)!;
  assert.deepEqual(row('conv1').ops, ['Conv']);
  assert.deepEqual(row('conv1').outputs[0].dims, [1, 8, 32, 32]);
  assert.equal(row('conv1').params, 8 * 3 * 7 * 7 + 8); // folded conv: weight + bias
  assert.deepEqual(row('layer1.0').ops, ['Add']); // the residual add belongs to the block's own scope
  assert.ok(row('layer1.0.relu_1'), 'a module called twice gets one row per call');
  assert.equal(row('fc').params, 64 * 10 + 10);
  assert.deepEqual(s.rows.at(-1)!.outputs[0].dims, [1, 10]);
  // torchsummary's sizes: forward = Σ row outputs (float32), forward/backward = 2×, total = input + 2×forward + params.
  const forward = s.rows.reduce((a, r) => a + r.outputs.reduce((b, o) => b + o.dims.reduce((x, y) => x * y, 1), 0), 0) * 4 / 2 ** 20;
  assert.ok(Math.abs(s.sizes.forwardMB - forward) < 1e-12);
  assert.equal(s.sizes.forwardBackwardMB, 2 * s.sizes.forwardMB);
  assert.ok(Math.abs(s.sizes.inputMB - (3 * 64 * 64 * 4) / 2 ** 20) < 1e-12);
  assert.ok(Math.abs(s.sizes.paramsMB - (s.totals.parameters * 4) / 2 ** 20) < 1e-12);
  assert.ok(Math.abs(s.sizes.totalMB - (s.sizes.inputMB + s.sizes.forwardBackwardMB + s.sizes.paramsMB)) < 1e-12);
});

test('nodes without a scope are rows of their own; constant-only nodes are not rows', () => {
  const vgg = summarize(facts.get('vgg')!);
  assert.ok(vgg.rows.some((r) => r.layer === '/Flatten' && r.scope === null));
  assert.ok(!vgg.rows.some((r) => r.ops.includes('Identity')), 'Identity of a weight is not a layer');
  const convnext = summarize(facts.get('convnext')!);
  assert.ok(!convnext.rows.some((r) => r.ops.includes('Constant')));
});

test('formatSummary: an aligned table, then the totals and sizes', () => {
  const text = formatSummary(summarize(facts.get('resnet')!));
  const lines = text.split('\n');
  const eq = lines.map((l, i) => (l.startsWith('====') ? i : -1)).filter((i) => i >= 0);
  assert.equal(eq.length, 2);
  const header = lines[eq[0] - 1];
  const rows = lines.slice(eq[0] + 1, eq[1]);
  assert.match(header, /^Layer\s+Ops\s+Output Shape\s+Param #$/);
  const col = header.indexOf('Output Shape');
  for (const r of rows) {
    assert.equal(r.length, header.length, r); // Param # right-aligned to the header's end
    assert.match(r.slice(col), /^\[/, r); // shapes start in the header's column
  }
  assert.match(text, /Total params \(ONNX initializers\): 78,602/);
  assert.match(text, /Trainable params \(PyTorch estimate\): 78,962/);
  assert.match(text, /Forward\/backward pass size \(MB\): \d+\.\d\d {2}\(2 × forward/);
  assert.match(text, /Estimated Total Size \(MB\): \d+\.\d\d/);
});
