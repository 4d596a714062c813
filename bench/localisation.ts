// `npm run bench:localisation`: how well each CAM method localises the objects of held-out synthetic
// scenes with the default shapes model, run through the engine (ModelRuntime.explain), printed as a
// markdown table ready for the README, with the model's accuracy on the same scenes.
//
//   npm run bench:localisation -- [--scenes N] [--start SEED] [--methods a,b,...] [--scorecam-scenes N|all]
//                                 [--slow-scenes N] [--road-scenes N] [--road-percentiles a,b,...]
//                                 [--model DIR] [--threads T] [--out FILE]
//
// Scenes: seeds START .. START+N-1 (default 1000000.., 500 scenes; held-out, never used in training).
// Every class present in a scene is explained (one explain() call per scene and method, all classes as
// targets, the model's default layer); each raw map is upsampled bilinearly to 128×128 and scored
// (tools/shapes/localisation.ts): pointing game, energy-in-box, class-discriminative pointing in
// two-class scenes. Score-CAM needs one whole-model run per channel and target (96 × ~1.9 per scene, about
// 0.35 s a scene on 2 shared cores), so it runs on the first --scorecam-scenes scenes only (default 500:
// the whole default set, about 3 minutes); IS-CAM and SS-CAM (10 and 35 times Score-CAM's runs) on the
// first --slow-scenes (default 50); the table says when that is a subset. DFF is not class-specific (no
// map per class) and is left out. ROAD (road_combined, the model's sigmoid score, percentiles
// --road-percentiles, default 20,40,60,80 as ARCC's) is measured on the first --road-scenes scenes (default
// 20) through the engine's metrics (one more explain() per scene with metrics=road_combined).
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cpuModel, packageVersion } from './machine.js';
import { printHeaderHelp } from './usage.js';
import { fileURLToPath } from 'node:url';
import { METHOD_NAMES, isMethodName, type MethodName } from '../src/cam/types.js';
import { ModelRuntime } from '../src/engine/runtime.js';
import { evaluateMetrics, type MetricName } from '../src/metrics/index.js';
import {
  AccuracyTally, baselineSummary, evaluateMethod, sceneCases, sceneInput, type LocalisationSummary,
} from '../tools/shapes/localisation.js';
import { CLASS_NAMES, NUM_CLASSES, SEEDS, generateScenes } from '../tools/shapes/scenes.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Flags {
  scenes: number;
  start: number;
  methods: MethodName[];
  scorecamScenes: number;
  slowScenes: number;
  roadScenes: number;
  roadPercentiles: number[];
  model: string;
  threads: number;
  out?: string;
}

function parseFlags(argv: string[]): Flags {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenes: { type: 'string', default: '500' },
      start: { type: 'string' },
      methods: { type: 'string' },
      'scorecam-scenes': { type: 'string', default: '500' },
      'slow-scenes': { type: 'string', default: '50' },
      'road-scenes': { type: 'string', default: '20' },
      'road-percentiles': { type: 'string', default: '20,40,60,80' },
      model: { type: 'string' },
      threads: { type: 'string', default: '1' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) printHeaderHelp(import.meta.url);
  const f: Flags = {
    scenes: Number(values.scenes), start: values.start === undefined ? SEEDS.heldOut[0] : Number(values.start),
    methods: METHOD_NAMES.filter((m) => m !== 'dff'), scorecamScenes: 500,
    slowScenes: Number(values['slow-scenes']), roadScenes: Number(values['road-scenes']), roadPercentiles: values['road-percentiles'].split(',').map(Number),
    model: values.model === undefined ? path.join(ROOT, 'models/shapes') : path.resolve(values.model), threads: Number(values.threads), out: values.out,
  };
  if (values.methods !== undefined) {
    const ms = values.methods.split(',').map((s) => s.trim()).filter(Boolean);
    for (const m of ms) if (!isMethodName(m) || m === 'dff') throw new Error(`unknown or not class-specific method ${m} (one of ${METHOD_NAMES.filter((x) => x !== 'dff').join(', ')})`);
    f.methods = ms as MethodName[];
  }
  const scorecamAll = values['scorecam-scenes'] === 'all';
  if (!scorecamAll) f.scorecamScenes = Number(values['scorecam-scenes']);
  if (!(Number.isInteger(f.scenes) && f.scenes >= 1)) throw new Error('--scenes must be a positive integer');
  if (!(Number.isInteger(f.start) && f.start >= SEEDS.heldOut[0])) throw new Error(`--start must be a held-out seed (≥ ${SEEDS.heldOut[0]})`);
  if (!(Number.isInteger(f.scorecamScenes) && f.scorecamScenes >= 1)) throw new Error('--scorecam-scenes must be a positive integer or "all"');
  if (!(Number.isInteger(f.threads) && f.threads >= 1)) throw new Error('--threads must be a positive integer');
  f.scorecamScenes = scorecamAll ? f.scenes : Math.min(f.scorecamScenes, f.scenes);
  f.slowScenes = Math.min(f.slowScenes, f.scenes);
  f.roadScenes = Math.min(f.roadScenes, f.scenes);
  if (!f.roadPercentiles.every((p) => p > 0 && p < 100)) throw new Error('--road-percentiles must be numbers in (0, 100)');
  return f;
}

