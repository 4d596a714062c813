// `npm run bench:pgc -- [--model resnet50] [--rounds 2] [--requests 40]`: camserve against pytorch-grad-cam
// itself, on the same machine in the same run, with the same weights (bench/models/<model>/model.pt, saved
// by tools/fixtures/generate.py --big next to the ONNX export), the same JPEG and the same answer (an
// overlay PNG of the image's size). In process: medians of Grad-CAM, Grad-CAM++, Eigen-CAM, Score-CAM
// (batch 16 in both); over HTTP: camserve's server against a Python server of fixed design around the
// library (bench/pytorch/pgc.py), latency p50/p95 at concurrency 1, 2 and 4, alternating. Needs Debian's
// python3-torch and the library exported to tmp/refs/pytorch-grad-cam (tools/fixtures/README.md).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ModelRuntime, decodeImage, toModelInput } from '../src/engine/index.js';
import type { MethodName } from '../src/cam/index.js';
import { BENCH_MODELS, machine, median, percentile } from './engine.js';
import { benchJpeg, postCam, startBenchServer } from './http.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'resnet50' }, rounds: { type: 'string', default: '2' }, requests: { type: 'string', default: '40' },
    refs: { type: 'string', default: 'tmp/refs' }, help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write('usage: npm run bench:pgc -- [--model resnet50] [--rounds 2] [--requests 40] [--refs tmp/refs]\n');
  process.exit(0);
}
const model = values.model!;
const PY = '/usr/bin/python3';
const SCRIPT = path.resolve('bench/pytorch/pgc.py');
for (const [need, how] of [
  [path.join(BENCH_MODELS, model, 'model.onnx'), '/usr/bin/python3 tools/fixtures/generate.py --big-extdata'],
  [path.join(BENCH_MODELS, model, 'model.pt'), '/usr/bin/python3 tools/fixtures/generate.py --big-extdata (saves model.pt since this benchmark exists)'],
  [path.join(values.refs!, 'pytorch-grad-cam', 'pytorch_grad_cam'), 'export pytorch-grad-cam as tools/fixtures/README.md shows'],
] as const) if (!existsSync(need)) throw new Error(`${need} is missing: ${how}`);

const threads = os.availableParallelism?.() ?? os.cpus().length;
const work = await mkdtemp(path.join(os.tmpdir(), 'camserve-pgc-'));
const jpeg = await benchJpeg();
const jpegFile = path.join(work, 'image.jpg');
await writeFile(jpegFile, jpeg);
const METHODS = ['gradcam', 'gradcam++', 'eigencam', 'scorecam'] as const;

/** pytorch-grad-cam in its own process: medians per method. */
function pythonInProcess(): Record<string, number> {
  const r = spawnSync(PY, [SCRIPT, 'inprocess', '--refs', values.refs!, '--model', model, '--image', jpegFile, '--threads', String(threads), '--runs', '10'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pgc.py inprocess failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
}

/** camserve's engine in this process: medians per method (the same image, the same preprocessing). */
async function camserveInProcess(rt: ModelRuntime, input: Float32Array): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const method of METHODS) {
    const runs = method === 'scorecam' ? 1 : 10;
    const times: number[] = [];
    for (let i = 0; i < runs + (method === 'scorecam' ? 0 : 2); i++) {
      const t = performance.now();
      await rt.explain({ input: input.slice(), method: method as MethodName });
      times.push(performance.now() - t);
    }
    out[method] = median(times.slice(-runs));
  }
  return out;
}

async function latency(url: string, query: string, concurrency: number, requests: number): Promise<{ p50: number; p95: number; perSecond: number }> {
  for (let i = 0; i < 3; i++) await postCam(url, query, jpeg);
  const ms: number[] = [];
  let sent = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (sent < requests) {
      sent++;
      const a = await postCam(url, query, jpeg);
      if (a.status !== 200 || !a.type.startsWith('image/png')) throw new Error(`${url}: ${a.status} ${a.type}`);
      ms.push(a.ms);
    }
  }));
  return { p50: median(ms), p95: percentile(ms, 0.95), perSecond: (requests / (performance.now() - t0)) * 1000 };
}

