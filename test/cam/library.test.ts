// camserve's CAM methods against the libraries themselves (pytorch-grad-cam, TorchCAM), run by
// tools/fixtures/generate_methods.py on the fixture models: served methods end to end, candidates on A, G.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ModelRuntime } from '../../src/engine/runtime.js';
import { rawMap } from '../../src/cam/compute.js';
import { METHODS } from '../../src/cam/methods/index.js';
import { fem } from '../../src/cam/methods/fem.js';
import { finercam } from '../../src/cam/methods/finercam.js';
import { iscam } from '../../src/cam/methods/iscam.js';
import { kpcacam } from '../../src/cam/methods/kpcacam.js';
import { segeigencam } from '../../src/cam/methods/segeigencam.js';
import { shapleycam } from '../../src/cam/methods/shapleycam.js';
import { createSscam } from '../../src/cam/methods/sscam.js';
import { refineMaps } from '../../src/cam/refinecam.js';
import { smoothGradCamPlusPlus } from '../../src/cam/smoothgradcampp.js';
import { combineGradients } from '../../src/cam/targets.js';
import { MethodError, type CamMethod, type LayerTensors, type MethodContext, type MethodName } from '../../src/cam/types.js';
import {
  correlation, listMethodFixtures, maxAbsDiff, normalised, predictRunner, readF32, readStored, type MapRef,
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

      const check = (label: string, method: CamMethod, extra: Partial<LayerTensors> = {}) =>
        test(`${c.id}: ${label} equals pytorch-grad-cam's map to ${TOL} after normalisation`, async () => {
          const t = await tensors(c.layer, c.target);
          const map = await rawMap(method, { ...t.layer, ...extra }, t.ctx);
          const d = diff(map, expected(fx.dir, c.maps[method.name]));
          assert.ok(d <= TOL, `max |difference| ${d}`);
        });
      check('fem', fem);
      check('segeigencam', segeigencam);

      test(`${c.id}: shapleycam with the stored H·A equals pytorch-grad-cam's map to ${TOL}; without H·A it is refused`, async () => {
        const t = await tensors(c.layer, c.target);
        const HA = readStored(fx.dir, c.maps.shapleycam.hvp as MapRef);
        const map = await rawMap(shapleycam, { ...t.layer, HA }, t.ctx);
        const d = diff(map, expected(fx.dir, c.maps.shapleycam));
        assert.ok(d <= TOL, `max |difference| ${d}`);
        await assert.rejects(rawMap(shapleycam, t.layer, t.ctx), MethodError);
        if (fx.name === 'mobilenetv3') {
          // Its Hardswish head has a Hessian large enough to matter (convnext's is too small to tell at 1e-3;
          // the other heads are piecewise linear, H·A = 0): without H·A the map is Grad-CAM's, and differs.
          const d0 = diff(await rawMap(shapleycam, { ...t.layer, HA: new Float32Array(HA.length) }, t.ctx), expected(fx.dir, c.maps.shapleycam));
          assert.ok(d0 > TOL, `H·A makes no difference here (${d0})`);
        }
      });

      test(`${c.id}: kpcacam correlates with pytorch-grad-cam's map (r ≥ 0.999)`, async () => {
        const t = await tensors(c.layer, c.target);
        const map = await rawMap(kpcacam, t.layer, t.ctx);
        const want = expected(fx.dir, c.maps.kpcacam);
        const r = correlation(map, want);
        const d = diff(map, want);
        assert.ok(r >= 0.999 || d <= TOL, `r = ${r}, max |difference| ${d}`);
      });

      test(`${c.id}: finercam (seed vector over the logits, G combined from per-class gradients) equals pytorch-grad-cam's map to ${TOL}`, async () => {
        const rt = await load();
        const classes = Array.from({ length: rt.info.numClasses }, (_, i) => i);
        const all = await rt.activationsAndGradients(input, [c.layer], classes);
        const t = await tensors(c.layer, c.target);
        const ref = c.maps.finercam as MapRef & { main: number; comparison: number[]; seed: number[] };
        assert.equal(ref.main, c.target);
        const seed = finercam.seed!(all.logits, c.target);
        assert.ok(maxAbsDiff(seed, ref.seed) <= 1e-5, `seed differs by ${maxAbsDiff(seed, ref.seed)}`);
        const size = t.layer.C * t.layer.h * t.layer.w;
        const G = combineGradients(seed, all.gradients[c.layer], size);
        const map = await rawMap(finercam, { ...t.layer, G }, t.ctx);
        const d = diff(map, expected(fx.dir, ref));
        assert.ok(d <= TOL, `max |difference| ${d}`);
      });

      test(`${c.id}: randomcam's channel combination with the library's drawn weights equals its map to ${TOL}`, async () => {
        const t = await tensors(c.layer, c.target);
        const drawn = readStored(fx.dir, c.maps.randomcam.weights as MapRef);
        const replay: CamMethod = { name: 'randomcam', needs: 'activations', weights: () => drawn };
        const d = diff(await rawMap(replay, t.layer, t.ctx), expected(fx.dir, c.maps.randomcam));
        assert.ok(d <= TOL, `max |difference| ${d}`);
      });

      const tc = c.torchcam;
      if (tc.iscam && layerChannels(fx, c.layer) <= 320) {
        test(`${c.id}: iscam equals TorchCAM's ISCAM to ${TOL} after normalisation`, async () => {
          const t = await tensors(c.layer, c.target);
          const d = diff(await rawMap(iscam, t.layer, t.ctx), relu(readStored(fx.dir, tc.iscam)));
          assert.ok(d <= TOL, `max |difference| ${d}`);
        });
      }
      if (tc.sscam) {
        test(`${c.id}: sscam with TorchCAM's recorded noise equals its SSCAM to ${TOL} after normalisation`, async () => {
          const t = await tensors(c.layer, c.target);
          const noise = readStored(fx.dir, tc.sscam.noise as MapRef);
          const [S, C, H, W] = (tc.sscam.noise as MapRef).dims;
          assert.equal(C, t.layer.C);
          const method = createSscam({ samples: S, std: 2, noise: (s, k) => noise.subarray((s * C + k) * H * W, (s * C + k + 1) * H * W) });
          const d = diff(await rawMap(method, t.layer, t.ctx), relu(readStored(fx.dir, tc.sscam)));
          assert.ok(d <= TOL, `max |difference| ${d}`);
        });
      }
      if (tc.smoothgradcampp) {
        test(`${c.id}: Smooth Grad-CAM++ from runs on the recorded noisy inputs equals TorchCAM's to ${TOL}`, async () => {
          const rt = await load();
          const t = await tensors(c.layer, c.target);
          const ref = tc.smoothgradcampp;
          const noise = readStored(fx.dir, ref.noise as MapRef);
          const n = (ref.noise as MapRef).dims[0];
          const noisy = [];
          for (let s = 0; s < n; s++) {
            const x = Float32Array.from(input, (v, i) => v + noise[s * input.length + i]);
            const r = await rt.activationsAndGradients(x, [c.layer], [c.target]);
            noisy.push({ A: r.activations[c.layer], G: r.gradients[c.layer] });
          }
          const map = smoothGradCamPlusPlus({ C: t.layer.C, h: t.layer.h, w: t.layer.w, clean: t.layer.A, noisy });
          const d = diff(map, relu(readStored(fx.dir, ref)));
          assert.ok(d <= TOL, `max |difference| ${d}`);
        });
      }
    }

    if (fx.refinecam) {
      const ref = fx.refinecam;
      test(`RefineCAM over ${ref.layers.length} layers (camserve's gradcam++ maps) equals pytorch-grad-cam's product to ${TOL}`, async () => {
        const rt = await load();
        const maps = [];
        for (const layer of ref.layers) {
          const r = await rt.explain({ input, method: 'gradcam++', targets: [ref.target], layers: [layer] });
          maps.push(r.explanations[0].map);
        }
        const { height, width } = rt.info.inputSize;
        const out = refineMaps(maps, width, height);
        const d = diff(out.data, readStored(fx.dir, ref));
        assert.ok(d <= TOL, `max |difference| ${d}`);
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
