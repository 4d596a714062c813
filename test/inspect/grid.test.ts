// Feature-map grids: torchvision make_grid's geometry and normalisation, save_image's bytes, channel
// selection, enlargement, colour, statistics, stacking.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import {
  GridOptionError, channelStats, chooseScale, featureGrid, gridRgb, gridSize, makeGrid, selectChannels, toByte, type FeatureMaps,
} from '../../src/inspect/grid.js';
import { COLORMAPS } from '../../src/render/index.js';

/** C maps of h×w holding 0, 1, 2, … in NCHW order. */
function ramp(C: number, h: number, w: number): FeatureMaps {
  return { C, h, w, data: Float32Array.from({ length: C * h * w }, (_, i) => i) };
}

test('grid size and tile positions are make_grid\'s: xmaps = min(nrow, n), ymaps = ceil(n / xmaps)', () => {
  const maps = ramp(5, 2, 3);
  const { layout, values, pad } = makeGrid(maps, { nrow: 2, padding: 1, padValue: -1 });
  assert.deepEqual([layout.xmaps, layout.ymaps], [2, 3]);
  assert.equal(layout.width, 2 * (3 + 1) + 1);
  assert.equal(layout.height, 3 * (2 + 1) + 1);
  // map k at x = (k mod xmaps)·(w + padding) + padding, y = ⌊k / xmaps⌋·(h + padding) + padding
  for (let k = 0; k < 5; k++) {
    const x0 = (k % 2) * 4 + 1;
    const y0 = Math.floor(k / 2) * 3 + 1;
    for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) {
      assert.equal(values[(y0 + y) * layout.width + x0 + x], k * 6 + y * 3 + x);
      assert.equal(pad[(y0 + y) * layout.width + x0 + x], 0);
    }
  }
  // The sixth cell (no map) and the borders are padding.
  assert.equal(values[(7 + 0) * layout.width + 5], -1);
  assert.equal(pad[7 * layout.width + 5], 1);
  assert.equal(values[0], -1);
  const padCount = pad.reduce((a, b) => a + b, 0);
  assert.equal(padCount, layout.width * layout.height - 5 * 6);
});

test('defaults: nrow 8, padding 2; more maps than nrow wrap', () => {
  const { layout } = makeGrid(ramp(20, 4, 4));
  assert.deepEqual([layout.xmaps, layout.ymaps, layout.width, layout.height], [8, 3, 8 * 6 + 2, 3 * 6 + 2]);
  const few = makeGrid(ramp(3, 4, 4)).layout;
  assert.deepEqual([few.xmaps, few.ymaps, few.width, few.height], [3, 1, 3 * 6 + 2, 6 + 2]);
});

test('a single map is returned as it is, without padding (make_grid\'s special case)', () => {
  const { layout, values } = makeGrid(ramp(4, 2, 3), { channels: [2], padding: 5 });
  assert.deepEqual([layout.width, layout.height, layout.n], [3, 2, 1]);
  assert.deepEqual([...values], [12, 13, 14, 15, 16, 17]);
});

test('normalize: (x − min) / (max − min) over all shown maps; bytes are ⌊x·255 + 0.5⌋', () => {
  const { values, layout } = makeGrid(ramp(2, 1, 15), { normalize: true, padding: 0, nrow: 1 });
  // 30 values 0..29 → v/29
  assert.equal(layout.width, 15);
  assert.equal(toByte(values[0]), 0);
  assert.equal(toByte(values[29]), 255);
  assert.equal(toByte(values[10]), Math.floor((10 / 29) * 255 + 0.5)); // 88
  assert.equal(toByte(values[10]), 88);
});

test('normalize with range clamps first; scale_each normalises every map alone', () => {
  const ranged = makeGrid(ramp(2, 1, 15), { normalize: true, range: [5, 20], padding: 0, nrow: 1 }).values;
  assert.equal(ranged[0], 0); // clamped up to 5
  assert.equal(ranged[29], 1); // clamped down to 20
  assert.equal(ranged[8], Math.fround(3 / 15));
  const each = makeGrid(ramp(3, 2, 2), { normalize: true, scaleEach: true, padding: 0, nrow: 3 });
  // each map 4k..4k+3 → 0, 1/3, 2/3, 1 at its own place
  for (let k = 0; k < 3; k++) {
    const x0 = k * 2;
    assert.equal(each.values[x0], 0);
    assert.equal(each.values[each.layout.width + x0 + 1], 1);
  }
  // A constant map under normalize: max(hi − lo, 1e-5) keeps it finite (all zeros).
  const flat = makeGrid({ C: 2, h: 1, w: 2, data: new Float32Array([3, 3, 3, 3]) }, { normalize: true, padding: 0 });
  assert.deepEqual([...flat.values], [0, 0, 0, 0]);
});

test('without normalize values are used as they are: outside [0, 1] they saturate (torchvision)', () => {
  assert.equal(toByte(-3), 0);
  assert.equal(toByte(7), 255);
  assert.equal(toByte(0.5), 128);
  assert.equal(toByte(Number.NaN), 0);
  const { rgb } = gridRgb({ C: 2, h: 1, w: 1, data: new Float32Array([0.2, 5]) }, { padding: 0, scale: 1 });
  assert.deepEqual([...rgb], [51, 51, 51, 255, 255, 255]);
});

