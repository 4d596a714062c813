// pytorch-grad-cam's targets (objective of the logits and its gradient, the seed of the backward pass)
// against the library's values, and the per-class combination of gradients that seeds rely on.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ModelRuntime } from '../../src/engine/runtime.js';
import { reluInPlace, spatialMean, sumChannels, weightChannels } from '../../src/cam/maths.js';
import { combineGradients, evaluateTarget, finerComparison, nearestClasses, type TargetSpec } from '../../src/cam/targets.js';
import type { TargetKind } from '../../src/cam/types.js';
import type { CamserveError } from '../../src/errors/index.js';
import { floatTensor, int as intAttr, ints, makeNode } from '../../src/onnx/builder.js';
import { rng } from '../helpers/fd.js';
import { listMethodFixtures, maxAbsDiff, normalised, readF32 } from '../helpers/fixtures.js';
import { buildModelBytes } from '../helpers/graph.js';

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

// ---- Target kinds through ModelRuntime.explain: the backward pass seeded with each target's gradient ----

const KIND_OF: Record<string, TargetKind> = {
  ClassifierOutputSoftmaxTarget: 'softmax', ClassifierOutputReST: 'rest', FinerWeightedTarget: 'finer', ClassifierOutputTarget: 'class',
};

for (const fx of fixtures.filter((f) => ['resnet', 'mobilenetv3', 'convnext'].includes(f.name))) {
  describe(`${fx.name}: target kinds through explain (Grad-CAM of the library's seed)`, () => {
    let r: ModelRuntime;
    after(async () => { await r?.release(); });
    const input = readF32(fx.dir, fx.fixture.input.file);
    const layer = fx.fixture.cases[0].layer;
    for (const e of fx.targets.filter((x) => KIND_OF[x.kind])) {
      const kind = KIND_OF[e.kind];
      const finer = kind === 'finer' ? { ranks: [1, 2, 3], alpha: e.alpha! } : undefined;
      test(`target_kind=${kind}${finer ? ` (α = ${finer.alpha})` : ''}, class ${e.target}: the map is Grad-CAM of Σ_c seed_c G_c with pytorch-grad-cam's seed, to 1e-3; the objective is the library's`, async () => {
        r ??= await ModelRuntime.load(fx.dir);
        if (kind === 'finer') assert.deepEqual(finerComparison(fx.logits, e.target, finer!.ranks), e.comparison);
        const got = await r.explain({ input, method: 'gradcam', targets: [e.target], layers: [layer], targetKind: kind, finer });
        assert.equal(got.targetKind, kind);
        const objective = got.explanations[0].target.objective;
        assert.ok(Math.abs(objective - e.score) <= 1e-4 * Math.max(1, Math.abs(e.score)), `objective ${objective} vs ${e.score}`);
        const classes = Array.from({ length: r.info.numClasses }, (_, i) => i);
        const all = await r.activationsAndGradients(input, [layer], classes);
        const [, C, h, w] = r.tensorDims(layer)!;
        const A = all.activations[layer];
        const G = combineGradients(e.seed, all.gradients[layer], A.length);
        const want = reluInPlace(sumChannels(weightChannels({ name: layer, C, h, w, A }, spatialMean(G, C, h * w)), C, h * w));
        const d = maxAbsDiff(normalised(got.explanations[0].map.data), normalised(want));
        assert.ok(d <= 1e-3, `max |difference| ${d}`);
      });
    }
  });
}

/** A one-output binary classifier: x [1,3,8,8] → Conv 3→4 (3×3, pad 1) → Relu → GlobalAveragePool → Flatten → Gemm → z [1,1]. */
function binaryModel(): string {
  const g = rng(11);
  const w = Float32Array.from({ length: 4 * 3 * 9 }, () => g() - 0.5);
  const fc = Float32Array.of(1.5, -2, 0.7, -0.4);
  const bytes = buildModelBytes({
    inputs: [{ name: 'x', dims: [1, 3, 8, 8] }],
    outputs: ['z'],
    initializers: [floatTensor('w', [4, 3, 3, 3], w), floatTensor('b', [4], [0.1, -0.1, 0.05, 0]), floatTensor('fc', [1, 4], fc), floatTensor('fb', [1], [0.2])],
    nodes: [
      makeNode('Conv', ['x', 'w', 'b'], ['c'], { pads: ints([1, 1, 1, 1]), kernel_shape: ints([3, 3]) }),
      makeNode('Relu', ['c'], ['a']),
      makeNode('GlobalAveragePool', ['a'], ['p']),
      makeNode('Flatten', ['p'], ['f']),
      makeNode('Gemm', ['f', 'fc', 'fb'], ['z'], { transB: intAttr(1) }),
    ],
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'camserve-binary-'));
  writeFileSync(path.join(dir, 'model.onnx'), bytes);
  return dir;
}

describe('target_kind=binary on a one-output model (BinaryClassifierOutputTarget)', () => {
  let r: ModelRuntime;
  after(async () => { await r?.release(); });
  const g = rng(5);
  const x = Float32Array.from({ length: 3 * 64 }, () => g() * 2 - 1);

  test('category 1 explains +z, category 0 explains −z: the two maps are ReLU(m) and ReLU(−m) of one map m; default: the predicted category', async () => {
    r ??= await ModelRuntime.load(binaryModel());
    assert.equal(r.info.numClasses, 1);
    const one = await r.explain({ input: x, method: 'gradcam', targetKind: 'binary', targets: [1] });
    const zero = await r.explain({ input: x, method: 'gradcam', targetKind: 'binary', targets: [0] });
    const z = one.logits[0];
    assert.equal(one.explanations[0].category, 1);
    assert.equal(zero.explanations[0].category, 0);
    assert.equal(one.explanations[0].target.index, 0);
    assert.ok(Math.abs(one.explanations[0].target.objective - z) < 1e-6 && Math.abs(zero.explanations[0].target.objective + z) < 1e-6);
    const a = one.explanations[0].map.data;
    const b = zero.explanations[0].map.data;
    assert.ok(a.some((v) => v > 0) && b.some((v) => v > 0), 'both signs present');
    for (let i = 0; i < a.length; i++) assert.ok(a[i] === 0 || b[i] === 0, 'ReLU(m) and ReLU(−m) never both positive');
    const dflt = await r.explain({ input: x, method: 'gradcam', targetKind: 'binary' });
    assert.equal(dflt.explanations[0].category, z >= 0 ? 1 : 0);
  });

  test('binary is refused (422) on a model with more than one output, and a category must be 0 or 1', async () => {
    r ??= await ModelRuntime.load(binaryModel());
    await assert.rejects(r.explain({ input: x, method: 'gradcam', targetKind: 'binary', targets: [2] }), (e: CamserveError) => e.code === 'cannot-explain');
    const resnetRt = await ModelRuntime.load(resnet.dir);
    try {
      await assert.rejects(resnetRt.explain({ input: readF32(resnet.dir, resnet.fixture.input.file), method: 'gradcam', targetKind: 'binary' }),
        (e: CamserveError) => e.code === 'cannot-explain' && /one output/.test(e.message));
    } finally {
      await resnetRt.release();
    }
  });
});
