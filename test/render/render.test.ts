// Rendering layer against OpenCV / pytorch-grad-cam reference outputs computed by
// tools/render/gen_render_reference.py (test/fixtures/render/reference.json).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

import {
  COLORMAPS,
  COLORMAP_NAMES,
  applyColormap,
  averageMaps,
  blend,
  isColormapName,
  normalizeMap,
  renderHeatmap,
  renderOverlay,
  resizeBilinear,
  type CamMap,
  type ColormapName,
} from '../../src/render/index.js';

const REF_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/render/reference.json');

interface MapRef { width: number; height: number; data: string }
interface Reference {
  colormaps: Record<string, string>;
  resize: { src: MapRef; width: number; height: number; rows: number[]; cols: number[]; expected: string }[];
  normalize: { src: MapRef; expected: string };
  applyColormap: { src: MapRef; expected: Record<string, string> };
  blend: { width: number; height: number; image: string; cases: { alpha: number; colormap: string; heatmap: string; expected: string }[] };
  overlay: {
    image: { width: number; height: number; data: string };
    map: MapRef; alpha: number; colormap: string; expected: string;
    heatmapColormap: string; heatmapExpected: string;
  };
  average: { maps: MapRef[]; width: number; height: number; expected: string };
}

const ref = JSON.parse(readFileSync(REF_FILE, 'utf8')) as Reference;

function f32(b64: string): Float32Array {
  const b = Buffer.from(b64, 'base64');
  const out = new Float32Array(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = b.readFloatLE(4 * i);
  return out;
}
function camMap(r: MapRef): CamMap {
  return { width: r.width, height: r.height, data: f32(r.data) };
}
function hex(s: string): Buffer {
  return Buffer.from(s, 'hex');
}
function cmapName(s: string): ColormapName {
  assert.ok(isColormapName(s), s);
  return s;
}
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (!(e <= d)) d = e; // NaN shows up as NaN
  }
  return d;
}

test('colour map names', () => {
  assert.deepEqual([...COLORMAP_NAMES], ['jet', 'turbo', 'viridis', 'inferno', 'magma', 'gray']);
  for (const n of COLORMAP_NAMES) {
    assert.ok(isColormapName(n));
    assert.equal(COLORMAPS[n].length, 768);
  }
  assert.ok(!isColormapName('hot'));
  assert.ok(!isColormapName('toString'));
});

test('colour map tables equal OpenCV at all 256 entries (RGB)', () => {
  const names = Object.keys(ref.colormaps);
  assert.deepEqual(names.sort(), ['inferno', 'jet', 'magma', 'turbo', 'viridis']);
  for (const name of names) {
    assert.deepEqual(Buffer.from(COLORMAPS[cmapName(name)]), hex(ref.colormaps[name]), name);
  }
  // jet: 0 is dark blue, 255 dark red, in RGB order.
  assert.deepEqual([...COLORMAPS.jet.subarray(0, 3)], [0, 0, 128]);
  assert.deepEqual([...COLORMAPS.jet.subarray(765, 768)], [128, 0, 0]);
  for (let i = 0; i < 256; i++) assert.deepEqual([...COLORMAPS.gray.subarray(3 * i, 3 * i + 3)], [i, i, i]);
});

test('resizeBilinear matches cv2.resize INTER_LINEAR (up, down, non-square, edges)', () => {
  assert.ok(ref.resize.length >= 6);
  for (const c of ref.resize) {
    const src = camMap(c.src);
    const out = resizeBilinear(src, c.width, c.height);
    assert.equal(out.width, c.width);
    assert.equal(out.height, c.height);
    assert.equal(out.data.length, c.width * c.height);
    const got: number[] = [];
    for (const y of c.rows) for (const x of c.cols) got.push(out.data[y * c.width + x]);
    const d = maxAbsDiff(got, f32(c.expected));
    assert.ok(d <= 1e-5, `${src.width}x${src.height} -> ${c.width}x${c.height}: max |diff| ${d}`);
  }
});

test('resizeBilinear is fast enough', () => {
  const small: CamMap = { width: 7, height: 7, data: new Float32Array(49).map((_, i) => i) };
  resizeBilinear(small, 224, 224); // warm-up
  const n = 200;
  let t = performance.now();
  for (let i = 0; i < n; i++) resizeBilinear(small, 224, 224);
  const per = (performance.now() - t) / n;
  assert.ok(per < 5, `7x7 -> 224x224 took ${per.toFixed(3)} ms`);
  t = performance.now();
  const big = resizeBilinear(small, 4000, 3000);
  const bigMs = performance.now() - t;
  assert.equal(big.data.length, 12_000_000);
  assert.ok(bigMs < 2000, `7x7 -> 4000x3000 took ${bigMs.toFixed(0)} ms`);
});

test('normalizeMap equals scale_cam_image', () => {
  const out = normalizeMap(camMap(ref.normalize.src));
  const d = maxAbsDiff(out.data, f32(ref.normalize.expected));
  assert.ok(d <= 1e-6, `max |diff| ${d}`);
  let min = Infinity;
  let max = -Infinity;
  for (const v of out.data) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  assert.equal(min, 0);
  assert.ok(max > 0.999999 && max <= 1);
  const flat = normalizeMap({ width: 2, height: 2, data: new Float32Array([3, 3, 3, 3]) });
  assert.deepEqual([...flat.data], [0, 0, 0, 0]);
});

