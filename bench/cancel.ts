// `npm run bench:cancel -- [--model resnet50] [--cycles 100]`: cancellation of running work, measured on
// a full-size model with the built server: a Score-CAM abandoned by its client frees the worker (time
// from the abort to an idle worker), the next Grad-CAM's latency against the undisturbed one, and the
// server's RSS over many cancel-while-running cycles.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, startBuiltServer } from '../tools/dev/server.js';
import { median } from './engine.js';

const { values } = parseArgs({
  options: { model: { type: 'string', default: 'resnet50' }, cycles: { type: 'string', default: '100' }, help: { type: 'boolean', short: 'h' } },
});
if (values.help) {
  process.stdout.write('usage: npm run bench:cancel -- [--model resnet50] [--cycles 100]\n');
  process.exit(0);
}
const modelDir = path.join(ROOT, 'bench/models', values.model!);
if (!existsSync(path.join(modelDir, 'model.onnx'))) throw new Error(`${modelDir} is missing: /usr/bin/python3 tools/fixtures/generate.py --big-extdata`);
const dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-cancel-'));
await symlink(modelDir, path.join(dir, 'm'));
const server = await startBuiltServer({ MODELS_DIR: dir, WORKERS: '1', DEFAULT_MODEL: 'm' });
const image = await readFile(path.join(ROOT, 'examples/scene-512.jpg'));
const form = (fields: Record<string, string>) => {
  const f = new FormData();
  f.append('image', new Blob([new Uint8Array(image)]), 'x.jpg');
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
};
const busy = async () => ((await (await fetch(`${server.url}/readyz`)).json()) as { busy: number }).busy;
const until = async (cond: () => Promise<boolean>) => { while (!(await cond())) await new Promise((r) => setTimeout(r, 5)); };
const gradcam = async () => {
  const t = performance.now();
  const r = await fetch(`${server.url}/cam`, { method: 'POST', body: form({}) });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`gradcam answered ${r.status}`);
  return performance.now() - t;
};
/** Starts a Score-CAM, lets it run `runMs`, abandons it; ms from the abort until the worker is idle. */
const abandonScoreCam = async (runMs: number) => {
  const ac = new AbortController();
  const p = fetch(`${server.url}/cam`, { method: 'POST', body: form({ method: 'scorecam' }), signal: ac.signal });
  p.catch(() => undefined);
  await until(async () => (await busy()) === 1);
  await new Promise((r) => setTimeout(r, runMs));
  const t = performance.now();
  ac.abort();
  await until(async () => (await busy()) === 0);
  return performance.now() - t;
};

for (let i = 0; i < 3; i++) await gradcam();
const before = Array.from({ length: 10 }, () => 0);
for (let i = 0; i < before.length; i++) before[i] = await gradcam();
const freed: number[] = [];
const after: number[] = [];
for (let i = 0; i < 10; i++) {
  freed.push(await abandonScoreCam(1000 + 200 * i));
  after.push(await gradcam());
}
const cycles = Number(values.cycles);
const rss: number[] = [await server.rss()];
const cycleFreed: number[] = [];
for (let i = 1; i <= cycles; i++) {
  cycleFreed.push(await abandonScoreCam(100 + (i % 5) * 100));
  if (i % 10 === 0) rss.push(await server.rss());
}
const max = (xs: number[]) => Math.max(...xs);
process.stdout.write(`cancellation, ${values.model}, 1 worker, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? ''}), ${new Date().toISOString()}\n`);
process.stdout.write(`Score-CAM abandoned after 1–3 s of running: worker idle ${median(freed).toFixed(0)} ms (median), ${max(freed).toFixed(0)} ms (max) after the abort\n`);
process.stdout.write(`Grad-CAM (JPEG 640×480 → PNG): ${median(before).toFixed(0)} ms undisturbed, ${median(after).toFixed(0)} ms right after a cancellation (median of 10)\n`);
process.stdout.write(`${cycles} cancel-while-running cycles: worker idle ${median(cycleFreed).toFixed(0)} ms (median), ${max(cycleFreed).toFixed(0)} ms (max) after the abort\n`);
process.stdout.write(`server RSS MiB every 10 cycles: ${rss.map((x) => x.toFixed(0)).join(' ')} (first→last ${(((rss.at(-1)! - rss[1]) / rss[1]) * 100).toFixed(1)} % from cycle 10)\n`);
await server.stop();
await rm(dir, { recursive: true, force: true });