const pct = (v: number) => (Number.isNaN(v) ? '–' : `${(100 * v).toFixed(1)}%`);
const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const log = (s: string) => process.stderr.write(`${s}\n`);

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const lines: string[] = [];
  const out = (s = '') => { lines.push(s); process.stdout.write(`${s}\n`); };
  const argv = process.argv.slice(2);
  const cores = os.availableParallelism?.() ?? os.cpus().length;

  log(`rendering ${flags.scenes} held-out scenes from seed ${flags.start}`);
  const t0 = performance.now();
  const scenes = await generateScenes(flags.start, flags.scenes);
  const rt = await ModelRuntime.load(flags.model, { intraOpThreads: flags.threads });
  const results = new Map<MethodName, LocalisationSummary>();
  const roads = new Map<MethodName, { mean: number; pairs: number; ms: number }>();
  const accuracy = new AccuracyTally(rt.info.numClasses);
  try {
    if (rt.info.numClasses !== NUM_CLASSES) throw new Error(`${flags.model}: ${rt.info.numClasses} classes, the scenes have ${NUM_CLASSES}`);
    const inputs = await Promise.all(scenes.map((s) => sceneInput(rt, s)));
    for (const method of flags.methods) {
      const subset = method === 'scorecam' ? scenes.slice(0, flags.scorecamScenes)
        : method === 'iscam' || method === 'sscam' ? scenes.slice(0, flags.slowScenes) : scenes;
      const t = performance.now();
      let last = t;
      const r = await evaluateMethod(rt, subset, method, {
        inputs,
        // Accuracy from the logits of the first method's runs over the whole set (the logits do not depend on the method).
        accuracy: results.size === 0 && subset.length === scenes.length ? accuracy : undefined,
        onScene: (i) => {
          if (performance.now() - last > 10_000) {
            last = performance.now();
            log(`  ${method}: ${i + 1}/${subset.length} scenes`);
          }
        },
      });
      results.set(method, r);
      log(`${method}: ${subset.length} scenes in ${((performance.now() - t) / 1000).toFixed(1)} s: pointing ${pct(r.pointing)}, energy ${pct(r.energy)}, discriminative ${pct(r.discriminative)}`);
      // ROAD through the engine's metrics, every class of the first road-scenes scenes.
      const tr = performance.now();
      let sum = 0;
      let pairs = 0;
      for (const [i, scene] of scenes.slice(0, flags.roadScenes).entries()) {
        const targets = sceneCases(scene).map((c) => c.cls);
        const res = await rt.explain({ input: inputs[i], method, targets, metrics: { names: ['road_combined'], score: 'sigmoid', roadPercentiles: flags.roadPercentiles } }, {
          evaluateMetrics: (spec, subject) => evaluateMetrics({ ...spec, names: spec.names as MetricName[] }, subject),
        });
        for (const e of res.explanations) { sum += e.metrics!.road_combined; pairs++; }
      }
      if (pairs) {
        roads.set(method, { mean: sum / pairs, pairs, ms: performance.now() - tr });
        log(`  ${method}: ROAD combined ${(sum / pairs).toFixed(4)} over ${pairs} pairs`);
      }
    }
    if (accuracy.summary().n === 0) {
      for (const [i, input] of inputs.entries()) accuracy.add(await rt.predict(input), scenes[i]!.labels);
    }
  } finally {
    await rt.release();
  }
  const totalS = (performance.now() - t0) / 1000;

  const pairs = scenes.reduce((n, s) => n + sceneCases(s).length, 0);
  const twoClass = scenes.filter((s) => sceneCases(s).length === 2).length;
  const layer = rt.info.defaultLayer;
  const dims = rt.tensorDims(layer);
  out('## Localisation benchmark: CAM methods on held-out synthetic scenes');
  out();
  out(`- date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`);
  out(`- machine: ${cpuModel()}, ${cores} cores (shared), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; ${os.type()} ${os.release()}`);
  out(`- software: Node ${process.version}, onnxruntime-node ${packageVersion('onnxruntime-node')}, sharp ${packageVersion('sharp')}; ${flags.threads} intra-op thread(s)`);
  out(`- command: \`npm run bench:localisation${argv.length ? ` -- ${argv.join(' ')}` : ''}\` (${totalS.toFixed(0)} s in all)`);
  out(`- model: \`${path.relative(ROOT, flags.model) || '.'}\`, layer \`${layer}\` (${dims ? dims.slice(1).join('×') : '?'}), maps upsampled bilinearly to 128×128`);
  out(`- scenes: seeds ${flags.start}..${flags.start + flags.scenes - 1} (held out, never trained on): ${flags.scenes} scenes, ${pairs} (scene, class) pairs, ` +
    `${twoClass} two-class scenes (${2 * twoClass} pairs for the discriminative score)`);
  out();
  const roadPairs = [...roads.values()][0]?.pairs ?? 0;
  out(`| method | scenes | pointing game | energy-in-box | class-discriminative (two-class scenes) | ROAD combined (${roadPairs} pairs) | explain, ms/scene |`);
  out('|---|---:|---:|---:|---:|---:|---:|');
  for (const [m, r] of results) {
    const subset = r.scenes < flags.scenes ? ` (first ${r.scenes} only)` : '';
    const road = roads.get(m);
    out(`| ${m} | ${r.scenes}${subset} | ${pct(r.pointing)} (${r.pairs}) | ${pct(r.energy)} | ${pct(r.discriminative)} (${r.discPairs}) | ${road ? road.mean.toFixed(4) : '–'} | ${ms(r.msPerScene)} |`);
  }
  const base = baselineSummary(scenes);
  out(`| *baseline: peak at the image centre* | ${base.centre.scenes} | ${pct(base.centre.pointing)} | – | ${pct(base.centre.discriminative)} | – | – |`);
  out(`| *baseline: uniform map* | ${base.centre.scenes} | – | ${pct(base.uniformEnergy)} | – | – | – |`);
  out();
  out('Pointing game: the maximum of the upsampled map lies inside a box of the explained class. Energy-in-box: share of the ' +
    'map\'s non-negative mass inside the boxes of the class (mean over pairs; the uniform map gives the boxes\' mean share of the ' +
    'image). Class-discriminative: in scenes with exactly two classes A and B, the map of A peaks inside A\'s box and not inside B\'s ' +
    '(each of A and B counted). Every class present in a scene is explained, whatever the model predicts. ' +
    `ms/scene: one explain() call with every class of the scene as a target (${(pairs / scenes.length).toFixed(2)} on average). ` +
    `ROAD combined: pytorch-grad-cam's ROADCombined ((least-relevant-first − most-relevant-first) / 2 of the sigmoid score, ` +
    `percentiles ${flags.roadPercentiles.join('/')}; higher is more faithful) over every class of the first ${flags.roadScenes} scenes.`);
  out();

  const acc = accuracy.summary();
  out(`### Model accuracy on the same ${acc.n} held-out scenes`);
  out();
  out(`Exact match (all ${NUM_CLASSES} sigmoid > 0.5 decisions right): **${pct(acc.exactMatch)}**; per-decision (Hamming) accuracy ${pct(acc.hamming)}.`);
  out();
  out(`| class | ${CLASS_NAMES.join(' | ')} |`);
  out(`|---|${CLASS_NAMES.map(() => '---:').join('|')}|`);
  out(`| accuracy | ${acc.perClass.map((c) => pct(c.accuracy)).join(' | ')} |`);
  out(`| recall | ${acc.perClass.map((c) => pct(c.recall)).join(' | ')} |`);
  out(`| precision | ${acc.perClass.map((c) => pct(c.precision)).join(' | ')} |`);
  out(`| positives | ${acc.perClass.map((c) => c.positives).join(' | ')} |`);
  out();

  const g = results.get('gradcam');
  if (g) {
    out('### Targets');
    out();
    out(`- ${g.pointing >= 0.95 ? '✅' : '❌'} Grad-CAM pointing game ≥ 95%: ${pct(g.pointing)}`);
    out(`- ${g.discriminative >= 0.9 ? '✅' : '❌'} Grad-CAM class-discriminative pointing ≥ 90%: ${pct(g.discriminative)}`);
    out();
  }
  if (flags.out) {
    writeFileSync(flags.out, lines.join('\n') + '\n');
    log(`wrote ${flags.out}`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
