// KServe's V1 protocol over real HTTP, on a single-model folder as KServe mounts it (MODELS_DIR holds
// model.onnx; MODEL_NAME is its id): the model list and readiness, :predict equal to POST /cam's
// predictions, :explain equal to POST /cam's map for the same image, per-instance and shared parameters,
// and the errors — every answer checked against openapi.yaml.
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { AddressInfo } from 'node:net';
import { createApp, type ServicePool } from '../../src/http/app.js';
import type { RunningServer } from '../../src/http/server.js';
import { Contract, client, type Answer } from './contract.js';
import { EXAMPLES, FIXTURES, LABELS, form, makeModelsDir, startTestServer, testConfig } from './helpers.js';

const contract = new Contract();
let server: RunningServer;
let dir: string;
let png: Buffer;
const api = client(contract, () => server.url);

before(async () => {
  // One model's folder, as KServe's storage initializer leaves it at /mnt/models.
  dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-kserve-'));
  await copyFile(path.join(FIXTURES, 'resnet', 'model.onnx'), path.join(dir, 'model.onnx'));
  await writeFile(path.join(dir, 'labels.txt'), LABELS.join('\n'));
  server = await startTestServer(dir, { MODEL_NAME: 'shapes-net' });
  png = await readFile(path.join(EXAMPLES, 'star-ring.png'));
});
after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const b64 = () => png.toString('base64');
const postJson = (p: string, body: unknown) => api('POST', p, { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
function problem(r: Answer, status: number, type: string) {
  assert.equal(r.status, status, r.body.toString().slice(0, 300));
  assert.equal(r.json<{ type: string }>().type, `urn:camserve:problem:${type}`);
}

test('a folder that is one model serves it under MODEL_NAME: the list, readiness, and POST /cam by that name', async () => {
  assert.deepEqual((await api('GET', '/v1/models')).json(), { models: ['shapes-net'] });
  assert.deepEqual((await api('GET', '/v1/models/shapes-net')).json(), { name: 'shapes-net', ready: true });
  problem(await api('GET', '/v1/models/nope'), 404, 'unknown-model');
  const r = await api('POST', '/cam', { body: form(png, { output: 'json' }) });
  assert.equal(r.json<{ model: string }>().model, 'shapes-net');
});

test(':predict gives each instance its top-5 classes, as POST /cam predicts them', async () => {
  const cam = (await api('POST', '/cam', { body: form(png, { output: 'json' }) })).json<{ predictions: unknown[] }>();
  const r = await postJson('/v1/models/shapes-net:predict', { instances: [{ image: { b64: b64() } }, { b64: b64() }, b64()] });
  assert.equal(r.status, 200, r.body.toString());
  const { predictions } = r.json<{ predictions: unknown[][] }>();
  assert.equal(predictions.length, 3);
  for (const p of predictions) assert.deepEqual(p, cam.predictions);
});

test(':explain gives POST /cam\'s answer for the same image and parameters (the same map), per instance', async () => {
  const cam = (await api('POST', '/cam', { body: form(png, { output: 'json', method: 'gradcam++', target: 'star' }) })).json<{ explanations: { target: unknown; cam: unknown }[] }>();
  const r = await postJson('/v1/models/shapes-net:explain', {
    instances: [{ image: { b64: b64() }, target: 'star' }, { image: { b64: b64() }, target: 3, include_png: true }],
    parameters: { method: 'gradcam++' },
  });
  assert.equal(r.status, 200, r.body.toString());
  const { explanations } = r.json<{ explanations: { method: string; explanations: { target: unknown; cam: unknown; png?: string }[] }[] }>();
  assert.equal(explanations.length, 2);
  for (const e of explanations) {
    assert.equal(e.method, 'gradcam++');
    assert.deepEqual(e.explanations[0].cam, cam.explanations[0].cam, 'the same map as POST /cam');
    assert.deepEqual(e.explanations[0].target, cam.explanations[0].target);
  }
  assert.ok(explanations[1].explanations[0].png?.startsWith('iVBOR'), 'include_png: a base64 PNG');
});

test(':explain takes max_side and png_compression for its PNGs; format other than png is 400', async () => {
  const r = await postJson('/v1/models/shapes-net:explain', { instances: [{ image: { b64: b64() }, include_png: true, max_side: 48, png_compression: 9 }] });
  assert.equal(r.status, 200, r.body.toString());
  const e = r.json<{ explanations: { image: unknown; explanations: { png?: string }[] }[] }>().explanations[0];
  const pic = Buffer.from(e.explanations[0].png!, 'base64');
  assert.equal(pic.readUInt32BE(16), 48);
  assert.equal(pic.readUInt32BE(20), 48);
  assert.deepEqual(e.image, { width: 128, height: 128 });
  problem(await postJson('/v1/models/shapes-net:explain', { instances: [{ image: { b64: b64() } }], parameters: { format: 'webp' } }), 400, 'bad-parameter');
  problem(await postJson('/v1/models/shapes-net:explain', { instances: [{ image: { b64: b64() }, max_side: 'abc' }] }), 400, 'bad-parameter');
});

test('bad requests are problem+json: no instances, a bad image, an unknown parameter, the model given, a non-JSON body', async () => {
  problem(await postJson('/v1/models/shapes-net:explain', { instances: [] }), 400, 'bad-parameter');
  problem(await postJson('/v1/models/shapes-net:explain', { inputs: [] }), 400, 'bad-parameter');
  problem(await postJson('/v1/models/shapes-net:predict', { instances: [{ image: { b64: '!!!' } }] }), 400, 'bad-parameter');
  problem(await postJson('/v1/models/shapes-net:predict', { instances: [{ image: { b64: Buffer.from('not an image').toString('base64') } }] }), 415, 'unsupported-media-type');
  problem(await postJson('/v1/models/shapes-net:explain', { instances: [{ b64: b64(), methd: 'gradcam' }] }), 400, 'bad-parameter');
  problem(await postJson('/v1/models/shapes-net:explain', { instances: [{ b64: b64(), model: 'other' }] }), 400, 'bad-parameter');
  for (const verb of ['predict', 'explain']) {
    problem(await postJson(`/v1/models/nope:${verb}`, { instances: [b64()] }), 404, 'unknown-model');
    problem(await api('POST', `/v1/models/shapes-net:${verb}`, { body: new Uint8Array(png), headers: { 'content-type': 'image/png' } }), 415, 'unsupported-media-type');
    const big = await api('POST', `/v1/models/shapes-net:${verb}`, { body: JSON.stringify({ instances: [Buffer.alloc(21 * 2 ** 20).toString('base64')] }), headers: { 'content-type': 'application/json' } });
    problem(big, 413, 'payload-too-large');
  }
  problem(await postJson('/v1/models/shapes-net:explain', { instances: [{ b64: b64(), method: 'cam', layer: 'nope' }] }), 400, 'bad-parameter');
  const tooMany = { instances: Array.from({ length: 17 }, () => b64()) };
  problem(await postJson('/v1/models/shapes-net:predict', tooMany), 400, 'bad-parameter');
});

test('a model that failed to load is 422; while models load every KServe route is 503 with Retry-After', async () => {
  const models = await makeModelsDir({ fixtures: [], broken: true });
  const other = await startTestServer(models.dir, { DEFAULT_MODEL: 'broken' }).catch(() => undefined);
  const loading = createApp(new Promise<ServicePool>(() => undefined), testConfig('/nonexistent'));
  const s = loading.listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  try {
    if (other) {
      const call = client(contract, () => other.url);
      for (const verb of ['predict', 'explain']) {
        problem(await call('POST', `/v1/models/broken:${verb}`, { body: JSON.stringify({ instances: [b64()] }), headers: { 'content-type': 'application/json' } }), 422, 'model-unavailable');
      }
      assert.deepEqual((await call('GET', '/v1/models/broken')).json(), { name: 'broken', ready: false });
    }
    const call = client(contract, () => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);
    for (const [m, p, body] of [['GET', '/v1/models'], ['GET', '/v1/models/x'], ['POST', '/v1/models/x:predict', '{}'], ['POST', '/v1/models/x:explain', '{}']] as const) {
      const r = await call(m, p, body ? { body, headers: { 'content-type': 'application/json' } } : {});
      problem(r, 503, 'not-ready');
      assert.ok(r.header('retry-after'));
    }
  } finally {
    await other?.close();
    await new Promise((r) => s.close(r));
    await loading.camserve.close();
    await models.cleanup();
  }
});

test('other methods answer 405 with Allow', async () => {
  const r1 = await api('GET', '/v1/models/shapes-net:predict');
  problem(r1, 405, 'method-not-allowed');
  assert.equal(r1.header('allow'), 'POST, OPTIONS');
  const r2 = await api('POST', '/v1/models/shapes-net', { body: '{}', headers: { 'content-type': 'application/json' } });
  problem(r2, 405, 'method-not-allowed');
  assert.equal(r2.header('allow'), 'GET, HEAD, OPTIONS');
  problem(await api('DELETE', '/v1/models'), 405, 'method-not-allowed');
  problem(await api('PUT', '/v1/models/shapes-net:explain'), 405, 'method-not-allowed');
});

test('every status openapi.yaml lists for the KServe routes was produced (401 and 429: test/http/access.test.ts)', async () => {
  const mine = contract.missing().filter((k) => k.includes(' /v1/')).filter((k) => !/ (401|429)$/.test(k));
  assert.deepEqual(mine, []);
});
