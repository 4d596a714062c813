// decodeSide: how large an upload is decoded. Unchanged (the cap) unless max_side is given and the upload is
// a JPEG large enough for sharp's shrink-on-load; then no smaller than the picture and twice the model's
// resized image.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { JPEG_SHRINK_FROM, MODEL_HEADROOM, decodeSide, parseCamParams } from '../../src/api/index.js';
import { decodeImage } from '../../src/engine/index.js';

const model = (resize: 'stretch' | 'crop' | 'pad', size = 224, resizeSize?: number) => ({
  inputSize: { width: size, height: size, channels: 3 },
  manifest: { input: { resize, ...(resizeSize ? { resizeSize } : {}) } },
}) as unknown as Parameters<typeof decodeSide>[2];
const jpeg = (width: number, height: number) => ({ format: 'jpeg', width, height });

test('without max_side, or not a JPEG, or no header: the cap, as before', () => {
  assert.equal(decodeSide(jpeg(4000, 3000), { picture: true }, model('stretch'), 2048), 2048);
  assert.equal(decodeSide(jpeg(4000, 3000), { picture: false }, model('stretch'), 2048), 2048);
  assert.equal(decodeSide({ format: 'png', width: 4000, height: 3000 }, { picture: true, maxSide: 100 }, model('stretch'), 2048), 2048);
  assert.equal(decodeSide(undefined, { picture: true, maxSide: 100 }, model('stretch'), 2048), 2048);
});

test('a large JPEG with max_side: the larger of the picture and the model need, where that is a 3× reduction', () => {
  // stretch 224 on 4:3: the height must stay ≥ 2·224 = 448 → the long side ≥ 598
  assert.equal(decodeSide(jpeg(4000, 3000), { picture: true, maxSide: 320 }, model('stretch'), 2048), 598);
  assert.equal(decodeSide(jpeg(4000, 3000), { picture: false, maxSide: 320 }, model('stretch'), 2048), 598);
  assert.equal(decodeSide(jpeg(4000, 3000), { picture: true, maxSide: 1000 }, model('stretch'), 2048), 1000);
  // 640×480: 598 is not a 3× reduction; decoded whole (the picture is shrunk when drawn)
  assert.equal(decodeSide(jpeg(640, 480), { picture: true, maxSide: 320 }, model('stretch'), 2048), 2048);
  assert.ok(640 < JPEG_SHRINK_FROM * 598);
  // crop with resize 256: the short side ≥ 512 → 3000×2000 at ≥ 768
  assert.equal(decodeSide(jpeg(3000, 2000), { picture: false, maxSide: 64 }, model('crop', 224, 256), 2048), 768);
  // a portrait image and a small model
  assert.equal(decodeSide(jpeg(1000, 2000), { picture: false, maxSide: 16 }, model('pad', 32), 2048), 64); // pad: the image is 16×32 in the input
});

test('the side it picks covers MODEL_HEADROOM× the model need after sharp decodes the JPEG at it', async () => {
  const bytes = await sharp({ create: { width: 1500, height: 1000, channels: 3, background: { r: 10, g: 200, b: 90 } } }).jpeg().toBuffer();
  const side = decodeSide(jpeg(1500, 1000), { picture: false, maxSide: 16 }, model('stretch', 100), 2048);
  assert.ok(side < 1500 / JPEG_SHRINK_FROM, `${side}`);
  const d = await decodeImage(bytes, { maxPixels: 1e8, maxSide: side });
  assert.ok(d.rgb.width >= MODEL_HEADROOM * 100 && d.rgb.height >= MODEL_HEADROOM * 100, `${d.rgb.width}×${d.rgb.height}`);
  assert.deepEqual([d.width, d.height], [1500, 1000]);
});

test('parseCamParams: max_side within 16..the cap, format and its encodings', () => {
  const p = (o: Record<string, string>, cap?: number) => parseCamParams(new Map(Object.entries(o)), false, cap);
  assert.equal(p({}).maxSide, undefined);
  assert.equal(p({}).format, 'png');
  assert.equal(p({}).pngCompression, 3);
  assert.equal(p({ max_side: '16' }, 16).maxSide, 16);
  assert.throws(() => p({ max_side: '17' }, 16), /max_side must be an integer in 16\.\.16/);
  assert.deepEqual([p({ format: 'webp', quality: '7' }).format, p({ format: 'webp', quality: '7' }).quality], ['webp', 7]);
  assert.equal(p({ png_compression: '0' }).pngCompression, 0);
  assert.throws(() => p({ format: 'jpeg', output: 'json' }), /JSON answer/);
});
