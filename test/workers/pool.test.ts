import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, symlink, mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InferencePool, Renderer, THREAD_NAMES } from '../../src/workers/index.js';
import { FIXTURES, readF32 } from '../helpers/fixtures.js';

let dir: string;
let pool: InferencePool;
const input = () => readF32(path.join(FIXTURES, 'resnet'), 'input.bin');

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-pool-'));
  await symlink(path.join(FIXTURES, 'resnet'), path.join(dir, 'resnet'));
  await mkdir(path.join(dir, 'broken'));
  await writeFile(path.join(dir, 'broken', 'model.onnx'), 'not a model');
  pool = await InferencePool.start({ modelsDir: dir, workers: 1, intraOpThreads: 1, maxQueue: 1 });
});
after(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

test('models are discovered in sorted order and a broken one is reported with its reason', () => {
  const m = pool.models();
  assert.deepEqual(m.map((s) => s.id), ['broken', 'resnet']);
  assert.equal(m[0].ok, false);
  assert.match(!m[0].ok ? m[0].error : '', /not a valid ONNX model/);
  assert.equal(m[1].ok, true);
});

test('an explanation runs in a worker and returns maps and logits', async () => {
  const r = await pool.explain('resnet', { input: input(), method: 'gradcam', topk: 2 });
  assert.equal(r.explanations.length, 2);
  assert.equal(r.logits.length, 10);
  assert.ok(r.explanations[0].map.data.some((v) => v > 0));
});

test('a full queue is refused at once with the code overloaded', async () => {
  const running = pool.explain('resnet', { input: input(), method: 'scorecam' });
  const queued = pool.explain('resnet', { input: input(), method: 'scorecam' });
  await assert.rejects(pool.explain('resnet', { input: input(), method: 'gradcam' }), { code: 'overloaded' });
  await Promise.all([running, queued]);
});

test('a queued job whose caller aborted is dropped before it runs', async () => {
  const running = pool.explain('resnet', { input: input(), method: 'scorecam' });
  const ac = new AbortController();
  const queued = pool.explain('resnet', { input: input(), method: 'gradcam' }, { signal: ac.signal });
  assert.equal(pool.stats().queued, 1);
  ac.abort();
  await assert.rejects(queued, { code: 'cancelled' });
  assert.equal(pool.stats().queued, 0);
  await running;
});

test('errors from the worker keep their code (unknown layer → cannot-explain)', async () => {
  await assert.rejects(pool.explain('resnet', { input: input(), method: 'gradcam', layers: ['nope'] }), { name: 'CamserveError', code: 'cannot-explain' });
});

test('a job that cannot be sent to the worker fails alone: the process lives and the worker stays free', async () => {
  const hostile = { input: input(), method: 'gradcam', eigenSmooth: Object } as unknown as Parameters<InferencePool['explain']>[1];
  await assert.rejects(pool.explain('resnet', hostile), /could not be sent to its worker/);
  assert.equal(pool.stats().busy, 0);
  const r = await pool.explain('resnet', { input: input(), method: 'gradcam' });
  assert.equal(r.explanations.length, 1);
});

test('a running job whose caller leaves stops at its next batch and frees the worker', async () => {
  const ac = new AbortController();
  const job = pool.explain('resnet', { input: input(), method: 'scorecam', augSmooth: true }, { signal: ac.signal });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(pool.stats().busy, 1);
  const t = performance.now();
  ac.abort();
  await assert.rejects(job, { code: 'cancelled' });
  while (pool.stats().busy) await new Promise((r) => setTimeout(r, 5));
  assert.ok(performance.now() - t < 1000, `freed after ${(performance.now() - t).toFixed(0)} ms`);
  assert.equal(pool.stats().replaced, 0, 'stopped in time: no replacement');
});

test('a deadline (AbortSignal.timeout) is deadline-exceeded, queued or running', async () => {
  await assert.rejects(pool.explain('resnet', { input: input(), method: 'scorecam', augSmooth: true }, { signal: AbortSignal.timeout(50) }), { code: 'deadline-exceeded' });
  while (pool.stats().busy) await new Promise((r) => setTimeout(r, 5));
});

/** A models folder with the resnet and mobilenetv2 fixtures (Score-CAM with aug_smooth on mobilenetv2 runs long enough to be stopped). */
async function twoModels(prefix: string): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), prefix));
  await symlink(path.join(FIXTURES, 'resnet'), path.join(d, 'resnet'));
  await symlink(path.join(FIXTURES, 'mobilenetv2'), path.join(d, 'mobilenetv2'));
  return d;
}

