// How many CPUs this process may really use: the host's available parallelism capped by the cgroup CPU
// quota (a Docker `--cpus` or Kubernetes CPU limit), which Node 20's os.availableParallelism() does not see.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface CpuInfo {
  /** CPUs to size threads by: min(host, ceil(quota / period)), at least 1 */
  count: number;
  /** where the count comes from: a cgroup v2 or v1 quota, or the host (no quota, or none readable) */
  source: 'cgroup-v2' | 'cgroup-v1' | 'host';
  /** os.availableParallelism() */
  host: number;
  /** the quota as a fraction of CPUs (e.g. 1.5), when one is set */
  quota?: number;
  /** the file the quota was read from */
  file?: string;
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

const POSITIVE = /^[1-9]\d*$/;

/** cgroup v2 `cpu.max`: "max 100000" (no limit) or "<quota> <period>", both in µs. */
function v2(root: string): { quota: number; file: string } | 'unlimited' | undefined {
  const file = path.join(root, 'cpu.max');
  const text = read(file);
  if (text === undefined) return undefined;
  const [quota, period = '100000', ...rest] = text.split(/\s+/);
  if (rest.length || !POSITIVE.test(period)) return undefined;
  if (quota === 'max') return 'unlimited';
  if (!POSITIVE.test(quota)) return undefined;
  return { quota: Number(quota) / Number(period), file };
}

/** cgroup v1 `cpu.cfs_quota_us` (-1: no limit) and `cpu.cfs_period_us`, under cpu/ or cpu,cpuacct/. */
function v1(root: string): { quota: number; file: string } | 'unlimited' | undefined {
  for (const dir of ['cpu', 'cpu,cpuacct', 'cpuacct,cpu']) {
    const file = path.join(root, dir, 'cpu.cfs_quota_us');
    const quota = read(file);
    const period = read(path.join(root, dir, 'cpu.cfs_period_us'));
    if (quota === undefined || period === undefined || !POSITIVE.test(period)) continue;
    if (quota === '-1') return 'unlimited';
    if (POSITIVE.test(quota)) return { quota: Number(quota) / Number(period), file };
  }
  return undefined;
}

/**
 * The effective CPU count under `root` (default /sys/fs/cgroup): cgroup v2 first, then v1. Missing,
 * unreadable or malformed files count as "no quota", so the answer is then the host's parallelism.
 */
export function detectCpus(root = '/sys/fs/cgroup', host = os.availableParallelism?.() ?? os.cpus().length): CpuInfo {
  const hostCount = Math.max(1, host);
  for (const [source, found] of [['cgroup-v2', v2(root)], ['cgroup-v1', v1(root)]] as const) {
    if (found === 'unlimited') return { count: hostCount, source: 'host', host: hostCount };
    if (found) {
      return { count: Math.max(1, Math.min(hostCount, Math.ceil(found.quota))), source, host: hostCount, quota: found.quota, file: found.file };
    }
  }
  return { count: hostCount, source: 'host', host: hostCount };
}

let cached: CpuInfo | undefined;

/** detectCpus() of this process, read once. */
export function effectiveCpus(): CpuInfo {
  cached ??= detectCpus();
  return cached;
}
