// Random-CAM is checked for its distribution and its seeding, not against numbers (the library draws from
// numpy's global generator; library.test.ts replays its drawn weights).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rawMap } from '../../src/cam/compute.js';
import { createRandomCam, randomcam } from '../../src/cam/methods/randomcam.js';
import { mulberry32 } from '../../src/cam/random.js';
import type { LayerTensors, MethodContext } from '../../src/cam/types.js';

const layer = (C: number): LayerTensors => ({ name: 'l', C, h: 2, w: 2, A: Float32Array.from({ length: C * 4 }, (_, i) => Math.sin(i) + 1) });
const ctx = { target: 0, score: 1 } as MethodContext;

test('weights are U(-1, 1): range, mean, variance and Kolmogorov–Smirnov distance', async () => {
  const n = 20000;
  const w = (await createRandomCam(12).weights!(layer(n), ctx)) as Float32Array;
  let mean = 0;
  for (const v of w) { assert.ok(v >= -1 && v < 1); mean += v / n; }
  let variance = 0;
  for (const v of w) variance += (v - mean) ** 2 / n;
  assert.ok(Math.abs(mean) < 0.02, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1 / 3) < 0.02, `variance ${variance}`);
  const sorted = Float64Array.from(w).sort();
  let ks = 0;
  sorted.forEach((v, i) => { ks = Math.max(ks, Math.abs((v + 1) / 2 - (i + 1) / n), Math.abs((v + 1) / 2 - i / n)); });
  assert.ok(ks < 1.63 / Math.sqrt(n), `KS distance ${ks} (1% critical value ${1.63 / Math.sqrt(n)})`);
});

test('one seed gives one stream; other seeds give other weights; the stream advances per explanation', async () => {
  const a = await createRandomCam(5).weights!(layer(64), ctx);
  const b = await createRandomCam(5).weights!(layer(64), ctx);
  const c = await createRandomCam(6).weights!(layer(64), ctx);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const m = createRandomCam(5);
  const first = await m.weights!(layer(64), ctx);
  const second = await m.weights!(layer(64), ctx);
  assert.deepEqual(first, a);
  assert.notDeepEqual(second, first);
});

test('the registry instance is reproducible: the same map for the same input', async () => {
  const l = layer(32);
  assert.deepEqual(await rawMap(randomcam, l, ctx), await rawMap(randomcam, l, ctx));
});

test('mulberry32 is uniform in [0, 1) and deterministic', () => {
  const g = mulberry32(1);
  const h = mulberry32(1);
  for (let i = 0; i < 1000; i++) {
    const v = g();
    assert.ok(v >= 0 && v < 1);
    assert.equal(v, h());
  }
});
