// Token layers of transformers: torchvision's ViT-B/16 (class token, [1, T, C] maps) and Swin-T (channels-
// last [1, H, W, C] maps) at reduced size, against pytorch-grad-cam itself with its reshape_transform
// (tools/fixtures/generate_transformers.py): the default layer is the tutorials' one, activations and
// gradients after the reshape equal PyTorch's, every method's map equals the library's.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ModelRuntime } from '../../src/engine/runtime.js';
import { isMethodName } from '../../src/cam/types.js';
import { FIXTURES, maxAbsDiff, normalised, readF32, relError } from '../helpers/fixtures.js';

interface MapRef { dims: number[]; file: string }
interface Case { id: string; module: string; tensor: string; layer: string; target: number; activations: MapRef; gradients: MapRef; maps: Record<string, MapRef> }
interface Reference { family: string; opset: number; input: { file: string }; logits: { values: number[] }; cases: Case[] }

/** The library's raw map after its ReLU; for the Eigen methods camserve's sign rule (max ≥ |min|) first. */
function expected(dir: string, method: string, ref: MapRef): Float32Array {
  const raw = readF32(dir, ref.file);
  let sign = 1;
  if (method.startsWith('eigen')) {
    let max = -Infinity;
    let min = Infinity;
    for (const v of raw) { max = Math.max(max, v); min = Math.min(min, v); }
    if (max < Math.abs(min)) sign = -1;
  }
  return Float32Array.from(raw, (v) => Math.max(sign * v, 0));
}

for (const name of ['vit', 'swin']) {
  const dir = path.join(FIXTURES, name);
  const ref = JSON.parse(readFileSync(path.join(dir, 'transformer.json'), 'utf8')) as Reference;
  const input = readF32(dir, ref.input.file);
  describe(`${name} (torchvision, opset ${ref.opset})`, () => {
    let runtime: ModelRuntime | undefined;
    const load = async () => (runtime ??= await ModelRuntime.load(dir, { batchSize: 16 }));
    after(async () => { await runtime?.release(); });

    test('loads; the default layer is the tutorials\' one, offered as a token map with its reshape', async () => {
      const rt = await load();
      assert.equal(rt.info.defaultLayer, ref.cases[0].layer);
      const c = rt.info.candidateLayers.find((l) => l.name === rt.info.defaultLayer)!;
      assert.equal(c.tensor, ref.cases[0].tensor);
      assert.deepEqual(c.dims, [1, ...ref.cases[0].activations.dims]);
      if (name === 'vit') {
        assert.equal(c.view?.kind, 'tokens');
        assert.equal(c.view?.prefix, 1);
        assert.deepEqual(c.view?.grid, [7, 7]);
        assert.match(c.why, /token map \[1, 50, 48\] as a 7×7 grid after 1 prefix token \(the class token\)/);
        // The last block's second LayerNorm: only the class token reaches the head from there.
        const ln2 = rt.info.candidateLayers.find((l) => l.tensor.includes('encoder_layer_1/ln_2'))!;
        assert.match(ln2.why, /only the prefix tokens reach the logits/);
      } else {
        assert.equal(c.view?.kind, 'channels-last');
        assert.match(c.why, /channels-last map \[1, 7, 7, 64\] as \[1, 64, 7, 7\]/);
        const final = rt.info.candidateLayers.find((l) => l.tensor.startsWith('/norm/'))!;
        assert.match(final.why, /final norm/);
      }
      assert.ok(rt.info.candidateLayers.every((l) => l.dims.length === 4 && l.why.length > 0));
    });

    test('logits equal PyTorch to 1e-4 relative', async () => {
      const rt = await load();
      assert.ok(relError(await rt.predict(input), ref.logits.values) <= 1e-4);
    });

    test('a layer can be named by its candidate name, its tensor or its node', async () => {
      const rt = await load();
      const c = rt.info.candidateLayers.find((l) => l.name === rt.info.defaultLayer)!;
      assert.deepEqual(rt.resolveLayers([c.tensor]), [c.name]);
      assert.deepEqual(rt.resolveLayers([c.node]), [c.name]);
      assert.throws(() => rt.resolveLayers(['no such layer']), { code: 'cannot-explain' });
    });

    for (const c of ref.cases) {
      test(`${c.id}: A and dScore/dA after the reshape equal PyTorch to 1e-4 relative`, async () => {
        const rt = await load();
        const r = await rt.activationsAndGradients(input, [c.layer], [c.target]);
        const errA = relError(r.activations[c.layer], readF32(dir, c.activations.file));
        const errG = relError(r.gradients[c.layer], readF32(dir, c.gradients.file));
        assert.ok(errA <= 1e-4, `activations: ${errA}`);
        assert.ok(errG <= 1e-4, `gradients: ${errG}`);
      });

      test(`${c.id}: every method's map equals pytorch-grad-cam's to 1e-3 after normalisation`, async () => {
        const rt = await load();
        let nonZero = 0;
        for (const [method, mref] of Object.entries(c.maps)) {
          assert.ok(isMethodName(method), method);
          const r = await rt.explain({ input, method, targets: [c.target], layers: [c.layer] });
          const want = expected(dir, method, mref);
          const map = r.explanations[0].map;
          assert.deepEqual([map.height, map.width], mref.dims, method);
          const d = maxAbsDiff(normalised(map.data), normalised(want));
          assert.ok(d <= 1e-3, `${method}: max difference ${d}`);
          if (want.some((v) => v > 0)) nonZero++;
        }
        // The comparisons are not between empty maps (Grad-CAM's never is: the generator picks such classes;
        // Score-CAM and Ablation-CAM can be all negative on random weights, as the library says too).
        assert.ok(expected(dir, 'gradcam', c.maps.gradcam).some((v) => v > 0));
        assert.ok(nonZero >= Object.keys(c.maps).length - 2, `${nonZero} non-zero reference maps`);
      });
    }
  });
}
