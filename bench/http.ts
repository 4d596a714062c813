// End-to-end benchmark over HTTP: the real server (`node dist/src/http/main.js`) as a child process
// serving the bench models through a temporary folder of symlinks; a JPEG 640×480 in, a PNG overlay out (and,
// alternating with it, a 224×224 PNG in).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, symlink } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { THREAD_NAMES } from '../src/workers/thread-name.js';
import { freePort } from '../tools/dev/net.js';
import { BENCH_MODELS, median, percentile } from './engine.js';

/**
 * The request image, the same in every run: a synthetic photograph-like 640×480 picture (smooth shapes
 * and shading plus sensor-like noise, which is what makes photographs hard to compress), as a JPEG of
 * quality 90 (about 45 KB).
 */
export async function benchJpeg(width = 640, height = 480): Promise<Buffer> {
  return sharp(benchRgb(width, height), { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

/** The same picture at the model's size (224×224) as a PNG: the case where image work is smallest. */
export async function benchPng(width = 224, height = 224): Promise<Buffer> {
  return sharp(benchRgb(width, height), { raw: { width, height, channels: 3 } }).png().toBuffer();
}

function benchRgb(width: number, height: number): Buffer {
  let seed = 12345;
  const noise = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32 - 0.5;
  };
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = x / width;
      const v = y / height;
      const disc = Math.hypot(u - 0.62, v - 0.45) < 0.22 ? 1 : 0;
      const base = [
        90 + 100 * v + 40 * Math.sin(9 * u + 3 * v) + 60 * disc,
        110 + 60 * Math.cos(7 * v - 2 * u) - 50 * disc,
        140 - 90 * u + 30 * Math.sin(23 * u * v) + 20 * disc,
      ];
      for (let c = 0; c < 3; c++) rgb[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(base[c] + 14 * noise())));
    }
  }
  return rgb;
}


export interface ServerHandle {
  url: string;
  pid: number;
  child: ChildProcess;
  /** VmHWM / VmRSS of the server process, MiB */
  memory(): Promise<{ hwmMiB: number; rssMiB: number }>;
  stop(): Promise<void>;
}

async function procStatus(pid: number): Promise<{ hwmMiB: number; rssMiB: number }> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { hwmMiB: kb('VmHWM') / 1024, rssMiB: kb('VmRSS') / 1024 };
}

