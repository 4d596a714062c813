// The shared CAM arithmetic: the fused weighted sum must give the bits of the two-step product and sum that
// the reference tests check against the libraries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sumChannels, weightChannels, weightedSum } from '../../src/cam/maths.js';
import { uniform } from '../helpers/fd.js';

test('weightedSum equals sumChannels(weightChannels(…)) bit for bit', () => {
  for (const [C, h, w, seed] of [[1, 1, 1, 1], [6, 2, 3, 5], [7, 3, 5, 2], [2048, 7, 7, 3], [1280, 7, 7, 6], [96, 16, 16, 4]] as const) {
    const A = uniform(C * h * w, seed).map((v) => v * 10 - 3);
    const weights = uniform(C, seed + 100).map((v) => v - 0.5);
    const l = { name: 'x', C, h, w, A };
    const fused = weightedSum(l, weights);
    const twoStep = sumChannels(weightChannels(l, weights), C, h * w);
    assert.deepEqual(Array.from(fused), Array.from(twoStep), `C=${C} ${h}×${w}`);
    assert.ok(fused.some((v) => v !== 0));
  }
});

test('a gradient constant per channel (Gc): Grad-CAM\'s weights and map are those of the spread G bit for bit, and G is spread only when read', async () => {
  const { gradientMeans, spatialMean, spreadChannels, withChannelGradient } = await import('../../src/cam/maths.js');
  const { rawMap } = await import('../../src/cam/compute.js');
  const { METHODS } = await import('../../src/cam/methods/index.js');
  const C = 67;
  const [h, w] = [7, 9];
  const A = uniform(C * h * w, 31).map((v) => v * 4 - 1);
  const Gc = uniform(C, 32).map((v) => (v - 0.5) * 1e-3);
  // edge values: signed zeros, a subnormal, large magnitudes
  Gc.set([0, -0, 1e-45, -3e38, 3e38], 0);
  const lazy = withChannelGradient({ name: 'x', C, h, w, A }, Gc);
  assert.equal(typeof Object.getOwnPropertyDescriptor(lazy, 'G')?.get, 'function');
  const spread = spreadChannels(Gc, h * w);
  assert.deepEqual(Array.from(gradientMeans(lazy)), Array.from(spatialMean(spread, C, h * w)));
  for (const method of ['gradcam', 'finercam', 'gradcam++', 'hirescam'] as const) {
    const full = { name: 'x', C, h, w, A, G: spread };
    const ctx = { target: 0, score: 1, runner: undefined as never, seed: 0 };
    assert.deepEqual(Array.from(await rawMap(METHODS[method] as never, withChannelGradient({ name: 'x', C, h, w, A }, Gc), ctx)), Array.from(await rawMap(METHODS[method] as never, full, ctx)), method);
  }
  assert.deepEqual(Array.from(lazy.G!), Array.from(spread));
  assert.equal(lazy.G, lazy.G, 'spread once, then kept');
});
