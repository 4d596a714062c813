// In-process engine benchmark: bare onnxruntime forward versus camserve's explanations, side by side in
// one run, as ratios; plus the cost of building the explain graph of a large model.
import os from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { buildGradientPatch } from '../src/autodiff/builder.js';
import { extractHead } from '../src/onnx/graph.js';
import { OnnxModel } from '../src/onnx/model.js';
import { ortSessionOptions, probeShapes } from '../src/onnx/session.js';
import { ModelRuntime } from '../src/engine/runtime.js';
import type { MethodName } from '../src/cam/types.js';

export const BENCH_MODELS = path.resolve('bench/models');

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

async function timeIt(fn: () => Promise<unknown>, runs: number, warmup = 2): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

export interface EngineRow { model: string; what: string; ms: number; ratio: number; note?: string }

export interface EngineResult {
  rows: EngineRow[];
  /** median of the bare forward, ms: the floor every ratio is relative to */
  bareMs: number;
  /** median of the bare forward with onnxruntime's default session options, ms */
  bareDefaultMs: number;
  /** median of the bare forward with camserve's server options (intra-op threads do not spin), ms */
  bareNoSpinMs: number;
  /** median stage times of one gradcam explanation (forward, backward, cam, prepare), ms */
  stages: Record<string, number>;
  /** the default layer's channel count */
  channels: number;
}

export interface EngineOptions {
  /** time Score-CAM (C whole-model runs: minutes for a ResNet-50 on 2 cores) */
  scorecam?: boolean;
  /** time Ablation-CAM (C head runs, batched) */
  ablationcam?: boolean;
  /** Score-CAM / Ablation-CAM batch size (the runtime's default: 16) */
  batchSize?: number;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Bare forward vs gradcam vs topk=5 vs eigencam; then Score-CAM and Ablation-CAM against the number of
 * runs they need. Each case runs in blocks of back-to-back calls (its steady state, as a loop of requests
 * sees it), the blocks of all cases alternating over several rounds so that drift hits all alike, with a
 * pause before each block so that no case inherits another's busy threads.
 *
 * The floor is the faster of two bare sessions of the original model: onnxruntime's default options
 * (spinning intra-op threads), and camserve's options for the server's sessions (no spinning).
 */
export async function benchEngine(name: string, runs: number, threads: number, opts: EngineOptions = {}): Promise<EngineResult> {
  const dir = path.join(BENCH_MODELS, name);
  const batchSize = opts.batchSize ?? 16;
  const rt = await ModelRuntime.load(dir, { intraOpThreads: threads, batchSize });
  const bytes = await readFile(path.join(dir, 'model.onnx'));
  const model = await OnnxModel.load(path.join(dir, 'model.onnx'));
  const externalData = model.externalFiles.length > 0 ? await model.externalData() : undefined;
  const ortDefaults = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, ...(externalData ? { externalData } : {}) });
  const serverOptions = ortSessionOptions({ intraOpThreads: threads, spinning: false });
  if (externalData) serverOptions.externalData = externalData;
  const bareServer = await ort.InferenceSession.create(bytes, serverOptions);
  const n = rt.info.inputDims.reduce((a, b) => a * b, 1);
  const input = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.01));
  const feed = { [rt.info.inputName]: new ort.Tensor('float32', input, rt.info.inputDims) };
  let stageTimes: Record<string, number[]> = {};
  const explain = async (method: MethodName, topk = 1) => {
    const r = await rt.explain({ input, method, topk });
    if (method === 'gradcam' && topk === 1) for (const [k, v] of Object.entries(r.timings)) (stageTimes[k] ??= []).push(v);
    return r;
  };

  const cases: [string, () => Promise<unknown>][] = [
    ['bare forward, onnxruntime defaults', () => ortDefaults.run(feed)],
    ['gradcam (forward + backward), top-1', () => explain('gradcam')],
    ['gradcam, topk=5 in one call', () => explain('gradcam', 5)],
    ['eigencam (forward only)', () => explain('eigencam')],
    ['bare forward, no spinning (the server\'s options)', () => bareServer.run(feed)],
  ];
  for (const [, fn] of cases) await timeIt(fn, 0, 3);
  stageTimes = {};
  const rounds = Math.max(1, Math.min(5, Math.floor(runs / 4)));
  const times = cases.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    for (const [i, [, fn]] of cases.entries()) {
      await pause(100);
      times[i].push(...(await timeIt(fn, Math.ceil(runs / rounds), 2)));
    }
  }
  await ortDefaults.release();
  await bareServer.release();
  const bareDefaultMs = median(times[0]);
  const bareNoSpinMs = median(times[4]);
  const base = Math.min(bareDefaultMs, bareNoSpinMs);
  const rows: EngineRow[] = cases.slice(0, 4).map(([what], i) => ({ model: name, what, ms: median(times[i]), ratio: median(times[i]) / base }));
  rows[0] = { model: name, what: 'bare forward (the faster of the two)', ms: base, ratio: 1 };
  await pause(100);
  rows[2].note = `${(rows[2].ms / rows[1].ms).toFixed(2)}× top-1`;
  const C = rt.tensorDims(rt.info.defaultLayer)![1];
  // The runtime's batch (a fixed batch of 1 made symbolic at load where the graph allows it).
  const dynamicBatch = rt.dynamicBatch;
  const batchWhy = typeof (model.inputs[0].dims ?? [])[0] === 'string' ? '' : `, ${rt.info.batch.note}`;
  if (opts.ablationcam ?? true) {
    await explain('ablationcam'); // builds the head-forward session
    const t = median(await timeIt(() => explain('ablationcam'), 3, 0));
    const headRuns = Math.ceil(C / batchSize);
    rows.push({
      model: name, what: `ablationcam (${C} channels)`, ms: t, ratio: t / base,
      note: `1 forward + ${C} head runs in ${headRuns} batches of ${batchSize}`,
    });
  }
  if (opts.scorecam ?? true) {
    const t = median(await timeIt(() => explain('scorecam'), 1, 0));
    const fwd = 1 + C;
    rows.push({
      model: name, what: `scorecam (${C} channels)`, ms: t, ratio: t / base,
      note: `${fwd} whole-model runs${dynamicBatch ? ` (batches of ≤ ${batchSize}${batchWhy})` : ` (batch 1${batchWhy})`}: ${(t / base / fwd).toFixed(2)}× a forward each`,
    });
  }
  const stages = Object.fromEntries(Object.entries(stageTimes).map(([k, v]) => [k, median(v)]));
  await rt.release();
  return { rows, bareMs: base, bareDefaultMs, bareNoSpinMs, stages, channels: C };
}

