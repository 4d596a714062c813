// The faithfulness metrics against pytorch-grad-cam's and TorchCAM's values on the fixture models, with
// the model run by onnxruntime (ModelRuntime.predict) and ROAD's noise replayed from the fixture.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ModelRuntime } from '../../src/engine/runtime.js';
import { spatialMean, weightChannels, sumChannels, reluInPlace } from '../../src/cam/maths.js';
import { combineGradients, evaluateTarget, type TargetSpec } from '../../src/cam/targets.js';
import { averageMaps } from '../../src/render/index.js';
import {
  arcc, camMultImageConfidenceChange, complexity, coherency, deletionInsertion, dropInConfidence, increaseInConfidence,
  evaluateMetrics, mixedImage, objective, road, roadAverage, roadCombined, roadImpute, type Image, type LogitsFn, type MetricName, type RoadOptions,
} from '../../src/metrics/index.js';
import type { MetricsEvaluator } from '../../src/engine/subject.js';
import { listMethodFixtures, maxAbsDiff, normalised, readF32, readStored, relError, type StoredRef } from '../helpers/fixtures.js';

interface PerObjective {
  camMultImageConfidenceChange: number; dropInConfidence: number; increaseInConfidence: number;
  roadMostRelevantFirst: { percentile: number; value: number }; roadLeastRelevantFirst: { percentile: number; value: number };
  roadMostRelevantFirstPer: number[]; roadLeastRelevantFirstPer: number[]; percentiles: number[];
  roadMostRelevantFirstAverage: number; roadLeastRelevantFirstAverage: number; roadCombined: number;
  arcc: number; complexity: number; coherency: number; roadCombined20406080: number; coherencyCam: StoredRef;
}
interface MetricsRef {
  target: number; cam: StoredRef; roadNoise: StoredRef; roadImputed: StoredRef & { percentile: number };
  logit: PerObjective; softmax: PerObjective;
  deletionInsertion: { cam: StoredRef; steps: number; fractions: number[]; deletion: number[]; insertion: number[]; deletionAuc: number; insertionAuc: number };
}

const fixtures = listMethodFixtures().filter((f) => f.metrics);
/** scores are logits O(1) or probabilities; ONNX and PyTorch float32 runs agree far better than this */
const TOL = 1e-3;
const near = (got: number, want: number, what: string) => assert.ok(Math.abs(got - want) <= TOL, `${what}: ${got} vs ${want} (|Δ| ${Math.abs(got - want)})`);

test('metric references exist for resnet and efficientnet', () => {
  assert.deepEqual(fixtures.map((f) => f.name).sort(), ['efficientnet', 'resnet']);
});

