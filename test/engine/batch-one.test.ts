// A fixed input batch of 1 (a torch.onnx export without dynamic_axes) made symbolic at load where the graph
// allows it, so that Score-CAM's C + 1 whole-model runs go in batches; kept (one image per run, the reason
// in the batch note) where a batch of 2 does not reproduce each input run alone.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ModelRuntime } from '../../src/engine/runtime.js';
import type { ExplainRequest } from '../../src/engine/explain.js';
import { floatTensor, int, int64Tensor, ints, makeNode } from '../../src/onnx/builder.js';
import { decodeModel, encodeModel, type NodeProto, type TensorProto } from '../../src/onnx/proto.js';
import { uniform } from '../helpers/fd.js';
import { FIXTURES, readF32, relError } from '../helpers/fixtures.js';
import { buildModelBytes } from '../helpers/graph.js';
import { someInput } from '../helpers/models.js';

/** A copy of a fixture model whose input's batch axis is symbolic ("N"): a model exported with dynamic_axes. */
function dynamicBatchCopy(dir: string): string {
  const m = decodeModel(readFileSync(path.join(dir, 'model.onnx')));
  m.graph!.input![0].type!.tensor_type!.shape!.dim![0] = { dim_param: 'N' };
  const out = mkdtempSync(path.join(tmpdir(), 'camserve-dynamic-'));
  writeFileSync(path.join(out, 'model.onnx'), encodeModel(m));
  return out;
}

/** Explains with progress recorded: one call per batch of whole-model (or head) runs. */
async function explainCounting(rt: ModelRuntime, req: ExplainRequest): Promise<{ map: Float32Array; batches: number; runs: number }> {
  const seen: number[] = [];
  const r = await rt.explain(req, { progress: (done) => seen.push(done) });
  return { map: r.explanations[0].map.data, batches: seen.length, runs: seen.at(-1) ?? 0 };
}

const runtimes: ModelRuntime[] = [];
after(async () => { for (const rt of runtimes) await rt.release(); });
const load = async (dir: string, opts: Parameters<typeof ModelRuntime.load>[1] = {}) => {
  const rt = await ModelRuntime.load(dir, { intraOpThreads: 1, batchSize: 16, batchMs: 1e9, ...opts });
  runtimes.push(rt);
  return rt;
};

for (const name of ['resnet', 'mobilenetv2']) {
  describe(`${name} (fixed batch 1)`, () => {
    const dir = path.join(FIXTURES, name);
    const x = readF32(dir, 'input.bin');

    test('the batch is made symbolic at load; symbolicBatch: false keeps it', async () => {
      const rt = await load(dir);
      assert.deepEqual([rt.info.batch.mode, rt.info.batch.size], ['symbolic', 1]);
      assert.match(rt.info.batch.note, /^the fixed batch of 1 was made symbolic/);
      assert.equal(rt.dynamicBatch, true);
      const kept = await load(dir, { symbolicBatch: false });
      assert.deepEqual([kept.info.batch.mode, kept.info.batch.size, kept.info.batch.note], ['one', 1, 'the input batch is 1']);
      assert.equal(kept.dynamicBatch, false);
      // Same logits for one image.
      assert.ok(relError(await rt.predict(x), await kept.predict(x)) < 1e-5);
    });

    test('Score-CAM runs in batches of batchSize and gives the one-at-a-time map and the dynamic export\'s map to 1e-5', async () => {
      const rt = await load(dir);
      const kept = await load(dir, { symbolicBatch: false });
      const dynamic = await load(dynamicBatchCopy(dir));
      const C = rt.tensorDims(rt.info.defaultLayer)![1];
      const req: ExplainRequest = { input: x, method: 'scorecam' };
      const batched = await explainCounting(rt, req);
      const single = await explainCounting(kept, req);
      const dyn = await explainCounting(dynamic, req);
      assert.equal(batched.runs, C);
      assert.equal(single.runs, C);
      assert.equal(single.batches, C, 'the kept fixed batch runs one image at a time');
      assert.equal(batched.batches, Math.ceil(C / 16), 'the rewritten model runs batches of 16');
      assert.equal(dyn.batches, batched.batches);
      assert.ok(relError(batched.map, single.map) <= 1e-5, `vs one at a time: ${relError(batched.map, single.map)}`);
      assert.ok(relError(batched.map, dyn.map) <= 1e-5, `vs the dynamic export: ${relError(batched.map, dyn.map)}`);
    });

    test('explainBatch shares one trunk run, each result equal to explaining alone', async () => {
      const rt = await load(dir);
      const y = someInput(rt, 11);
      const [a, b] = await rt.explainBatch([{ input: x, method: 'gradcam' }, { input: y, method: 'gradcam' }]);
      const a1 = await rt.explain({ input: x, method: 'gradcam' });
      const b1 = await rt.explain({ input: y, method: 'gradcam' });
      assert.ok(relError(a.explanations[0].map.data, a1.explanations[0].map.data) <= 1e-5);
      assert.ok(relError(b.explanations[0].map.data, b1.explanations[0].map.data) <= 1e-5);
    });
  });
}

