// Access over real HTTP: API keys (every route but the probes and the page answers 401 without one and
// 2xx with one; reloads on an atomic rename and on a Kubernetes-style symlink swap; jobs visible to their
// key only; the key's name, never the key, in logs and metrics), rate limits per client (429 with
// Retry-After and RateLimit headers while another client is served; a batch counts per image; 429 on
// every route), a client's share of the queue, and CORS. Every answer is checked against openapi.yaml.
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { createApp } from '../../src/http/app.js';
import { startServer, type RunningServer } from '../../src/http/server.js';
import { Contract, client, type Answer } from './contract.js';
import { EXAMPLES, form, makeModelsDir, standInPool, startTestServer, testConfig, until } from './helpers.js';

const contract = new Contract();
const KEY_ALICE = 'alice-0123456789abcdef0123456789';
const KEY_BOB = 'bob-fedcba9876543210fedcba987654';
const KEY_CAROL = 'carol-00112233445566778899aabbcc';
let starRing: Buffer;

function problem(r: Answer, status: number, slug: string): { detail: string; limit?: string } {
  assert.equal(r.status, status, r.body.toString());
  const p = r.json<{ type: string; detail: string; limit?: string }>();
  assert.equal(p.type, `urn:camserve:problem:${slug}`);
  return p;
}

/** Every documented operation, with a request that succeeds (given what `ids` names). */
function recipes(ids: { job: string }): Record<string, () => { path: string; init: RequestInit }> {
  const img = () => form(starRing);
  const kserveBody = () => ({ body: JSON.stringify({ instances: [starRing.toString('base64')] }), headers: { 'content-type': 'application/json' } });
  return {
    'GET /': () => ({ path: '/', init: {} }),
    'POST /cam': () => ({ path: '/cam', init: { body: img() } }),
    'POST /jobs': () => ({ path: '/jobs', init: { body: img() } }),
    'GET /jobs/{id}': () => ({ path: `/jobs/${ids.job}`, init: {} }),
    'GET /jobs/{id}/events': () => ({ path: `/jobs/${ids.job}/events`, init: {} }),
    'GET /jobs/{id}/results/{n}.png': () => ({ path: `/jobs/${ids.job}/results/0.png`, init: {} }),
    'DELETE /jobs/{id}': () => ({ path: `/jobs/${ids.job}`, init: {} }),
    'GET /models': () => ({ path: '/models', init: {} }),
    'GET /models/{id}': () => ({ path: '/models/resnet', init: {} }),
    'GET /healthz': () => ({ path: '/healthz', init: {} }),
    'GET /readyz': () => ({ path: '/readyz', init: {} }),
    'GET /metrics': () => ({ path: '/metrics', init: {} }),
    'GET /openapi.yaml': () => ({ path: '/openapi.yaml', init: {} }),
    'POST /features': () => ({ path: '/features', init: { body: img() } }),
    'POST /histograms': () => ({ path: '/histograms', init: { body: img() } }),
    'GET /models/{id}/summary': () => ({ path: '/models/resnet/summary', init: {} }),
    'GET /models/{id}/graph': () => ({ path: '/models/resnet/graph', init: {} }),
    'POST /admin/reload': () => ({ path: '/admin/reload', init: {} }),
    'GET /v1/models': () => ({ path: '/v1/models', init: {} }),
    'GET /v1/models/{name}': () => ({ path: '/v1/models/resnet', init: {} }),
    'POST /v1/models/{name}:predict': () => ({ path: '/v1/models/resnet:predict', init: kserveBody() }),
    'POST /v1/models/{name}:explain': () => ({ path: '/v1/models/resnet:explain', init: kserveBody() }),
  };
}

function operations(): string[] {
  const out: string[] = [];
  for (const [p, ops] of Object.entries(contract.doc.paths)) for (const m of Object.keys(ops)) out.push(`${m.toUpperCase()} ${p}`);
  // DELETE last: it removes the job the others look at.
  return out.sort((a, b) => Number(a.startsWith('DELETE')) - Number(b.startsWith('DELETE')));
}

/** Operations the document declares open (security: []). */
function open(op: string): boolean {
  const [m, p] = op.split(' ');
  return (contract.doc.paths[p][m.toLowerCase()] as { security?: unknown[] }).security?.length === 0;
}

before(async () => {
  starRing = await readFile(path.join(EXAMPLES, 'star-ring.png'));
});

