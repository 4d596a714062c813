// A reload replaces a model while requests planned against the old version are on their way: each job
// runs on the version it names (ModelInfo.version), the old version stays while a queued job names it, and
// is dropped after; a job naming a dropped version is `model-changed`, never another version's error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ModelInfo } from '../../src/engine/index.js';
import { InferencePool } from '../../src/workers/index.js';
import { FIXTURES } from '../helpers/fixtures.js';

function infoOf(pool: InferencePool, id: string): ModelInfo {
  const m = pool.models().find((s) => s.id === id);
  assert.ok(m?.ok, `model ${id} loaded`);
  return m.info;
}

const zeros = (info: ModelInfo) => new Float32Array(info.inputDims.reduce((a, b) => a * b, 1));

async function withPool(keepSupersededMs: number, f: (pool: InferencePool, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-versions-'));
  await cp(path.join(FIXTURES, 'resnet'), path.join(dir, 'm'), { recursive: true, dereference: true });
  const pool = await InferencePool.start({ modelsDir: dir, workers: 1, intraOpThreads: 1, maxQueue: 16, keepSupersededMs });
  try {
    await f(pool, dir);
  } finally {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Replaces m (a 64×64 ResNet) by the ordinal model (32×32 input, other layers). */
async function replace(dir: string): Promise<void> {
  await rm(path.join(dir, 'm'), { recursive: true });
  await cp(path.join(FIXTURES, 'ordinal'), path.join(dir, 'm'), { recursive: true, dereference: true });
}

test('a job runs on the version it was planned against, even after a reload replaced it', async () => {
  await withPool(60_000, async (pool, dir) => {
    const v1 = infoOf(pool, 'm');
    assert.match(v1.version ?? '', /^[0-9a-f]{16}$/);
    await replace(dir);
    const r = await pool.reload();
    assert.deepEqual(r.changes.replaced, ['m']);
    const v2 = infoOf(pool, 'm');
    assert.notEqual(v2.version, v1.version);
    assert.notEqual(v2.defaultLayer, v1.defaultLayer);
    assert.notDeepEqual(v2.inputDims, v1.inputDims);

    // Planned against v1 (its input size, its layer) before the swap: v1 answers, with v1's classes.
    const old = await pool.explain('m', { input: zeros(v1), method: 'gradcam', layers: [v1.defaultLayer] }, { version: v1.version });
    assert.equal(old.logits.length, v1.numClasses);
    assert.equal(old.explanations[0].map.data.length > 0, true);
    // The same plan without its version would run on v2, which has neither that layer nor that input size.
    await assert.rejects(pool.explain('m', { input: zeros(v1), method: 'scorecam', layers: [v1.defaultLayer] }), { name: 'CamserveError' });
    // v2's own plans run on v2; facts follow the version they name.
    const now = await pool.explain('m', { input: zeros(v2), method: 'scorecam' }, { version: v2.version });
    assert.equal(now.logits.length, v2.numClasses);
    assert.equal((await pool.facts('m', { version: v1.version })).defaultLayer, v1.defaultLayer);
    assert.equal((await pool.facts('m', { version: v2.version })).defaultLayer, v2.defaultLayer);
  });
});

test('a superseded version stays while a queued job names it, then goes: a job naming it is model-changed', async () => {
  await withPool(0, async (pool, dir) => {
    const v1 = infoOf(pool, 'm');
    await replace(dir);
    // Jobs planned against v1 fill the queue; the reload swaps while they wait (the worker loads the new
    // version between their runs), and with keepSupersededMs 0 only their naming v1 keeps it.
    const jobs = Array.from({ length: 12 }, () => pool.explain('m', { input: zeros(v1), method: 'scorecam', augSmooth: true }, { version: v1.version }));
    const reloaded = pool.reload().then((r) => ({ r, queued: pool.stats().queued }));
    const { r, queued } = await reloaded;
    assert.deepEqual(r.changes.replaced, ['m']);
    assert.ok(queued > 0, 'jobs naming v1 still waited when the reload swapped (the case under test)');
    for (const j of await Promise.all(jobs)) assert.equal(j.logits.length, v1.numClasses);
    // No job names v1 any more: it is dropped at the next sweep.
    const deadline = Date.now() + 5000;
    let last: unknown;
    while (Date.now() < deadline) {
      last = await pool.explain('m', { input: zeros(v1), method: 'scorecam' }, { version: v1.version }).then(() => 'served', (e: unknown) => e);
      if (last !== 'served') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal((last as { code?: string }).code, 'model-changed', String(last));
    const v2 = infoOf(pool, 'm');
    assert.equal((await pool.explain('m', { input: zeros(v2), method: 'scorecam' }, { version: v2.version })).logits.length, v2.numClasses);
  });
});
