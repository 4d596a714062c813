// Reload without restart: POST /admin/reload (and MODELS_POLL_MS) over real HTTP with two workers — added,
// removed and replaced models; a replaced model serves throughout; a broken new version keeps the previous
// one; GET /models follows at once; the contract's statuses for /admin/* all produced.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { createApp } from '../../src/http/app.js';
import { ADMIN_ROUTES } from '../../src/http/routes/admin.js';
import type { RunningServer } from '../../src/http/server.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { Contract, client, type Answer } from './contract.js';
import { form, picture, startTestServer, testConfig, until } from './helpers.js';

const contract = new Contract();
let dir: string;
let server: RunningServer;
const api = client(contract, () => server.url);

interface Listed { default: string | null; models: { id: string; status: string; version?: string; input?: { dims: number[] }; gradients?: string; warning?: string }[] }
interface Reloaded extends Listed { added: string[]; removed: string[]; replaced: string[]; unchanged: string[]; kept_previous: string[] }

const add = (name: string, fixture: string) => cp(path.join(FIXTURES, fixture), path.join(dir, name), { recursive: true, dereference: true });

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-reload-'));
  await add('a', 'ordinal');
  await add('b', 'ordinal');
  server = await startTestServer(dir, { WORKERS: '2', ORT_THREADS: '1' });
});
after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

async function image(): Promise<Buffer> {
  return (await picture(48, 40)).png().toBuffer();
}

function ids(j: Listed): string[] {
  return j.models.map((m) => m.id);
}

test('POST /admin/reload: added, removed and replaced models; GET /models follows; a replaced model serves throughout', async () => {
  assert.deepEqual(ids((await api('GET', '/models')).json<Listed>()), ['a', 'b']);
  // (Before: `a` is the ordinal model, whose CumSum head has no gradient rule: gradient methods are 422
  // naming op and node, gradient-free ones serve.)
  const refused = await api('POST', '/cam?model=a&method=gradcam', { body: form(await image()) });
  assert.equal(refused.status, 422);
  assert.deepEqual([refused.json<{ op: string }>().op, refused.json<{ node: string }>().node], ['CumSum', '/CumSum']);
  assert.equal((await api('POST', '/cam?model=a&method=scorecam&output=json', { body: form(await image()) })).status, 200);
  const before = (await api('GET', '/models/a')).json<{ version: string }>().version;
  assert.match(before, /^[0-9a-f]{16}$/);
  const answered = await api('POST', '/cam?model=a&method=scorecam', { body: form(await image()) });
  assert.equal(answered.header('x-camserve-model-version'), before, 'an image answer names the version that made it');
  await rm(path.join(dir, 'b'), { recursive: true });
  await add('c', 'lenet64');
  // a: new files (the float16 resnet: another input size, explained through its fp32 twin).
  await cp(path.join(FIXTURES, 'resnet-fp16', 'model.onnx'), path.join(dir, 'a', 'model.onnx'));
  await rm(path.join(dir, 'a', 'model.json'));
  const png = await image();
  // Explanations of `a` sent while the reload runs are answered by the old or the new version, never refused.
  const reload = api('POST', '/admin/reload');
  const during: Promise<Answer>[] = [];
  for (let i = 0; i < 4; i++) {
    during.push(api('POST', '/cam?model=a&output=json&method=eigencam', { body: form(png) }));
    await new Promise((r) => setTimeout(r, 30));
  }
  const r = await reload;
  assert.equal(r.status, 200, r.body.toString());
  const j = r.json<Reloaded>();
  assert.deepEqual([j.added, j.removed, j.replaced, j.unchanged, j.kept_previous], [['c'], ['b'], ['a'], [], []]);
  assert.deepEqual(ids(j), ['a', 'c']);
  for (const d of await Promise.all(during)) assert.equal(d.status, 200, d.body.toString());

  const listed = (await api('GET', '/models')).json<Listed>();
  assert.deepEqual(ids(listed), ['a', 'c']);
  const a = (await api('GET', '/models/a')).json<{ input: { dims: number[] }; gradients: string; predictions_from: string; version: string }>();
  assert.deepEqual(a.input.dims, [1, 3, 64, 64]);
  assert.match(a.version, /^[0-9a-f]{16}$/);
  assert.notEqual(a.version, before, 'new files, a new version');
  assert.equal(listed.models.find((m) => m.id === 'a')?.version, a.version);
  assert.equal(a.gradients, 'fp32 twin');
  const c = (await api('GET', '/models/c')).json<{ batch: { mode: string; size: number } }>();
  assert.deepEqual([c.batch.mode, c.batch.size], ['symbolic', 64]);
  assert.equal((await api('GET', '/models/b')).status, 404);
  assert.equal((await api('POST', '/cam?model=b', { body: form(png) })).status, 404);
  const both = await Promise.all(['a', 'c'].map((m) => api('POST', `/cam?model=${m}&output=json`, { body: form(png) })));
  for (const x of both) assert.equal(x.status, 200, x.body.toString());
  assert.equal(both[0].json<{ gradients: string }>().gradients, 'fp32 twin');
});

