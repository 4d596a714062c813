// The fast render path: the fused colour map + blend equals the two steps, and the PNG encoder's output
// decodes (with libvips, through sharp) to exactly the pixels it was given, at every level.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import sharp from 'sharp';

import { COLORMAP_NAMES, applyColormap, blend, normalizeMap, renderOverlay, resizeBilinear, type CamMap } from '../../src/render/index.js';
import { colormapBlend, colormapIndex } from '../../src/render/render.js';
import { adler32, encodePngRgb } from '../../src/render/png.js';

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function photo(width: number, height: number, seed: number): Buffer {
  const r = rng(seed);
  const out = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) {
    out[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(128 + 90 * Math.sin((x + 2 * c) / 13) * Math.cos(y / 17) + 20 * r())));
  }
  return out;
}

test('colormapBlend equals blend(applyColormap(...)) for every colour map, alpha, and odd values', () => {
  const r = rng(7);
  for (const [w, h] of [[1, 1], [5, 3], [64, 48], [200, 120]]) {
    const data = Float32Array.from({ length: w * h }, () => r() * 1.2 - 0.1);
    if (data.length > 3) { data[0] = NaN; data[1] = 1; data[2] = 0; data[3] = Infinity; }
    const map: CamMap = { width: w, height: h, data };
    const image = photo(w, h, w);
    for (const name of COLORMAP_NAMES) {
      for (const alpha of [0, 0.3, 0.5, 1]) {
        assert.deepEqual(colormapBlend(map, image, alpha, name), blend(applyColormap(map, name), image, alpha), `${w}×${h} ${name} alpha ${alpha}`);
      }
    }
  }
  const zeros: CamMap = { width: 2, height: 2, data: new Float32Array(4) };
  assert.deepEqual(colormapBlend(zeros, Buffer.alloc(12), 1, 'jet'), Buffer.alloc(12));
  assert.throws(() => colormapBlend(zeros, Buffer.alloc(11), 0.5, 'jet'), RangeError);
  assert.throws(() => colormapBlend(zeros, Buffer.alloc(12), 2, 'jet'), RangeError);
});

test('encodePngRgb: decodes to the same pixels at every level, for photographs and flat images', async () => {
  const images: [string, Buffer, number, number][] = [
    ['photo', photo(97, 61, 1), 97, 61],
    ['flat', Buffer.alloc(40 * 30 * 3, 200), 40, 30],
    ['one pixel', Buffer.from([1, 2, 3]), 1, 1],
  ];
  for (const [what, rgb, width, height] of images) {
    for (let level = 0; level <= 9; level++) {
      const png = await encodePngRgb(rgb, width, height, level);
      const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([info.width, info.height, info.channels], [width, height, 3], `${what} level ${level}`);
      assert.ok(data.equals(rgb), `${what} level ${level}: pixels differ`);
    }
  }
});

test('encodePngRgb: a large image is deflated in blocks that join into one valid stream', async () => {
  const width = 500;
  const height = 400; // 600 KB of scanlines: five blocks
  const rgb = photo(width, height, 3);
  for (const level of [1, 3]) {
    const png = await encodePngRgb(rgb, width, height, level);
    const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    assert.ok(data.equals(rgb), `level ${level}`);
  }
});

test('adler32 agrees with zlib', () => {
  const data = photo(300, 100, 5);
  const z = zlib.deflateSync(data);
  assert.equal(adler32(data), z.readUInt32BE(z.length - 4));
  assert.equal(adler32(new Uint8Array(0)), 1);
});

test('colormapIndex is the index applyColormap takes of resizeBilinear; renderOverlay draws colormapBlend of it', async () => {
  const r = rng(11);
  const map: CamMap = { width: 7, height: 5, data: Float32Array.from({ length: 35 }, () => r()) };
  for (const [w, h] of [[7, 5], [64, 48], [33, 100], [300, 500]]) {
    const full = resizeBilinear(map, w, h);
    const heat = applyColormap(full, 'gray'); // gray: the index itself
    const index = colormapIndex(map, w, h);
    for (let i = 0; i < w * h; i++) assert.equal(index[i], heat[i * 3], `${w}×${h} pixel ${i}`);
    const image = { data: photo(w, h, 9), width: w, height: h, channels: 3 as const };
    for (const compressionLevel of [0, 1, 3, 9]) {
      const png = await renderOverlay({ image, map, alpha: 0.4, colormap: 'viridis', normalize: false, compressionLevel });
      const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      assert.ok(data.equals(colormapBlend(full, image.data, 0.4, 'viridis')), `${w}×${h} level ${compressionLevel}`);
    }
  }
});

/** The zlib stream of a PNG's IDAT chunks. */
function idatOf(png: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let o = 8; o < png.length;) {
    const len = png.readUInt32BE(o);
    if (png.toString('latin1', o + 4, o + 8) === 'IDAT') parts.push(png.subarray(o + 8, o + 8 + len));
    o += 12 + len;
  }
  return Buffer.concat(parts);
}

test('renderOverlay: the Adler-32 summed while the rows are made is zlib\'s, for small (one stream), large (blocks) and wide (sums reduced within a row) pictures', async () => {
  const r = rng(21);
  const map: CamMap = { width: 7, height: 7, data: Float32Array.from({ length: 49 }, () => r()) };
  for (const [w, h] of [[224, 224], [640, 480], [2500, 60], [1201, 3]]) {
    const image = { data: photo(w, h, 4), width: w, height: h, channels: 3 as const };
    const png = await renderOverlay({ image, map, alpha: 0.5, colormap: 'jet' });
    // inflateSync checks the stream's Adler-32 and throws on a mismatch
    const rows = zlib.inflateSync(idatOf(png));
    assert.equal(rows.length, h * (w * 3 + 1), `${w}×${h}`);
    const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    assert.ok(data.equals(colormapBlend(resizeBilinear(normalizeMap(map), w, h), image.data, 0.5, 'jet')), `${w}×${h}`);
  }
});

test('encodePngRgb: flat blocks are run-length coded, photograph-like blocks with Huffman codes alone, both decoding to the pixels', async () => {
  const width = 640;
  const height = 480; // 921 KB of scanlines: eight blocks
  const flat = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) flat.set([40, 80 + (y >> 4), 160], (y * width + x) * 3);
  const mixed = Buffer.from(flat);
  mixed.set(photo(width, height / 2, 8), 0); // the top half a photograph, the bottom half flat
  for (const level of [1, 3]) {
    const a = await encodePngRgb(flat, width, height, level);
    // Huffman codes alone spend at least one bit per byte: 115 KB here; run-length coding a few KB.
    assert.ok(a.length < 20_000, `flat picture at level ${level}: ${a.length} bytes`);
    assert.ok((await sharp(a).raw().toBuffer()).equals(flat));
    const b = await encodePngRgb(mixed, width, height, level);
    assert.ok((await sharp(b).raw().toBuffer()).equals(mixed));
    zlib.inflateSync(idatOf(b));
  }
});
