import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelRuntime } from '../../src/engine/runtime.js';
import type { CamMap } from '../../src/render/index.js';
import {
  AccuracyTally, LocalisationTally, discriminativeHit, energyInBoxes, evaluateMethod, peak, pointingHit, sceneCases, toSceneSize,
} from '../../tools/shapes/localisation.js';
import { generateScenes, NUM_CLASSES, type Box } from '../../tools/shapes/scenes.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A W×H map that is 0 everywhere but 1 at (x, y). */
function spike(W: number, H: number, x: number, y: number): CamMap {
  const data = new Float32Array(W * H);
  data[y * W + x] = 1;
  return { width: W, height: H, data };
}

const uniform = (W: number, H: number, v = 1): CamMap => ({ width: W, height: H, data: new Float32Array(W * H).fill(v) });

test('pointing game: a map peaked inside the box scores 1, outside 0; box edges are inclusive-exclusive', () => {
  const box: Box = [10, 20, 30, 40];
  assert.equal(pointingHit(spike(128, 128, 15, 25), [box]), true);
  assert.equal(pointingHit(spike(128, 128, 100, 100), [box]), false);
  assert.equal(pointingHit(spike(128, 128, 10, 20), [box]), true); // x0, y0 inside
  assert.equal(pointingHit(spike(128, 128, 29, 39), [box]), true);
  assert.equal(pointingHit(spike(128, 128, 30, 25), [box]), false); // x1 outside
  assert.equal(pointingHit(spike(128, 128, 15, 40), [box]), false); // y1 outside
  // Any box of the class counts.
  assert.equal(pointingHit(spike(128, 128, 100, 100), [box, [90, 90, 110, 110]]), true);
  // A constant map has no peak: a miss, even when the first pixel is in the box.
  assert.equal(peak(uniform(128, 128)), undefined);
  assert.equal(pointingHit(uniform(128, 128, 0), [[0, 0, 128, 128]]), false);
  // The first maximum in raster order.
  const two = spike(16, 16, 3, 5);
  two.data[9 * 16 + 12] = 1;
  assert.deepEqual(peak(two), { x: 3, y: 5 });
});

test('pointing game on an upsampled low-resolution map: the peak cell lands where the cell lies in the image', () => {
  // 16×16 map with one hot cell at (4, 10): in a 128×128 image that cell covers x 32..39, y 80..87.
  const up = toSceneSize(spike(16, 16, 4, 10), 128, 128);
  const p = peak(up)!;
  assert.ok(p.x >= 32 && p.x < 40 && p.y >= 80 && p.y < 88, `peak at ${p.x},${p.y}`);
  assert.equal(pointingHit(up, [[30, 78, 42, 90]]), true);
  assert.equal(pointingHit(up, [[50, 78, 70, 90]]), false);
});

test('energy-in-box: uniform map gives box area / image area; all mass inside gives 1, outside 0; negatives ignored', () => {
  const box: Box = [10, 20, 30, 60]; // 20 × 40 = 800 px
  assert.ok(Math.abs(energyInBoxes(uniform(128, 128), [box]) - 800 / (128 * 128)) < 1e-12);
  assert.ok(Math.abs(energyInBoxes(uniform(128, 128, 7.5), [box]) - 800 / (128 * 128)) < 1e-12, 'scale-invariant');
  // Two disjoint boxes of the class: their areas add; overlapping boxes count their union once.
  assert.ok(Math.abs(energyInBoxes(uniform(100, 100), [[0, 0, 10, 10], [50, 50, 60, 70]]) - 300 / 10000) < 1e-12);
  assert.ok(Math.abs(energyInBoxes(uniform(100, 100), [[0, 0, 10, 10], [5, 5, 15, 15]]) - 175 / 10000) < 1e-12);
  assert.equal(energyInBoxes(spike(128, 128, 15, 25), [box]), 1);
  assert.equal(energyInBoxes(spike(128, 128, 100, 25), [box]), 0);
  const half = spike(128, 128, 15, 25);
  half.data[0] = 1;
  assert.equal(energyInBoxes(half, [box]), 0.5);
  half.data[1] = -5; // below zero: not mass
  assert.equal(energyInBoxes(half, [box]), 0.5);
  assert.equal(energyInBoxes(uniform(128, 128, 0), [box]), 0);
});