test('a changed model whose new version fails to load keeps serving its previous version, with a warning', async () => {
  await writeFile(path.join(dir, 'c', 'model.onnx'), 'not a model any more');
  const j = (await api('POST', '/admin/reload')).json<Reloaded>();
  assert.deepEqual(j.kept_previous, ['c']);
  assert.deepEqual(j.unchanged, ['a']);
  const c = j.models.find((m) => m.id === 'c')!;
  assert.equal(c.status, 'ready');
  assert.match(c.warning ?? '', /its files changed but the new version failed to load .*not a valid ONNX model.*the previous version still serves/);
  assert.equal((await api('POST', '/cam?model=c&output=json', { body: form(await image()) })).status, 200);
  // Nothing changed since: a second reload leaves everything as it is.
  const again = (await api('POST', '/admin/reload')).json<Reloaded>();
  assert.deepEqual(again.unchanged, ['a', 'c']);
});

test('GET /admin/reload is 405; a server still loading its models answers 503', async () => {
  const r = await api('GET', '/admin/reload');
  assert.equal(r.status, 405);
  assert.match(r.header('allow') ?? '', /POST/);
  const loading = createApp(new Promise<never>(() => undefined), testConfig(dir), { logger: pino({ level: 'silent' }) });
  const s = loading.listen(0, '127.0.0.1');
  await new Promise((res) => s.once('listening', res));
  try {
    const port = (s.address() as { port: number }).port;
    const call = client(contract, () => `http://127.0.0.1:${port}`);
    const refused = await call('POST', '/admin/reload');
    assert.equal(refused.status, 503);
    assert.equal(refused.json<{ type: string }>().type, 'urn:camserve:problem:not-ready');
  } finally {
    await new Promise((res) => s.close(res));
    await loading.camserve.close();
  }
});

test('MODELS_POLL_MS: a model folder dropped in is served without a request to reload', async () => {
  const polled = await mkdtemp(path.join(os.tmpdir(), 'camserve-poll-'));
  await cp(path.join(FIXTURES, 'ordinal'), path.join(polled, 'first'), { recursive: true });
  const s = await startTestServer(polled, { MODELS_POLL_MS: '150', WORKERS: '1', ORT_THREADS: '1' });
  try {
    await cp(path.join(FIXTURES, 'ordinal'), path.join(polled, 'second'), { recursive: true });
    // (A poll may catch the copy half-written and fail to load it; the next one, seeing the files change
    // again, loads it whole.)
    await until(async () => ((await (await fetch(`${s.url}/models`)).json()) as Listed).models.some((m) => m.id === 'second' && m.status === 'ready'), 20_000, 'the polled reload');
    const r = await fetch(`${s.url}/cam?model=second&output=json&method=eigencam`, { method: 'POST', body: form(await image()) });
    assert.equal(r.status, 200);
  } finally {
    await s.close();
    await rm(polled, { recursive: true, force: true });
  }
});

test('every status openapi.yaml lists for /admin/* was produced and matched its schema', () => {
  // 401 and 429 are produced on every route, this one included, by test/http/access.test.ts.
  const ours = Object.keys(ADMIN_ROUTES);
  assert.deepEqual(contract.missing().filter((k) => ours.includes(k.split(' ')[1]) && !/ (401|429)$/.test(k)), []);
});
