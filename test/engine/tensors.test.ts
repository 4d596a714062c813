// ModelRuntime.tensors, the engine's tensors for inspection (forward hooks), against PyTorch's own, from the fixtures: activations alone
// (a forward session, no backward built), and activations with class-score gradients (the engine's).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ModelRuntime } from '../../src/engine/runtime.js';
import { FIXTURES, readF32, relError } from '../helpers/fixtures.js';
import { readFileSync } from 'node:fs';

const dir = path.join(FIXTURES, 'resnet');
const ref = JSON.parse(readFileSync(path.join(dir, 'reference.json'), 'utf8')) as {
  cases: { id: string; layer: string; target: number; activations: { file: string }; gradients: { file: string } }[];
  logits: { values: number[] };
};
let rt: ModelRuntime;
const input = () => readF32(dir, 'input.bin');

before(async () => {
  rt = await ModelRuntime.load(dir, { intraOpThreads: 1 });
});
after(async () => {
  await rt.release();
});

test('activations only: every layer asked for, equal to PyTorch\'s forward hooks', async () => {
  const layers = [...new Set(ref.cases.map((c) => c.layer))];
  const r = await rt.tensors({ input: input(), layers });
  assert.deepEqual(r.targets, []);
  assert.ok(relError(r.logits, ref.logits.values) < 1e-4);
  for (const c of ref.cases) {
    const l = r.layers.find((x) => x.layer === c.layer)!;
    assert.equal(l.gradients, undefined);
    assert.deepEqual(l.dims.length, 4);
    assert.ok(relError(l.activations, readF32(dir, c.activations.file)) < 1e-4, c.id);
  }
});

test('with targets: activations and d logit / d activations per class, equal to PyTorch\'s autograd', async () => {
  const cases = ref.cases.filter((c) => c.layer === ref.cases[0].layer);
  const targets = cases.map((c) => c.target);
  const r = await rt.tensors({ input: input(), layers: [cases[0].layer], targets });
  assert.deepEqual(r.targets, targets);
  const l = r.layers[0];
  const n = l.activations.length;
  assert.equal(l.gradients!.length, targets.length * n);
  cases.forEach((c, k) => {
    assert.ok(relError(l.gradients!.subarray(k * n, (k + 1) * n), readF32(dir, c.gradients.file)) < 1e-4, c.id);
  });
});

test('topk picks the best classes first; bad layers and classes are refused', async () => {
  const r = await rt.tensors({ input: input(), layers: [rt.info.defaultLayer], topk: 2 });
  const order = Array.from(ref.logits.values.keys()).sort((a, b) => ref.logits.values[b] - ref.logits.values[a]);
  assert.deepEqual(r.targets, order.slice(0, 2));
  await assert.rejects(rt.tensors({ input: input(), layers: ['nope'] }), { code: 'cannot-explain' });
  await assert.rejects(rt.tensors({ input: input(), layers: [rt.info.defaultLayer], targets: [10] }), { code: 'cannot-explain' });
  await assert.rejects(rt.tensors({ input: new Float32Array(3), layers: [rt.info.defaultLayer] }), RangeError);
});
