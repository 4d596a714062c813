import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { FIXTURES } from '../helpers/fixtures.js';

const run = promisify(execFile);
const CLI = path.resolve('src/cli/main.ts');
const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', CLI, ...args]);
const IMAGE = path.resolve('examples/star-ring.png');
const MODEL = path.join(FIXTURES, 'resnet');

test('explain prints the top predictions and writes one overlay per class at the image size', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-cli-'));
  const { stdout } = await cli('explain', IMAGE, '--model', MODEL, '--topk', '2', '--out', path.join(dir, 'cam.png'));
  assert.match(stdout, /resnet: top predictions/);
  const files = [...stdout.matchAll(/→ (\S+\.png)/g)].map((m) => m[1]);
  assert.equal(files.length, 2);
  for (const f of files) {
    const meta = await sharp(await readFile(f)).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 128, 128]);
  }
  await rm(dir, { recursive: true, force: true });
});

test('explain --json gives predictions and the raw map of the requested class and layer', async () => {
  const { stdout } = await cli('explain', IMAGE, '-m', MODEL, '--json', '--method', 'layercam', '--target', '3', '--layer', '/layer2/layer2.0/relu_1/Relu_output_0');
  const r = JSON.parse(stdout);
  assert.equal(r.method, 'layercam');
  assert.equal(r.predictions.length, 5);
  assert.equal(r.explanations[0].target.index, 3);
  assert.deepEqual([r.explanations[0].cam.width, r.explanations[0].cam.height], [8, 8]);
  assert.equal(r.explanations[0].cam.data.length, 64);
});

test('a bad option exits with status 2 and says what was expected', async () => {
  await assert.rejects(cli('explain', IMAGE, '-m', MODEL, '--method', 'nope'), (e: { code: number; stderr: string }) => {
    assert.equal(e.code, 2);
    assert.match(e.stderr, /unknown method "nope"/);
    return true;
  });
  await assert.rejects(cli('explain', IMAGE, '-m', MODEL, '--target', 'zebra'), (e: { code: number; stderr: string }) => e.code === 2 && /"zebra" is not a class index, and this model has no labels/.test(e.stderr));
});

