// Models as users bring them (tools/fixtures/generate_compat.py, quantize.py, generate_transformers.py):
// float16, fixed batches, an op without a gradient rule, quantized (QDQ, QOperator, dynamic), transformers.
// Every one: it loads; Eigen-CAM explains it; every gradient method explains it when its path has rules,
// otherwise a 422 naming the op and the node (test/helpers/models.ts).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelRuntime } from '../../src/engine/runtime.js';
import { pearson } from '../../tools/fixtures/check_quantized.js';
import { FIXTURES, readF32, relError } from '../helpers/fixtures.js';
import { assertServes, GRADIENT_METHODS, someInput } from '../helpers/models.js';

const MODELS = ['resnet-fp16', 'resnet-fp16-io32', 'lenet64', 'groupnorm8', 'ordinal', 'shapes-qdq', 'shapes-qop', 'shapes-dyn', 'vit', 'swin'];
const EXPECTED_BLOCKERS: Record<string, { op: string; node: string } | undefined> = {
  groupnorm8: { op: 'Reshape', node: '/gn1/Reshape' },
  ordinal: { op: 'CumSum', node: '/CumSum' },
};

const runtimes = new Map<string, Promise<ModelRuntime>>();
const load = (name: string) => {
  let p = runtimes.get(name);
  if (!p) runtimes.set(name, p = ModelRuntime.load(path.join(FIXTURES, name), { intraOpThreads: 1 }));
  return p;
};
after(async () => {
  for (const p of runtimes.values()) await (await p).release();
});

for (const name of MODELS) {
  test(`${name}: loads; Eigen-CAM, Score-CAM and Ablation-CAM explain it; gradient methods explain it or are refused naming op and node`, async () => {
    const rt = await load(name);
    const blocker = await assertServes(rt);
    assert.deepEqual(blocker, EXPECTED_BLOCKERS[name]);
  });
}

describe('float16', () => {
  const reference = JSON.parse(readFileSync(path.join(FIXTURES, 'resnet/reference.json'), 'utf8')) as { logits: { values: number[] }; cases: { layer: string; target: number; gradients: { file: string } }[] };
  const input = readF32(path.join(FIXTURES, 'resnet'), 'input.bin');
  for (const name of ['resnet-fp16', 'resnet-fp16-io32']) {
    test(`${name}: an fp32 twin runs everything; logits and gradients within float16 rounding of the float32 model`, async () => {
      const rt = await load(name);
      assert.deepEqual(rt.info.runs, { predictions: 'fp32 twin', gradients: 'fp32 twin' });
      assert.equal(rt.info.twin?.halfPrecision, true);
      assert.ok(rt.info.twin!.notes.some((n) => /float16 initializers made float32: \d+/.test(n)), rt.info.twin!.notes.join('; '));
      // Weights rounded to float16 (11-bit significands): measured 2.1e-3 relative on the logits.
      const e = relError(await rt.predict(input), reference.logits.values);
      assert.ok(e < 5e-3, `logits: relative error ${e}`);
      const c = reference.cases[0];
      const r = await rt.activationsAndGradients(input, [c.layer], [c.target]);
      const g = readF32(path.join(FIXTURES, 'resnet'), c.gradients.file);
      assert.ok(pearson(r.gradients[c.layer], g) > 0.999);
    });
  }
});

describe('fixed batch', () => {
  test('lenet64 (opset 9, x.view(64, -1)): the batch is made symbolic; batched runs reproduce the fixed batch\'s row 0', async () => {
    const rt = await load('lenet64');
    assert.equal(rt.info.batch.mode, 'symbolic');
    assert.equal(rt.info.batch.size, 64);
    assert.match(rt.info.batch.note, /made symbolic \(1 Reshape target shape made to copy the batch\)/);
    assert.deepEqual(rt.info.inputDims, [1, 1, 28, 28]);
    assert.equal(rt.dynamicBatch, true);
    // The original, run as exported (64 rows, the image in row 0), against the rewrite at batch 1.
    const x = someInput(rt);
    const original = await ort.InferenceSession.create(path.join(FIXTURES, 'lenet64/model.onnx'));
    const batch = new Float32Array(64 * x.length);
    batch.set(x);
    const own = (await original.run({ input: new ort.Tensor('float32', batch, [64, 1, 28, 28]) })).logits.data as Float32Array;
    await original.release();
    assert.ok(relError(await rt.predict(x), own.subarray(0, 10)) < 1e-5);
    // Score-CAM's whole-model runs go in batches, and give what runs one at a time give.
    const batched = await rt.explain({ input: x, method: 'scorecam' });
    const single = await ModelRuntime.load(path.join(FIXTURES, 'lenet64'), { batchSize: 1, intraOpThreads: 1 });
    try {
      const one = await single.explain({ input: x, method: 'scorecam' });
      assert.ok(relError(batched.explanations[0].map.data, one.explanations[0].map.data) < 1e-4);
    } finally {
      await single.release();
    }
  });

  test('groupnorm8 (its batch folded into a GroupNorm): row 0 of a zero batch; the blocking node is named', async () => {
    const rt = await load('groupnorm8');
    assert.equal(rt.info.batch.mode, 'zero-batch');
    assert.equal(rt.info.batch.size, 8);
    assert.deepEqual(rt.info.batch.blockedBy, { op: 'Reshape', node: '/gn1/Reshape' });
    assert.match(rt.info.defaultLayer, /#row0$/);
    assert.equal(rt.dynamicBatch, false);
    const x = someInput(rt);
    const original = await ort.InferenceSession.create(path.join(FIXTURES, 'groupnorm8/model.onnx'));
    const batch = new Float32Array(8 * x.length);
    batch.set(x);
    const own = (await original.run({ input: new ort.Tensor('float32', batch, [8, 3, 32, 32]) })).logits.data as Float32Array;
    await original.release();
    assert.ok(relError(await rt.predict(x), own.subarray(0, 10)) < 1e-5);
    const eigen = await rt.explain({ input: x, method: 'eigencam' });
    assert.equal(eigen.explanations[0].map.width, 16);
  });
});

describe('quantized', () => {
  for (const name of ['shapes-qdq', 'shapes-qop', 'shapes-dyn']) {
    test(`${name}: the quantized model predicts, its float twin explains; as it is, its maps are dequantized and gradients refused`, async () => {
      const rt = await load(name);
      assert.deepEqual(rt.info.runs, { predictions: 'model', gradients: 'float twin' });
      assert.ok(rt.info.twin!.quantizedOps.length > 0);
      assert.equal(rt.predictor?.file, path.join(FIXTURES, name, 'model.onnx'));
      const asIs = await ModelRuntime.load(path.join(FIXTURES, name), { twin: false, intraOpThreads: 1 });
      try {
        assert.deepEqual(asIs.info.runs, { predictions: 'model', gradients: 'model' });
        const blocker = await assertServes(asIs, asIs.info.defaultLayer, undefined, { anyBlocker: true });
        // QDQ and QOperator: the float path ends at a QuantizeLinear; dynamic: the activation's scale reaches
        // the logits through the scale products, and their Mul with a scalar path operand is refused.
        assert.equal(blocker?.op, name === 'shapes-dyn' ? 'Mul' : 'QuantizeLinear', JSON.stringify(blocker));
        assert.ok(GRADIENT_METHODS.length >= 7);
      } finally {
        await asIs.release();
      }
    });
  }
});
