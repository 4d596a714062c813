// Engine options measured side by side in one process (`npm run bench:options`): a fixed batch of 1 made
// symbolic (Score-CAM's runs in batches) against kept (one image per run), and the GAP → linear gradient
// shortcut against the head's backward run. Each pair of runtimes loads the same model; their runs alternate.
// Flags: --models a,b --what scorecam,batch,gradcam (batch: gradcam with the batch kept vs made symbolic)
// --runs N (gradcam, in 5 rounds of blocks; default 25) --scorecam-runs N (default 1) --threads T (default 2).
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ModelRuntime, type RuntimeOptions } from '../src/engine/runtime.js';
import type { MethodName } from '../src/cam/types.js';
import { BENCH_MODELS, median } from './engine.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'resnet18' },
    what: { type: 'string', default: 'scorecam,batch,gradcam' },
    runs: { type: 'string', default: '25' },
    'scorecam-runs': { type: 'string', default: '1' },
    threads: { type: 'string', default: '2' },
  },
});
const threads = Number(values.threads);
const what = values.what!.split(',');
const runs = Number(values.runs);

function input(rt: ModelRuntime): Float32Array {
  const n = rt.info.inputDims.reduce((a, b) => a * b, 1);
  let s = 7;
  return Float32Array.from({ length: n }, () => { s = (s * 1664525 + 1013904223) >>> 0; return (s / 2 ** 32) * 4 - 2; });
}

async function pair(dir: string, a: RuntimeOptions, b: RuntimeOptions): Promise<[ModelRuntime, ModelRuntime]> {
  const base = { intraOpThreads: threads };
  return [await ModelRuntime.load(dir, { ...base, ...a }), await ModelRuntime.load(dir, { ...base, ...b })];
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs of `method` on two runtimes in alternating blocks (`rounds` rounds of `block` back-to-back calls each,
 * a pause before each block, as bench/engine.ts does: so that drift hits both alike and neither inherits the
 * other's busy threads): each one's median, min and max (ms) and stage medians.
 */
async function alternate(rts: [ModelRuntime, ModelRuntime], method: MethodName, rounds: number, block: number, warmup: number) {
  const x = input(rts[0]);
  const times: number[][] = [[], []];
  const stages: Record<string, number[]>[] = [{}, {}];
  for (let i = 0; i < warmup; i++) for (const rt of rts) await rt.explain({ input: x, method });
  for (let i = 0; i < rounds; i++) {
    for (const [k, rt] of (i % 2 ? [...rts.entries()].reverse() : [...rts.entries()])) {
      await pause(200);
      for (let j = 0; j < block; j++) {
        const t = performance.now();
        const r = await rt.explain({ input: x, method });
        times[k].push(performance.now() - t);
        for (const [s, ms] of Object.entries(r.timings)) (stages[k][s] ??= []).push(ms);
      }
    }
  }
  return times.map((t, k) => ({
    ms: median(t), min: Math.min(...t), max: Math.max(...t), n: t.length,
    stages: Object.fromEntries(Object.entries(stages[k]).map(([s, v]) => [s, median(v)])),
  }));
}

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const range = (r: { ms: number; min: number; max: number }) => `${fmt(r.ms)} ms [${fmt(r.min)}–${fmt(r.max)}]`;
const stageText = (s: Record<string, number>) => Object.entries(s).map(([k, v]) => `${k.replace(/_ms$/, '')} ${fmt(v)}`).join(' / ');

console.log(`- date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}; ${os.cpus()[0]?.model}, ${os.availableParallelism()} cores; Node ${process.version}; ${threads} intra-op threads`);
for (const name of values.models!.split(',')) {
  const dir = path.join(BENCH_MODELS, name);
  if (what.includes('scorecam') || what.includes('batch')) {
    const rts = await pair(dir, { symbolicBatch: false }, {});
    const C = rts[0].tensorDims(rts[0].info.defaultLayer)![1];
    const [kept, sym] = what.includes('scorecam') ? await alternate(rts, 'scorecam', Number(values['scorecam-runs']), 1, 0) : [];
    if (kept && sym) console.log(`| ${name} | scorecam (${C} channels), median of ${kept.n} | one image per run (batch kept at 1): ${range(kept)} | batches of ≤ ${rts[1].batchSize} (${rts[1].info.batch.mode}): ${range(sym)} | ${(kept.ms / sym.ms).toFixed(2)}× |`);
    if (what.includes('batch') && runs > 0) {
      const [g0, g1] = await alternate(rts, 'gradcam', 5, Math.ceil(runs / 5), 3);
      console.log(`| ${name} | gradcam, median of ${g0.n} | batch kept at 1: ${range(g0)} (${stageText(g0.stages)}) | made symbolic: ${range(g1)} (${stageText(g1.stages)}) | ${(g0.ms / g1.ms).toFixed(2)}× |`);
    }
    for (const rt of rts) await rt.release();
  }
  if (what.includes('gradcam')) {
    const rts = await pair(dir, { linearShortcut: false }, { linearShortcut: true });
    const [off, on] = await alternate(rts, 'gradcam', 5, Math.ceil(runs / 5), 3);
    console.log(`| ${name} | gradcam, median of ${off.n} | head backward run: ${range(off)} (${stageText(off.stages)}) | GAP → linear shortcut: ${range(on)} (${stageText(on.stages)}) | ${(off.ms / on.ms).toFixed(2)}× |`);
    for (const rt of rts) await rt.release();
  }
}
