// `npm run bench`: what an explanation costs next to one bare onnxruntime forward pass, measured side by
// side in one run on one machine, printed as a markdown table ready for the README.
//
//   npm run bench -- [--models resnet50,resnet18,mobilenetv2] [--runs N] [--quick]
//                    [--no-http] [--no-scorecam] [--no-pgc] [--no-build] [--threads T] [--workers W]
//                    [--ort-threads T or T1,T2,… (one per worker)] [--concurrency 1,2,3,4] [--out FILE]
//
// The models are full-size torchvision networks at 224×224 (git-ignored; make them with
// `/usr/bin/python3 tools/fixtures/generate.py --big-extdata`). Parts:
//   1. in process: bare forward (the floor) / gradcam / topk=5 / eigencam in alternating blocks; Ablation-CAM and
//      Score-CAM against the runs they need; explain-graph build time of the 100 MB model;
//   2. over HTTP: the built server as a child process, JPEG 640×480 in → PNG overlay out: latency at
//      concurrency 1, throughput at concurrency 1..4 × workers (the best is reported), topk=5 in one request vs five requests,
//      the server's CPU time per answer by thread (inference, render, HTTP, libvips, the rest) at the best of them,
//      and the server's peak RSS; a 224×224 PNG in, alternating with the JPEG;
//   3. camserve vs pytorch-grad-cam itself (bench/pgc.ts) where PyTorch and the library are here (--no-pgc: not).
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cpuModel, packageVersion } from './machine.js';
import { printHeaderHelp } from './usage.js';
import sharp from 'sharp';
import { available, BENCH_MODELS, benchBuild, benchEngine, type EngineResult } from './engine.js';
import { benchHttp, benchJpeg, benchPng, startBenchServer, type CpuRole, type HttpResult } from './http.js';
import { loadConfig } from '../src/http/config.js';

interface Flags {
  models: string[];
  runs: number;
  quick: boolean;
  http: boolean;
  scorecam: boolean;
  build: boolean;
  threads: number;
  workers?: number;
  /** ORT_THREADS for the server: one count, or a comma-separated count per worker */
  ortThreads?: string;
  concurrency?: number[];
  out?: string;
  pgc: boolean;
}

const cores = os.availableParallelism?.() ?? os.cpus().length;

