// `npm run fuzz -- [--requests 10000] [--seed N] [--concurrency 8] [--url URL]`: the long fuzz run. Starts
// the built server (dist/) on the test fixtures unless --url names one, sends the seeded hostile requests,
// and prints what came back: statuses, faults (any 5xx but a 503 with Retry-After, a non-problem error, a
// reset), latency, the server's memory before and after, and /healthz afterwards.
import { mkdtemp, mkdir, readFile, rm, symlink, copyFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, startBuiltServer, type ChildServer } from '../dev/server.js';
import { fuzzRequests } from './requests.js';
import { runFuzz } from './run.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '10000' }, seed: { type: 'string', default: String(Date.now() % 1e9) },
    concurrency: { type: 'string', default: '8' }, url: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write('usage: npm run fuzz -- [--requests 10000] [--seed N] [--concurrency 8] [--url URL]\n');
  process.exit(0);
}
const FIXTURES = path.join(ROOT, 'test/fixtures/models');

/** A models folder: the resnet fixture, a labelled copy, a broken model. */
async function modelsDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-fuzz-'));
  await symlink(path.join(FIXTURES, 'resnet'), path.join(dir, 'resnet'));
  await mkdir(path.join(dir, 'labelled'));
  await copyFile(path.join(FIXTURES, 'resnet', 'model.onnx'), path.join(dir, 'labelled', 'model.onnx'));
  await writeFile(path.join(dir, 'labelled', 'labels.txt'), Array.from({ length: 10 }, (_, i) => `class ${i}`).join('\n'));
  await mkdir(path.join(dir, 'broken'));
  await writeFile(path.join(dir, 'broken', 'model.onnx'), 'not a model');
  return dir;
}

const seed = Number(values.seed);
const count = Number(values.requests);
let url = values.url;
let server: ChildServer | undefined;
let dir: string | undefined;
if (!url) {
  dir = await modelsDir();
  server = await startBuiltServer({ MODELS_DIR: dir, WORKERS: '1', MAX_QUEUE: '8', DEFAULT_MODEL: 'resnet' });
  url = server.url;
}
const png = await readFile(path.join(ROOT, 'examples/star-ring.png'));
const rssBefore = (await server?.rss()) ?? 0;
const t = performance.now();
const outcomes = await runFuzz(url, fuzzRequests(seed, count, path.join(ROOT, 'openapi.yaml'), png, ['resnet', 'labelled', 'broken']), Number(values.concurrency));
const seconds = (performance.now() - t) / 1000;
const rssAfter = (await server?.rss()) ?? 0;
const statuses: Record<string, number> = {};
for (const o of outcomes) statuses[o.status] = (statuses[o.status] ?? 0) + 1;
const faults = outcomes.filter((o) => o.fault);
const ms = outcomes.map((o) => o.ms).sort((a, b) => a - b);
const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))].toFixed(1);
const health: number[] = [];
for (let i = 0; i < 20; i++) {
  const h0 = performance.now();
  const r = await fetch(`${url}/healthz`);
  await r.arrayBuffer();
  if (r.status === 200) health.push(performance.now() - h0);
}
process.stdout.write(`fuzz: ${count} requests, seed ${seed}, concurrency ${values.concurrency}, ${seconds.toFixed(1)} s (${(count / seconds).toFixed(0)}/s)\n`);
process.stdout.write(`statuses: ${Object.entries(statuses).map(([k, v]) => `${k}×${v}`).join(' ')}\n`);
process.stdout.write(`latency ms: p50 ${q(0.5)}, p99 ${q(0.99)}, max ${q(1)}\n`);
process.stdout.write(`faults: ${faults.length}${faults.length ? '\n' + faults.slice(0, 20).map((f) => `  ${f.what}: ${f.fault}`).join('\n') : ''}\n`);
process.stdout.write(`healthz after: ${health.length}/20 answered, max ${Math.max(...health).toFixed(1)} ms; server alive: ${server ? server.child.exitCode === null : 'n/a'}\n`);
if (server) process.stdout.write(`server RSS: ${rssBefore.toFixed(0)} MiB before, ${rssAfter.toFixed(0)} MiB after\n`);
await server?.stop();
if (dir) await rm(dir, { recursive: true, force: true });
process.exitCode = faults.length || health.length < 20 ? 1 : 0;
