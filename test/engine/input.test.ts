// Image decoding and model-input preparation (src/engine/input.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import type { InputSpec } from '../../src/engine/manifest.js';
import { ALPHA_BACKGROUND, ImageError, decodeImage, toModelInput, type ModelInputSpec } from '../../src/engine/input.js';
import { inputGeometry, type RgbImage } from '../../src/render/index.js';

const limits = { maxPixels: 1_000_000, maxSide: 2048 };

function solid(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return { data, width, height, channels: 3 };
}

function spec(input: Partial<InputSpec>, size: [number, number] = [4, 4], channels = 3): ModelInputSpec {
  const full: InputSpec = { layout: 'NCHW', channels: 'RGB', scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], resize: 'stretch', ...input };
  const [h, w] = size;
  return {
    inputDims: full.layout === 'NHWC' ? [1, h, w, channels] : [1, channels, h, w],
    inputSize: { height: h, width: w, channels },
    manifest: { input: full },
  };
}

test('decodeImage applies EXIF orientation: width and height are of the upright image', async () => {
  const raw = solid(30, 20, [200, 10, 10]);
  const stored = await sharp(raw.data, { raw: { width: 30, height: 20, channels: 3 } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
  const d = await decodeImage(stored, limits);
  assert.equal(d.format, 'jpeg');
  assert.deepEqual([d.width, d.height, d.rgb.width, d.rgb.height], [20, 30, 20, 30]);
});

test('decodeImage flattens transparency on white and expands grey to RGB', async () => {
  const clear = await sharp({ create: { width: 4, height: 4, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
  const d = await decodeImage(clear, limits);
  assert.equal(d.hadAlpha, true);
  assert.deepEqual([...d.rgb.data.subarray(0, 3)], [ALPHA_BACKGROUND.r, ALPHA_BACKGROUND.g, ALPHA_BACKGROUND.b]);
  const grey = await sharp(solid(4, 4, [90, 90, 90]).data, { raw: { width: 4, height: 4, channels: 3 } }).toColourspace('b-w').png().toBuffer();
  assert.equal((await sharp(grey).metadata()).channels, 1);
  const g = await decodeImage(grey, limits);
  assert.equal(g.rgb.data.length, 4 * 4 * 3);
  assert.deepEqual([...g.rgb.data.subarray(0, 3)], [90, 90, 90]);
});

test('decodeImage scales the original to fit maxSide, keeping the aspect', async () => {
  const png = await sharp(solid(300, 100, [1, 2, 3]).data, { raw: { width: 300, height: 100, channels: 3 } }).png().toBuffer();
  const d = await decodeImage(png, { maxPixels: 1e6, maxSide: 150 });
  assert.deepEqual([d.width, d.height, d.rgb.width, d.rgb.height], [300, 100, 150, 50]);
});

test('decodeImage refuses with a kind: unsupported, too-large, damaged', async () => {
  await assert.rejects(decodeImage(Buffer.from('hello'), limits), (e: ImageError) => e.kind === 'unsupported');
  await assert.rejects(decodeImage(Buffer.alloc(0), limits), (e: ImageError) => e.kind === 'unsupported');
  const big = await sharp(solid(1100, 1000, [0, 0, 0]).data, { raw: { width: 1100, height: 1000, channels: 3 } }).png().toBuffer();
  await assert.rejects(decodeImage(big, limits), (e: ImageError) => e.kind === 'too-large');
  const png = await sharp(solid(200, 200, [5, 5, 5]).data, { raw: { width: 200, height: 200, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
  await assert.rejects(decodeImage(png.subarray(0, 1000), limits), (e: ImageError) => e.kind === 'damaged');
});

test('toModelInput normalises x = (pixel·scale − mean) / std per channel, NCHW', async () => {
  const x = await toModelInput(solid(8, 8, [255, 0, 51]), spec({ mean: [0.5, 0.25, 0], std: [0.5, 0.25, 0.2] }));
  assert.equal(x.length, 3 * 16);
  assert.ok(Math.abs(x[0] - 1) < 1e-6);
  assert.ok(Math.abs(x[16] - -1) < 1e-6);
  assert.ok(Math.abs(x[32] - 1) < 1e-6);
});

test('toModelInput lays out NHWC and swaps to BGR', async () => {
  const x = await toModelInput(solid(4, 4, [10, 20, 30]), spec({ layout: 'NHWC', channels: 'BGR', scale: 1 }));
  assert.deepEqual([...x.subarray(0, 6)], [30, 20, 10, 30, 20, 10]);
});

test('toModelInput: every pixel of a varied image, for each layout and channel order, is the float32 of (pixel·scale − mean) / std', async () => {
  const w = 6;
  const h = 5;
  const data = Buffer.alloc(w * h * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + 11) % 256;
  const image: RgbImage = { data, width: w, height: h, channels: 3 };
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  for (const layout of ['NCHW', 'NHWC'] as const) {
    for (const channels of ['RGB', 'BGR'] as const) {
      const x = await toModelInput(image, spec({ layout, channels, mean, std }, [h, w]));
      const order = channels === 'BGR' ? [2, 1, 0] : [0, 1, 2];
      for (let i = 0; i < w * h; i++) {
        for (let c = 0; c < 3; c++) {
          const expected = Math.fround((data[i * 3 + order[c]] * (1 / 255) - mean[c]) / std[c]);
          assert.equal(x[layout === 'NHWC' ? i * 3 + c : c * w * h + i], expected, `${layout} ${channels} pixel ${i} channel ${c}`);
        }
      }
    }
  }
});

test('toModelInput makes grey with ITU-R 601 luma', async () => {
  const x = await toModelInput(solid(4, 4, [100, 150, 200]), spec({ channels: 'gray', scale: 1, mean: [0], std: [1] }, [4, 4], 1));
  assert.equal(x.length, 16);
  assert.ok(Math.abs(x[0] - (0.299 * 100 + 0.587 * 150 + 0.114 * 200)) < 1e-3);
});

test('toModelInput with crop keeps the centre; with pad adds black borders', async () => {
  // 12×4: left third red, middle green, right third blue.
  const img = solid(12, 4, [0, 0, 0]);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 12; x++) img.data[(y * 12 + x) * 3 + Math.floor(x / 4)] = 255;
  const crop = await toModelInput(img, spec({ resize: 'crop', scale: 1 }));
  for (let i = 0; i < 16; i++) assert.deepEqual([crop[i], crop[16 + i], crop[32 + i]], [0, 255, 0], `crop pixel ${i} is green`);
  const pad = await toModelInput(img, spec({ resize: 'pad', scale: 1 }, [6, 6]));
  const g = inputGeometry(img, { width: 6, height: 6 }, 'pad');
  assert.deepEqual(g, { resize: 'pad', scaled: { width: 6, height: 2 }, offset: { x: 0, y: 2 }, input: { width: 6, height: 6 } });
  for (let x = 0; x < 6; x++) {
    assert.equal(pad[x] + pad[36 + x] + pad[72 + x], 0, 'top border is black');
    assert.equal(pad[5 * 6 + x] + pad[36 + 5 * 6 + x] + pad[72 + 5 * 6 + x], 0, 'bottom border is black');
  }
  assert.equal(pad[2 * 6 + 0], 255, 'the image starts at row 2, red on the left');
});
