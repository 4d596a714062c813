// Jobs and rate limits in Redis, across two server processes (a real redis-server on a free loopback
// port, started here): a Score-CAM job posted to one is watched and read from the other (progress per
// batch, in order, done = total, results equal to POST /cam's), resumed with Last-Event-ID on either,
// cancelled through the other (its worker freed), its Idempotency-Key known to both; rate-limit counters
// are shared; and a replica that stops hands its running job back, which the other one finishes.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { redisMissing, startRedis, type TestRedis } from '../helpers/redis.js';
import { ROOT } from './contract.js';
import { DYNBATCH, EXAMPLES, form, makeModelsDir, readEvents, until } from './helpers.js';

const skip = redisMissing;
const MAIN = path.join(ROOT, 'src/http/main.ts');

interface Replica { child: ChildProcess; url: string; lines: Record<string, unknown>[]; exited: Promise<number | null> }
interface Job { id: string; state: string; progress: { done: number; total: number }; results?: { png: string; result: { explanations: unknown; predictions: unknown } }[]; links: { events: string } }

async function replica(env: Record<string, string>): Promise<Replica> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', WORKERS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  child.stdout!.on('data', (c: Buffer) => {
    buf += c.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    for (const l of parts) {
      try { lines.push(JSON.parse(l) as Record<string, unknown>); } catch { lines.push({ text: l }); }
    }
  });
  child.stderr!.on('data', (c: Buffer) => process.stderr.write(c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await until(() => lines.some((l) => l.msg === 'ready') || child.exitCode !== null, 60_000, 'a replica to be ready');
  const ready = lines.find((l) => l.msg === 'ready');
  if (!ready) throw new Error(`the replica did not start: ${JSON.stringify(lines.slice(-5))}`);
  return { child, url: ready.url as string, lines, exited };
}

let redis: TestRedis;
let cleanup: () => Promise<void>;
let a: Replica;
let b: Replica;
let starRing: Buffer;
let env: Record<string, string>;

before(async () => {
  if (skip) return;
  redis = await startRedis();
  const models = await makeModelsDir({ fixtures: ['mobilenetv2'] });
  await symlink(DYNBATCH, path.join(models.dir, 'resnet-dynbatch'));
  cleanup = models.cleanup;
  starRing = await readFile(path.join(EXAMPLES, 'star-ring.png'));
  env = {
    MODELS_DIR: models.dir, REDIS_URL: redis.url, DEFAULT_MODEL: 'resnet-dynbatch', BATCH_SIZE: '8', JOB_CONCURRENCY: '1',
    TRUST_PROXY: 'loopback', RATE_LIMIT_LONG: '3', ORT_THREADS: '1', SHUTDOWN_TIMEOUT_MS: '5000',
  };
  [a, b] = await Promise.all([replica(env), replica(env)]);
});
after(async () => {
  for (const r of [a, b]) if (r && r.child.exitCode === null) r.child.kill('SIGKILL');
  await redis?.stop();
  await cleanup?.();
});

const postJob = (url: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(`${url}/jobs`, { method: 'POST', body: form(starRing, fields), headers });

describe('jobs in Redis, two replicas', { skip }, () => {
  let job: Job;

  test('a Score-CAM job posted to one replica is followed and read on the other', async () => {
    const r = await postJob(a.url, { method: 'scorecam' }, { 'X-Forwarded-For': '10.0.0.1' });
    assert.equal(r.status, 202);
    job = await r.json() as Job;
    const s = await readEvents(b.url + job.links.events);
    assert.equal(s.res.status, 200);
    assert.equal(s.res.headers.get('x-accel-buffering'), 'no');
    const ids = s.events.map((e) => e.id);
    const order = (id: string) => id.split('-').map(Number);
    for (let i = 1; i < ids.length; i++) {
      const [pm, ps] = order(ids[i - 1]);
      const [m, q] = order(ids[i]);
      assert.ok(m > pm || (m === pm && q > ps), `ids in order: ${ids[i - 1]} < ${ids[i]}`);
    }
    assert.equal(s.events[0].event, 'queued');
    assert.equal(s.events.at(-1)!.event, 'done');
    const progress = s.events.filter((e) => e.event === 'progress').map((e) => e.data.progress);
    assert.ok(progress.length >= 8, `${progress.length} progress events for 8 batches`);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i].done >= progress[i - 1].done, 'monotone');
    const last = s.events.at(-1)!.data;
    assert.equal(last.progress.done, 64);
    assert.equal(last.progress.total, 64);

    const onB = await (await fetch(`${b.url}/jobs/${job.id}`)).json() as Job;
    const onA = await (await fetch(`${a.url}/jobs/${job.id}`)).json() as Job;
    assert.deepEqual(onB, onA);
    const cam = await (await fetch(`${b.url}/cam`, { method: 'POST', body: form(starRing, { method: 'scorecam', output: 'json' }), headers: { 'X-Forwarded-For': '10.0.0.2' } })).json() as { explanations: unknown; predictions: unknown };
    assert.deepEqual(onB.results![0].result.explanations, cam.explanations);
    assert.deepEqual(onB.results![0].result.predictions, cam.predictions);
    const png = await fetch(b.url + onB.results![0].png);
    assert.equal(png.status, 200);
    assert.equal(png.headers.get('content-type'), 'image/png');

    // Either replica resumes the stream after a given event.
    const again = await readEvents(a.url + job.links.events, { 'Last-Event-ID': ids[2] });
    assert.deepEqual(again.events.map((e) => e.id), ids.slice(3));
  });

  test('an Idempotency-Key is known to both replicas', async () => {
    const h = { 'Idempotency-Key': 'redis-key-1', 'X-Forwarded-For': '10.0.1.1' };
    const one = await (await postJob(a.url, { method: 'gradcam' }, h)).json() as Job;
    const two = await postJob(b.url, { method: 'gradcam' }, h);
    assert.equal(two.status, 202);
    assert.equal(two.headers.get('idempotent-replayed'), 'true');
    assert.equal((await two.json() as Job).id, one.id);
    assert.equal((await postJob(b.url, { method: 'layercam' }, h)).status, 422);
  });

  test('DELETE through the other replica stops a running job and frees its worker', async () => {
    const r = await postJob(a.url, { model: 'mobilenetv2', method: 'scorecam', aug_smooth: 'true' }, { 'X-Forwarded-For': '10.0.2.1' });
    const id = (await r.json() as Job).id;
    const get = async (url: string) => await (await fetch(`${url}/jobs/${id}`)).json() as Job;
    await until(async () => (await get(a.url)).progress.done > 0, 30_000, 'progress');
    const runner = (await Promise.all([a, b].map(async (x) => ((await (await fetch(`${x.url}/readyz`)).json()) as { busy: number }).busy))).findIndex((n) => n === 1);
    assert.ok(runner >= 0, 'one replica is running it');
    const other = [a, b][1 - runner];
    const d = await fetch(`${other.url}/jobs/${id}`, { method: 'DELETE' });
    assert.equal(d.status, 202);
    const t = performance.now();
    await until(async () => (await get(other.url)).state === 'cancelled', 5000, 'cancelled');
    await until(async () => ((await (await fetch(`${[a, b][runner].url}/readyz`)).json()) as { busy: number }).busy === 0, 2000, 'the worker to be free');
    const end = await get(a.url);
    assert.ok(end.progress.done < end.progress.total, `stopped early (${end.progress.done}/${end.progress.total})`);
    assert.ok(performance.now() - t < 2000);
  });

  test('rate-limit counters are shared by the replicas', async () => {
    const h = { 'X-Forwarded-For': '10.0.3.1' };
    const scorecam = (url: string) => fetch(`${url}/cam`, { method: 'POST', body: form(starRing, { method: 'scorecam' }), headers: h });
    assert.equal((await scorecam(a.url)).status, 200);
    assert.equal((await scorecam(b.url)).status, 200);
    assert.equal((await scorecam(a.url)).status, 200);
    const over = await scorecam(b.url);
    assert.equal(over.status, 429);
    assert.match(over.headers.get('ratelimit') ?? '', /^"long"; r=0/);
  });

  test('a replica that stops hands its running job back; the other finishes it', async () => {
    // Two long jobs: one replica takes each (JOB_CONCURRENCY=1).
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await postJob(a.url, { model: 'mobilenetv2', method: 'scorecam' }, { 'X-Forwarded-For': `10.0.4.${i}` });
      ids.push((await r.json() as Job).id);
    }
    const state = async (id: string) => (await (await fetch(`${b.url}/jobs/${id}`)).json() as Job).state;
    await until(async () => (await state(ids[0])) === 'running' && (await state(ids[1])) === 'running', 30_000, 'both running');
    a.child.kill('SIGTERM');
    assert.equal(await a.exited, 0);
    for (const id of ids) {
      await until(async () => (await state(id)) === 'done', 60_000, `job ${id} done`);
    }
    // The job A had: queued again when A stopped, then run by B from the start.
    const streams = await Promise.all(ids.map((id) => readEvents(`${b.url}/jobs/${id}/events`)));
    const handed = streams.filter((s) => s.events.filter((e) => e.event === 'running').length === 2);
    assert.equal(handed.length, 1, 'one job was run twice');
    const names = handed[0].events.map((e) => e.event).filter((e) => e !== 'progress');
    assert.deepEqual(names, ['queued', 'running', 'queued', 'running', 'done']);
    assert.equal(handed[0].events.at(-1)!.data.progress.done, handed[0].events.at(-1)!.data.progress.total);
  });

  test('with Redis gone, the job routes answer 503 (never hang) and POST /cam still answers', async () => {
    await redis.stop();
    const t = performance.now();
    const r = await fetch(`${b.url}/jobs/${job.id}`);
    assert.equal(r.status, 503);
    assert.equal((await r.json() as { type: string }).type, 'urn:camserve:problem:not-ready');
    assert.ok(r.headers.get('retry-after'));
    assert.ok(performance.now() - t < 10_000, `answered in ${(performance.now() - t).toFixed(0)} ms`);
    assert.equal((await postJob(b.url, { method: 'gradcam' })).status, 503);
    const cam = await fetch(`${b.url}/cam`, { method: 'POST', body: form(starRing, { method: 'gradcam' }) });
    assert.equal(cam.status, 200);
    assert.equal((await fetch(`${b.url}/healthz`)).status, 200);
  });
});