for (const fx of fixtures) {
  const ref = fx.metrics as unknown as MetricsRef;
  const t = ref.target;
  describe(`${fx.name}: metrics vs pytorch-grad-cam / TorchCAM (target ${t})`, () => {
    let rt: ModelRuntime;
    const load = async () => (rt ??= await ModelRuntime.load(fx.dir));
    after(async () => { await rt?.release(); });
    const [, C, H, W] = fx.fixture.input.dims;
    const image: Image = { data: readF32(fx.dir, fx.fixture.input.file), channels: C, height: H, width: W };
    const cam = readStored(fx.dir, ref.cam);
    const roadOpts: RoadOptions = { noise: readStored(fx.dir, ref.roadNoise), cache: new Map() };
    const model: LogitsFn = async (inputs) => {
      const r = await load();
      const out = [];
      for (const x of inputs) out.push(await r.predict(x));
      return out;
    };
    const specs: Record<'logit' | 'softmax', TargetSpec> = { logit: { kind: 'logit', target: t }, softmax: { kind: 'softmax', target: t } };

    test(`ROAD's imputed image (most relevant first, ${ref.roadImputed.percentile} %) equals the library's (scipy spsolve) to 1e-5`, () => {
      const got = roadImpute(image, cam, ref.roadImputed.percentile, 'most-relevant-first', roadOpts);
      const want = readStored(fx.dir, ref.roadImputed);
      const d = maxAbsDiff(got, want);
      assert.ok(d <= 1e-5, `max |difference| ${d}`);
    });

    for (const name of ['logit', 'softmax'] as const) {
      const lib = ref[name];
      const s = { model, objective: objective(specs[name]) };
      test(`${name}: CamMultImageConfidenceChange, DropInConfidence, IncreaseInConfidence`, async () => {
        near(await camMultImageConfidenceChange(image, cam, s), lib.camMultImageConfidenceChange, 'change');
        near(await dropInConfidence(image, cam, s), lib.dropInConfidence, 'drop');
        assert.equal(await increaseInConfidence(image, cam, s), lib.increaseInConfidence);
      });
      test(`${name}: ROAD at every percentile, both orders`, async () => {
        for (const [k, p] of lib.percentiles.entries()) {
          near(await road(image, cam, p, 'most-relevant-first', s, roadOpts), lib.roadMostRelevantFirstPer[k], `MoRF ${p} %`);
          near(await road(image, cam, p, 'least-relevant-first', s, roadOpts), lib.roadLeastRelevantFirstPer[k], `LeRF ${p} %`);
        }
        near(await road(image, cam, 80, 'most-relevant-first', s, roadOpts), lib.roadMostRelevantFirst.value, 'ROADMostRelevantFirst()');
        near(await road(image, cam, 20, 'least-relevant-first', s, roadOpts), lib.roadLeastRelevantFirst.value, 'ROADLeastRelevantFirst()');
      });
      test(`${name}: ROAD averages and ROADCombined`, async () => {
        near(await roadAverage(image, cam, 'most-relevant-first', s, roadOpts), lib.roadMostRelevantFirstAverage, 'MoRF average');
        near(await roadAverage(image, cam, 'least-relevant-first', s, roadOpts), lib.roadLeastRelevantFirstAverage, 'LeRF average');
        near(await roadCombined(image, cam, s, roadOpts), lib.roadCombined, 'combined');
      });
      test(`${name}: ARCC (Complexity, Coherency with camserve's Grad-CAM of image ⊙ map, ROAD 20–80 %)`, async () => {
        // Coherency's second map: Grad-CAM of the mixed image for the metric's objective (a softmax objective
        // seeds the backward pass with its gradient: G = Σ_c seed_c G_c), at the input size as the library's.
        const r = await load();
        const mixed = mixedImage(image, cam);
        const layer = fx.fixture.cases[0].layer;
        const classes = Array.from({ length: r.info.numClasses }, (_, i) => i);
        const tg = await r.activationsAndGradients(mixed, [layer], classes);
        const [, Cl, h, w] = r.tensorDims(layer)!;
        const A = tg.activations[layer];
        const G = combineGradients(evaluateTarget(specs[name], tg.logits).seed, tg.gradients[layer], A.length);
        const l = { name: layer, C: Cl, h, w, A, G };
        const raw = reluInPlace(sumChannels(weightChannels(l, spatialMean(G, Cl, h * w)), Cl, h * w));
        const mixedMap = averageMaps([{ width: w, height: h, data: raw }], W, H).data;
        const dm = maxAbsDiff(normalised(mixedMap), normalised(readStored(fx.dir, lib.coherencyCam)));
        assert.ok(dm <= TOL, `Grad-CAM of the mixed image: max |difference| ${dm}`);
        near(complexity(cam), lib.complexity, 'complexity');
        near(coherency(cam, mixedMap), lib.coherency, 'coherency');
        const parts = await arcc(image, cam, mixedMap, s, roadOpts);
        near(parts.road, lib.roadCombined20406080, 'ROAD 20/40/60/80');
        near(parts.arcc, lib.arcc, 'ARCC');
      });
    }

    test("deletion/insertion (softmax, 20 steps, zero baseline) equal TorchCAM's curves and AUCs", async () => {
      const di = ref.deletionInsertion;
      const r = await deletionInsertion(image, readStored(fx.dir, di.cam), { model, objective: objective(specs.softmax) }, { steps: di.steps });
      assert.ok(maxAbsDiff(r.fractions, di.fractions) === 0, 'fractions');
      assert.ok(relError(r.deletion, di.deletion) <= TOL, `deletion curve: ${relError(r.deletion, di.deletion)}`);
      assert.ok(relError(r.insertion, di.insertion) <= TOL, `insertion curve: ${relError(r.insertion, di.insertion)}`);
      near(r.deletionAuc, di.deletionAuc, 'deletion AUC');
      near(r.insertionAuc, di.insertionAuc, 'insertion AUC');
    });
  });
}

