// The pool's side of jobs and batches: progress messages from the worker after each batch of forward runs,
// several inputs as one queued job (counted as that many in the queue), and one client's share of the queue.
import assert from 'node:assert/strict';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { InferencePool } from '../../src/workers/index.js';
import { FIXTURES, readF32 } from '../helpers/fixtures.js';

let dir: string;
let pool: InferencePool;
const input = () => readF32(path.join(FIXTURES, 'resnet'), 'input.bin');

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-pool-batch-'));
  for (const m of ['resnet', 'mobilenetv2']) await symlink(path.join(FIXTURES, m), path.join(dir, m));
  pool = await InferencePool.start({ modelsDir: dir, workers: 1, intraOpThreads: 1, maxQueue: 3, maxQueuePerClient: 2 });
});
after(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

test('Score-CAM reports its progress after every batch, monotone, ending at the total', async () => {
  const seen: [number, number][] = [];
  const r = await pool.explain('resnet', { input: input(), method: 'scorecam' }, { onProgress: (d, t) => seen.push([d, t]) });
  assert.equal(r.explanations.length, 1);
  // The fixture's fixed batch of 1 is made symbolic at load: its 64 runs go in batches (of at most 16, fewer
  // on a slow machine), one message per batch.
  assert.ok(seen.length >= 4 && seen.length < 64, `${seen.length} messages`);
  assert.deepEqual(seen.at(-1), [64, 64]);
  seen.forEach(([d, t], i) => {
    assert.ok(d > (seen[i - 1]?.[0] ?? 0) && d - (seen[i - 1]?.[0] ?? 0) <= 16);
    assert.equal(t, 64);
  });
});

test('several inputs as one job: one result per input, equal to each alone', async () => {
  const xs = [input(), input().map((v) => v * 0.5), input().map((v) => -v)];
  const batch = await pool.explainBatch('resnet', xs.map((x) => ({ input: Float32Array.from(x), method: 'gradcam' as const })));
  assert.equal(batch.length, 3);
  for (const [i, x] of xs.entries()) {
    const one = await pool.explain('resnet', { input: Float32Array.from(x), method: 'gradcam' });
    assert.deepEqual([...batch[i].explanations[0].map.data], [...one.explanations[0].map.data]);
    assert.deepEqual([...batch[i].logits], [...one.logits]);
  }
});

test('a batch counts as its inputs in the queue, and one client may have only its share waiting', async () => {
  const ac = new AbortController();
  const opts = (client: string) => ({ signal: ac.signal, client });
  const req = () => ({ input: input(), method: 'gradcam' as const });
  const pending: Promise<unknown>[] = [];
  const keep = (p: Promise<unknown>) => { pending.push(p.catch(() => undefined)); };
  // Keeps the one worker busy for seconds.
  keep(pool.explain('mobilenetv2', { input: new Float32Array(3 * 64 * 64).fill(0.1), method: 'scorecam', augSmooth: true }, opts('x')));
  while (pool.stats().busy === 0) await new Promise((r) => setTimeout(r, 10));
  await assert.rejects(pool.explainBatch('resnet', [req(), req(), req()], opts('a')), { code: 'rate-limited' }, 'three over a share of two');
  keep(pool.explainBatch('resnet', [req(), req()], opts('a')));
  assert.equal(pool.stats().queued, 2, 'a batch of two counts two');
  await assert.rejects(pool.explain('resnet', req(), opts('a')), { code: 'rate-limited' });
  keep(pool.explain('resnet', req(), opts('b')));
  assert.equal(pool.stats().queued, 3);
  await assert.rejects(pool.explain('resnet', req(), opts('c')), { code: 'overloaded' }, 'the queue of three is full');
  await assert.rejects(pool.explainBatch('resnet', [req(), req()], opts('d')), { code: 'overloaded' });
  ac.abort();
  await Promise.all(pending);
  while (pool.stats().busy || pool.stats().queued) await new Promise((r) => setTimeout(r, 10));
});
