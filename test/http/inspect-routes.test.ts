// The inspection routes over HTTP, on a real inference pool (one worker, the ResNet fixture and a broken
// model), every answer checked against openapi.yaml.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { XMLValidator } from 'fast-xml-parser';
import sharp from 'sharp';
import { createApp, type CamserveApp, type ServicePool } from '../../src/http/app.js';
import { INSPECT_ROUTES } from '../../src/http/routes/inspect.js';
import { InferencePool } from '../../src/workers/index.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { Contract, OPENAPI_FILE, client, type Answer } from './contract.js';
import { testConfig } from './helpers.js';

let dir: string;
let pool: InferencePool;
let server: ReturnType<CamserveApp['listen']>;
let app: CamserveApp;
let base: string;
let factsCalls = 0;
let png: Buffer;
let call: (method: string, p: string, init?: RequestInit) => Promise<Answer>;
let contract: Contract;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-inspect-'));
  await symlink(path.join(FIXTURES, 'resnet'), path.join(dir, 'resnet'));
  await mkdir(path.join(dir, 'broken'));
  await writeFile(path.join(dir, 'broken', 'model.onnx'), 'not a model');
  contract = new Contract(OPENAPI_FILE);
  const config = testConfig(dir, { MAX_UPLOAD_BYTES: String(256 * 1024), MAX_PIXELS: '1000000', MAX_IMAGE_SIDE: '512', DEFAULT_MODEL: 'resnet' });
  pool = await InferencePool.start({ modelsDir: dir, workers: 1, intraOpThreads: 1, maxQueue: config.maxQueue });
  const counting: ServicePool = {
    models: () => pool.models(),
    stats: () => pool.stats(),
    explain: (m, r, o) => pool.explain(m, r, o),
    tensors: (m, r, o) => pool.tensors(m, r, o),
    facts: (m, o) => { factsCalls++; return pool.facts(m, o); },
  };
  app = createApp(counting, config);
  await app.camserve.ready;
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  call = client(contract, () => base);
  const pixels = Buffer.from(Array.from({ length: 80 * 60 * 3 }, (_, i) => (i * 37) % 256));
  png = await sharp(pixels, { raw: { width: 80, height: 60, channels: 3 } }).png().toBuffer();
});