// ---- Per request: the engine's Grad-CAM, batched model runs and re-explanation, with src/metrics' evaluator ----

// ResNet only: efficientnet's ROAD is checked above at the function level (the imputations are the cost).
for (const fx of fixtures.filter((f) => f.name === 'resnet')) {
  const ref = fx.metrics as unknown as MetricsRef;
  const t = ref.target;
  describe(`${fx.name}: metrics of a served explanation (ModelRuntime.explain with metrics) vs the libraries`, () => {
    let rt: ModelRuntime;
    after(async () => { await rt?.release(); });
    const input = readF32(fx.dir, fx.fixture.input.file);
    const roadNoise = readStored(fx.dir, ref.roadNoise);
    const evaluator: MetricsEvaluator = (spec, subject) => evaluateMetrics({ ...spec, names: spec.names as MetricName[], roadNoise }, subject);

    for (const score of ['logit', 'softmax'] as const) {
      test(`${score}: ROAD (morf, lerf, combined), confidence changes and ARCC of Grad-CAM equal pytorch-grad-cam's to ${TOL}`, async () => {
        rt ??= await ModelRuntime.load(fx.dir);
        const names = ['road_morf', 'road_lerf', 'road_combined', 'confidence_change', 'drop_in_confidence', 'increase_in_confidence', 'arcc'];
        const r = await rt.explain({ input, method: 'gradcam', targets: [t], metrics: { names, score } }, { evaluateMetrics: evaluator });
        const m = r.explanations[0].metrics!;
        assert.deepEqual(Object.keys(m), names);
        const lib = ref[score];
        near(m.road_morf, lib.roadMostRelevantFirstAverage, 'road_morf');
        near(m.road_lerf, lib.roadLeastRelevantFirstAverage, 'road_lerf');
        near(m.road_combined, lib.roadCombined, 'road_combined');
        near(m.confidence_change, lib.camMultImageConfidenceChange, 'confidence_change');
        near(m.drop_in_confidence, lib.dropInConfidence, 'drop_in_confidence');
        assert.equal(m.increase_in_confidence, lib.increaseInConfidence);
        near(m.arcc, lib.arcc, 'arcc');
        assert.ok(r.timings.metrics_ms > 0);
      });
    }

    test("deletion, insertion: Grad-CAM of the softmax (TorchCAM's extractor), AUCs equal TorchCAM's", async () => {
      rt ??= await ModelRuntime.load(fx.dir);
      const di = ref.deletionInsertion;
      const r = await rt.explain({ input, method: 'gradcam', targets: [t], targetKind: 'softmax', metrics: { names: ['deletion', 'insertion'], score: 'softmax' } }, { evaluateMetrics: evaluator });
      const m = r.explanations[0].metrics!;
      near(m.deletion, di.deletionAuc, 'deletion AUC');
      near(m.insertion, di.insertionAuc, 'insertion AUC');
    });

    test('road_percentiles sets ROAD\'s percentiles: at 20, 40, 60, 80 road_combined is the library\'s ROADCombined(percentiles=[20, 40, 60, 80])', async () => {
      rt ??= await ModelRuntime.load(fx.dir);
      const four = await rt.explain({ input, method: 'gradcam', targets: [t], metrics: { names: ['road_combined'], score: 'logit', roadPercentiles: [20, 40, 60, 80] } }, { evaluateMetrics: evaluator });
      near(four.explanations[0].metrics!.road_combined, ref.logit.roadCombined20406080, 'ROAD 20/40/60/80');
    });
  });
}
