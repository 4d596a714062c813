// `npm run bench:coalesce`: request coalescing (MAX_COALESCE) over HTTP. Two built servers (`npm run build`
// first) serve the same bench model, one with coalescing off (MAX_COALESCE=1) and one with it on; at each
// concurrency, `requests` Grad-CAM requests (JPEG 640×480 in, PNG overlay out) go to one server and then to
// the other, the order alternating from round to round; the table gives the median round's answers per
// second, the p50 latency, and how many explanations shared a run (camserve_explanations_coalesced).
//
//   npm run bench:coalesce -- [--models resnet50,resnet18] [--concurrency 1,2,4,8] [--requests 24] [--rounds 3] [--coalesce 4] [--out FILE]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { available, median } from './engine.js';
import { benchJpeg, loadRun, postCam, startBenchServer, type ServerHandle } from './http.js';
import { cpuModel } from './machine.js';
import { printHeaderHelp } from './usage.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'resnet50,resnet18' },
    concurrency: { type: 'string', default: '1,2,4,8' },
    requests: { type: 'string', default: '24' },
    rounds: { type: 'string', default: '3' },
    coalesce: { type: 'string', default: '4' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) printHeaderHelp(import.meta.url);
const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
const models = list(values.models).filter((m) => available(m));
const levels = list(values.concurrency).map(Number);
const requests = Number(values.requests);
const rounds = Number(values.rounds);
const coalesce = Number(values.coalesce);
if (!models.length) throw new Error('no bench model found (make them with /usr/bin/python3 tools/fixtures/generate.py --big-extdata)');
if (![requests, rounds, coalesce, ...levels].every((n) => Number.isInteger(n) && n >= 1)) throw new Error('--requests, --rounds, --coalesce and --concurrency take positive integers');

const lines: string[] = [];
const out = (s = '') => { lines.push(s); process.stdout.write(`${s}\n`); };
const log = (s: string) => process.stderr.write(`${s}\n`);

/** The server's coalesced-explanations counter. */
async function coalesced(s: ServerHandle): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  return Number(/^camserve_explanations_coalesced (\d+)/m.exec(text)?.[1] ?? NaN);
}

/** `requests` answers from `c` clients, each sending its next request once its answer is in; with the runs shared meanwhile. */
async function burst(s: ServerHandle, q: string, jpeg: Buffer, c: number): Promise<{ perS: number; p50: number; shared: number }> {
  const before = await coalesced(s);
  const r = await loadRun(s.url, q, jpeg, c, requests);
  return { perS: r.throughput, p50: r.p50, shared: (await coalesced(s)) - before };
}

const jpeg = await benchJpeg();
out(`### Request coalescing over HTTP (${new Date().toISOString().slice(0, 10)}, ${cpuModel()})`);
out();
out(`- command: \`npm run bench:coalesce -- ${process.argv.slice(2).join(' ')}\``);
out(`- two servers with 1 inference worker each (default threads), MAX_COALESCE=1 and MAX_COALESCE=${coalesce}; Grad-CAM, JPEG 640×480 in, PNG overlay out; ${requests} requests per burst, ${rounds} alternating rounds, median round`);
out();
out(`| model | concurrency | off: answers/s | off: p50 | on: answers/s | on: p50 | on/off throughput | explanations that shared a run (on) |`);
out('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const m of models) {
  log(`[coalesce] ${m}: starting the two servers`);
  const off = await startBenchServer([m], { WORKERS: '1', MAX_COALESCE: '1' });
  const on = await startBenchServer([m], { WORKERS: '1', MAX_COALESCE: String(coalesce) });
  try {
    const q = `model=${encodeURIComponent(m)}&method=gradcam`;
    for (const s of [off, on]) for (let i = 0; i < 3; i++) await postCam(s.url, q, jpeg);
    for (const c of levels) {
      const a: Awaited<ReturnType<typeof burst>>[] = [];
      const b: Awaited<ReturnType<typeof burst>>[] = [];
      for (let r = 0; r < rounds; r++) {
        if (r % 2 === 0) { a.push(await burst(off, q, jpeg, c)); b.push(await burst(on, q, jpeg, c)); }
        else { b.push(await burst(on, q, jpeg, c)); a.push(await burst(off, q, jpeg, c)); }
      }
      const pa = median(a.map((x) => x.perS));
      const pb = median(b.map((x) => x.perS));
      const shared = b.reduce((s, x) => s + x.shared, 0);
      out(`| ${m} | ${c} | ${pa.toFixed(2)}/s | ${median(a.map((x) => x.p50)).toFixed(0)} ms | ${pb.toFixed(2)}/s | ${median(b.map((x) => x.p50)).toFixed(0)} ms | ${(pb / pa).toFixed(3)}× | ${shared} of ${rounds * requests} |`);
    }
  } finally {
    await off.stop();
    await on.stop();
  }
}
out();
if (values.out) writeFileSync(values.out, `${lines.join('\n')}\n`);
