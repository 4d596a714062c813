// pytorch-grad-cam's targets (objective of the logits and its gradient, the seed of the backward pass)
// against the library's values, and the per-class combination of gradients that seeds rely on.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ModelRuntime } from '../../src/engine/runtime.js';
import { combineGradients, evaluateTarget, nearestClasses, type TargetSpec } from '../../src/cam/targets.js';
import { listMethodFixtures, maxAbsDiff, readF32 } from '../helpers/fixtures.js';

const fixtures = listMethodFixtures();

function spec(e: (typeof fixtures)[number]['targets'][number]): { spec: TargetSpec; oneOutput: boolean } {
  switch (e.kind) {
    case 'ClassifierOutputTarget': return { spec: { kind: 'logit', target: e.target }, oneOutput: false };
    case 'ClassifierOutputSoftmaxTarget': return { spec: { kind: 'softmax', target: e.target }, oneOutput: false };
    case 'ClassifierOutputReST': return { spec: { kind: 'rest', target: e.target }, oneOutput: false };
    case 'BinaryClassifierOutputTarget:1': return { spec: { kind: 'binary', category: 1 }, oneOutput: true };
    case 'BinaryClassifierOutputTarget:0': return { spec: { kind: 'binary', category: 0 }, oneOutput: true };
    case 'FinerWeightedTarget': return { spec: { kind: 'finer', main: e.target, comparison: e.comparison!, alpha: e.alpha! }, oneOutput: false };
    default: throw new Error(`unknown target kind ${e.kind}`);
  }
}

for (const fx of fixtures) {
  const logits = fx.logits;
  test(`${fx.name}: every target's score and seed equal pytorch-grad-cam's (autograd) to 1e-5`, () => {
    assert.ok(fx.targets.length >= 7);
    for (const e of fx.targets) {
      const { spec: s, oneOutput } = spec(e);
      // A binary classifier has one output: the library's target was applied to logits[target] alone.
      const z = oneOutput ? [logits[e.target]] : logits;
      const v = evaluateTarget(s, z);
      const seed = oneOutput ? Float64Array.from(logits, (_, i) => (i === e.target ? v.seed[0] : 0)) : v.seed;
      const scale = Math.max(1, Math.abs(e.score));
      assert.ok(Math.abs(v.score - e.score) <= 1e-5 * scale, `${e.kind} ${e.target}: score ${v.score} vs ${e.score}`);
      const d = maxAbsDiff(seed, e.seed);
      assert.ok(d <= 1e-5 * Math.max(1, ...e.seed.map(Math.abs)), `${e.kind} ${e.target}: seed differs by ${d}`);
      if (e.kind === 'FinerWeightedTarget') assert.deepEqual(nearestClasses(logits, e.target, 3), e.comparison);
    }
  });
}

test('a binary target refuses a model with more than one output', () => {
  assert.throws(() => evaluateTarget({ kind: 'binary', category: 1 }, [1, 2]), RangeError);
});

test("TorchCAM's contrastive Finer objective: z_c − γ·mean(z_r) and its seed", () => {
  const v = evaluateTarget({ kind: 'contrast', target: 0, comparison: [1, 2], gamma: 0.6 }, [3, 1, 2]);
  assert.ok(Math.abs(v.score - (3 - 0.6 * 1.5)) < 1e-12);
  assert.deepEqual([...v.seed], [1, -0.3, -0.3]);
});

const resnet = fixtures.find((f) => f.name === 'resnet')!;
let rt: ModelRuntime | undefined;
after(async () => { await rt?.release(); });

test('combineGradients: a one-hot seed gives that class\'s gradient; the combination is linear in the seed', async () => {
  rt = await ModelRuntime.load(resnet.dir);
  const input = readF32(resnet.dir, resnet.fixture.input.file);
  const layer = resnet.fixture.cases[0].layer;
  const classes = Array.from({ length: rt.info.numClasses }, (_, i) => i);
  const all = await rt.activationsAndGradients(input, [layer], classes);
  const size = all.activations[layer].length;
  const one = await rt.activationsAndGradients(input, [layer], [3]);
  const seed = new Float64Array(classes.length);
  seed[3] = 1;
  assert.ok(maxAbsDiff(combineGradients(seed, all.gradients[layer], size), one.gradients[layer]) <= 1e-6);
  const soft = evaluateTarget({ kind: 'softmax', target: 3 }, all.logits).seed;
  const g1 = combineGradients(soft, all.gradients[layer], size);
  const g2 = combineGradients(soft.map((v) => 2 * v), all.gradients[layer], size);
  assert.ok(maxAbsDiff(g2, g1.map((v) => 2 * v)) <= 1e-6);
  assert.throws(() => combineGradients(soft, all.gradients[layer], size + 1), RangeError);
});
