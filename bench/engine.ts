// In-process engine benchmark: bare onnxruntime forward versus camserve's explanations, side by side in
// one run, as ratios; plus the cost of building the explain graph of a large model.
import os from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { buildGradientPatch } from '../src/autodiff/builder.js';
import { extractHead } from '../src/onnx/analysis.js';
import { OnnxModel } from '../src/onnx/model.js';
import { probeShapes } from '../src/onnx/session.js';
import { ModelRuntime } from '../src/models/runtime.js';
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

/** Bare forward vs gradcam vs topk=5 vs Score-CAM/Ablation-CAM, alternating runs so noise hits all alike. */
export async function benchEngine(name: string, runs: number, threads: number): Promise<EngineRow[]> {
  const dir = path.join(BENCH_MODELS, name);
  const rt = await ModelRuntime.load(dir, { intraOpThreads: threads, batchSize: 16 });
  const bytes = await readFile(path.join(dir, 'model.onnx'));
  const bare = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' });
  const n = rt.info.inputDims.reduce((a, b) => a * b, 1);
  const input = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.01));
  const feed = { [rt.info.inputName]: new ort.Tensor('float32', input, rt.info.inputDims) };
  const explain = (method: MethodName, topk = 1) => rt.explain({ input, method, topk });

  // Interleave: one of each per round.
  const cases: [string, () => Promise<unknown>][] = [
    ['bare forward (onnxruntime-node)', () => bare.run(feed)],
    ['gradcam (forward + backward), top-1', () => explain('gradcam')],
    ['gradcam, topk=5 in one call', () => explain('gradcam', 5)],
    ['eigencam (forward only)', () => explain('eigencam')],
  ];
  for (const [, fn] of cases) await timeIt(fn, 0, 2);
  const times = cases.map(() => [] as number[]);
  for (let r = 0; r < runs; r++) {
    for (const [i, [, fn]] of cases.entries()) times[i].push((await timeIt(fn, 1, 0))[0]);
  }
  const base = median(times[0]);
  const rows: EngineRow[] = cases.map(([what], i) => ({ model: name, what, ms: median(times[i]), ratio: median(times[i]) / base }));
  const C = rt.tensorDims(rt.info.defaultLayer)![1];
  for (const method of ['scorecam', 'ablationcam'] as const) {
    const t = median(await timeIt(() => explain(method), 1, 1));
    rows.push({
      model: name, what: `${method} (${C} channels)`, ms: t, ratio: t / base,
      note: method === 'scorecam' ? `${C} whole-model runs: ${(t / base / C).toFixed(2)}× a forward each` : `${C} head runs: ${(t / base / C).toFixed(3)}× a forward each`,
    });
  }
  await rt.release();
  await bare.release();
  return rows;
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
  extractHead(model, shapes, [last], logits);
  const headLast = performance.now() - t;
  t = performance.now();
  const head = extractHead(model, shapes, [mid], logits);
  const headMid = performance.now() - t;
  return {
    model_mb: model.bytes.length / 1e6 + (model.externalFiles.length ? 0 : 0),
    decode_ms: load, probe_ms: probe,
    explain_graph_ms: fullGraph, explain_graph_patch_bytes: patched.length - model.bytes.length,
    backward_nodes: patch.patch.node?.length ?? 0,
    head_last_layer_ms: headLast, head_mid_layer_ms: headMid, head_mid_layer_mb: head.bytes.length / 1e6,
  };
}

export function machine(): string {
  return `${os.cpus()[0]?.model ?? 'cpu'} × ${os.availableParallelism?.() ?? os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, onnxruntime-node ${ort.env.versions?.common ?? ''}`;
}

export function available(name: string): boolean {
  return existsSync(path.join(BENCH_MODELS, name, 'model.onnx'));
}