test('class-discriminative pointing: peak in its own box and not in the other class\'s', () => {
  const a: Box = [0, 0, 20, 20];
  const b: Box = [50, 50, 80, 80];
  assert.equal(discriminativeHit(spike(128, 128, 5, 5), [a], [b]), true);
  assert.equal(discriminativeHit(spike(128, 128, 60, 60), [a], [b]), false);
  assert.equal(discriminativeHit(spike(128, 128, 100, 5), [a], [b]), false);
  // A peak where the boxes overlap is not discriminative.
  assert.equal(discriminativeHit(spike(128, 128, 15, 15), [a], [[10, 10, 40, 40]]), false);
});

test('sceneCases: one case per distinct class with all its boxes; "other" only in two-class scenes', () => {
  const o = (cls: number, box: Box) => ({ cls, label: String(cls), box });
  const one = sceneCases({ objects: [o(3, [0, 0, 10, 10])] });
  assert.deepEqual(one, [{ cls: 3, boxes: [[0, 0, 10, 10]] }]);
  const two = sceneCases({ objects: [o(3, [0, 0, 10, 10]), o(5, [20, 20, 30, 30]), o(3, [40, 40, 50, 50])] });
  assert.equal(two.length, 2);
  assert.deepEqual(two[0], { cls: 3, boxes: [[0, 0, 10, 10], [40, 40, 50, 50]], other: { cls: 5, boxes: [[20, 20, 30, 30]] } });
  assert.deepEqual(two[1]!.other, { cls: 3, boxes: [[0, 0, 10, 10], [40, 40, 50, 50]] });
  const three = sceneCases({ objects: [o(1, [0, 0, 10, 10]), o(2, [20, 20, 30, 30]), o(4, [40, 40, 50, 50])] });
  assert.equal(three.length, 3);
  assert.ok(three.every((c) => c.other === undefined));
});

test('tallies: localisation shares and multi-label accuracy', () => {
  const t = new LocalisationTally();
  const a: Box = [0, 0, 10, 10], b: Box = [20, 20, 30, 30];
  t.add(spike(32, 32, 5, 5), { cls: 0, boxes: [a], other: { cls: 1, boxes: [b] } });
  t.add(spike(32, 32, 5, 5), { cls: 1, boxes: [b], other: { cls: 0, boxes: [a] } });
  t.add(spike(32, 32, 25, 25), { cls: 2, boxes: [b] });
  t.scenes = 2;
  const s = t.summary();
  assert.equal(s.pairs, 3);
  assert.equal(s.pointing, 2 / 3);
  assert.equal(s.energy, 2 / 3);
  assert.equal(s.discPairs, 2);
  assert.equal(s.discriminative, 0.5);

  const acc = new AccuracyTally(3);
  acc.add([2, -1, -3], [1, 0, 0]); // all right
  acc.add([2, 1, -3], [1, 0, 1]); // class 1 false positive, class 2 missed
  const m = acc.summary();
  assert.equal(m.n, 2);
  assert.equal(m.exactMatch, 0.5);
  assert.equal(m.hamming, 4 / 6);
  assert.deepEqual(m.perClass.map((c) => c.accuracy), [1, 0.5, 0.5]);
  assert.deepEqual(m.perClass.map((c) => c.recall), [1, NaN, 0]);
  assert.deepEqual(m.perClass.map((c) => c.precision), [1, 0, NaN]);
});

// The targets for the default model, on 60 held-out scenes (seeds 1_000_000..1_000_059, never
// trained on). The full benchmark over every method is `npm run bench:localisation`.
test('default shapes model: Grad-CAM pointing game ≥ 95% and class-discriminative pointing ≥ 90% on held-out scenes', async () => {
  const rt = await ModelRuntime.load(path.join(ROOT, 'models/shapes'), { intraOpThreads: 1 });
  try {
    assert.equal(rt.info.numClasses, NUM_CLASSES);
    const scenes = await generateScenes(1_000_000, 60);
    const accuracy = new AccuracyTally(NUM_CLASSES);
    const s = await evaluateMethod(rt, scenes, 'gradcam', { accuracy });
    const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
    const detail = `pointing ${pct(s.pointing)} of ${s.pairs}, discriminative ${pct(s.discriminative)} of ${s.discPairs}, ` +
      `energy ${pct(s.energy)}, exact-match ${pct(accuracy.summary().exactMatch)}`;
    assert.ok(s.pairs >= 90 && s.discPairs >= 30, `too few cases: ${detail}`);
    assert.ok(s.pointing >= 0.95, `Grad-CAM pointing game below 95%: ${detail}`);
    assert.ok(s.discriminative >= 0.9, `Grad-CAM class-discriminative pointing below 90%: ${detail}`);
  } finally {
    await rt.release();
  }
});
