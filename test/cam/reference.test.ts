// Every fixture model exported from PyTorch: activations, gradients and every method's map equal the
// references computed with PyTorch hooks (tools/fixtures/generate.py).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ModelRuntime } from '../../src/engine/runtime.js';
import { METHOD_NAMES, isMethodName } from '../../src/cam/types.js';
import { listFixtures, listMethodFixtures, maxAbsDiff, normalised, readF32, relError } from '../helpers/fixtures.js';

const fixtures = listFixtures();

test('fixtures exist for every torchvision family', () => {
  const families = new Set(fixtures.map((f) => f.family));
  for (const f of ['resnet', 'mobilenetv2', 'mobilenetv3', 'efficientnet', 'densenet', 'vgg', 'squeezenet', 'convnext']) {
    assert.ok(families.has(f), `missing fixture family ${f}`);
  }
});

for (const fx of fixtures) {
  describe(`${fx.name} (${fx.family}, opset ${fx.opset})`, () => {
    let runtime: ModelRuntime;
    const input = readF32(fx.dir, fx.input.file);
    const load = async () => (runtime ??= await ModelRuntime.load(fx.dir, { batchSize: 32 }));
    after(async () => { await runtime?.release(); });

    test('logits equal PyTorch to 1e-4 relative', async () => {
      const rt = await load();
      const logits = await rt.predict(input);
      const err = relError(logits, fx.logits.values);
      assert.ok(err <= 1e-4, `relative error ${err}`);
    });

    for (const c of fx.cases) {
      test(`${c.id}: A and dScore/dA at ${c.layer} equal PyTorch to 1e-4 relative`, async () => {
        const rt = await load();
        const r = await rt.activationsAndGradients(input, [c.layer], [c.target]);
        const errA = relError(r.activations[c.layer], readF32(fx.dir, c.activations.file));
        const errG = relError(r.gradients[c.layer], readF32(fx.dir, c.gradients.file));
        assert.ok(errA <= 1e-4, `activations: relative error ${errA}`);
        assert.ok(errG <= 1e-4, `gradients: relative error ${errG}`);
      });

      for (const [name, ref] of Object.entries(c.maps)) {
        if (!isMethodName(name)) continue;
        test(`${c.id}: ${name} map equals the reference to 1e-3 after normalisation`, async () => {
          const rt = await load();
          const r = await rt.explain({ input, method: name, targets: [c.target], layers: [c.layer] });
          const map = r.explanations[0].map;
          assert.deepEqual([map.height, map.width], ref.dims);
          const expected = readF32(fx.dir, ref.file);
          const d = maxAbsDiff(normalised(map.data), normalised(expected));
          assert.ok(d <= 1e-3, `max |difference| of normalised maps ${d}`);
        });
      }
      for (const [name, ref] of Object.entries(c.smooth ?? {})) {
        const [method, option] = name.split('+');
        test(`${c.id}: ${method} with ${option}_smooth equals the reference to 1e-3 after normalisation`, async () => {
          assert.ok(isMethodName(method));
          const rt = await load();
          const r = await rt.explain({ input, method, targets: [c.target], layers: [c.layer], eigenSmooth: option === 'eigen', augSmooth: option === 'aug' });
          const d = maxAbsDiff(normalised(r.explanations[0].map.data), normalised(readF32(fx.dir, ref.file)));
          assert.ok(d <= 1e-3, `max |difference| of normalised maps ${d}`);
        });
      }
    }
  });
}

/** Names in methods.json (the libraries' own outputs) of the methods served under another name. */
const LIBRARY_ENTRIES: Record<string, string> = {
  iscam: 'iscam', sscam: 'sscam', smoothgradcampp: 'smoothgradcampp', saliency: 'saliency', integratedGradients: 'integrated-gradients',
  noiseTunnel: 'smoothgrad', guidedBackprop: 'guided-backprop', guidedGradcam: 'guided-gradcam', fullgrad: 'fullgrad', dff: 'dff', refinecam: 'refinecam',
};

test('every method has a reference somewhere: reference.json (PyTorch hooks) or methods.json (the libraries)', () => {
  const seen = new Set(fixtures.flatMap((f) => f.cases.flatMap((c) => Object.keys(c.maps))));
  for (const f of listMethodFixtures()) {
    for (const c of f.cases) for (const k of [...Object.keys(c.maps), ...Object.keys(c.torchcam)]) seen.add(LIBRARY_ENTRIES[k] ?? k);
    for (const k of [...Object.keys(f.input ?? {}), ...(f.dff ? ['dff'] : []), ...(f.refinecam ? ['refinecam'] : [])]) seen.add(LIBRARY_ENTRIES[k] ?? k);
  }
  for (const m of METHOD_NAMES) assert.ok(seen.has(m), `no reference for ${m}`);
});