/** Waits (at most a minute) until `cond` holds; a timeout names `what` and the pool's state. */
async function until(p: InferencePool, cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 60_000;
  while (!cond()) {
    assert.ok(Date.now() < end, `timed out waiting for ${what}: ${JSON.stringify(p.stats())}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const mobile = () => readF32(path.join(FIXTURES, 'mobilenetv2'), 'input.bin');

test('a worker that does not stop within the grace period, or outlives the watchdog, is replaced and the pool serves on', async () => {
  const dir2 = await twoModels('camserve-pool-kill-');
  const strict = await InferencePool.start({ modelsDir: dir2, workers: 1, intraOpThreads: 1, maxQueue: 2, cancelGraceMs: 1, watchdogMs: 400 });
  // A cancel is seen only between onnxruntime runs; with a 1 ms grace the worker is replaced unless the
  // cancel happened to arrive between two batches (timing decides which): either way the caller is
  // answered at once and the pool serves on. The watchdog below replaces a worker whatever it does.
  try {
    const ac = new AbortController();
    const job = strict.explain('mobilenetv2', { input: mobile(), method: 'scorecam', augSmooth: true }, { signal: ac.signal });
    await until(strict, () => strict.stats().busy === 1, 'the job to start');
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    await assert.rejects(job, { code: 'cancelled' });
    await until(strict, () => strict.stats().busy === 0 && strict.stats().workers === 1, 'the worker to be free or replaced');
    const replacedByCancel = strict.stats().replaced;
    assert.ok(replacedByCancel <= 1);
    const r = await strict.explain('resnet', { input: input(), method: 'gradcam' });
    assert.equal(r.explanations.length, 1);
    // The watchdog: a job running past 400 ms has its worker replaced and fails as internal.
    await assert.rejects(strict.explain('mobilenetv2', { input: mobile(), method: 'scorecam', augSmooth: true }), { code: 'internal' });
    assert.equal(strict.stats().replaced, replacedByCancel + 1);
    await until(strict, () => strict.stats().workers === 1, 'the second replacement');
    assert.equal((await strict.explain('resnet', { input: input(), method: 'gradcam' })).explanations.length, 1);
  } finally {
    await strict.close();
    await rm(dir2, { recursive: true, force: true });
  }
});

test('workers with their own thread counts: a lone job runs on the one with the most, a replacement keeps its count', async () => {
  const dir2 = await twoModels('camserve-pool-threads-');
  await assert.rejects(InferencePool.start({ modelsDir: dir2, workers: 3, intraOpThreads: [1, 2], maxQueue: 1 }), /2 thread counts for 3 workers/);
  await assert.rejects(InferencePool.start({ modelsDir: dir2, workers: 1, intraOpThreads: [0], maxQueue: 1 }), /positive integers/);
  // The one-thread worker is listed first; the two-thread one still takes jobs first.
  const mixed = await InferencePool.start({ modelsDir: dir2, workers: 2, intraOpThreads: [1, 2], maxQueue: 2, watchdogMs: 400 });
  try {
    assert.deepEqual(mixed.stats().threads, [2, 1]);
    // A lone job past the watchdog's 400 ms: its worker is taken out at once (and replaced), so the pool's
    // threads just after the failure say which worker ran it.
    await assert.rejects(mixed.explain('mobilenetv2', { input: mobile(), method: 'scorecam', augSmooth: true }), { code: 'internal' });
    assert.deepEqual(mixed.stats().threads, [1], 'the two-thread worker ran the lone job');
    await until(mixed, () => mixed.stats().workers === 2, 'the replacement');
    assert.deepEqual(mixed.stats().threads, [2, 1], 'the replacement has two threads again');
    // Both take jobs: with the first running, a second runs at once on the other worker.
    const long = mixed.explain('mobilenetv2', { input: mobile(), method: 'scorecam', augSmooth: true });
    await until(mixed, () => mixed.stats().busy === 1, 'the first job to start');
    const r = await mixed.explain('resnet', { input: input(), method: 'gradcam' });
    assert.equal(r.explanations.length, 1);
    assert.deepEqual(mixed.stats().threads.length, 2);
    await assert.rejects(long, { code: 'internal' });
  } finally {
    await mixed.close();
    await rm(dir2, { recursive: true, force: true });
  }
});

test('the service\'s threads carry their names (Linux): inference workers and the render thread', { skip: process.platform !== 'linux' }, async () => {
  const names = async () => Promise.all((await readdir('/proc/self/task')).map((t) => readFile(`/proc/self/task/${t}/comm`, 'utf8').then((c) => c.trim(), () => '')));
  assert.ok((await names()).includes(THREAD_NAMES.inference), 'an inference worker');
  const renderer = new Renderer();
  try {
    const image = { data: Buffer.alloc(4 * 4 * 3, 90), width: 4, height: 4, channels: 3 as const };
    await renderer.render({ kind: 'heatmap', image, maps: [{ width: 2, height: 2, data: new Float32Array([0, 1, 2, 3]) }], input: { width: 4, height: 4 }, resize: 'stretch', alpha: 0.5, colormap: 'jet' });
    assert.ok((await names()).includes(THREAD_NAMES.render), 'the render thread');
  } finally {
    await renderer.close();
  }
});
