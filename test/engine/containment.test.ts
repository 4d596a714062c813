// Fault 3 of the hardening issue: a model's files (model.onnx, external weights, labels) are read only if
// their real path lies inside the model folder's real path; the folder itself may be a link; load errors
// that clients see carry no server path.
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ModelRuntime } from '../../src/engine/index.js';
import { InferencePool } from '../../src/workers/index.js';
import { withoutServerPaths } from '../../src/workers/paths.js';
import { FIXTURES } from '../helpers/fixtures.js';

let root: string;
before(async () => { root = await mkdtemp(path.join(os.tmpdir(), 'camserve-contain-')); });
after(async () => { await rm(root, { recursive: true, force: true }); });

/** A model folder with a copy of the resnet fixture and `extra` files. */
async function folder(name: string, extra: (dir: string) => Promise<void> = async () => undefined): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  await copyFile(path.join(FIXTURES, 'resnet', 'model.onnx'), path.join(dir, 'model.onnx'));
  await extra(dir);
  return dir;
}

const secret = async () => {
  const file = path.join(root, 'secret.txt');
  await writeFile(file, Array.from({ length: 10 }, (_, i) => `secret-${i}`).join('\n'));
  return file;
};

test('a labels.txt that links out of the folder is refused, its content never read', async () => {
  const s = await secret();
  const dir = await folder('labels-link', (d) => symlink(s, path.join(d, 'labels.txt')));
  await assert.rejects(ModelRuntime.load(dir), (e: Error) => /labels file "labels.txt" lies outside the model's folder/.test(e.message) && !e.message.includes('secret-'));
});

test('model.json naming a labels file through a link or a ../ path is refused; a file named "..labels" inside is fine', async () => {
  const s = await secret();
  const viaLink = await folder('labels-json-link', async (d) => {
    await symlink(s, path.join(d, 'names'));
    await writeFile(path.join(d, 'model.json'), JSON.stringify({ labels: 'names' }));
  });
  await assert.rejects(ModelRuntime.load(viaLink), /lies outside the model's folder/);
  const viaDots = await folder('labels-json-dots', (d) => writeFile(path.join(d, 'model.json'), JSON.stringify({ labels: '../secret.txt' })));
  await assert.rejects(ModelRuntime.load(viaDots), /lies outside the model's folder/);
  const dotted = await folder('labels-dotted', async (d) => {
    await writeFile(path.join(d, '..labels'), Array.from({ length: 10 }, (_, i) => `class ${i}`).join('\n'));
    await writeFile(path.join(d, 'model.json'), JSON.stringify({ labels: '..labels' }));
  });
  const rt = await ModelRuntime.load(dotted);
  assert.equal(rt.info.manifest.labels?.[3], 'class 3');
  await rt.release();
});

test('a model.onnx or an external data file that links out of the folder is refused', async () => {
  const outside = path.join(root, 'outside');
  await mkdir(outside, { recursive: true });
  await copyFile(path.join(FIXTURES, 'resnet', 'model.onnx'), path.join(outside, 'model.onnx'));
  const linkedModel = path.join(root, 'model-link');
  await mkdir(linkedModel);
  await symlink(path.join(outside, 'model.onnx'), path.join(linkedModel, 'model.onnx'));
  await assert.rejects(ModelRuntime.load(linkedModel), /model file "model.onnx" lies outside the model's folder/);

  const ext = path.join(root, 'extdata-link');
  await mkdir(ext);
  await copyFile(path.join(FIXTURES, 'resnet-extdata', 'model.onnx'), path.join(ext, 'model.onnx'));
  await copyFile(path.join(FIXTURES, 'resnet-extdata', 'model.onnx.data'), path.join(outside, 'model.onnx.data'));
  await symlink(path.join(outside, 'model.onnx.data'), path.join(ext, 'model.onnx.data'));
  await assert.rejects(ModelRuntime.load(ext), /external data file "model.onnx.data" lies outside the model's folder/);
});

test('a model folder that is itself a link (models/x -> /data/x) loads, links inside it included', async () => {
  const data = await folder('data/real', async (d) => {
    await writeFile(path.join(d, 'names.txt'), Array.from({ length: 10 }, (_, i) => `n${i}`).join('\n'));
    await symlink('names.txt', path.join(d, 'labels.txt'));
  });
  const models = path.join(root, 'models');
  await mkdir(models);
  await symlink(data, path.join(models, 'x'));
  const rt = await ModelRuntime.load(path.join(models, 'x'));
  assert.equal(rt.info.manifest.labels?.[9], 'n9');
  await rt.release();
});

test('load errors served by the pool carry no server path; the full message is kept for the logs', async () => {
  const models = path.join(root, 'served');
  await mkdir(path.join(models, 'nodata'), { recursive: true });
  await copyFile(path.join(FIXTURES, 'resnet-extdata', 'model.onnx'), path.join(models, 'nodata', 'model.onnx'));
  const pool = await InferencePool.start({ modelsDir: models, workers: 1, intraOpThreads: 1, maxQueue: 1 });
  try {
    const [s] = pool.models();
    assert.equal(s.ok, false);
    if (s.ok) return;
    assert.match(s.error, /external data file "model.onnx.data" is missing/);
    assert.ok(!s.error.includes(root) && !s.error.includes(os.tmpdir()), s.error);
  } finally {
    await pool.close();
  }
  assert.equal(withoutServerPaths('/srv/m/x/model.onnx: input "x" must be float32', '/srv/m/x'), 'model.onnx: input "x" must be float32');
});
