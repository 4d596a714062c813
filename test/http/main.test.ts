// The entry point as a process: configuration errors, --help, and graceful shutdown on SIGTERM with a
// request in flight (it is answered, then the process closes the pool and exits 0).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import { ENVIRONMENT } from '../../src/http/config.js';
import { ROOT } from './contract.js';
import { EXAMPLES, form, makeModelsDir, run, until } from './helpers.js';

/** The compiled entry point (`npm ci` builds it through `prepare`; `npm run build` by hand). */
const BUILT = path.join(ROOT, 'dist/src/http/main.js');

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

test('--help prints every environment variable', async () => {
  const r = run({}, ['--help']);
  assert.equal(await r.exited, 0);
  for (const v of ENVIRONMENT) assert.match(r.stdout(), new RegExp(`\\b${v.name}\\b`));
});

test('a bad variable stops the start with exit code 2 and a log naming it', async () => {
  const r = run({ MAX_QUEUE: 'lots' });
  assert.equal(await r.exited, 2);
  assert.match(r.stdout(), /MAX_QUEUE must be an integer/);
});

test('a missing models folder stops the start with exit code 1', async () => {
  const r = run({ MODELS_DIR: '/nonexistent/models', PORT: '0', HOST: '127.0.0.1' });
  assert.equal(await r.exited, 1);
  assert.match(r.stdout(), /cannot start/);
});

test('SIGTERM: the request in flight is answered, the pool closes, the process exits 0', async () => {
  const models = await makeModelsDir({ fixtures: ['mobilenetv2'] });
  try {
    const r = run({ MODELS_DIR: models.dir, PORT: '0', HOST: '127.0.0.1', WORKERS: '1', LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT_MS: '60000' });
    children.push(r.child);
    await until(() => r.lines.some((l) => l.msg === 'ready'), 60_000, 'the server to be ready');
    const url = r.lines.find((l) => l.msg === 'ready')!.url as string;
    const image = await readFile(path.join(EXAMPLES, 'star-ring.png'));
    const inflight = fetch(`${url}/cam`, { method: 'POST', body: form(image, { method: 'scorecam', aug_smooth: 'true', output: 'json' }) });
    await until(async () => /camserve_workers_busy 1/.test(await (await fetch(`${url}/metrics`)).text()), 10_000, 'the explanation to start');
    r.child.kill('SIGTERM');
    const res = await inflight;
    assert.equal(res.status, 200);
    const body = await res.json() as { method: string };
    assert.equal(body.method, 'scorecam');
    assert.equal(await r.exited, 0);
    const msgs = r.lines.map((l) => l.msg);
    assert.ok(msgs.includes('signal received') && msgs.includes('stopped'), msgs.join(' | '));
    assert.ok(msgs.indexOf('stopped') > msgs.lastIndexOf('request completed'), 'stopped after the answer');
    await assert.rejects(fetch(`${url}/healthz`));
  } finally {
    await models.cleanup();
  }
});

test('SIGTERM with a short grace period: the running job is stopped and its request answered 503 problem+json, never reset', async () => {
  const models = await makeModelsDir({ fixtures: ['mobilenetv2'] });
  try {
    const r = run({ MODELS_DIR: models.dir, PORT: '0', HOST: '127.0.0.1', WORKERS: '1', LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT_MS: '300' });
    children.push(r.child);
    await until(() => r.lines.some((l) => l.msg === 'ready'), 60_000, 'the server to be ready');
    const url = r.lines.find((l) => l.msg === 'ready')!.url as string;
    const image = await readFile(path.join(EXAMPLES, 'star-ring.png'));
    const inflight = fetch(`${url}/cam`, { method: 'POST', body: form(image, { method: 'scorecam', aug_smooth: 'true', output: 'json' }) });
    await until(async () => /camserve_workers_busy 1/.test(await (await fetch(`${url}/metrics`)).text()), 10_000, 'the explanation to start');
    const t = performance.now();
    r.child.kill('SIGTERM');
    const res = await inflight;
    assert.equal(res.status, 503);
    assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.ok(res.headers.get('retry-after'));
    assert.equal((await res.json() as { type: string }).type, 'urn:camserve:problem:shutting-down');
    assert.equal(await r.exited, 0);
    assert.ok(performance.now() - t < 300 + 2500, `exited ${(performance.now() - t).toFixed(0)} ms after SIGTERM`);
  } finally {
    await models.cleanup();
  }
});

test('npm start passes SIGTERM on: node ends within the grace period with its in-flight request answered', { skip: !existsSync(BUILT) && 'dist/ is not built (npm run build)' }, async () => {
  const models = await makeModelsDir({ fixtures: ['mobilenetv2'] });
  try {
    const npm = spawn('npm', ['start', '--silent'], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: false,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, MODELS_DIR: models.dir, PORT: '0', HOST: '127.0.0.1', WORKERS: '1', LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT_MS: '60000' },
    });
    children.push(npm);
    let out = '';
    npm.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
    const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
    await until(() => /"msg":"ready"/.test(out), 60_000, 'the server to be ready');
    const ready = out.split('\n').map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return {}; } }).find((l) => l.msg === 'ready')!;
    const url = ready.url as string;
    const nodePid = ready.pid as number;
    const image = await readFile(path.join(EXAMPLES, 'star-ring.png'));
    const inflight = fetch(`${url}/cam`, { method: 'POST', body: form(image, { method: 'scorecam', output: 'json' }) });
    await until(async () => /camserve_workers_busy 1/.test(await (await fetch(`${url}/metrics`)).text()), 10_000, 'the explanation to start');
    npm.kill('SIGTERM');
    const res = await inflight;
    assert.equal(res.status, 200, 'the in-flight request is answered');
    await exited;
    await until(() => { try { process.kill(nodePid, 0); return false; } catch { return true; } }, 10_000, 'node to end');
    assert.match(out, /"msg":"stopped"/, 'node shut down gracefully');
  } finally {
    await models.cleanup();
  }
});

test('the compiled service (npm start) serves an explanation with its .js workers', { skip: !existsSync(BUILT) && 'dist/ is not built (npm run build)' }, async () => {
  const models = await makeModelsDir({ fixtures: ['resnet'] });
  try {
    const r = run({ MODELS_DIR: models.dir, PORT: '0', HOST: '127.0.0.1', WORKERS: '1', LOG_LEVEL: 'info' }, [], [BUILT]);
    children.push(r.child);
    await until(() => r.lines.some((l) => l.msg === 'ready') || r.child.exitCode !== null, 60_000, 'the server to be ready');
    const url = r.lines.find((l) => l.msg === 'ready')!.url as string;
    const image = await readFile(path.join(EXAMPLES, 'star-ring.png'));
    const res = await fetch(`${url}/cam`, { method: 'POST', body: form(image) });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/png');
    assert.equal((await fetch(`${url}/openapi.yaml`)).status, 200, 'finds openapi.yaml from dist/');
    assert.match(await (await fetch(`${url}/`)).text(), /<title>camserve/, 'finds public/ from dist/');
    const summary = await fetch(`${url}/models/resnet/summary`, { headers: { Accept: 'text/plain' } });
    assert.equal(summary.status, 200, 'the inspection routes are mounted');
    assert.match(await summary.text(), /Model: resnet/);
    const graph = await fetch(`${url}/models/resnet/graph`);
    assert.equal(graph.headers.get('content-type')?.split(';')[0], 'image/svg+xml');
    r.child.kill('SIGINT');
    assert.equal(await r.exited, 0);
  } finally {
    await models.cleanup();
  }
});
