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
