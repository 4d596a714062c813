// camserve's CAM methods against the libraries themselves (pytorch-grad-cam, TorchCAM), run by
// tools/fixtures/generate_methods.py on the fixture models: every method through ModelRuntime.explain,
// noisy ones with the libraries' recorded noise as the request's draws.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { ModelRuntime } from '../../src/engine/runtime.js';
import type { ExplainRequest } from '../../src/engine/explain.js';
import { buildHessianRun } from '../../src/engine/gradients.js';
import { rawMap } from '../../src/cam/compute.js';
import { METHODS } from '../../src/cam/methods/index.js';
import { shapleycam } from '../../src/cam/methods/shapleycam.js';
import { refineMaps } from '../../src/cam/refinecam.js';
import { evaluateTarget, finerComparison, targetSpec } from '../../src/cam/targets.js';
import { FINER_DEFAULTS, type LayerTensors, type MethodContext, type MethodName } from '../../src/cam/types.js';
import {
  correlation, listMethodFixtures, maxAbsDiff, normalised, predictRunner, readF32, readStored, relError, type MapRef,
} from '../helpers/fixtures.js';

const fixtures = listMethodFixtures();
const TOL = 1e-3;

const relu = (x: Float32Array) => Float32Array.from(x, (v) => (v > 0 ? v : 0));
/** The library's map after its ReLU, with camserve's Eigen-CAM sign rule (max ≥ |min|) applied first where asked. */
function expected(dir: string, ref: MapRef, signRule = false): Float32Array {
  const raw = readStored(dir, ref);
  if (!signRule) return relu(raw);
  let max = -Infinity;
  let min = Infinity;
  for (const v of raw) { max = Math.max(max, v); min = Math.min(min, v); }
  const s = max >= Math.abs(min) ? 1 : -1;
  return relu(Float32Array.from(raw, (v) => s * v));
}
const diff = (a: Float32Array, b: Float32Array) => maxAbsDiff(normalised(a), normalised(b));

/**
 * Where camserve (and the committed references) differ from the library on purpose. pytorch-grad-cam's
 * AblationLayer re-reads min(batch) after ablating each batch member, so when min(A) ≠ 0 channel k is set
 * to min(A) − (1 + k mod 32)·1e7 (32 = its batch size) instead of min(A) − 1e7; where the head does not
 * saturate such values (EfficientNet), the maps differ. Reproduced exactly in Python with that value
 * (tools/fixtures/README.md).
 */
const KNOWN_DEVIATIONS: Record<string, string> = {
  'efficientnet/features8-top1/ablationcam': 'the library ablates with min(A) − (1 + k mod 32)·1e7',
  'efficientnet/features8-class6/ablationcam': 'the library ablates with min(A) − (1 + k mod 32)·1e7',
};

/** The served methods pytorch-grad-cam has too (cam: the library has no CAM class). */
const SERVED: MethodName[] = ['gradcam', 'hirescam', 'gradcam-elementwise', 'gradcam++', 'xgradcam', 'layercam', 'eigencam', 'eigengradcam'];

test('every torchvision family has library references', () => {
  assert.deepEqual(fixtures.map((f) => f.family).sort(),
    ['convnext', 'densenet', 'efficientnet', 'mobilenetv2', 'mobilenetv3', 'resnet', 'squeezenet', 'vgg']);
  for (const f of fixtures) for (const lib of ['pytorch-grad-cam', 'torch-cam', 'captum']) assert.match(f.libraries[lib], /^[0-9a-f]{40}$/);
});