try {
  // 1. In process, alternating.
  const rt = await ModelRuntime.load(path.join(BENCH_MODELS, model), { intraOpThreads: threads });
  const input = await toModelInput((await decodeImage(jpeg, { maxPixels: 1e8, maxSide: 4096 })).rgb, rt.info);
  const ours: Record<string, number[]> = {};
  const theirs: Record<string, number[]> = {};
  for (let round = 0; round < Number(values.rounds); round++) {
    const p = pythonInProcess();
    for (const [k, v] of Object.entries(p)) (theirs[k] ??= []).push(v);
    const c = await camserveInProcess(rt, input);
    for (const [k, v] of Object.entries(c)) (ours[k] ??= []).push(v);
  }
  await rt.release();
  const m = (xs: number[] | undefined) => (xs ? median(xs) : NaN);
  // The in-process table first, so that it is kept whatever happens to the HTTP part.
  process.stdout.write(`\n## camserve vs pytorch-grad-cam, ${model}, ${new Date().toISOString().slice(0, 16)}Z, ${machine()}\n\n`);
  process.stdout.write(`In process (median ms of ${values.rounds} alternating round(s); Score-CAM one run per round, batch 16 in both; PyTorch's bare forward for reference: ${m(theirs.forward).toFixed(1)} ms)\n\n`);
  process.stdout.write('| method | pytorch-grad-cam | camserve engine | ratio |\n|---|---:|---:|---:|\n');
  for (const k of METHODS) process.stdout.write(`| ${k} | ${m(theirs[k]).toFixed(1)} | ${m(ours[k]).toFixed(1)} | ${(m(theirs[k]) / m(ours[k])).toFixed(2)}× faster |\n`);

  // 2. Over HTTP, alternating per concurrency level.
  const camserve = await startBenchServer([model], { WORKERS: '1', ORT_THREADS: String(threads), DEFAULT_MODEL: model });
  const py = spawn(PY, [SCRIPT, 'serve', '--refs', values.refs!, '--model', model, '--threads', String(threads)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pyUrl = await new Promise<string>((resolve, reject) => {
    py.stdout!.on('data', (d: Buffer) => { const m = /listening (\d+)/.exec(d.toString()); if (m) resolve(`http://127.0.0.1:${m[1]}`); });
    py.once('exit', (code) => reject(new Error(`pgc.py serve exited (${code})`)));
  });
  const http: { concurrency: number; ours: Awaited<ReturnType<typeof latency>>; theirs: Awaited<ReturnType<typeof latency>> }[] = [];
  for (const concurrency of [1, 2, 4]) {
    const requests = Number(values.requests);
    const theirsFirst = concurrency % 2 === 0;
    const a = theirsFirst ? await latency(pyUrl, 'method=gradcam', concurrency, requests) : undefined;
    const o = await latency(camserve.url, `model=${model}&method=gradcam`, concurrency, requests);
    const t = a ?? await latency(pyUrl, 'method=gradcam', concurrency, requests);
    http.push({ concurrency, ours: o, theirs: t });
  }
  py.kill('SIGTERM');
  await camserve.stop();

  process.stdout.write(`\nOver HTTP (JPEG 640×480 in, PNG overlay of the image out; ${values.requests} requests per level):\n\n`);
  process.stdout.write('| concurrency | Python server p50 / p95 | camserve p50 / p95 | Python req/s | camserve req/s |\n|---:|---:|---:|---:|---:|\n');
  for (const h of http) process.stdout.write(`| ${h.concurrency} | ${h.theirs.p50.toFixed(0)} / ${h.theirs.p95.toFixed(0)} ms | ${h.ours.p50.toFixed(0)} / ${h.ours.p95.toFixed(0)} ms | ${h.theirs.perSecond.toFixed(1)} | ${h.ours.perSecond.toFixed(1)} |\n`);
  const whole = http[0].ours.p50;
  process.stdout.write(`\ncamserve's whole HTTP request (p50, c=1) ${whole.toFixed(0)} ms vs pytorch-grad-cam's in-process Grad-CAM ${m(theirs.gradcam).toFixed(0)} ms: ${(m(theirs.gradcam) / whole).toFixed(2)}×\n`);
} finally {
  await rm(work, { recursive: true, force: true });
}