after(async () => {
  await new Promise((r) => server.close(r));
  await app.camserve.close();
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

function form(fields: Record<string, string> = {}, image: Buffer | null = png): FormData {
  const f = new FormData();
  if (image) f.append('image', new Blob([new Uint8Array(image)], { type: 'image/png' }), 'x.png');
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
}

const post = (p: string, body: FormData | Buffer = form(), headers: Record<string, string> = {}) => call('POST', p, { body: body instanceof FormData ? body : new Uint8Array(body), headers });

async function problem(a: Answer | Promise<Answer>, status: number, slug: string): Promise<Record<string, unknown>> {
  const r = await a;
  assert.equal(r.status, status, r.body.toString('utf8').slice(0, 300));
  const body = r.json();
  assert.equal(body.type, `urn:camserve:problem:${slug}`);
  return body;
}

test('POST /features: a PNG of make_grid × scale for the default layer ([1, 64, 2, 2])', async () => {
  const r = await post('/features?channels=top:5&nrow=2&scale=4&normalize=true');
  assert.equal(r.status, 200);
  assert.equal(r.header('content-type'), 'image/png');
  assert.equal(r.header('x-camserve-model'), 'resnet');
  const meta = await sharp(r.body).metadata();
  // 5 maps of 2×2 enlarged 4× (8×8), nrow 2: xmaps 2, ymaps 3 → (2·(8+2)+2) × (3·(8+2)+2)
  assert.deepEqual([meta.width, meta.height], [22, 32]);
});

test('POST /features JSON (Accept): layout, channels chosen by mean, statistics; a raw image body works too', async () => {
  const r = await post('/features?channels=top:3&colormap=viridis', png, { 'content-type': 'image/png', accept: 'application/json' });
  assert.equal(r.status, 200);
  const body = r.json<{
    model: string; width: number; height: number; prediction: { index: number };
    layers: { layer: string; dims: number[]; channels: number[]; grid: Record<string, number>; stats: { channel: number; mean: number; zeros: number }[] }[];
  }>();
  assert.equal(body.model, 'resnet');
  const l = body.layers[0];
  assert.deepEqual(l.dims, [1, 64, 2, 2]);
  assert.equal(l.channels.length, 3);
  assert.deepEqual(l.stats.map((s) => s.channel), l.channels);
  for (let i = 1; i < 3; i++) assert.ok(l.stats[i - 1].mean >= l.stats[i].mean);
  assert.equal(l.grid.scale, 32); // 2×2 maps: ⌈64 / 2⌉
  assert.deepEqual([l.grid.tile_width, l.grid.width, l.grid.height], [64, 3 * (64 + 2) + 2, 64 + 4]);
  assert.deepEqual([body.width, body.height], [l.grid.width, l.grid.height]);
  assert.ok(Number.isInteger(body.prediction.index));
});

test('POST /features with two layers stacks their grids', async () => {
  const layers = ['/layer4/layer4.0/relu_1/Relu_output_0', '/layer2/layer2.0/relu_1/Relu_output_0'];
  const r = await post('/features', form({ layer: layers.join(','), output: 'json', scale: '2' }));
  assert.equal(r.status, 200);
  const body = r.json<{ height: number; layers: { layer: string; grid: { height: number; offset_y: number } }[] }>();
  assert.deepEqual(body.layers.map((l) => l.layer), layers);
  assert.equal(body.height, body.layers[0].grid.height + 8 + body.layers[1].grid.height);
  assert.equal(body.layers[1].grid.offset_y, body.layers[0].grid.height + 8);
});

test('POST /features refuses bad parameters, models, layers and uploads with problem+json', async () => {
  let b = await problem(post('/features?nrows=2'), 400, 'bad-parameter');
  assert.equal(b.parameter, 'nrows');
  b = await problem(post('/features?range=0,1'), 400, 'bad-parameter');
  assert.equal(b.parameter, 'range');
  b = await problem(post('/features?channels=64'), 400, 'bad-parameter');
  assert.equal(b.parameter, 'channels');
  b = await problem(post('/features?layer=nope'), 400, 'bad-parameter');
  assert.equal(b.parameter, 'layer');
  b = await problem(post('/features?model=nope'), 404, 'unknown-model');
  assert.deepEqual(b.allowed, ['broken', 'resnet']);
  await problem(post('/features?model=broken'), 422, 'model-unavailable');
  await problem(post('/features', form({}, null)), 400, 'missing-image');
  await problem(post('/features', form({}, Buffer.from('not an image'))), 415, 'unsupported-media-type');
  await problem(post('/features', Buffer.from('x=1'), { 'content-type': 'text/plain' }), 415, 'unsupported-media-type');
  await problem(post('/features', Buffer.alloc(300 * 1024), { 'content-type': 'image/png' }), 413, 'payload-too-large');
  const r = await call('PUT', '/features');
  await problem(r, 405, 'method-not-allowed');
  assert.equal(r.header('allow'), 'POST, OPTIONS');
});

test('inherited property names are not booleans on the inspection routes (400, then still served)', async () => {
  for (const value of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    for (const [route, name] of [['/features', 'normalize'], ['/features', 'scale_each'], ['/histograms', 'gradients']]) {
      const b = await problem(post(`${route}?${name}=${value}`), 400, 'bad-parameter');
      assert.equal(b.parameter, name);
      assert.equal(b.received, value);
    }
  }
  assert.equal((await post('/features')).status, 200);
});

test('POST /histograms: activation and gradient histograms that count every element', async () => {
  const r = await post('/histograms', form({ bins: '12' }));
  assert.equal(r.status, 200);
  type H = { counts: number[]; count: number; edges: number[]; below: number; above: number; non_finite: number };
  type Body = { prediction: { index: number }; targets: { index: number }[]; layers: { dims: number[]; activations: H; gradients: { target: number; histogram: H }[] }[] };
  const body = r.json<Body>();
  assert.deepEqual(body.targets.map((t) => t.index), [body.prediction.index]); // default: the top class
  const l = body.layers[0];
  const n = l.dims.reduce((a, b) => a * b, 1);
  const sum = (h: H) => h.counts.reduce((a, b) => a + b, 0) + h.below + h.above + h.non_finite;
  assert.equal(l.activations.counts.length, 12);
  assert.equal(l.activations.edges.length, 13);
  assert.equal(sum(l.activations), n);
  assert.equal(l.gradients.length, 1);
  assert.equal(sum(l.gradients[0].histogram), n);

  const two = (await post('/histograms?target=3,7')).json<Body>();
  assert.deepEqual(two.layers[0].gradients.map((g) => g.target), [3, 7]);
  const none = (await post('/histograms?gradients=false')).json<Body>();
  assert.deepEqual(none.layers[0].gradients, []);

  const plot = await post('/histograms?output=png&target=3');
  assert.equal(plot.header('content-type'), 'image/png');
  const meta = await sharp(plot.body).metadata();
  assert.deepEqual([meta.width, meta.height], [2 * 420, 260]);
});

test('POST /histograms refuses what it cannot do with problem+json', async () => {
  const bad = await problem(post('/histograms?bins=0'), 400, 'bad-parameter');
  assert.equal(bad.parameter, 'bins');
  await problem(post('/histograms?target=10'), 400, 'bad-parameter');
  await problem(post('/histograms?gradients=false&target=1'), 400, 'bad-parameter');
  await problem(post('/histograms?model=nope'), 404, 'unknown-model');
  await problem(post('/histograms?model=broken'), 422, 'model-unavailable');
  await problem(post('/histograms', form({}, Buffer.from('plain text, no image'))), 415, 'unsupported-media-type');
  await problem(post('/histograms', Buffer.alloc(300 * 1024), { 'content-type': 'image/png' }), 413, 'payload-too-large');
  await problem(call('GET', '/histograms'), 405, 'method-not-allowed');
});

test('GET /models/{id}/summary: JSON by default, the table with Accept: text/plain; facts asked of the pool once', async () => {
  const before = factsCalls;
  const r = await call('GET', '/models/resnet/summary');
  assert.equal(r.status, 200);
  const body = r.json<{ totals: { parameters: number; trainable_estimate: number }; rows: { layer: string }[] }>();
  assert.equal(body.totals.parameters, 78602);
  assert.equal(body.totals.trainable_estimate, 78962);
  assert.ok(body.rows.some((row) => row.layer === 'layer4.0.conv1'));
  const text = await call('GET', '/models/resnet/summary', { headers: { accept: 'text/plain' } });
  assert.match(text.header('content-type') ?? '', /^text\/plain/);
  assert.match(text.body.toString('utf8'), /Total params \(ONNX initializers\): 78,602/);
  assert.equal(factsCalls - before, before === 0 ? 1 : 0);
  await problem(call('GET', '/models/nope/summary'), 404, 'unknown-model');
  await problem(call('GET', '/models/broken/summary'), 422, 'model-unavailable');
  await problem(call('GET', '/models/resnet/summary?depth=1'), 400, 'bad-parameter');
  await problem(call('POST', '/models/resnet/summary'), 405, 'method-not-allowed');
});

test('GET /models/{id}/graph: SVG by default, DOT with Accept: text/vnd.graphviz, collapse and depth', async () => {
  const svg = await call('GET', '/models/resnet/graph');
  assert.equal(svg.status, 200);
  assert.match(svg.header('content-type') ?? '', /^image\/svg\+xml/);
  const text = svg.body.toString('utf8');
  assert.equal(XMLValidator.validate(text), true);
  assert.match(text, /class="node op path"/);
  const dot = await call('GET', '/models/resnet/graph?collapse=scope&depth=1', { headers: { accept: 'text/vnd.graphviz' } });
  assert.match(dot.header('content-type') ?? '', /^text\/vnd\.graphviz/);
  assert.match(dot.body.toString('utf8'), /"scope:layer4"/);
  const b = await problem(call('GET', '/models/resnet/graph?collapse=all'), 400, 'bad-parameter');
  assert.deepEqual(b.allowed, ['none', 'scope']);
  await problem(call('GET', '/models/nope/graph'), 404, 'unknown-model');
  await problem(call('GET', '/models/broken/graph'), 422, 'model-unavailable');
  await problem(call('DELETE', '/models/resnet/graph'), 405, 'method-not-allowed');
  assert.equal(factsCalls, 1, 'graph facts are cached per model');
});

test('while the models load every route answers 503 not-ready with Retry-After', async () => {
  const loading = createApp(new Promise<ServicePool>(() => undefined), testConfig(dir));
  const s = loading.listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const callLoading = client(contract, () => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);
  try {
    for (const [method, p] of [['POST', '/features'], ['POST', '/histograms'], ['GET', '/models/resnet/summary'], ['GET', '/models/resnet/graph']]) {
      const r = await callLoading(method, p, method === 'POST' ? { body: form() } : {});
      await problem(r, 503, 'not-ready');
      assert.equal(r.header('retry-after'), '2');
    }
  } finally {
    await new Promise((r) => s.close(r));
    await loading.camserve.close();
  }
});

test('every status the fragment lists for these routes was produced and matched its schema', () => {
  const ours = Object.keys(INSPECT_ROUTES);
  // 401 and 429 are produced on every route by test/http/access.test.ts.
  const missing = contract.missing().filter((k) => ours.includes(k.split(' ')[1]) && !/ (401|429)$/.test(k));
  assert.deepEqual(missing, []);
});