for (const fx of fixtures) {
  describe(`${fx.name}: camserve vs pytorch-grad-cam / TorchCAM`, () => {
    let runtime: ModelRuntime;
    const input = readF32(fx.dir, fx.fixture.input.file);
    const load = async () => (runtime ??= await ModelRuntime.load(fx.dir, { batchSize: 32 }));
    after(async () => { await runtime?.release(); });
    const tensorCache = new Map<string, Promise<{ layer: LayerTensors; ctx: MethodContext; logits: Float32Array }>>();
    /** A and G of a case from the engine (the test entry point) */
    const tensors = (layer: string, target: number) => {
      const key = `${layer}/${target}`;
      let p = tensorCache.get(key);
      if (!p) {
        p = (async () => {
          const rt = await load();
          const r = await rt.activationsAndGradients(input, [layer], [target]);
          const [, C, h, w] = rt.tensorDims(layer)!;
          return {
            layer: { name: layer, C, h, w, A: r.activations[layer], G: r.gradients[layer] },
            ctx: { target, score: r.logits[target], runner: predictRunner(rt, input) },
            logits: r.logits,
          };
        })();
        tensorCache.set(key, p);
      }
      return p;
    };

    for (const c of fx.cases) {
      for (const name of SERVED) {
        test(`${c.id}: ${name} (served) equals pytorch-grad-cam's map to ${TOL} after normalisation`, async () => {
          const rt = await load();
          const r = await rt.explain({ input, method: name, targets: [c.target], layers: [c.layer] });
          const d = diff(r.explanations[0].map.data, expected(fx.dir, c.maps[name], name.startsWith('eigen')));
          assert.ok(d <= TOL, `max |difference| ${d}`);
        });
      }
      const committed = fx.fixture.cases.find((k) => k.id === c.id)!;
      for (const name of ['scorecam', 'ablationcam']) {
        const known = KNOWN_DEVIATIONS[`${fx.name}/${c.id}/${name}`];
        test(known
          ? `${c.id}: ${name} deviates from pytorch-grad-cam's map as known (${known})`
          : `${c.id}: the committed ${name} reference equals pytorch-grad-cam's own map to ${TOL}`, () => {
          const d = diff(readF32(fx.dir, committed.maps[name].file), expected(fx.dir, c.maps[name]));
          if (known) assert.ok(d > 0.05, `expected the known deviation, but the maps agree to ${d}`);
          else assert.ok(d <= TOL, `max |difference| ${d}`);
        });
      }

      /** the map camserve serves for this case (through ModelRuntime.explain) */
      const served = async (method: MethodName, extra: Partial<ExplainRequest> = {}) => {
        const rt = await load();
        const r = await rt.explain({ input, method, targets: [c.target], layers: [c.layer], ...extra });
        return r.explanations[0].map.data;
      };
      for (const name of ['fem', 'segeigencam', 'shapleycam', 'finercam'] as const) {
        test(`${c.id}: ${name} (served) equals pytorch-grad-cam's map to ${TOL} after normalisation`, async () => {
          const d = diff(await served(name), expected(fx.dir, c.maps[name]));
          assert.ok(d <= TOL, `max |difference| ${d}`);
        });
      }

      test(`${c.id}: the engine's H·A (the head's backward differentiated again) equals the library's double backprop`, async () => {
        const rt = await load();
        const ref = c.maps.shapleycam.hvp as MapRef;
        const want = readStored(fx.dir, ref);
        const set = await rt.layerSet([c.layer]);
        const hv = await buildHessianRun(rt, set, c.layer, {});
        const maxAbs = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        if (!hv.session) {
          // No session: the backward pass does not read A through floating-point tensors, so H·A = 0 exactly.
          assert.equal(maxAbs, 0, 'the library has a non-zero H·A where camserve says the head is piecewise linear');
          return;
        }
        const t = await tensors(c.layer, c.target);
        const seed = new Float32Array(rt.info.numClasses);
        seed[c.target] = 1;
        const trunk = await set.trunk.session.run({ [rt.info.inputName]: rt.inputTensor(input) });
        const feeds: Record<string, ort.Tensor> = {
          [hv.seed]: new ort.Tensor('float32', seed, [1, rt.info.numClasses]),
          [hv.vector]: new ort.Tensor('float32', t.layer.A, rt.tensorDims(c.layer)!),
        };
        for (const n of hv.inputs) feeds[n] = trunk[n] as ort.Tensor;
        const got = (await hv.session.session.run(feeds, [hv.output]))[hv.output].data as Float32Array;
        if (maxAbs === 0) assert.ok(got.every((v) => Math.abs(v) <= 1e-6), 'H·A should vanish');
        else assert.ok(relError(got, want) <= 1e-3, `relative error ${relError(got, want)}`);
        await hv.session.release();
        if (fx.name === 'mobilenetv3') {
          // Its Hardswish head has a Hessian large enough to matter (convnext's is too small to tell at 1e-3;
          // the other heads are piecewise linear, H·A = 0): without H·A the map is Grad-CAM's, and differs.
          const d0 = diff(await rawMap(shapleycam, { ...t.layer, HA: new Float32Array(want.length) }, t.ctx), expected(fx.dir, c.maps.shapleycam));
          assert.ok(d0 > TOL, `H·A makes no difference here (${d0})`);
        }
      });

      test(`${c.id}: kpcacam (served) correlates with pytorch-grad-cam's map (r ≥ 0.999)`, async () => {
        const map = await served('kpcacam');
        const want = expected(fx.dir, c.maps.kpcacam);
        const r = correlation(map, want);
        const d = diff(map, want);
        assert.ok(r >= 0.999 || d <= TOL, `r = ${r}, max |difference| ${d}`);
      });

      test(`${c.id}: finercam's seed (its comparison classes, α = 1) equals pytorch-grad-cam's FinerWeightedTarget gradient`, async () => {
        const t = await tensors(c.layer, c.target);
        const ref = c.maps.finercam as MapRef & { main: number; comparison: number[]; seed: number[] };
        assert.equal(ref.main, c.target);
        assert.deepEqual(finerComparison(t.logits, c.target, FINER_DEFAULTS.ranks), ref.comparison);
        const spec = targetSpec('finer', c.target, t.logits, FINER_DEFAULTS);
        const seed = evaluateTarget(spec, t.logits).seed;
        assert.ok(maxAbsDiff(seed, ref.seed) <= 1e-5, `seed differs by ${maxAbsDiff(seed, ref.seed)}`);
      });

      test(`${c.id}: randomcam (served) with the library's drawn weights equals its map to ${TOL}`, async () => {
        const drawn = readStored(fx.dir, c.maps.randomcam.weights as MapRef);
        const d = diff(await served('randomcam', { draws: drawn }), expected(fx.dir, c.maps.randomcam));
        assert.ok(d <= TOL, `max |difference| ${d}`);
      });

      const tc = c.torchcam;
      if (tc.iscam && layerChannels(fx, c.layer) <= 320) {
        test(`${c.id}: iscam (served) equals TorchCAM's ISCAM to ${TOL} after normalisation`, async () => {
          const d = diff(await served('iscam'), relu(readStored(fx.dir, tc.iscam)));
          assert.ok(d <= TOL, `max |difference| ${d}`);
        });
      }
      if (tc.sscam) {
        test(`${c.id}: sscam (served) with TorchCAM's recorded noise as draws equals its SSCAM to ${TOL} after normalisation`, async () => {
          const noise = readStored(fx.dir, tc.sscam.noise as MapRef);
          const d = diff(await served('sscam', { draws: noise }), relu(readStored(fx.dir, tc.sscam)));
          assert.ok(d <= TOL, `max |difference| ${d}`);
        });
      }
      if (tc.smoothgradcampp) {
        test(`${c.id}: smoothgradcampp (served) with the recorded input noise as draws equals TorchCAM's SmoothGradCAMpp to ${TOL}`, async () => {
          const noise = readStored(fx.dir, tc.smoothgradcampp.noise as MapRef);
          const d = diff(await served('smoothgradcampp', { draws: noise }), relu(readStored(fx.dir, tc.smoothgradcampp)));
          assert.ok(d <= TOL, `max |difference| ${d}`);
        });
      }
    }

    if (fx.refinecam) {
      const ref = fx.refinecam;
      test(`refinecam (served) over ${ref.layers.length} layers equals pytorch-grad-cam's RefineCAM to ${TOL}`, async () => {
        const rt = await load();
        const r = await rt.explain({ input, method: 'refinecam', targets: [ref.target], layers: ref.layers });
        const d = diff(r.explanations[0].map.data, readStored(fx.dir, ref));
        assert.ok(d <= TOL, `max |difference| ${d}`);
        // The same product from the base method's single-layer maps.
        const maps = [];
        for (const layer of ref.layers) maps.push((await rt.explain({ input, method: 'gradcam++', targets: [ref.target], layers: [layer] })).explanations[0].map);
        const { height, width } = rt.info.inputSize;
        assert.ok(maxAbsDiff(refineMaps(maps, width, height).data, r.explanations[0].map.data) <= 1e-6);
      });
    }
  });
}

/** C of a layer: ISCAM is checked where its N·C single-input runs stay quick (not mobilenetv2's 1280 channels). */
function layerChannels(fx: (typeof fixtures)[number], layer: string): number {
  const c = fx.fixture.cases.find((k) => k.layer === layer)!;
  return c.activations.dims[1];
}

test('the served methods listed here are all served', () => {
  for (const m of SERVED) assert.ok(METHODS[m], m);
});