function parseFlags(argv: string[]): Flags {
  const { values } = parseArgs({
    args: argv,
    options: {
      models: { type: 'string', default: 'resnet50,resnet18,mobilenetv2' },
      runs: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'no-http': { type: 'boolean', default: false },
      'no-scorecam': { type: 'boolean', default: false },
      'no-pgc': { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      threads: { type: 'string' },
      workers: { type: 'string' },
      'ort-threads': { type: 'string' },
      concurrency: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) printHeaderHelp(import.meta.url);
  const f: Flags = {
    models: values.models.split(',').map((s) => s.trim()).filter(Boolean),
    runs: Number(values.runs ?? 0),
    quick: values.quick,
    http: !values['no-http'],
    scorecam: !values['no-scorecam'],
    build: !values['no-build'],
    threads: values.threads === undefined ? cores : Number(values.threads),
    workers: values.workers === undefined ? undefined : Number(values.workers),
    ortThreads: values['ort-threads'],
    concurrency: values.concurrency === undefined ? undefined : values.concurrency.split(',').map(Number),
    out: values.out,
    pgc: !values['no-pgc'],
  };
  if (!f.runs) f.runs = f.quick ? 5 : 20;
  if (f.quick) f.scorecam = false;
  if (!(f.runs >= 1) || !(f.threads >= 1)) throw new Error('--runs and --threads must be positive');
  for (const n of [f.workers, ...(f.concurrency ?? [])]) {
    if (n !== undefined && !(Number.isInteger(n) && n >= 1)) throw new Error('--workers and --concurrency take positive integers');
  }
  return f;
}



const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const x = (v: number) => `${v.toFixed(2)}×`;
const log = (s: string) => process.stderr.write(`${s}\n`);

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const models = flags.models.filter((m) => {
    if (available(m)) return true;
    log(`skipping ${m}: bench/models/${m}/model.onnx is missing (make it with /usr/bin/python3 tools/fixtures/generate.py --big-extdata)`);
    return false;
  });
  if (!models.length) throw new Error('no bench model available');
  // The server's layout, read as the server reads it (src/http/config.ts; a bad --ort-threads is its ConfigError).
  const serverEnv = { ...(flags.workers ? { WORKERS: String(flags.workers) } : {}), ...(flags.ortThreads ? { ORT_THREADS: flags.ortThreads } : {}) };
  const { workers, ortThreads: threadCounts } = loadConfig(serverEnv);
  const ortThreads = threadCounts.join(',');
  const lines: string[] = [];
  const out = (s = '') => { lines.push(s); process.stdout.write(`${s}\n`); };
  const argv = process.argv.slice(2);
  out('## Benchmark: an explanation next to one forward pass');
  out();
  out(`- date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`);
  out(`- machine: ${cpuModel()}, ${cores} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; ${os.type()} ${os.release()}`);
  out(`- software: Node ${process.version}, onnxruntime-node ${packageVersion('onnxruntime-node')}, sharp ${packageVersion('sharp')} (libvips ${sharp.versions.vips})`);
  out(`- command: \`npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}\``);
  out(`- models: torchvision ${models.join(', ')} (random weights), 224×224, batch 1; the floor is a bare onnxruntime-node session of the original model, ${flags.threads} intra-op threads: the faster of onnxruntime's default options (spinning threads) and the server's (no spinning)`);
  out();

  // 1. In process.
  const engine = new Map<string, EngineResult>();
  for (const m of models) {
    log(`[in-process] ${m}: ${flags.runs} interleaved rounds${flags.scorecam ? ' + Score-CAM (slow)' : ''}`);
    engine.set(m, await benchEngine(m, flags.runs, flags.threads, { scorecam: flags.scorecam }));
  }
  out(`### In process (median of ${flags.runs} runs in alternating blocks; × = ratio to the bare forward, the faster of its two columns)`);
  out();
  out('| model | bare forward: onnxruntime defaults / no spinning | gradcam | gradcam topk=5 | eigencam | gradcam stages: forward / backward / CAM |');
  out('|---|---:|---:|---:|---:|---|');
  for (const [m, r] of engine) {
    const row = (i: number) => `${ms(r.rows[i].ms)} ms (${x(r.rows[i].ratio)})`;
    const s = r.stages;
    const bold = (v: number) => (v === r.bareMs ? `**${ms(v)}**` : ms(v));
    out(`| ${m} | ${bold(r.bareDefaultMs)} / ${bold(r.bareNoSpinMs)} ms | ${row(1)} | ${row(2)}, ${x(r.rows[2].ms / r.rows[1].ms)} top-1 | ${row(3)} | ${ms(s.forward_ms ?? NaN)} / ${ms(s.backward_ms ?? NaN)} / ${ms(s.cam_ms ?? NaN)} ms |`);
  }
  out();
  out('| model | method | time | × bare forward | runs it needs |');
  out('|---|---|---:|---:|---|');
  for (const [m, r] of engine) {
    for (const row of r.rows.slice(4)) out(`| ${m} | ${row.what} | ${ms(row.ms)} ms | ${x(row.ratio)} | ${row.note ?? ''} |`);
  }
  out();
  if (!flags.quick && available('resnet50')) {
    log('[in-process] explain-graph build of resnet50');
    const b = await benchBuild('resnet50');
    out(`Explain-graph build of the ${b.model_mb.toFixed(0)} MB ResNet-50 (once per model and layer set, at start-up): decode ${ms(b.decode_ms)} ms, shape probe ${ms(b.probe_ms)} ms, ` +
      `full backward graph to layer3 ${ms(b.explain_graph_ms)} ms (${b.backward_nodes} nodes), head of the last layer ${ms(b.head_last_layer_ms)} ms.`);
    out();
  }

  // 2. Over HTTP.
  const http: HttpResult[] = [];
  let memory: { hwmMiB: number; rssMiB: number } | undefined;
  let readyMemory: { hwmMiB: number; rssMiB: number } | undefined;
  if (flags.http) {
    if (flags.build) {
      log('[http] building dist/ (tsc)');
      const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
      if (r.status !== 0) throw new Error('tsc failed');
    }
    const jpeg = await benchJpeg();
    const small = await benchPng();
    log(`[http] starting the server (${workers} worker(s) × ${ortThreads} threads) on ${models.join(', ')}`);
    const server = await startBenchServer(models, serverEnv);
    try {
      readyMemory = await server.memory();
      for (const m of models) {
        log(`[http] ${m}`);
        http.push(await benchHttp(server, m, jpeg, {
          runs: flags.runs, concurrency: flags.concurrency ?? [workers, 2 * workers, 3 * workers, 4 * workers],
          requests: (c) => Math.max(6 * c, flags.quick ? 12 : 3 * flags.runs), small,
        }));
      }
      memory = await server.memory();
    } finally {
      await server.stop();
    }
    out(`### Over HTTP (JPEG 640×480 in, PNG overlay out; server: ${workers} inference worker(s) × ${ortThreads} onnxruntime threads + a render thread; client on the same machine)`);
    out();
    out(`| model | p50 (c=1) | p95 (c=1) | best throughput (at c) | vs bare forward throughput | stages at c=1: decode / preprocess / queue / forward / backward / CAM / render / total |`);
    out('|---|---:|---:|---:|---:|---|');
    for (const h of http) {
      const bare = engine.get(h.model)!.bareMs;
      const s = h.stages;
      const st = ['decode', 'preprocess', 'queue', 'forward', 'backward', 'cam', 'render', 'total'].map((k) => (s[k] === undefined ? '–' : ms(s[k]))).join(' / ');
      out(`| ${h.model} | ${ms(h.p50)} ms (${x(h.p50 / bare)}) | ${ms(h.p95)} ms (${x(h.p95 / bare)}) | ${h.throughput.toFixed(2)}/s (c=${h.concurrency}) | ${x(h.throughput / (1000 / bare))} of ${(1000 / bare).toFixed(2)}/s | ${st} ms |`);
    }
    out();
    out('Throughput at each concurrency (answers/s, p50):');
    out();
    for (const h of http) out(`- ${h.model}: ${h.sweep.map((s) => `c=${s.concurrency} ${s.throughput.toFixed(2)}/s (${ms(s.p50)} ms)`).join(', ')}`);
    out();
    if (http.some((h) => Object.keys(h.cpu).length > 0)) {
      out(`The server's CPU time per answer at the best concurrency, by thread (/proc; "other": libuv's pool — sharp's decode and resize calls, deflate — and V8's threads), and the most answers/s that ${cores} cores give at that cost:`);
      out();
      out('| model | inference (worker + onnxruntime threads) | render thread | HTTP thread | libvips | other | total | ceiling |');
      out('|---|---:|---:|---:|---:|---:|---:|---:|');
      for (const h of http) {
        const total = Object.values(h.cpu).reduce((a, b) => a + b, 0);
        const cell = (r: CpuRole) => `${ms(h.cpu[r] ?? 0)} ms`;
        out(`| ${h.model} | ${cell('inference')} | ${cell('render')} | ${cell('http')} | ${cell('libvips')} | ${cell('other')} | ${ms(total)} ms | ${((cores * 1000) / total).toFixed(1)}/s |`);
      }
      out();
    }
    out('The small case, alternating with the requests above: a 224×224 PNG in (the model\'s own size), PNG overlay out, concurrency 1:');
    out();
    out('| model | p50 | p95 | overhead over the bare forward (p50) | stages: decode / preprocess / queue / forward / backward / CAM / render / total |');
    out('|---|---:|---:|---:|---|');
    for (const h of http) {
      if (!h.small) continue;
      const bare = engine.get(h.model)!.bareMs;
      const s = h.small.stages;
      const st = ['decode', 'preprocess', 'queue', 'forward', 'backward', 'cam', 'render', 'total'].map((k) => (s[k] === undefined ? '–' : ms(s[k]))).join(' / ');
      out(`| ${h.model} | ${ms(h.small.p50)} ms (${x(h.small.p50 / bare)}) | ${ms(h.small.p95)} ms (${x(h.small.p95 / bare)}) | ${ms(h.small.p50 - bare)} ms | ${st} ms |`);
    }
    out();
    out('| model | one class (PNG) | topk=5 in one request (JSON + 5 PNGs) | five requests (one PNG each) |');
    out('|---|---:|---:|---:|');
    for (const h of http) {
      out(`| ${h.model} | ${ms(h.single)} ms | ${ms(h.topk5)} ms (${x(h.topk5 / h.single)}) | ${ms(h.five)} ms (${x(h.five / h.single)}) |`);
    }
    out();
    out(`Server memory (all ${models.length} models loaded and warmed in each worker): RSS ${readyMemory.rssMiB.toFixed(0)} MiB when ready; peak RSS (VmHWM) ${memory.hwmMiB.toFixed(0)} MiB after the HTTP runs. PNG overlay: ${((http[0]?.pngBytes ?? 0) / 1024).toFixed(0)} KiB.`);
    out();
  }

  // Targets.
  out('### Targets');
  out();
  const check = (ok: boolean, text: string) => out(`- ${ok ? '✅' : '❌'} ${text}`);
  for (const [m, r] of engine) {
    const bound = m.startsWith('mobilenet') ? 1.15 : 1.1;
    check(r.rows[1].ratio <= bound, `${m}: in-process gradcam ≤ ${bound}× bare forward: ${x(r.rows[1].ratio)}`);
    check(r.rows[2].ms / r.rows[1].ms <= 1.3, `${m}: topk=5 ≤ 1.3× one explanation: ${x(r.rows[2].ms / r.rows[1].ms)} in process`);
  }
  for (const h of http) {
    const bare = engine.get(h.model)!.bareMs;
    if (h.model.startsWith('resnet50')) {
      check(h.p50 / bare <= 1.3, `${h.model}: JPEG 640×480 → PNG, p50 ≤ 1.3× bare forward: ${x(h.p50 / bare)}`);
      if (h.small) check(h.small.p50 / bare <= 1.15, `${h.model}: PNG 224×224 → PNG, p50 ≤ 1.15× bare forward: ${x(h.small.p50 / bare)}`);
      check(h.throughput / (1000 / bare) >= 0.8, `${h.model}: throughput at the best concurrency (c=${h.concurrency}) ≥ 0.8× bare forward throughput: ${x(h.throughput / (1000 / bare))}`);
    } else {
      out(`- ${h.model}: JPEG → PNG p50 ${x(h.p50 / bare)} bare forward (${ms(h.p50 - bare)} ms over it)${h.small ? `, PNG 224×224 → PNG ${x(h.small.p50 / bare)} (${ms(h.small.p50 - bare)} ms over it)` : ''}, throughput ${x(h.throughput / (1000 / bare))}`);
    }
  }

  // 3. Side by side with pytorch-grad-cam itself (bench/pgc.ts), where PyTorch and the library are here.
  if (flags.pgc) {
    const missing = [path.join(BENCH_MODELS, 'resnet50', 'model.pt'), 'tmp/refs/pytorch-grad-cam/pytorch_grad_cam', '/usr/bin/python3']
      .filter((f) => !existsSync(f));
    if (missing.length) {
      out(`### camserve vs pytorch-grad-cam: not run (missing ${missing.join(', ')}; see bench/pgc.ts)`);
    } else {
      log('[pgc] camserve vs pytorch-grad-cam on resnet50 (bench/pgc.ts; several minutes, Score-CAM most of it)');
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/pgc.ts', '--model', 'resnet50', ...(flags.quick ? ['--rounds', '1', '--requests', '20'] : [])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      out(r.stdout.trim().replace(/^## /m, '### '));
      if (r.status !== 0) out(`(bench/pgc.ts failed with status ${r.status}: see its messages above)`);
    }
  }
  if (flags.out) {
    writeFileSync(flags.out, `${lines.join('\n')}\n`);
    log(`written to ${flags.out}`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