describe('API keys', () => {
  let server: RunningServer;
  let dir: string;
  let cleanup: () => Promise<void>;
  let logs = '';
  const api = client(contract, () => server.url);
  const as = (key: string) => ({ headers: { Authorization: `Bearer ${key}` } });

  before(async () => {
    const models = await makeModelsDir({ fixtures: ['resnet'] });
    cleanup = models.cleanup;
    // The layout of a mounted Kubernetes Secret: keys → ..data/keys, ..data → a timestamped folder.
    dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-keys-'));
    await mkdir(path.join(dir, 'ts1'));
    await writeFile(path.join(dir, 'ts1', 'keys'), `# test keys\nalice:${KEY_ALICE}\n${KEY_BOB}\nshort-key\n`);
    await symlink('ts1', path.join(dir, '..data'));
    await symlink('..data/keys', path.join(dir, 'keys'));
    const sink = new Writable({ write(chunk, _enc, cb) { logs += chunk.toString(); cb(); } });
    server = await startServer(testConfig(models.dir, {
      API_KEYS_FILE: path.join(dir, 'keys'), API_KEYS_POLL_MS: '200', DEFAULT_MODEL: 'resnet', CORS_ORIGINS: 'https://app.example',
    }), { logger: pino({ level: 'info' }, sink) });
  });
  after(async () => {
    await server?.close();
    await cleanup?.();
    await rm(dir, { recursive: true, force: true });
  });

  test('every route but the probes and the page answers 401 without a key, or with a wrong one; 2xx with one', async () => {
    const ids = { job: '' };
    const job = await api('POST', '/jobs', { body: form(starRing), ...as(KEY_ALICE) });
    assert.equal(job.status, 202);
    ids.job = job.json<{ id: string }>().id;
    await until(async () => (await api('GET', `/jobs/${ids.job}`, as(KEY_ALICE))).json<{ state: string }>().state === 'done', 10_000, 'the job');
    const table = recipes(ids);
    for (const op of operations()) {
      const [m] = op.split(' ');
      assert.ok(table[op], `no request for ${op}: add one to recipes()`);
      const { path: p, init } = table[op]();
      const bare = await api(m, p, init);
      if (open(op)) {
        assert.equal(bare.status, 200, `${op} is open`);
        continue;
      }
      problem(bare, 401, 'unauthorized');
      assert.equal(bare.header('www-authenticate'), 'Bearer realm="camserve"', op);
      const next = table[op]().init;
      const wrong = await api(m, p, { ...next, headers: { ...(next.headers as Record<string, string> | undefined), Authorization: 'Bearer not-a-key-of-ours-at-all' } });
      problem(wrong, 401, 'unauthorized');
      assert.match(wrong.header('www-authenticate') ?? '', /error="invalid_token"/);
      const again = table[op]().init;
      const ok = await api(m, p, { ...again, headers: { ...(again.headers as Record<string, string> | undefined), ...as(KEY_ALICE).headers } });
      assert.ok(ok.status >= 200 && ok.status < 300, `${op} with a key: ${ok.status} ${ok.body.toString().slice(0, 200)}`);
    }
    // The page's files, and X-API-Key as well as Bearer.
    assert.equal((await api('GET', '/app.js')).status, 200);
    assert.equal((await api('GET', '/style.css')).status, 200);
    assert.equal((await api('GET', '/models', { headers: { 'X-API-Key': KEY_BOB } })).status, 200);
  });

  test('a job is visible only to the key that made it', async () => {
    const r = await api('POST', '/jobs', { body: form(starRing), ...as(KEY_ALICE) });
    const id = r.json<{ id: string }>().id;
    assert.equal((await api('GET', `/jobs/${id}`, as(KEY_ALICE))).status, 200);
    problem(await api('GET', `/jobs/${id}`, as(KEY_BOB)), 404, 'not-found');
    problem(await api('GET', `/jobs/${id}/events`, as(KEY_BOB)), 404, 'not-found');
    problem(await api('DELETE', `/jobs/${id}`, as(KEY_BOB)), 404, 'not-found');
    // The same Idempotency-Key under two API keys names two jobs.
    const a = await api('POST', '/jobs', { body: form(starRing), headers: { Authorization: `Bearer ${KEY_ALICE}`, 'Idempotency-Key': 'k1' } });
    const b = await api('POST', '/jobs', { body: form(starRing), headers: { Authorization: `Bearer ${KEY_BOB}`, 'Idempotency-Key': 'k1' } });
    assert.notEqual(a.json<{ id: string }>().id, b.json<{ id: string }>().id);
  });

  test('the key\'s name, never the key, is in the logs and the metrics', async () => {
    await api('GET', '/models', as(KEY_ALICE));
    await until(() => logs.includes('"key":"alice"'), 2000, 'a log line naming alice');
    assert.ok(!logs.includes(KEY_ALICE) && !logs.includes(KEY_BOB), 'no key in the logs');
    assert.match(logs, /line 4: key shorter than 16 characters; ignored/);
    const m = (await api('GET', '/metrics', as(KEY_ALICE))).body.toString();
    assert.match(m, /camserve_key_requests_total\{key="alice",status="200"\} [1-9]/);
    assert.match(m, /camserve_key_requests_total\{key="key-[0-9a-f]{8}",status="200"\} [1-9]/, 'an unnamed key by its digest prefix');
    assert.match(m, /camserve_key_requests_total\{key="",status="401"\} [1-9]/);
    assert.ok(!m.includes(KEY_ALICE) && !m.includes(KEY_BOB));
  });

  test('a removed key stops working after a reload, without a restart (symlink swap, then atomic rename)', async () => {
    assert.equal((await api('GET', '/models', as(KEY_BOB))).status, 200);
    // Kubernetes: a new folder, then ..data swapped to it in one rename.
    await mkdir(path.join(dir, 'ts2'));
    await writeFile(path.join(dir, 'ts2', 'keys'), `alice:${KEY_ALICE}\n`);
    await symlink('ts2', path.join(dir, '..data_tmp'));
    await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    await until(async () => (await api('GET', '/models', as(KEY_BOB))).status === 401, 3000, 'bob to be refused');
    assert.equal((await api('GET', '/models', as(KEY_ALICE))).status, 200);
    // An editor or a deploy script: the new file written aside, then renamed over the old one.
    await writeFile(path.join(dir, 'keys.new'), `alice:${KEY_ALICE}\ncarol:${KEY_CAROL}\n`);
    await rename(path.join(dir, 'keys.new'), path.join(dir, 'keys'));
    await until(async () => (await api('GET', '/models', as(KEY_CAROL))).status === 200, 3000, 'carol to be let in');
    problem(await api('GET', '/models', as(KEY_BOB)), 401, 'unauthorized');
  });

  test('CORS: a preflight from an allowed origin is answered with the headers, from another without', async () => {
    const pre = (origin: string) => fetch(`${server.url}/cam`, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, idempotency-key' },
    });
    const ok = await pre('https://app.example');
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.match(ok.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    assert.match(ok.headers.get('access-control-allow-headers') ?? '', /Idempotency-Key/);
    assert.match(ok.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match(ok.headers.get('vary') ?? '', /Origin/);
    const other = await pre('https://evil.example');
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    assert.equal(other.headers.get('access-control-allow-headers'), null);
    // An actual request from the allowed origin may read the explanation's headers.
    const r = await fetch(`${server.url}/cam`, { method: 'POST', body: form(starRing), headers: { Origin: 'https://app.example', Authorization: `Bearer ${KEY_ALICE}` } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example');
    const exposed = r.headers.get('access-control-expose-headers') ?? '';
    for (const h of ['X-Camserve-Class-Index', 'X-Camserve-Class-Label', 'X-Camserve-Class-Score', 'Server-Timing', 'RateLimit']) assert.match(exposed, new RegExp(h));
    const evil = await fetch(`${server.url}/models`, { headers: { Origin: 'https://evil.example', Authorization: `Bearer ${KEY_ALICE}` } });
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
  });
});

test('the flags open /metrics and KServe\'s model metadata without a key; nothing else', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-keys-flags-'));
  await writeFile(path.join(dir, 'keys'), `${KEY_ALICE}\n`);
  const app = createApp(standInPool({}), testConfig('/nonexistent', { API_KEYS_FILE: path.join(dir, 'keys'), METRICS_PUBLIC: 'true', KSERVE_METADATA_PUBLIC: 'true' }));
  const s = http.createServer(app);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  try {
    await app.camserve.ready;
    assert.equal((await fetch(`${url}/metrics`)).status, 200);
    assert.equal((await fetch(`${url}/v1/models/resnet`)).status, 404, 'past the key check (no such route in this build)');
    assert.equal((await fetch(`${url}/v1/models/resnet/infer`, { method: 'POST' })).status, 401, 'inference is not open');
    assert.equal((await fetch(`${url}/models`)).status, 401);
  } finally {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
    await app.camserve.close();
    await rm(dir, { recursive: true, force: true });
  }
});

describe('rate limits and queue shares', () => {
  let server: RunningServer;
  let cleanup: () => Promise<void>;
  const api = client(contract, () => server.url);
  const from = (ip: string, init: RequestInit = {}) => ({ ...init, headers: { ...(init.headers as Record<string, string> ?? {}), 'X-Forwarded-For': ip } });

  before(async () => {
    const models = await makeModelsDir({ fixtures: ['resnet', 'mobilenetv2'] });
    cleanup = models.cleanup;
    server = await startTestServer(models.dir, {
      DEFAULT_MODEL: 'resnet', TRUST_PROXY: 'loopback', RATE_LIMIT: '3', RATE_LIMIT_LONG: '2', RATE_LIMIT_WINDOW_S: '60',
      MAX_QUEUE: '4', MAX_QUEUE_PER_CLIENT: '1', WORKERS: '1',
    });
  });
  after(async () => {
    await server?.close();
    await cleanup?.();
  });

  test('a client over its limit gets 429 with Retry-After and RateLimit fields while another is served', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await api('GET', '/models', from('10.1.0.1'));
      assert.equal(r.status, 200);
      assert.match(r.header('ratelimit') ?? '', new RegExp(`^"general"; r=${2 - i}; t=\\d+$`));
      assert.match(r.header('ratelimit-policy') ?? '', /^"general"; q=3; w=60; pk=:[A-Za-z0-9+/=]+:$/);
    }
    const over = await api('GET', '/models', from('10.1.0.1'));
    const p = problem(over, 429, 'rate-limited');
    assert.equal(p.limit, 'general');
    const retry = Number(over.header('retry-after'));
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    assert.equal((await api('GET', '/models', from('10.1.0.2'))).status, 200, 'another client is served');
    assert.equal((await api('GET', '/healthz', from('10.1.0.1'))).status, 200, 'the probes are not limited');
  });

  test('long methods have their own limit, and an image of a batch counts as a request', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await api('POST', '/cam', from('10.2.0.1', { body: form(starRing, { method: 'scorecam' }) }))).status, 200);
    const p = problem(await api('POST', '/cam', from('10.2.0.1', { body: form(starRing, { method: 'scorecam' }) })), 429, 'rate-limited');
    assert.equal(p.limit, 'long');
    // A batch of three gradcam images is three requests: the client's whole general quota.
    const batch = form(starRing, { output: 'json' });
    for (let i = 0; i < 2; i++) batch.append('image', new Blob([new Uint8Array(starRing)]), `${i}.png`);
    assert.equal((await api('POST', '/cam', from('10.2.0.2', { body: batch }))).status, 200);
    problem(await api('GET', '/models', from('10.2.0.2')), 429, 'rate-limited');
    // A batch of three Score-CAM images is over the long limit of two.
    const long = form(starRing, { output: 'json', method: 'scorecam' });
    for (let i = 0; i < 2; i++) long.append('image', new Blob([new Uint8Array(starRing)]), `${i}.png`);
    assert.equal(problem(await api('POST', '/cam', from('10.2.0.3', { body: long })), 429, 'rate-limited').limit, 'long');
    // Jobs are long work.
    for (let i = 0; i < 2; i++) assert.equal((await api('POST', '/jobs', from('10.2.0.4', { body: form(starRing) }))).status, 202);
    assert.equal(problem(await api('POST', '/jobs', from('10.2.0.4', { body: form(starRing) })), 429, 'rate-limited').limit, 'long');
  });

  test('every limited route answers 429 once its client is over the limit', async () => {
    let n = 0;
    for (const op of operations()) {
      const [m, p] = op.split(' ');
      if (p === '/healthz' || p === '/readyz') continue;
      const ip = `10.3.0.${++n}`;
      const target = p.replace('{id}', m === 'GET' && p.startsWith('/models') ? 'resnet' : '00000000-0000-0000-0000-000000000000').replace('{n}', '0');
      for (let i = 0; i < 3; i++) await api('GET', '/models', from(ip));
      const r = await api(m, target, from(ip, m === 'POST' ? { body: form(starRing) } : {}));
      problem(r, 429, 'rate-limited');
    }
  });

  test('one client cannot fill the queue: past its share it gets 429 while another client still queues', async () => {
    const gone = new AbortController();
    const slow = (ip: string, fields: Record<string, string>) => fetch(`${server.url}/cam`, {
      method: 'POST', body: form(starRing, fields), signal: gone.signal, headers: { 'X-Forwarded-For': ip },
    }).catch(() => undefined);
    // 10.4.0.1 keeps the one worker busy (Score-CAM with augmentation on MobileNetV2: seconds), then queues its share (1 of 4).
    const running = slow('10.4.0.1', { model: 'mobilenetv2', method: 'scorecam', aug_smooth: 'true' });
    await until(() => server.pool.stats().busy === 1, 5000, 'the worker to start');
    const queued = [slow('10.4.0.1', {})];
    await until(() => server.pool.stats().queued === 1, 5000, 'one waiting');
    const third = await api('POST', '/cam', from('10.4.0.1', { body: form(starRing) }));
    assert.equal(problem(third, 429, 'rate-limited').limit, 'queue-share');
    const other = slow('10.4.0.2', {});
    await until(() => server.pool.stats().queued === 2, 5000, 'the other client to queue');
    gone.abort();
    await Promise.all([running, ...queued, other]);
    await until(() => server.pool.stats().busy === 0 && server.pool.stats().queued === 0, 5000, 'the pool to be idle');
  });
});

test('every 401 and 429 that openapi.yaml lists was produced', () => {
  assert.deepEqual(contract.missing().filter((k) => / (401|429)$/.test(k)), []);
});
