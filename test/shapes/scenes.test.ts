import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLASS_NAMES, generateScene, generateScenes, NUM_CLASSES, Rng, sceneSpec } from '../../tools/shapes/scenes.js';

test('Rng is deterministic and roughly uniform', () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const xa = Array.from({ length: 1000 }, () => a.next());
  const xb = Array.from({ length: 1000 }, () => b.next());
  const xc = Array.from({ length: 1000 }, () => c.next());
  assert.deepEqual(xa, xb);
  assert.notDeepEqual(xa, xc);
  const mean = xa.reduce((s, v) => s + v, 0) / xa.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
  assert.ok(xa.every((v) => v >= 0 && v < 1));
});

test('same seed gives identical bytes, different seeds differ', async () => {
  const [a, b, c] = await Promise.all([generateScene(1_000_123), generateScene(1_000_123), generateScene(1_000_124)]);
  assert.equal(a.rgb.length, 128 * 128 * 3);
  assert.ok(a.rgb.equals(b.rgb));
  assert.deepEqual(a.objects, b.objects);
  assert.deepEqual(a.labels, b.labels);
  assert.ok(!a.rgb.equals(c.rgb));
});

test('boxes lie inside the image, labels are the multi-hot of the objects, objects barely overlap', () => {
  let twoDifferent = 0, multi = 0;
  const classCount = new Array<number>(NUM_CLASSES).fill(0);
  const N = 400;
  for (let seed = 0; seed < N; seed++) {
    const s = sceneSpec(seed);
    assert.ok(s.objects.length >= 1 && s.objects.length <= 3, `seed ${seed}: ${s.objects.length} objects`);
    assert.equal(s.labels.length, NUM_CLASSES);
    const expected = new Array<number>(NUM_CLASSES).fill(0);
    for (const o of s.objects) {
      expected[o.cls] = 1;
      classCount[o.cls]!++;
      assert.equal(o.label, CLASS_NAMES[o.cls]);
      const [x0, y0, x1, y1] = o.box;
      assert.ok(Number.isInteger(x0) && Number.isInteger(y0) && Number.isInteger(x1) && Number.isInteger(y1));
      assert.ok(x0 >= 0 && y0 >= 0 && x1 <= 128 && y1 <= 128, `seed ${seed}: box ${o.box}`);
      const w = x1 - x0, h = y1 - y0;
      assert.ok(w >= 8 && h >= 8 && w <= 50 && h <= 50, `seed ${seed}: ${o.label} box ${o.box}`);
    }
    assert.deepEqual(s.labels, expected);
    for (let i = 0; i < s.objects.length; i++) for (let j = i + 1; j < s.objects.length; j++) {
      const a = s.objects[i]!.box, b = s.objects[j]!.box;
      const ix = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
      const iy = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
      const area = (r: number[]): number => (r[2]! - r[0]!) * (r[3]! - r[1]!);
      // 10% on the unrounded boxes; the integer boxes are up to a pixel larger on each side.
      assert.ok(ix * iy <= 0.25 * Math.min(area(a), area(b)), `seed ${seed}: objects ${i} and ${j} overlap`);
    }
    if (s.objects.length > 1) multi++;
    if (new Set(s.objects.map((o) => o.cls)).size >= 2) twoDifferent++;
  }
  assert.ok(twoDifferent / N >= 0.5, `only ${twoDifferent}/${N} scenes have two different classes`);
  assert.ok(multi / N >= 0.55);
  for (let k = 0; k < NUM_CLASSES; k++) assert.ok(classCount[k]! >= 40, `class ${CLASS_NAMES[k]} appears ${classCount[k]} times`);
});

test('options fix the classes; the shapes are drawn where the boxes say', async () => {
  const [s] = await generateScenes(1_000_500, 1, { classes: [3, 5], numDistractors: 0 });
  assert.deepEqual(s!.objects.map((o) => o.label), ['star', 'ring']);
  // With no distractors, pixels outside every box are background; each box must differ from its
  // surroundings more than the background differs from itself.
  const at = (x: number, y: number, c: number): number => s!.rgb[(y * 128 + x) * 3 + c]!;
  for (const o of s!.objects) {
    const [x0, y0, x1, y1] = o.box;
    const cx = (x0 + x1) >> 1, cy = (y0 + y1) >> 1;
    // Ring: the centre is a hole, so probe the ring's body on the horizontal through the centre.
    const px = o.label === 'ring' ? x0 + Math.max(1, Math.round((x1 - x0) * 0.1)) : cx;
    let inside = 0;
    for (let c = 0; c < 3; c++) inside += at(px, cy, c);
    const outsideY = y0 > 4 ? y0 - 3 : y1 + 2;
    let outside = 0;
    for (let c = 0; c < 3; c++) outside += at(cx, outsideY, c);
    assert.ok(Math.abs(inside - outside) > 30, `${o.label}: inside ${inside} vs outside ${outside}`);
  }
});