test('pad_value fills the padding (grey even with a colour map); maps get the colour map', () => {
  const maps = { C: 2, h: 1, w: 1, data: new Float32Array([0, 1]) };
  const grey = gridRgb(maps, { padding: 1, padValue: 0.5, scale: 1 });
  assert.deepEqual([grey.layout.width, grey.layout.height], [5, 3]);
  assert.deepEqual([...grey.rgb.subarray(0, 3)], [128, 128, 128]);
  const jet = gridRgb(maps, { padding: 1, padValue: 1, scale: 1, colormap: 'jet' });
  const px = (x: number, y: number) => [...jet.rgb.subarray((y * 5 + x) * 3, (y * 5 + x) * 3 + 3)];
  assert.deepEqual(px(0, 0), [255, 255, 255]);
  assert.deepEqual(px(1, 1), [...COLORMAPS.jet.subarray(0, 3)]);
  assert.deepEqual(px(3, 1), [...COLORMAPS.jet.subarray(765, 768)]);
});

test('maps are enlarged by an integer scale (pixel replication) before make_grid; padding stays in pixels', async () => {
  const maps = ramp(3, 4, 5);
  const r = await featureGrid([{ layer: 'x', maps }], { scale: 3, normalize: true, padValue: 1 });
  const size = gridSize(3, 5 * 3, 4 * 3, 8, 2);
  assert.deepEqual([r.width, r.height], [size.width, size.height]);
  assert.deepEqual([r.width, r.height], [3 * (15 + 2) + 2, 12 + 2 + 2]);
  const l = r.layers[0].layout;
  assert.deepEqual([l.scale, l.tileWidth, l.tileHeight, l.xmaps, l.ymaps], [3, 15, 12, 3, 1]);
  const img = await sharp(r.png).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([img.info.width, img.info.height], [r.width, r.height]);
  const at = (x: number, y: number) => img.data[(y * r.width + x) * 3];
  // map k, value v at (y, x) → the 3×3 block at (2 + 3y, 2 + k·17 + 3x); normalised over 0..59
  for (let k = 0; k < 3; k++) for (let y = 0; y < 12; y++) for (let x = 0; x < 15; x++) {
    const v = k * 20 + Math.floor(y / 3) * 5 + Math.floor(x / 3);
    assert.equal(at(2 + k * 17 + x, 2 + y), toByte(Math.fround(v / 59)), `map ${k} (${x}, ${y})`);
  }
  assert.equal(at(0, 0), 255); // padding, 2 px
  assert.equal(at(1, 5), 255);
  assert.equal(at(17, 5), 255);
  assert.equal(at(18, 5), 255);
});

test('default scale makes a map at least 64 px, and is lowered to fit maxPixels; an explicit one is checked', () => {
  assert.equal(chooseScale(1, { h: 4, w: 7 }), 16);
  assert.equal(chooseScale(4, { h: 100, w: 100 }), 1);
  // 16 maps of 4×4, 8 per row: (8·(4s + 2) + 2) × (2·(4s + 2) + 2) ≤ 20000 → s = 8 (274 × 70)
  assert.equal(chooseScale(16, { h: 4, w: 4 }, { maxPixels: 20000 }), 8);
  assert.throws(() => chooseScale(16, { h: 4, w: 4 }, { scale: 9, maxPixels: 20000 }), (e: unknown) => e instanceof GridOptionError && e.option === 'scale');
  assert.throws(() => chooseScale(16, { h: 4, w: 4 }, { maxPixels: 50 }), (e: unknown) => e instanceof GridOptionError && e.option === 'channels');
  assert.throws(() => chooseScale(1, { h: 1, w: 1 }, { scale: 0 }), GridOptionError);
});

test('channels: a list in the order given, or top:k by mean (ties: lower index first)', () => {
  const maps = { C: 4, h: 1, w: 2, data: new Float32Array([1, 1, 5, 5, 1, 1, 3, 3]) };
  assert.deepEqual(selectChannels(maps, [3, 0]), [3, 0]);
  assert.deepEqual(selectChannels(maps, { top: 3 }), [1, 3, 0]);
  assert.deepEqual(selectChannels(maps, { top: 10 }), [1, 3, 0, 2]);
  assert.throws(() => selectChannels(maps, [4]), /outside 0..3/);
  assert.throws(() => selectChannels(maps, { top: 0 }), GridOptionError);
  const { values } = makeGrid(maps, { channels: { top: 2 }, padding: 0 });
  assert.deepEqual([...values], [5, 5, 3, 3]);
});

test('per-channel statistics: min, max, mean, population std, share of zeros', () => {
  const s = channelStats({ C: 2, h: 2, w: 2, data: new Float32Array([0, 0, 2, 2, -1, 1, -1, 1]) });
  assert.deepEqual(s[0], { channel: 0, min: 0, max: 2, mean: 1, std: 1, zeros: 0.5 });
  assert.deepEqual(s[1], { channel: 1, min: -1, max: 1, mean: 0, std: 1, zeros: 0 });
});

test('several layers stack top to bottom, left-aligned, 8 px apart', async () => {
  const r = await featureGrid([
    { layer: 'a', maps: ramp(4, 2, 2) },
    { layer: 'b', maps: ramp(2, 3, 3) },
  ], { scale: 2 });
  const a = r.layers[0].layout;
  const b = r.layers[1].layout;
  assert.equal(r.width, Math.max(a.width, b.width));
  assert.equal(r.height, a.height + 8 + b.height);
  assert.deepEqual(r.layers.map((l) => l.offsetY), [0, a.height + 8]);
  assert.equal(r.layers[1].stats.length, 2);
});