test('explain writes WebP or JPEG (by --format or the --out name) no larger than --max-side; bad picture options exit 2', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-cli-'));
  try {
    await cli('explain', IMAGE, '-m', MODEL, '-o', path.join(dir, 'cam.webp'), '--max-side', '64');
    let meta = await sharp(await readFile(path.join(dir, 'cam.webp'))).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['webp', 64, 64]);
    await cli('explain', IMAGE, '-m', MODEL, '-o', path.join(dir, 'cam'), '--format', 'jpeg', '--quality', '70');
    meta = await sharp(await readFile(path.join(dir, 'cam'))).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 128, 128]);
    // Several classes without an extension: each file takes the format's.
    const { stdout } = await cli('explain', IMAGE, '-m', MODEL, '-k', '2', '-o', path.join(dir, 'top'), '--format', 'webp');
    const files = [...stdout.matchAll(/→ (\S+)$/gm)].map((m) => m[1]);
    assert.equal(files.length, 2);
    for (const f of files) {
      assert.match(f, /top-\d+\.webp$/);
      assert.equal((await sharp(await readFile(f)).metadata()).format, 'webp');
    }
    const refused = async (args: string[], pattern: RegExp) => assert.rejects(cli('explain', IMAGE, '-m', MODEL, ...args), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 2, e.stderr);
      assert.match(e.stderr, pattern);
      return true;
    });
    await refused(['-o', path.join(dir, 'x.png'), '--png-compression', '12'], /png_compression/);
    await refused(['-o', path.join(dir, 'x.png'), '--quality', '50'], /quality/);
    await refused(['-o', path.join(dir, 'x.webp'), '--png-compression', '1'], /png_compression/);
    await refused(['-o', path.join(dir, 'x.png'), '--max-side', '0'], /max_side/);
    await refused(['--max-side', '64'], /give --out/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('explain and explain-dir place the map alike on a model that resizes then centre-crops (model.json)', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-cli-'));
  try {
    const model = path.join(dir, 'm');
    await mkdir(model);
    await copyFile(path.join(MODEL, 'model.onnx'), path.join(model, 'model.onnx'));
    await writeFile(path.join(model, 'model.json'), JSON.stringify({ input: { resize: 'crop', resize_size: 96 } }));
    await mkdir(path.join(dir, 'in'));
    await copyFile(IMAGE, path.join(dir, 'in', 'star-ring.png'));
    await cli('explain', IMAGE, '-m', model, '-o', path.join(dir, 'one.png'));
    await cli('explain-dir', path.join(dir, 'in'), '-m', model, '--out', path.join(dir, 'out'), '--no-progress');
    const one = await readFile(path.join(dir, 'one.png'));
    assert.ok(one.equals(await readFile(path.join(dir, 'out', 'star-ring.png.png'))), 'the same overlay bytes');
    // The crop decides where the map goes: the same model without it gives another overlay, so the two
    // commands' equal bytes mean both honour it (explain-dir once placed maps as if the image were stretched).
    await writeFile(path.join(model, 'model.json'), JSON.stringify({ input: { resize: 'stretch' } }));
    await cli('explain', IMAGE, '-m', model, '-o', path.join(dir, 'stretched.png'));
    assert.ok(!one.equals(await readFile(path.join(dir, 'stretched.png'))), 'the crop changes the overlay');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('layers lists the candidate layers and marks the default', async () => {
  const { stdout } = await cli('layers', '-m', MODEL);
  assert.match(stdout, /^\* \/layer4\/layer4\.0\/relu_1\/Relu_output_0 {2}\[1, 64, 2, 2\]/m);
});

test('summary prints the torchsummary-style table with totals', async () => {
  const { stdout } = await cli('summary', '-m', MODEL);
  assert.match(stdout, /Total params \(ONNX initializers\): [\d,]+/);
  assert.match(stdout, /Estimated Total Size \(MB\)/);
});

test('graph writes an SVG (and DOT with --dot) that names the differentiated path', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-cli-'));
  await cli('graph', '-m', MODEL, '-o', path.join(dir, 'g.svg'));
  assert.match(await readFile(path.join(dir, 'g.svg'), 'utf8'), /<svg[\s\S]*\/layer4\/layer4\.0\/relu_1\/Relu/);
  const { stdout } = await cli('graph', '-m', MODEL, '--dot', '--collapse', 'scope');
  assert.match(stdout, /^digraph/);
  await rm(dir, { recursive: true, force: true });
});

test('features writes a make_grid PNG of the layer\'s maps', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-cli-'));
  const out = path.join(dir, 'grid.png');
  await cli('features', IMAGE, '-m', MODEL, '--layer', '/layer2/layer2.0/relu_1/Relu_output_0', '--nrow', '4', '--normalize', '-o', out);
  const meta = await sharp(await readFile(out)).metadata();
  // 16 maps of 8×8 at scale 8 (64 px), 4 per row, padding 2: 4·(64+2)+2 = 266 wide and high.
  assert.deepEqual([meta.width, meta.height], [266, 266]);
  await rm(dir, { recursive: true, force: true });
});

test('histograms --json gives activation and per-class gradient counts that add up to the tensor size', async () => {
  const { stdout } = await cli('histograms', IMAGE, '-m', MODEL, '--target', '2,7', '--bins', '12', '--json');
  const r = JSON.parse(stdout);
  assert.deepEqual(r.targets, [2, 7]);
  const [layer] = r.layers;
  const n = layer.dims.reduce((a: number, b: number) => a * b, 1);
  const total = (h: { counts: number[]; below: number; above: number; non_finite: number }) => h.counts.reduce((a, b) => a + b, 0) + h.below + h.above + h.non_finite;
  assert.equal(layer.activations.counts.length, 12);
  assert.equal(total(layer.activations), n);
  for (const g of layer.gradients) assert.equal(total(g.histogram), n);
});

test('layers says why each layer is (not) the default; --layer takes a node name as well as a tensor name', async () => {
  const { stdout } = await cli('layers', '-m', MODEL);
  assert.match(stdout, /^ {6}64×2×2 Relu output; default: the last activation before the head/m);
  assert.match(stdout, /^predictions: model; activations and gradients: model; batch: /m);
  const byNode = JSON.parse((await cli('explain', IMAGE, '-m', MODEL, '--layer', '/layer4/layer4.0/relu_1/Relu', '--json')).stdout) as { layers: string[] };
  assert.deepEqual(byNode.layers, ['/layer4/layer4.0/relu_1/Relu_output_0']);
});