describe('a batch of 1 that cannot be made symbolic', () => {
  test('vit (a class token concatenated with a hard-coded batch of 1): kept, one image per run, the node named in the note', async () => {
    const rt = await load(path.join(FIXTURES, 'vit'));
    assert.equal(rt.info.batch.mode, 'one');
    assert.equal(rt.dynamicBatch, false);
    assert.deepEqual(rt.info.batch.blockedBy, { op: 'Concat', node: '/Concat' });
    assert.match(rt.info.batch.note, /^the input batch is 1 and cannot be made symbolic \(Concat node "\/Concat": .+\); runs go one image at a time$/);
    const r = await explainCounting(rt, { input: someInput(rt), method: 'scorecam' });
    assert.equal(r.batches, r.runs);
  });
});

/** A built model with input [1, 3, 8, 8]: Conv 3→4 → Add of a bias made [1, −1, 1, 1] by a Reshape → Relu ("feat") → `head` → "logits". */
function builtModel(head: NodeProto[], inits: TensorProto[] = []): string {
  const bytes = buildModelBytes({
    nodes: [
      makeNode('Conv', ['input', 'cw'], ['conv'], { pads: ints([1, 1, 1, 1]) }),
      makeNode('Reshape', ['bias', 'bias_shape'], ['bias4']),
      makeNode('Add', ['conv', 'bias4'], ['biased']),
      makeNode('Relu', ['biased'], ['feat']),
      ...head,
    ],
    inputs: [{ name: 'input', dims: [1, 3, 8, 8] }],
    outputs: ['logits'],
    initializers: [
      floatTensor('cw', [4, 3, 3, 3], uniform(108, 11)), floatTensor('bias', [4], uniform(4, 12)), int64Tensor('bias_shape', [4], [1, -1, 1, 1]),
      floatTensor('W', [5, 256], uniform(5 * 256, 13)), ...inits,
    ],
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'camserve-batch1-'));
  writeFileSync(path.join(dir, 'model.onnx'), bytes);
  return dir;
}

describe('built models', () => {
  test('x.view(1, −1) before the classifier: rewritten to copy the batch (the bias\'s [1, −1, 1, 1] left alone); Score-CAM batched, same map', async () => {
    const dir = builtModel([
      makeNode('Reshape', ['feat', 'flat'], ['f']),
      makeNode('Gemm', ['f', 'W'], ['logits'], { transB: int(1) }),
    ], [int64Tensor('flat', [2], [1, -1])]);
    const rt = await load(dir, { batchSize: 8 });
    assert.equal(rt.info.batch.mode, 'symbolic');
    assert.match(rt.info.batch.note, /1 Reshape target shape made to copy the batch/);
    const kept = await load(dir, { symbolicBatch: false });
    const x = uniform(3 * 64, 3);
    const a = await explainCounting(rt, { input: x, method: 'scorecam', layers: ['feat'] });
    const b = await explainCounting(kept, { input: x, method: 'scorecam', layers: ['feat'] });
    assert.deepEqual([a.runs, a.batches, b.batches], [4, 1, 4]);
    assert.ok(relError(a.map, b.map) <= 1e-5);
  });

  test('channels reshaped into rows (a hard-coded [4, 64]): kept at batch 1, the Reshape named', async () => {
    const dir = builtModel([
      makeNode('Reshape', ['feat', 'rows'], ['r']),
      makeNode('ReduceMean', ['r'], ['m'], { axes: ints([0]), keepdims: int(1) }),
      makeNode('Gemm', ['m', 'W64'], ['logits'], { transB: int(1) }),
    ], [int64Tensor('rows', [2], [4, 64]), floatTensor('W64', [5, 64], uniform(5 * 64, 14))]);
    const rt = await load(dir);
    assert.equal(rt.info.batch.mode, 'one');
    assert.equal(rt.dynamicBatch, false);
    assert.match(rt.info.batch.note, /^the input batch is 1 and cannot be made symbolic \(Reshape node "r": .+\); runs go one image at a time$/);
  });
});

test('model.json "symbolicBatch": false keeps one model\'s batch of 1 as exported, saying so; a value that is not a boolean is refused', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'camserve-keep-batch-'));
  writeFileSync(path.join(dir, 'model.onnx'), readFileSync(path.join(FIXTURES, 'resnet', 'model.onnx')));
  writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ symbolicBatch: false }));
  const kept = await load(dir);
  assert.deepEqual([kept.info.batch.mode, kept.info.batch.size], ['one', 1]);
  assert.match(kept.info.batch.note, /kept as exported \(model\.json: "symbolicBatch": false\)/);
  assert.equal(kept.dynamicBatch, false);
  writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ symbolicBatch: 'no' }));
  await assert.rejects(load(dir), /"symbolicBatch" .*true or false/);
});
