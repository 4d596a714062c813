// `npm run bench:compare -- --base REV`: the in-process Grad-CAM ratio (explanation time / bare forward
// time) of this tree and of commit REV, measured alternately in one run, so that a restructuring can show
// it costs nothing. REV is checked out into a temporary git worktree that shares this tree's node_modules.
//
//   npm run bench:compare -- --base <rev> [--model resnet50] [--rounds 6] [--runs 20] [--threads T]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_MODELS, median } from './engine.js';

const { values } = parseArgs({
  options: {
    base: { type: 'string' }, model: { type: 'string', default: 'resnet50' }, rounds: { type: 'string', default: '6' },
    runs: { type: 'string', default: '20' }, threads: { type: 'string', default: String(os.availableParallelism?.() ?? os.cpus().length) },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help || !values.base) {
  process.stdout.write('usage: npm run bench:compare -- --base REV [--model resnet50] [--rounds 6] [--runs 20] [--threads T]\n');
  process.exit(values.help ? 0 : 2);
}
const modelDir = path.join(BENCH_MODELS, values.model!);
if (!existsSync(path.join(modelDir, 'model.onnx'))) throw new Error(`${modelDir}/model.onnx is missing: /usr/bin/python3 tools/fixtures/generate.py --big-extdata`);

/**
 * One measurement in a fresh process: `runs` bare forwards and `runs` gradcam explanations in alternating
 * blocks of 5, with the engine found under either layout (src/engine after the restructuring, src/models before).
 */
const PROBE = `
import * as ort from 'onnxruntime-node';
import { existsSync } from 'node:fs';
import path from 'node:path';
const [tree, dir, runs, threads] = process.argv.slice(2);
const engine = ['src/engine/runtime.ts', 'src/models/runtime.ts'].map((p) => path.join(tree, p)).find(existsSync);
const { ModelRuntime } = await import(engine);
const rt = await ModelRuntime.load(dir, { intraOpThreads: Number(threads), spinning: false });
const n = rt.info.inputDims.reduce((a, b) => a * b, 1);
const input = () => Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.5);
const bare = (await import(path.join(tree, 'src/onnx/session.ts')));
const model = rt.model;
const opts = bare.ortSessionOptions({ intraOpThreads: Number(threads), spinning: false });
if (model.externalFiles.length) opts.externalData = await model.externalData();
const session = await ort.InferenceSession.create(model.bytes, opts);
const forward = () => session.run({ [rt.info.inputName]: new ort.Tensor('float32', input(), rt.info.inputDims) });
const gradcam = () => rt.explain({ input: input(), method: 'gradcam' });
for (let i = 0; i < 3; i++) { await forward(); await gradcam(); }
const times = { forward: [], gradcam: [] };
for (let done = 0; done < Number(runs); done += 5) {
  for (const [k, f] of [['forward', forward], ['gradcam', gradcam]]) {
    for (let i = 0; i < 5; i++) { const t = performance.now(); await f(); times[k].push(performance.now() - t); }
  }
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
process.stdout.write(JSON.stringify({ forward: med(times.forward), gradcam: med(times.gradcam) }) + '\\n');
process.exit(0);
`;

const work = mkdtempSync(path.join(os.tmpdir(), 'camserve-compare-'));
const baseTree = path.join(work, 'base');
const probe = path.join(work, 'probe.mjs');
try {
  execFileSync('git', ['worktree', 'add', '--detach', baseTree, values.base!], { stdio: 'ignore' });
  symlinkSync(path.resolve('node_modules'), path.join(baseTree, 'node_modules'));
  writeFileSync(probe, PROBE);
  // The probe resolves onnxruntime-node from beside itself.
  symlinkSync(path.resolve('node_modules'), path.join(work, 'node_modules'));
  const trees = { base: baseTree, head: path.resolve('.') };
  const ratios: Record<string, number[]> = { base: [], head: [] };
  const ms: Record<string, { forward: number[]; gradcam: number[] }> = { base: { forward: [], gradcam: [] }, head: { forward: [], gradcam: [] } };
  for (let round = 0; round < Number(values.rounds); round++) {
    // Alternate the order too, so neither tree always runs on a machine the other has just warmed.
    for (const which of (round % 2 ? ['head', 'base'] : ['base', 'head']) as ('base' | 'head')[]) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', probe, trees[which], modelDir, values.runs!, values.threads!], { encoding: 'utf8', cwd: trees[which] });
      if (r.status !== 0) throw new Error(`${which} probe failed: ${r.stderr}`);
      const m = JSON.parse(r.stdout.trim().split('\n').pop()!) as { forward: number; gradcam: number };
      ms[which].forward.push(m.forward);
      ms[which].gradcam.push(m.gradcam);
      ratios[which].push(m.gradcam / m.forward);
      process.stdout.write(`round ${round + 1} ${which}: forward ${m.forward.toFixed(2)} ms, gradcam ${m.gradcam.toFixed(2)} ms, ratio ${(m.gradcam / m.forward).toFixed(3)}\n`);
    }
  }
  const rev = (t: string) => execFileSync('git', ['-C', t, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  process.stdout.write(`\n| tree | commit | bare forward | gradcam | gradcam / forward (median of ${values.rounds} rounds) |\n|---|---|---:|---:|---:|\n`);
  for (const which of ['base', 'head'] as const) {
    process.stdout.write(`| ${which} | ${rev(trees[which])} | ${median(ms[which].forward).toFixed(2)} ms | ${median(ms[which].gradcam).toFixed(2)} ms | ${median(ratios[which]).toFixed(3)}× |\n`);
  }
  const change = median(ratios.head) / median(ratios.base) - 1;
  process.stdout.write(`\nhead vs base: ${(change * 100).toFixed(1)} % in the gradcam ratio (${values.model}, ${values.threads} threads, ${os.cpus()[0]?.model ?? ''})\n`);
} finally {
  spawnSync('git', ['worktree', 'remove', '--force', baseTree]);
  rmSync(work, { recursive: true, force: true });
}