/** Time to build the explain graph of a large model: decode, probe, backward nodes, patch, head. */
export async function benchBuild(name: string): Promise<Record<string, number>> {
  const file = path.join(BENCH_MODELS, name, 'model.onnx');
  let t = performance.now();
  const model = await OnnxModel.load(file);
  const load = performance.now() - t;
  const input = model.inputs[0];
  const dims = [1, 3, 224, 224];
  t = performance.now();
  const shapes = await probeShapes(model, { [input.name]: new ort.Tensor('float32', new Float32Array(3 * 224 * 224), dims) });
  const probe = performance.now() - t;
  const logits = model.outputs[0].name;
  const mid = [...shapes.keys()].find((k) => k.includes('/layer3/layer3.2/relu_2/Relu_output_0')) ?? [...shapes.keys()][0];
  const last = [...shapes.keys()].find((k) => k.includes('/layer4/layer4.2/relu_2/Relu_output_0'))!;
  t = performance.now();
  const patch = await buildGradientPatch(model, shapes, { targets: [mid], output: logits });
  const patched = model.withPatch(patch.patch);
  const fullGraph = performance.now() - t;
  t = performance.now();
  extractHead(model, shapes, [last], logits).encode();
  const headLast = performance.now() - t;
  t = performance.now();
  const headBytes = extractHead(model, shapes, [mid], logits).encode();
  const headMid = performance.now() - t;
  return {
    model_mb: model.bytes.length / 1e6 + (model.externalFiles.length ? 0 : 0),
    decode_ms: load, probe_ms: probe,
    explain_graph_ms: fullGraph, explain_graph_patch_bytes: patched.length - model.bytes.length,
    backward_nodes: patch.patch.node?.length ?? 0,
    head_last_layer_ms: headLast, head_mid_layer_ms: headMid, head_mid_layer_mb: headBytes.length / 1e6,
  };
}

export function machine(): string {
  return `${os.cpus()[0]?.model ?? 'cpu'} × ${os.availableParallelism?.() ?? os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, onnxruntime-node ${ort.env.versions?.common ?? ''}`;
}

export function available(name: string): boolean {
  return existsSync(path.join(BENCH_MODELS, name, 'model.onnx'));
}
