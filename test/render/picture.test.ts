// Pictures beyond the default PNG: the encodings a render job may ask for (PNG at any zlib level, WebP,
// JPEG), and a render job's max_side (aspect kept, never enlarged, the same picture as rendering at that size).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';

import { encodeRgb, fitInside, renderJob, renderOverlay, type CamMap, type RenderJob, type RgbImage } from '../../src/render/index.js';

function image(width: number, height: number): RgbImage {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) {
    data[(y * width + x) * 3 + c] = Math.round(128 + 100 * Math.sin((x + 5 * c) / 11) * Math.cos(y / 9));
  }
  return { data, width, height, channels: 3 };
}

const map: CamMap = { width: 4, height: 3, data: Float32Array.from([0, 1, 2, 3, 1, 5, 8, 2, 0, 2, 3, 1]) };

function job(img: RgbImage, extra: Partial<RenderJob> = {}): RenderJob {
  return { kind: 'overlay', image: img, maps: [map], input: { width: 32, height: 32 }, resize: 'stretch', alpha: 0.5, colormap: 'jet', ...extra };
}

test('PNG at every level 0..9 decodes to the same pixels; level 0 is larger than level 9', async () => {
  const img = image(97, 61);
  const sizes: number[] = [];
  for (let level = 0; level <= 9; level++) {
    const png = await encodeRgb(img.data, img.width, img.height, { compressionLevel: level });
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const back = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    assert.equal(back.info.channels, 3);
    assert.ok(back.data.equals(img.data), `level ${level}`);
    sizes.push(png.length);
  }
  assert.ok(sizes[0] > sizes[9], `${sizes[0]} > ${sizes[9]}`);
  await assert.rejects(encodeRgb(img.data, img.width, img.height, { compressionLevel: 10 }), RangeError);
});

test('an overlay at level 0 (through sharp) has the pixels of the overlay at level 3 (PngWriter)', async () => {
  const img = image(80, 50);
  const l0 = await renderOverlay({ image: img, map, compressionLevel: 0 });
  const l3 = await renderOverlay({ image: img, map, compressionLevel: 3 });
  assert.ok(l0.length > l3.length);
  assert.ok((await sharp(l0).raw().toBuffer()).equals(await sharp(l3).raw().toBuffer()));
});

test('WebP and JPEG: their magic bytes, the size, pixels near the PNG\'s; quality changes the bytes', async () => {
  const img = image(64, 48);
  const png = await sharp(await renderOverlay({ image: img, map })).raw().toBuffer();
  const webp = await renderOverlay({ image: img, map, format: 'webp' });
  assert.equal(webp.subarray(0, 4).toString('latin1'), 'RIFF');
  assert.equal(webp.subarray(8, 12).toString('latin1'), 'WEBP');
  const jpeg = await renderOverlay({ image: img, map, format: 'jpeg' });
  assert.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff]);
  for (const [name, pic] of [['webp', webp], ['jpeg', jpeg]] as const) {
    const { data, info } = await sharp(pic).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height, info.format], [64, 48, 'raw'], name);
    let sum = 0;
    for (let i = 0; i < data.length; i++) sum += Math.abs(data[i] - png[i]);
    assert.ok(sum / data.length < 12, `${name}: mean difference ${sum / data.length}`);
  }
  const q10 = await renderOverlay({ image: img, map, format: 'jpeg', quality: 10 });
  assert.ok(q10.length < jpeg.length);
  await assert.rejects(encodeRgb(img.data, img.width, img.height, { format: 'jpeg', quality: 0 }), RangeError);
});

test('fitInside keeps the aspect ratio, never enlarges, keeps a side of at least 1', () => {
  assert.deepEqual(fitInside(640, 480, 320), { width: 320, height: 240 });
  assert.deepEqual(fitInside(480, 640, 320), { width: 240, height: 320 });
  assert.deepEqual(fitInside(640, 480, 1000), { width: 640, height: 480 });
  assert.deepEqual(fitInside(640, 480, undefined), { width: 640, height: 480 });
  assert.deepEqual(fitInside(1000, 2, 16), { width: 16, height: 1 });
});

test('a render job with maxSide: every kind of picture fits it; a larger maxSide changes nothing; formats pass through', async () => {
  const img = image(120, 90);
  for (const kind of ['overlay', 'heatmap', 'factorization'] as const) {
    for (const resize of ['stretch', 'crop', 'pad'] as const) {
      const [pic] = await renderJob(job(img, { kind, resize, maxSide: 40 }));
      const m = await sharp(pic).metadata();
      assert.deepEqual([m.width, m.height], [40, 30], `${kind} ${resize}`);
    }
  }
  const [same] = await renderJob(job(img, { maxSide: 500 }));
  const [full] = await renderJob(job(img));
  assert.ok(Buffer.from(same).equals(Buffer.from(full)), 'a larger max_side changes nothing');
  // Formats go through the job too.
  const [webp] = await renderJob(job(img, { maxSide: 60, format: 'webp' }));
  const w = await sharp(webp).metadata();
  assert.deepEqual([w.format, w.width, w.height], ['webp', 60, 45]);
});
