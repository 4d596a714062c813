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
import { EXAMPLES, form, makeModelsDir, until } from './helpers.js';

const MAIN = path.join(ROOT, 'src/http/main.ts');
/** The compiled entry point (`npm ci` builds it through `prepare`; `npm run build` by hand). */
const BUILT = path.join(ROOT, 'dist/src/http/main.js');

interface Run { child: ChildProcess; lines: Record<string, unknown>[]; stdout: () => string; exited: Promise<number | null> }

function run(env: Record<string, string>, args: string[] = [], entry: string[] = ['--import', 'tsx', MAIN]): Run {
  const child = spawn(process.execPath, [...entry, ...args], {
    cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const lines: Record<string, unknown>[] = [];
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    const parts = out.split('\n');
    for (const l of parts.slice(lines.length, -1)) {
      try { lines.push(JSON.parse(l) as Record<string, unknown>); } catch { lines.push({ text: l }); }
    }
  });
  child.stderr!.on('data', (c: Buffer) => process.stderr.write(c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, lines, stdout: () => out, exited };
}

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
    // A grace period longer than this Score-CAM takes on a slow machine (the default, 7 s, may not be).
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
