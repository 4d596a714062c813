// model.json preprocessing as exporters need it: inverted inputs (negative scale, explicit affine), BGR with
// Caffe means in 0..255, resize-then-centre-crop sizes (256 → 224, timm's crop_pct), top-left anchored
// letterboxes with a pad value; every problem of a model.json reported at once, each naming its field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readManifest, type InputSpec } from '../../src/engine/manifest.js';
import { toModelInput, type ModelInputSpec } from '../../src/engine/input.js';
import { ModelRuntime } from '../../src/engine/runtime.js';
import { inputGeometry, type RgbImage } from '../../src/render/index.js';
import { FIXTURES } from '../helpers/fixtures.js';

async function withManifest<T>(json: unknown, run: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-manifest-'));
  try {
    await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
    return await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function image(width: number, height: number, px: (x: number, y: number) => [number, number, number]): RgbImage {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(px(x, y), (y * width + x) * 3);
  return { data, width, height, channels: 3 };
}

const model = (input: InputSpec, size: [number, number], channels = 3): ModelInputSpec => ({
  inputDims: [1, channels, size[0], size[1]], inputSize: { height: size[0], width: size[1], channels }, manifest: { input },
});

test('inverted inputs: a negative scale, or an explicit per-channel affine', async () => {
  const px = image(2, 2, () => [10, 20, 30]);
  const neg = await withManifest({ input: { scale: -0.00392156862745098, mean: [-1, -1, -1], std: [1, 1, 1] } }, (d) => readManifest(d));
  const x = await toModelInput(px, model(neg.input, [2, 2]));
  assert.ok(Math.abs(x[0] - (1 - 10 / 255)) < 1e-6 && Math.abs(x[4] - (1 - 20 / 255)) < 1e-6);
  const aff = await withManifest({ input: { affine: { scale: [-0.01, 0.02, 1], offset: [1, -2, 0.5] } } }, (d) => readManifest(d));
  const y = await toModelInput(px, model(aff.input, [2, 2]));
  assert.deepEqual([y[0], y[4], y[8]].map((v) => +v.toFixed(6)), [0.9, -1.6, 30.5]);
});

test('BGR with Caffe means in 0..255 (scale 1)', async () => {
  const m = await withManifest({ input: { channels: 'BGR', scale: 1, mean: [103.939, 116.779, 123.68], std: [1, 1, 1] } }, (d) => readManifest(d));
  const x = await toModelInput(image(1, 1, () => [10, 20, 30]), model(m.input, [1, 1]));
  assert.deepEqual([...x].map((v) => +v.toFixed(3)), [30 - 103.939, 20 - 116.779, 10 - 123.68].map((v) => +v.toFixed(3)));
});

test('resize then centre-crop: resize_size 256 and crop_pct 0.875 put a 224 window in the middle of a 256 short side', async () => {
  const a = await withManifest({ input: { size: [224, 224], resize: 'crop', resize_size: 256 } }, (d) => readManifest(d));
  const b = await withManifest({ input: { size: [224, 224], resize: 'crop', crop_pct: 0.875 } }, (d) => readManifest(d));
  assert.equal(a.input.resizeSize, 256);
  assert.equal(b.input.resizeSize, 256);
  const g = inputGeometry({ width: 400, height: 300 }, { width: 224, height: 224 }, 'crop', { resizeSize: 256 });
  assert.deepEqual(g.scaled, { width: 341, height: 256 });
  assert.deepEqual(g.offset, { x: 58, y: 16 });
  // Without it the short side becomes the crop itself (the old behaviour).
  assert.deepEqual(inputGeometry({ width: 400, height: 300 }, { width: 224, height: 224 }, 'crop').scaled, { width: 299, height: 224 });
  // A left-half/right-half image: the 256-resize crop keeps less of the sides than a 224-resize crop.
  const half = image(400, 300, (x) => (x < 200 ? [255, 255, 255] : [0, 0, 0]));
  const x = await toModelInput(half, model({ ...a.input, scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1] }, [224, 224]));
  assert.equal(x[112 * 224 + (199 - 58) * 341 / 400 * 0 + 100], 1); // inside the left half: white
  assert.equal(x[112 * 224 + 200 - 58 + 1], 0); // right of it: black
});

test('a top-left anchored letterbox with its pad value', async () => {
  const m = await withManifest({ input: { size: [8, 8], resize: 'pad', anchor: 'top-left', pad_value: 114, scale: 1, mean: [0, 0, 0], std: [1, 1, 1] } }, (d) => readManifest(d));
  const x = await toModelInput(image(16, 8, () => [200, 200, 200]), model(m.input, [8, 8]));
  // The image fills rows 0..3, the borders rows 4..7 only (below, none above).
  assert.equal(x[0], 200);
  assert.equal(x[3 * 8], 200);
  assert.equal(x[4 * 8], 114);
  assert.equal(x[7 * 8 + 7], 114);
  assert.deepEqual(inputGeometry({ width: 16, height: 8 }, { width: 8, height: 8 }, 'pad', { anchor: 'top-left' }).offset, { x: 0, y: 0 });
});

test('every problem of a model.json at once, each naming its field', async () => {
  const json = {
    input: { scale: 0, std: [1, 0, 1], resize: 'stretch', anchor: 'top-left', resize_size: 256, mean: [103.9, 116.8, 123.7], colour: 'RGB' },
    multiLabel: 'yes',
    tokens: { prefix: -1 },
  };
  await withManifest(json, async (d) => {
    await assert.rejects(readManifest(d), (e: { code: string; message: string; details: { errors: { field: string }[] } }) => {
      assert.equal(e.code, 'model-unavailable');
      const fields = e.details.errors.map((p) => p.field).sort();
      assert.deepEqual(fields, ['input.anchor', 'input.colour', 'input.mean', 'input.resize_size', 'input.scale', 'input.std', 'multiLabel', 'tokens.prefix']);
      for (const f of fields) assert.ok(e.message.includes(`"${f}"`), `${f} missing in: ${e.message}`);
      assert.match(e.message, /model\.json: 8 problems: /);
      return true;
    });
  });
  // Caffe means with the default scale of 1/255 are caught, with the fix.
  await withManifest({ input: { mean: [103.9, 116.8, 123.7], std: [1, 1, 1] } }, async (d) => {
    await assert.rejects(readManifest(d), /"input\.mean" \[103\.9,116\.8,123\.7\] lies outside the pixel range 0\.\.1 .*need "scale": 1/);
  });
});

test('a model whose model.json is wrong is refused at load with the listed problems', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-manifest-'));
  try {
    await copyFile(path.join(FIXTURES, 'resnet', 'model.onnx'), path.join(dir, 'model.onnx'));
    await writeFile(path.join(dir, 'model.json'), JSON.stringify({ input: { affine: { scale: [1, 1, 1], offset: [0, 0, 0] }, scale: 1, resize: 'crop', crop_pct: 2 } }));
    await assert.rejects(ModelRuntime.load(dir), /"input\.affine" replaces input\.scale.*"input\.crop_pct" must be a number in \(0, 1\]/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an image of the model\'s own size is normalised as it is, whatever the resize mode (no resampling)', async () => {
  const px = image(8, 6, (x, y) => [(x * 37 + y * 11) & 255, (x * 5 + y * 91) & 255, (x * y * 13) & 255]);
  for (const resize of ['stretch', 'crop', 'pad'] as const) {
    const m = await withManifest({ input: { resize, size: [6, 8] } }, (d) => readManifest(d));
    const x = await toModelInput(px, model(m.input, [6, 8]));
    const { scale, mean, std } = m.input;
    const want = new Float32Array(3 * 48);
    for (let c = 0; c < 3; c++) for (let i = 0; i < 48; i++) want[c * 48 + i] = (px.data[i * 3 + c] * scale - mean[c]) / std[c];
    assert.deepEqual([...x], [...want], resize);
  }
});
