// `npm run bench:methods`: what each method costs on one model (default the full-size ResNet-50 of
// bench/models, made by `/usr/bin/python3 tools/fixtures/generate.py --big-extdata`), one 224×224 input
// through ModelRuntime.explain: the first call (which builds the method's sessions) and the median of the
// next runs, with the engine's stage times; then each faithfulness metric of a Grad-CAM explanation.
//
//   npm run bench:methods -- [--model DIR] [--image FILE] [--methods a,b,...] [--runs N] [--threads T]
//                            [--metrics a,b,...|none] [--out FILE]
//
// Methods of many forward runs (scorecam, iscam, sscam) run once. Printed as a markdown table.
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { METHOD_NAMES, isMethodName, type MethodName } from '../src/cam/types.js';
import { ModelRuntime } from '../src/engine/runtime.js';
import { decodeImage, toModelInput } from '../src/engine/input.js';
import { evaluateMetrics, METRIC_NAMES, isMetricName, type MetricName } from '../src/metrics/index.js';
import { median } from './engine.js';
import { cpuModel, packageVersion } from './machine.js';
import { printHeaderHelp } from './usage.js';

const SLOW = new Set<MethodName>(['scorecam', 'iscam', 'sscam']);

function flags(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', default: 'bench/models/resnet50' },
      image: { type: 'string', default: 'examples/scene-512.jpg' },
      methods: { type: 'string' },
      runs: { type: 'string', default: '3' },
      threads: { type: 'string', default: '2' },
      metrics: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) printHeaderHelp(import.meta.url);
  const methods = values.methods === undefined ? [...METHOD_NAMES]
    : values.methods.split(',').map((m) => { if (!isMethodName(m)) throw new Error(`unknown method ${m}`); return m; });
  const metrics = values.metrics === undefined ? [...METRIC_NAMES] : values.metrics === 'none' ? []
    : values.metrics.split(',').map((m) => { if (!isMetricName(m)) throw new Error(`unknown metric ${m}`); return m; });
  return {
    model: path.resolve(values.model), image: path.resolve(values.image),
    methods: methods as MethodName[], runs: Number(values.runs), threads: Number(values.threads), metrics: metrics as MetricName[], out: values.out,
  };
}

const fmt = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`);
const log = (s: string) => process.stderr.write(`${s}\n`);


async function main(): Promise<void> {
  const f = flags(process.argv.slice(2));
  const lines: string[] = [];
  const out = (s = '') => { lines.push(s); process.stdout.write(`${s}\n`); };
  const rt = await ModelRuntime.load(f.model, { intraOpThreads: f.threads });
  const image = await decodeImage(readFileSync(f.image), { maxPixels: 1e8, maxSide: 8192 });
  const input = await toModelInput(image.rgb, rt.info);
  out(`## Method costs: ${path.relative(process.cwd(), f.model)} (${rt.info.inputSize.width}×${rt.info.inputSize.height}, ${rt.info.numClasses} classes, default layer ${rt.info.defaultLayer} ${rt.tensorDims(rt.info.defaultLayer)!.slice(1).join('×')})`);
  out();
  out(`- date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}; machine: ${cpuModel()}, ${os.availableParallelism()} cores (shared), Node ${process.version}, onnxruntime-node ${packageVersion('onnxruntime-node')}, ${f.threads} intra-op threads; input batch ${rt.dynamicBatch ? 'dynamic' : 'fixed at 1 (runs one at a time)'} (${rt.info.batch.note})`);
  out(`- image: ${path.relative(process.cwd(), f.image)}; first call: builds the method's sessions; then the median of ${f.runs} runs (methods of many runs: one run)`);
  out();
  out('| method | first call | per explanation | forward | backward | map |');
  out('|---|---:|---:|---:|---:|---:|');
  try {
    for (const method of f.methods) {
      const runs = SLOW.has(method) ? 0 : f.runs;
      const times: number[] = [];
      let t = performance.now();
      let r = await rt.explain({ input, method });
      const first = performance.now() - t;
      let stages = r.timings;
      for (let i = 0; i < runs; i++) {
        t = performance.now();
        r = await rt.explain({ input, method });
        times.push(performance.now() - t);
        stages = r.timings;
      }
      const per = runs ? median(times) : first;
      out(`| ${method} | ${fmt(first)} | ${runs ? fmt(per) : '(one run)'} | ${fmt(stages.forward_ms ?? 0)} | ${fmt(stages.backward_ms ?? 0)} | ${fmt(stages.cam_ms ?? 0)} |`);
      log(`${method}: first ${fmt(first)}, then ${fmt(per)}`);
    }
    if (f.metrics.length) {
      out();
      out('Metrics of one Grad-CAM explanation (softmax score; each metric alone, first call):');
      out();
      out('| metric | time |');
      out('|---|---:|');
      for (const name of f.metrics) {
        const t = performance.now();
        const r = await rt.explain({ input, method: 'gradcam', metrics: { names: [name], score: 'softmax' } }, {
          evaluateMetrics: (spec, subject) => evaluateMetrics({ ...spec, names: spec.names as MetricName[] }, subject),
        });
        out(`| ${name} | ${fmt(performance.now() - t)} (metrics ${fmt(r.timings.metrics_ms ?? 0)}) |`);
        log(`${name}: ${fmt(r.timings.metrics_ms ?? 0)}`);
      }
    }
  } finally {
    await rt.release();
  }
  if (f.out) writeFileSync(f.out, lines.join('\n') + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
