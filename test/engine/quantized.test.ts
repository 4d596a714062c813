// Quantized models explained through their float twins, bounded on held-out scenes of the default model's
// task (tools/fixtures/check_quantized.ts measures the same at full size): the quantized model reproduces
// the float model's top-1, the twin's top-1 agrees with the quantized model's on ≥ 99 % of 200 images, and
// the twin's Grad-CAM correlates ≥ 0.9 with the quantized model's own Ablation-CAM.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ModelRuntime } from '../../src/engine/runtime.js';
import { heldOutInputs, measureQuantized, QUANTIZED_FIXTURES } from '../../tools/fixtures/check_quantized.js';
import { ROOT } from '../http/contract.js';

const IMAGES = 200;
const CAM_IMAGES = 8;
let inputs: Float32Array[];
let float: ModelRuntime;

before(async () => {
  float = await ModelRuntime.load(path.join(ROOT, 'models/shapes'));
  inputs = await heldOutInputs(float, IMAGES);
});
after(async () => { await float.release(); });

for (const variant of QUANTIZED_FIXTURES) {
  test(`${variant}: top-1 of quantized = float on ≥ 99 %, twin = quantized on ≥ 99 % of ${IMAGES} held-out scenes; twin Grad-CAM vs quantized Ablation-CAM r ≥ 0.9`, async () => {
    const r = await measureQuantized(variant, inputs, CAM_IMAGES, { float, floatMethods: false });
    assert.equal(r.images, IMAGES);
    assert.ok(r.quantizedVsFloat >= 0.99, `quantized vs float: ${r.quantizedVsFloat}`);
    assert.ok(r.twinVsQuantized >= 0.99, `twin vs quantized: ${r.twinVsQuantized}`);
    assert.equal(r.gradcamVsAblation.images, CAM_IMAGES);
    assert.ok(r.gradcamVsAblation.mean >= 0.9, JSON.stringify(r.gradcamVsAblation));
  });
}
