// The effective CPU count (src/http/cpu.ts) on fake cgroup trees: v2 cpu.max, v1 cfs quota/period under
// cpu/ and cpu,cpuacct/, no limit, missing and malformed files; and the defaults config.ts derives from it.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { detectCpus, effectiveCpus } from '../../src/http/cpu.js';
import { loadConfig } from '../../src/http/config.js';

const roots: string[] = [];
after(() => { for (const r of roots) rmSync(r, { recursive: true, force: true }); });

/** A fake /sys/fs/cgroup holding `files` (relative path → content). */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'camserve-cgroup-'));
  roots.push(root);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), text);
  }
  return root;
}

test('cgroup v2: "200000 100000" is 2 CPUs; a fraction rounds up; the host caps it', () => {
  assert.deepEqual(detectCpus(tree({ 'cpu.max': '200000 100000\n' }), 16),
    { count: 2, source: 'cgroup-v2', host: 16, quota: 2, file: path.join(roots.at(-1)!, 'cpu.max') });
  assert.equal(detectCpus(tree({ 'cpu.max': '150000 100000\n' }), 16).count, 2);
  assert.equal(detectCpus(tree({ 'cpu.max': '50000 100000' }), 16).count, 1, 'half a CPU is still one thread');
  const capped = detectCpus(tree({ 'cpu.max': '800000 100000' }), 4);
  assert.equal(capped.count, 4);
  assert.equal(capped.quota, 8);
});

test('cgroup v2: "max 100000" means no limit: the host count', () => {
  assert.deepEqual(detectCpus(tree({ 'cpu.max': 'max 100000\n' }), 6), { count: 6, source: 'host', host: 6 });
});

test('cgroup v1: cfs_quota_us / cfs_period_us under cpu/ or cpu,cpuacct/; -1 means no limit', () => {
  const v1 = detectCpus(tree({ 'cpu/cpu.cfs_quota_us': '300000\n', 'cpu/cpu.cfs_period_us': '100000\n' }), 8);
  assert.equal(v1.count, 3);
  assert.equal(v1.source, 'cgroup-v1');
  const joined = detectCpus(tree({ 'cpu,cpuacct/cpu.cfs_quota_us': '100000', 'cpu,cpuacct/cpu.cfs_period_us': '100000' }), 8);
  assert.deepEqual([joined.count, joined.source], [1, 'cgroup-v1']);
  assert.deepEqual(detectCpus(tree({ 'cpu/cpu.cfs_quota_us': '-1', 'cpu/cpu.cfs_period_us': '100000' }), 8),
    { count: 8, source: 'host', host: 8 });
  const odd = detectCpus(tree({ 'cpu/cpu.cfs_quota_us': '25000', 'cpu/cpu.cfs_period_us': '10000' }), 8);
  assert.deepEqual([odd.count, odd.quota], [3, 2.5]);
});

test('missing files, or a missing period: the host count', () => {
  assert.deepEqual(detectCpus(tree({}), 3), { count: 3, source: 'host', host: 3 });
  assert.deepEqual(detectCpus(path.join(os.tmpdir(), 'no-such-cgroup-root'), 3), { count: 3, source: 'host', host: 3 });
  assert.equal(detectCpus(tree({ 'cpu/cpu.cfs_quota_us': '100000' }), 3).source, 'host');
});

test('garbage is ignored, never a count of 0 or NaN', () => {
  for (const text of ['', 'garbage', '100000', '0 100000', '-5 100000', '1.5 100000', '100000 0', '100000 abc', '100000 100000 7', 'max']) {
    const c = detectCpus(tree({ 'cpu.max': text }), 5);
    if (text === 'max') assert.deepEqual(c, { count: 5, source: 'host', host: 5 }, 'bare "max": no limit');
    else if (text === '100000') assert.deepEqual([c.count, c.source], [1, 'cgroup-v2'], 'quota with the default period');
    else assert.deepEqual(c, { count: 5, source: 'host', host: 5 }, JSON.stringify(text));
  }
  for (const [q, p] of [['abc', '100000'], ['0', '100000'], ['100000', '0'], ['', ''], ['1e5', '1e5']]) {
    assert.deepEqual(detectCpus(tree({ 'cpu/cpu.cfs_quota_us': q, 'cpu/cpu.cfs_period_us': p }), 5), { count: 5, source: 'host', host: 5 }, `${q}/${p}`);
  }
  // a broken v2 file does not hide a valid v1 quota
  assert.equal(detectCpus(tree({ 'cpu.max': 'junk', 'cpu/cpu.cfs_quota_us': '200000', 'cpu/cpu.cfs_period_us': '100000' }), 5).count, 2);
  assert.equal(detectCpus(tree({}), 0).count, 1, 'at least one CPU');
});

test('this process: a count between 1 and the host parallelism, read once', () => {
  const c = effectiveCpus();
  assert.ok(c.count >= 1 && c.count <= os.availableParallelism());
  assert.equal(effectiveCpus(), c);
});

test('WORKERS and ORT_THREADS default from the effective CPU count; set values win', () => {
  const cpus = effectiveCpus().count;
  const c = loadConfig({});
  assert.equal(c.workers, Math.max(1, Math.floor(cpus / 2)));
  assert.deepEqual(c.ortThreads, Array(c.workers).fill(Math.max(1, Math.floor(cpus / c.workers))));
  const set = loadConfig({ WORKERS: '1', ORT_THREADS: '1' });
  assert.deepEqual([set.workers, set.ortThreads], [1, [1]]);
  assert.deepEqual(loadConfig({ WORKERS: '1' }).ortThreads, [cpus]);
  assert.deepEqual(loadConfig({ WORKERS: '3', ORT_THREADS: '1' }).ortThreads, [1, 1, 1], 'one count: every worker');
  assert.equal(loadConfig({ ORT_THREADS: '1' }).workers, Math.max(1, Math.floor(cpus / 2)), 'one count leaves WORKERS at its default');
});

test('ORT_THREADS as a count per worker: WORKERS follows the list; a list that disagrees with WORKERS or holds a bad count is named', () => {
  const mixed = loadConfig({ ORT_THREADS: '2,1' });
  assert.deepEqual([mixed.workers, mixed.ortThreads, mixed.jobConcurrency], [2, [2, 1], 2]);
  assert.deepEqual(loadConfig({ ORT_THREADS: ' 1 , 2 ', WORKERS: '2' }).ortThreads, [1, 2], 'spaces around counts');
  assert.throws(() => loadConfig({ ORT_THREADS: '2,1', WORKERS: '3' }), (e: Error) => e.name === 'ConfigError' && /ORT_THREADS lists 2 thread counts but WORKERS is 3/.test(e.message));
  const cores = os.availableParallelism();
  for (const bad of ['2,', ',1', '2,,1', '2;1', '0,1', '1,-1', '1.5,1', 'x', `1,${4 * cores + 1}`, Array(4 * cores + 1).fill('1').join(',')]) {
    assert.throws(() => loadConfig({ ORT_THREADS: bad }), (e: Error) => e.name === 'ConfigError' && /^ORT_THREADS must be/.test(e.message), bad);
  }
});