/** Starts the built server on the given models; resolves once /readyz answers 200. */
export async function startBenchServer(models: string[], env: Record<string, string> = {}, nodeArgs: string[] = [], entry = path.resolve('dist/src/http/main.js')): Promise<ServerHandle> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-bench-'));
  for (const m of models) await symlink(path.join(BENCH_MODELS, m), path.join(dir, m));
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, entry], {
    env: { ...process.env, MODELS_DIR: dir, PORT: String(port), HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (d: Buffer) => { output = (output + d.toString()).slice(-4000); };
  // Drain its log (a line per request) so that the pipe never blocks it.
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`server exited with ${code} before it was ready\n${output}`))));
  exited.catch(() => undefined);
  const deadline = Date.now() + 5 * 60_000;
  try {
    for (;;) {
      const status = await Promise.race([fetch(`${url}/readyz`).then((r) => r.status, () => 0), exited]);
      if (status === 200) break;
      if (Date.now() > deadline) throw new Error(`server not ready after 5 minutes\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (e) {
    if (child.exitCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    url,
    pid: child.pid!,
    child,
    memory: () => procStatus(child.pid!),
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface Answer { status: number; ms: number; body: Buffer; type: string; timing: Record<string, number> }

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** POSTs the image to `/cam?query` and reads the whole answer. */
export function postCam(base: string, query: string, body: Buffer, accept = '*/*'): Promise<Answer> {
  const t = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}/cam?${query}`, {
      method: 'POST', agent,
      headers: { 'Content-Type': body[0] === 0x89 ? 'image/png' : 'image/jpeg', 'Content-Length': body.length, Accept: accept },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const timing: Record<string, number> = {};
        for (const part of String(res.headers['server-timing'] ?? '').split(',')) {
          const m = /^\s*([\w-]+);dur=([\d.]+)/.exec(part);
          if (m) timing[m[1]] = Number(m[2]);
        }
        const answer = { status: res.statusCode ?? 0, ms: performance.now() - t, body: Buffer.concat(chunks), type: String(res.headers['content-type'] ?? ''), timing };
        if (answer.status !== 200) reject(new Error(`POST /cam?${query}: ${answer.status} ${answer.body.toString().slice(0, 300)}`));
        else resolve(answer);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Thread roles whose CPU time the bench reports (src/workers/thread-name.ts names the service's own threads). */
export const CPU_ROLES = ['inference', 'render', 'http', 'libvips', 'other'] as const;
export type CpuRole = (typeof CPU_ROLES)[number];

/**
 * CPU time (user + system, ms) of each thread of process `pid` so far, by role: the HTTP thread (the main
 * one), inference workers with their onnxruntime threads, the render thread, libvips' workers, and the
 * rest (libuv's pool: sharp's decode and resize calls, deflate; V8's own threads). Linux only: {} elsewhere.
 */
export async function threadCpu(pid: number): Promise<Partial<Record<CpuRole, number>>> {
  const out: Partial<Record<CpuRole, number>> = {};
  let tids: string[];
  try {
    tids = await readdir(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    let stat: string;
    try {
      stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime, in clock ticks of 1/100 s (Linux's USER_HZ)
    const ms = (Number(fields[11]) + Number(fields[12])) * 10;
    const role: CpuRole = Number(tid) === pid ? 'http'
      : comm === THREAD_NAMES.inference ? 'inference'
        : comm === THREAD_NAMES.render ? 'render'
          : comm.startsWith('libvips') ? 'libvips' : 'other';
    out[role] = (out[role] ?? 0) + ms;
  }
  return out;
}

export interface HttpResult {
  model: string;
  p50: number;
  p95: number;
  /** median Server-Timing stages at concurrency 1 */
  stages: Record<string, number>;
  /** the concurrency of the best throughput */
  concurrency: number;
  /** answers per second at `concurrency`: the best of `sweep` */
  throughput: number;
  /** answers per second and p50 at every concurrency measured */
  sweep: { concurrency: number; throughput: number; p50: number }[];
  /** the server's CPU time per answer at `concurrency`, ms, by thread role ({} off Linux) */
  cpu: Partial<Record<CpuRole, number>>;
  single: number;
  topk5: number;
  five: number;
  pngBytes: number;
  /** the small case (224×224 PNG in, PNG out) at concurrency 1, alternating with the JPEG requests */
  small?: { p50: number; p95: number; stages: Record<string, number> };
}

/** `requests` requests from `concurrency` clients, each sending its next as soon as its answer is in: answers per second and p50. */
export async function loadRun(base: string, query: string, body: Buffer, concurrency: number, requests: number): Promise<{ concurrency: number; throughput: number; p50: number }> {
  let sent = 0;
  const loaded: number[] = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (sent < requests) {
      sent++;
      loaded.push((await postCam(base, query, body)).ms);
    }
  }));
  return { concurrency, throughput: (requests / (performance.now() - t0)) * 1000, p50: median(loaded) };
}

/**
 * Latency at concurrency 1 (the JPEG and, alternating, the small PNG), throughput at each of `concurrency`
 * (`requests` each; the best is the result's), topk=5 against five requests.
 */
export async function benchHttp(server: ServerHandle, model: string, jpeg: Buffer, opts: { runs: number; concurrency: number[]; requests: (c: number) => number; small?: Buffer }): Promise<HttpResult> {
  const q = `model=${encodeURIComponent(model)}&method=gradcam`;
  for (let i = 0; i < 3; i++) {
    await postCam(server.url, q, jpeg);
    if (opts.small) await postCam(server.url, q, opts.small);
  }
  const lat: number[] = [];
  const stages: Record<string, number[]> = {};
  const smallLat: number[] = [];
  const smallStages: Record<string, number[]> = {};
  let pngBytes = 0;
  for (let i = 0; i < opts.runs; i++) {
    const a = await postCam(server.url, q, jpeg);
    if (!a.type.startsWith('image/png')) throw new Error(`expected a PNG, got ${a.type}`);
    pngBytes = a.body.length;
    lat.push(a.ms);
    for (const [k, v] of Object.entries(a.timing)) (stages[k] ??= []).push(v);
    if (opts.small) {
      const b = await postCam(server.url, q, opts.small);
      smallLat.push(b.ms);
      for (const [k, v] of Object.entries(b.timing)) (smallStages[k] ??= []).push(v);
    }
  }
  const medians = (st: Record<string, number[]>) => Object.fromEntries(Object.entries(st).map(([k, v]) => [k, median(v)]));

  // Throughput at each concurrency; the best is the server's.
  const sweep: (HttpResult['sweep'][number] & { cpu: HttpResult['cpu'] })[] = [];
  for (const c of opts.concurrency) {
    const before = await threadCpu(server.pid);
    const run = await loadRun(server.url, q, jpeg, c, opts.requests(c));
    const after = await threadCpu(server.pid);
    const cpu = Object.fromEntries(CPU_ROLES.filter((r) => after[r] !== undefined).map((r) => [r, (after[r]! - (before[r] ?? 0)) / opts.requests(c)]));
    sweep.push({ ...run, cpu });
  }
  const best = sweep.reduce((a, b) => (b.throughput > a.throughput ? b : a));

  // topk=5: one request (JSON with the five overlays as PNG) against five requests (one overlay each), alternating.
  const json = JSON.parse((await postCam(server.url, `${q}&output=json&topk=5`, jpeg, 'application/json')).body.toString()) as { explanations: { target: { index: number } }[] };
  const top5 = json.explanations.map((e) => e.target.index);
  const single: number[] = [];
  const one: number[] = [];
  const five: number[] = [];
  const rounds = Math.max(3, Math.ceil(opts.runs / 3));
  for (let i = 0; i < rounds; i++) {
    single.push((await postCam(server.url, q, jpeg)).ms);
    one.push((await postCam(server.url, `${q}&output=json&topk=5&include_png=true`, jpeg, 'application/json')).ms);
    const t = performance.now();
    for (const c of top5) await postCam(server.url, `${q}&target=${c}`, jpeg);
    five.push(performance.now() - t);
  }
  return {
    model, p50: median(lat), p95: percentile(lat, 0.95),
    stages: medians(stages),
    concurrency: best.concurrency, throughput: best.throughput, cpu: best.cpu,
    sweep: sweep.map(({ concurrency, throughput, p50 }) => ({ concurrency, throughput, p50 })),
    single: median(single), topk5: median(one), five: median(five), pngBytes,
    ...(opts.small ? { small: { p50: median(smallLat), p95: percentile(smallLat, 0.95), stages: medians(smallStages) } } : {}),
  };
}
