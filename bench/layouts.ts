// `npm run bench:layouts`: inference worker × onnxruntime thread layouts side by side over HTTP. One built
// server (`npm run build` first) per layout serves the same bench model; at each concurrency, `requests`
// Grad-CAM requests (JPEG 640×480 in, PNG overlay out) go to each server in turn, the order rotating from
// round to round; the table gives the median round's answers per second and p50 latency, and which layout
// wins at each concurrency. Its measurements chose the default layout (src/http/config.ts; bench/RESULTS.md,
// docs/deploy.md).
//
//   npm run bench:layouts -- [--models resnet50,resnet18,mobilenetv2] [--layouts 1x2,2x1,2x2,2:1] [--concurrency 1,2,4,6]
//                            [--requests 24] [--rounds 3] [--small] [--out FILE]
//
// A layout is WORKERSxTHREADS (every worker that many threads) or T1:T2:… (a worker per count, e.g. 2:1: one of
// two threads and one of one; the server's ORT_THREADS=2,1), optionally followed by +NAME=VALUE settings of the server's environment for
// that server alone (e.g. 1x2+MAX_COALESCE=4) and by @DIR: the server built in DIR (DIR/dist), e.g. a checkout
// of an earlier commit, to compare two versions side by side. --small adds a row per model: a 224×224 PNG in
// at concurrency 1.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { available, median } from './engine.js';
import { benchJpeg, benchPng, loadRun, postCam, startBenchServer, type ServerHandle } from './http.js';
import { cpuModel } from './machine.js';
import { printHeaderHelp } from './usage.js';

const cores = os.availableParallelism?.() ?? os.cpus().length;
const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'resnet50,resnet18,mobilenetv2' },
    layouts: { type: 'string', default: `1x${cores},${cores}x1,2x${cores},${cores}:1` },
    concurrency: { type: 'string', default: '1,2,4,6' },
    requests: { type: 'string', default: '24' },
    rounds: { type: 'string', default: '3' },
    small: { type: 'boolean', default: false },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) printHeaderHelp(import.meta.url);
const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
const models = list(values.models).filter((m) => available(m));
const layouts = list(values.layouts).map((spec) => {
  const [l, dir] = spec.split('@');
  const [shape, ...settings] = l.split('+');
  const counts = shape.includes(':') ? shape.split(':').map(Number) : undefined;
  const [w, t] = counts ? [counts.length, counts[0]] : shape.split('x').map(Number);
  if (!(Number.isInteger(w) && w >= 1 && (counts ?? [t]).every((n) => Number.isInteger(n) && n >= 1))) throw new Error(`--layouts: ${l} is not WORKERSxTHREADS or T1:T2:…[+NAME=VALUE…]`);
  const env = Object.fromEntries(settings.map((kv) => {
    const at = kv.indexOf('=');
    if (at < 1) throw new Error(`--layouts: ${kv} is not NAME=VALUE`);
    return [kv.slice(0, at), kv.slice(at + 1)];
  }));
  const entry = dir ? path.resolve(dir, 'dist/src/http/main.js') : undefined;
  return { name: [counts ? `${counts.join(' + ')} threads` : `${w}×${t}`, ...settings, ...(dir ? [`(${dir})`] : [])].join(' '), workers: w, threads: counts ? counts.join(',') : String(t), env, entry };
});
const levels = list(values.concurrency).map(Number);
const requests = Number(values.requests);
const rounds = Number(values.rounds);
if (!models.length) throw new Error('no bench model found (make them with /usr/bin/python3 tools/fixtures/generate.py --big-extdata)');
if (![requests, rounds, ...levels].every((n) => Number.isInteger(n) && n >= 1)) throw new Error('--requests, --rounds and --concurrency take positive integers');

const lines: string[] = [];
const out = (s = '') => { lines.push(s); process.stdout.write(`${s}\n`); };
const log = (s: string) => process.stderr.write(`${s}\n`);

const jpeg = await benchJpeg();
const png = await benchPng();
out(`### Worker × thread layouts over HTTP (${new Date().toISOString().slice(0, 16)}Z, ${cpuModel()} × ${cores} cores)`);
out();
out(`- command: \`npm run bench:layouts -- ${process.argv.slice(2).join(' ')}\``);
out(`- one server per layout (inference workers × onnxruntime intra-op threads each, plus the render thread); Grad-CAM, JPEG 640×480 in (${values.small ? "and a 224×224 PNG at concurrency 1" : "only"}), PNG overlay out; ${requests} requests per burst, ${rounds} rounds in rotating order, median round`);
out();
out(`| model | concurrency | ${layouts.map((l) => `${l.name}: answers/s, p50`).join(' | ')} | best |`);
out(`|---|---:|${layouts.map(() => '---:').join('|')}|---|`);
for (const m of models) {
  log(`[layouts] ${m}: starting ${layouts.length} servers`);
  const servers: ServerHandle[] = [];
  try {
    for (const l of layouts) servers.push(await startBenchServer([m], { WORKERS: String(l.workers), ORT_THREADS: l.threads, ...l.env }, [], l.entry));
    const q = `model=${encodeURIComponent(m)}&method=gradcam`;
    // Warm every worker of every server.
    for (const s of servers) await Promise.all(Array.from({ length: 8 }, () => postCam(s.url, q, jpeg)));
    const cases = [...levels.map((c) => ({ c, body: jpeg, label: String(c) })), ...(values.small ? [{ c: 1, body: png, label: '1, PNG 224×224' }] : [])];
    for (const { c, body, label } of cases) {
      const runs = layouts.map(() => [] as { throughput: number; p50: number }[]);
      for (let r = 0; r < rounds; r++) {
        for (let k = 0; k < layouts.length; k++) {
          const i = (k + r) % layouts.length;
          runs[i].push(await loadRun(servers[i].url, q, body, c, requests));
        }
      }
      const cells = runs.map((x) => ({ perS: median(x.map((y) => y.throughput)), p50: median(x.map((y) => y.p50)) }));
      const best = cells.reduce((b, x, i) => (x.perS > cells[b].perS ? i : b), 0);
      out(`| ${m} | ${label} | ${cells.map((x) => `${x.perS.toFixed(2)}/s, ${x.p50.toFixed(x.p50 < 100 ? 1 : 0)} ms`).join(' | ')} | ${layouts[best].name} |`);
    }
  } finally {
    for (const s of servers) await s.stop();
  }
}
out();
if (values.out) writeFileSync(values.out, `${lines.join('\n')}\n`);
