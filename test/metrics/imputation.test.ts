// ROAD's noisy linear imputation on small images whose answer is known, and the numpy percentile it
// thresholds with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noisyLinearImpute, NEIGHBOURS } from '../../src/metrics/imputation.js';
import { percentile, roadKeep } from '../../src/metrics/road.js';

test('the neighbour weights sum to 1 and are symmetric', () => {
  assert.ok(Math.abs(NEIGHBOURS.reduce((s, [, , w]) => s + w, 0) - 1) < 1e-15);
  for (const [dy, dx, w] of NEIGHBOURS) assert.ok(NEIGHBOURS.some(([y, x, v]) => y === -dy && x === -dx && v === w));
});

test('a removed block inside a linear ramp is filled with the ramp (the mean-value property), per channel', () => {
  const H = 9;
  const W = 11;
  const data = new Float32Array(2 * H * W);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    data[y * W + x] = 0.5 * x - 0.25 * y + 1;
    data[H * W + y * W + x] = -2 * x + 3 * y;
  }
  const keep = new Uint8Array(H * W).fill(1);
  for (let y = 2; y < 7; y++) for (let x = 3; x < 9; x++) keep[y * W + x] = 0;
  const corrupted = Float32Array.from(data, (v, i) => (keep[i % (H * W)] ? v : 1000));
  const out = noisyLinearImpute(corrupted, 2, H, W, keep);
  for (let i = 0; i < data.length; i++) assert.ok(Math.abs(out[i] - data[i]) < 1e-5, `pixel ${i}: ${out[i]} vs ${data[i]}`);
});

test('noise is added at removed pixels only, scaled; kept pixels are untouched', () => {
  const H = 4;
  const W = 4;
  const data = new Float32Array(H * W).fill(2);
  const keep = new Uint8Array(H * W).fill(1);
  keep[5] = 0;
  keep[15] = 0; // a corner: its three in-image neighbours carry the weights
  const noise = Float32Array.from({ length: H * W }, (_, i) => i);
  const out = noisyLinearImpute(data, 1, H, W, keep, { scale: 0.01, noise });
  for (let i = 0; i < H * W; i++) {
    const want = keep[i] ? 2 : Math.fround(2 + Math.fround(Math.fround(0.01) * i));
    assert.ok(Math.abs(out[i] - want) < 1e-6, `pixel ${i}: ${out[i]} vs ${want}`);
  }
});

test('removing every pixel gives 0 plus the noise (the singular system\'s minimum-norm solution; scipy: NaN); removing none returns a copy', () => {
  assert.deepEqual([...noisyLinearImpute(Float32Array.of(1, 2, 3, 4), 1, 2, 2, new Uint8Array(4))], [0, 0, 0, 0]);
  const noisy = noisyLinearImpute(Float32Array.of(1, 2, 3, 4), 1, 2, 2, new Uint8Array(4), { scale: 0.01, noise: Float32Array.of(1, -2, 0.5, 0) });
  assert.deepEqual([...noisy], [0.01, -0.02, 0.005, 0].map(Math.fround));
  const d = Float32Array.of(1, 2, 3, 4);
  const out = noisyLinearImpute(d, 1, 2, 2, new Uint8Array(4).fill(1));
  assert.deepEqual(out, d);
  assert.notEqual(out, d);
});

test("percentile follows numpy's linear interpolation", () => {
  const v = Float32Array.of(5, 1, 4, 2, 3);
  assert.equal(percentile(v, 0), 1);
  assert.equal(percentile(v, 100), 5);
  assert.equal(percentile(v, 50), 3);
  assert.equal(percentile(v, 10), Math.fround(1.4)); // index 0.4 → 1 + 0.4·(2 − 1)
  assert.equal(percentile(v, 90), Math.fround(4.6)); // index 3.6 → 5 − 0.4·(5 − 4)
});

test('ROAD keeps the pixels below the percentile of the map (most relevant first) or of 1 − map', () => {
  const map = Float32Array.of(0.1, 0.9, 0.5, 0.3, 0.7);
  assert.deepEqual([...roadKeep(map, 60, 'most-relevant-first')], [1, 0, 1, 1, 0]); // threshold 0.58
  assert.deepEqual([...roadKeep(map, 60, 'least-relevant-first')], [0, 1, 1, 0, 1]); // 1 − map, same threshold
});
