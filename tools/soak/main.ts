// `npm run soak -- [--minutes 5] [--concurrency 4] [--abort 0.1] [--seed N]`: the soak test. Starts the
// built server (dist/) on the fixture models and the default model, sends a seeded mix of methods and
// routes for the given time with random client aborts, samples the server's RSS, and prints: requests by
// status, 5xx (must be 0), aborts, latency, and RSS after warm-up (must stay within 15 % of its level then).
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, startBuiltServer } from '../dev/server.js';
import { prng } from '../fuzz/requests.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '4' }, abort: { type: 'string', default: '0.1' },
    seed: { type: 'string', default: '1' }, warmup: { type: 'string', default: '60' }, help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write('usage: npm run soak -- [--minutes 5] [--concurrency 4] [--abort 0.1] [--seed N] [--warmup 60 (s)]\n');
  process.exit(0);
}
const FIXTURES = path.join(ROOT, 'test/fixtures/models');
const minutes = Number(values.minutes);
const r = prng(Number(values.seed));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

const dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-soak-'));
for (const f of ['resnet', 'mobilenetv2', 'densenet']) await symlink(path.join(FIXTURES, f), path.join(dir, f));
if (existsSync(path.join(ROOT, 'models/shapes/model.onnx'))) await symlink(path.join(ROOT, 'models/shapes'), path.join(dir, 'shapes'));
const models = ['resnet', 'mobilenetv2', 'densenet', ...(existsSync(path.join(dir, 'shapes')) ? ['shapes'] : [])];

const server = await startBuiltServer({ MODELS_DIR: dir, MAX_QUEUE: '8' });
const { url } = server;
const rss = () => server.rss();

const png = await readFile(path.join(ROOT, 'examples/star-ring.png'));
const jpeg = await readFile(path.join(ROOT, 'examples/scene-512.jpg')).catch(() => png);
const form = (fields: Record<string, string>) => {
  const f = new FormData();
  f.append('image', new Blob([new Uint8Array(r() < 0.5 ? png : jpeg)]), 'x');
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
};

/** One request of the mix. */
function request(): { what: string; path: string; init: RequestInit } {
  const model = pick(models);
  const roll = r();
  if (roll < 0.6) {
    const method = pick(['gradcam', 'gradcam', 'hirescam', 'gradcam++', 'layercam', 'eigencam', 'xgradcam', 'scorecam', 'ablationcam']);
    const fields: Record<string, string> = { model, method, output: pick(['overlay', 'heatmap', 'json']) };
    if (fields.output === 'json' && r() < 0.5) { fields.topk = '2'; fields.include_png = 'true'; }
    if (r() < 0.1) fields.aug_smooth = 'true';
    return { what: `cam ${method}`, path: '/cam', init: { method: 'POST', body: form(fields) } };
  }
  if (roll < 0.7) return { what: 'features', path: `/features?model=${model}&channels=top:8`, init: { method: 'POST', body: form({}) } };
  if (roll < 0.8) return { what: 'histograms', path: `/histograms?model=${model}`, init: { method: 'POST', body: form({}) } };
  return { what: 'get', path: pick(['/models', `/models/${model}`, `/models/${model}/summary`, `/models/${model}/graph?collapse=scope`, '/healthz', '/readyz', '/metrics']), init: { method: 'GET' } };
}

const end = Date.now() + minutes * 60_000;
const statuses: Record<string, number> = {};
const faults: string[] = [];
let aborted = 0;
const latencies: number[] = [];
const samples: { t: number; mb: number }[] = [];
const start = Date.now();
const sampler = setInterval(async () => samples.push({ t: (Date.now() - start) / 1000, mb: await rss() }), 10_000);

await Promise.all(Array.from({ length: Number(values.concurrency) }, async () => {
  while (Date.now() < end) {
    const q = request();
    const ac = new AbortController();
    const abort = r() < Number(values.abort);
    if (abort) setTimeout(() => ac.abort(), Math.floor(r() * 400));
    const t = performance.now();
    try {
      const res = await fetch(url + q.path, { ...q.init, signal: ac.signal });
      await res.arrayBuffer();
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      latencies.push(performance.now() - t);
      if (res.status >= 500 && !(res.status === 503 && res.headers.get('retry-after'))) faults.push(`${q.what}: ${res.status}`);
    } catch (e) {
      if (abort && (e as Error).name === 'AbortError') aborted++;
      else faults.push(`${q.what}: ${(e as Error).message}`);
    }
  }
}));
clearInterval(sampler);
samples.push({ t: (Date.now() - start) / 1000, mb: await rss() });
const warm = samples.filter((s) => s.t >= Number(values.warmup));
const base = warm[0]?.mb ?? NaN;
const peak = Math.max(...warm.map((s) => s.mb));
const sorted = [...latencies].sort((a, b) => a - b);
const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]?.toFixed(0);
process.stdout.write(`soak: ${minutes} min, concurrency ${values.concurrency}, abort probability ${values.abort}, models ${models.join(', ')}\n`);
process.stdout.write(`requests: ${latencies.length + aborted} (${Object.entries(statuses).map(([k, v]) => `${k}×${v}`).join(' ')}; aborted by the client ×${aborted})\n`);
process.stdout.write(`5xx other than 503+Retry-After, or failures: ${faults.length}${faults.length ? '\n  ' + faults.slice(0, 10).join('\n  ') : ''}\n`);
process.stdout.write(`latency ms: p50 ${q(0.5)}, p95 ${q(0.95)}, max ${q(1)}\n`);
process.stdout.write(`RSS MiB every 10 s: ${samples.map((s) => s.mb.toFixed(0)).join(' ')}\n`);
process.stdout.write(`RSS after warm-up (${values.warmup} s): ${base.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB (${(((peak - base) / base) * 100).toFixed(1)} %), end ${samples.at(-1)!.mb.toFixed(0)} MiB\n`);
await server.stop();
await rm(dir, { recursive: true, force: true });
process.exitCode = faults.length || (peak - base) / base > 0.15 ? 1 : 0;