test('applyColormap equals cv2.applyColorMap(np.uint8(255 * mask)) in RGB', () => {
  const src = camMap(ref.applyColormap.src);
  for (const [name, expected] of Object.entries(ref.applyColormap.expected)) {
    assert.deepEqual(applyColormap(src, cmapName(name)), hex(expected), name);
  }
  // clamping of out-of-range values and NaN
  const odd: CamMap = { width: 4, height: 1, data: new Float32Array([-0.5, 2, Number.NaN, 1]) };
  const rgb = applyColormap(odd, 'gray');
  assert.deepEqual([...rgb], [0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255]);
});

test('blend equals show_cam_on_image(img / 255, mask, use_rgb=True, image_weight=alpha)', () => {
  const image = hex(ref.blend.image);
  for (const c of ref.blend.cases) {
    const out = blend(hex(c.heatmap), image, c.alpha);
    assert.deepEqual(out, hex(c.expected), `alpha ${c.alpha} ${c.colormap}`);
    // Large inputs take the tabulated path: tiling the example leaves the max, so the output tiles.
    const reps = Math.ceil(70000 / image.length);
    const big = blend(Buffer.concat(Array(reps).fill(hex(c.heatmap))), Buffer.concat(Array(reps).fill(image)), c.alpha);
    assert.deepEqual(big, Buffer.concat(Array(reps).fill(hex(c.expected))), `tiled, alpha ${c.alpha} ${c.colormap}`);
  }
  assert.throws(() => blend(Buffer.alloc(3), Buffer.alloc(3), 1.5), RangeError);
  assert.throws(() => blend(Buffer.alloc(3), Buffer.alloc(6), 0.5), RangeError);
  assert.deepEqual(blend(Buffer.alloc(6), Buffer.alloc(6), 0.5), Buffer.alloc(6));
});

async function decode(png: Buffer): Promise<{ data: Buffer; width: number; height: number; channels: number; format: string | undefined }> {
  const meta = await sharp(png).metadata();
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels, format: meta.format };
}

function countDiffs(a: Buffer, b: Buffer): { n: number; max: number } {
  assert.equal(a.length, b.length);
  let n = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > 0) n++;
    max = Math.max(max, d);
  }
  return { n, max };
}

test('renderOverlay: PNG of the image size equal to the pytorch-grad-cam pipeline', async () => {
  const o = ref.overlay;
  const image = { data: hex(o.image.data), width: o.image.width, height: o.image.height, channels: 3 as const };
  const png = await renderOverlay({ image, map: camMap(o.map), alpha: o.alpha, colormap: cmapName(o.colormap) });
  const img = await decode(png);
  assert.equal(img.format, 'png');
  assert.equal(img.width, o.image.width);
  assert.equal(img.height, o.image.height);
  assert.equal(img.channels, 3);
  // Float32 rounding differences in the resize may move a value across a byte boundary.
  const { n, max } = countDiffs(img.data, hex(o.expected));
  assert.ok(max <= 1 && n <= img.data.length / 100, `${n} bytes differ, max ${max}`);

  // defaults (alpha 0.5, jet, normalised) and a larger non-square image
  const big = { data: Buffer.alloc(320 * 240 * 3, 90), width: 320, height: 240, channels: 3 as const };
  const png2 = await renderOverlay({ image: big, map: camMap(o.map), compressionLevel: 9 });
  const img2 = await decode(png2);
  assert.deepEqual([img2.width, img2.height, img2.channels], [320, 240, 3]);

  await assert.rejects(renderOverlay({ image: { ...big, data: Buffer.alloc(10) }, map: camMap(o.map) }), RangeError);
});

test('renderHeatmap: PNG of the requested size equal to applyColorMap(resize(scale(map)))', async () => {
  const o = ref.overlay;
  const png = await renderHeatmap({ map: camMap(o.map), width: o.image.width, height: o.image.height, colormap: cmapName(o.heatmapColormap) });
  const img = await decode(png);
  assert.equal(img.format, 'png');
  assert.deepEqual([img.width, img.height, img.channels], [o.image.width, o.image.height, 3]);
  const { n, max } = countDiffs(img.data, hex(o.heatmapExpected));
  assert.ok(n <= 3 * 2, `${n} bytes differ, max ${max}`);

  const png2 = await renderHeatmap({ map: camMap(o.map), width: 7, height: 3, normalize: false, colormap: 'gray' });
  const img2 = await decode(png2);
  assert.deepEqual([img2.width, img2.height, img2.channels], [7, 3, 3]);
});

test('averageMaps equals compute_cam_per_layer + aggregate_multi_layers', () => {
  const a = ref.average;
  const out = averageMaps(a.maps.map(camMap), a.width, a.height);
  assert.equal(out.width, a.width);
  assert.equal(out.height, a.height);
  const d = maxAbsDiff(out.data, f32(a.expected));
  assert.ok(d <= 1e-5, `max |diff| ${d}`);
  // one layer: the normalised, resized map
  const one = averageMaps([a.maps.map(camMap)[1]], 9, 11);
  const m1 = camMap(a.maps[1]);
  const relu: CamMap = { ...m1, data: m1.data.map((v) => Math.max(v, 0)) };
  const expected = normalizeMap(resizeBilinear(normalizeMap(relu), 9, 11));
  assert.ok(maxAbsDiff(one.data, expected.data) <= 1e-6);
  assert.throws(() => averageMaps([], 4, 4), RangeError);
});
