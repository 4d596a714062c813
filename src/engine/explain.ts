// Explaining one input, top-down as pytorch-grad-cam's BaseCAM.forward reads: resolve the method, layers,
// classes and what is differentiated (the target kind's seed vectors) → run the passes → one raw map per
// class and layer → combine the layers. aug_smooth is the same loop over augmented inputs, in its own
// function; input-gradient methods (attribution.ts) and DFF (factorization.ts) have their own paths.
import * as ort from 'onnxruntime-node';
import {
  type CamMethod, type FinerOptions, type LayerTensors, type Method, MethodError, type MethodName, METHODS,
  type NoisyRun, noiseSamples, rawMap, refineMaps, type TargetKind, withChannelGradient,
} from '../cam/index.js';
import { cancelled } from '../errors/index.js';
import { averageMaps, type CamMap } from '../render/index.js';
import { atInputSize, explainInput } from './attribution.js';
import { explainFactorization, type Factorization } from './factorization.js';
import { runPasses, type Passes, type SeedFn, type TrunkRun } from './passes.js';
import { StepProgress } from './progress.js';
import { metricSubject, type MetricsEvaluator, type MetricsRequest } from './subject.js';
import { forwardRunner, type RunnerOptions } from './perturb.js';
import type { LayerSet, ModelRuntime } from './runtime.js';
import { targetChooser, targeting, targetOf, type Targeting } from './targeting.js';

export interface ExplainRequest {
  /** the preprocessed input, laid out as info.inputDims */
  input: Float32Array;
  method: MethodName;
  /** class indices to explain (target kind `binary`: the category, 0 or 1); default: the top `topk` classes (default 1) */
  targets?: number[];
  topk?: number;
  /** target tensors; default: the model's default layer */
  layers?: string[];
  eigenSmooth?: boolean;
  augSmooth?: boolean;
  /** what is differentiated for each class (default `class`: its logit; a method may fix it, as Finer-CAM) */
  targetKind?: TargetKind;
  /** Finer-CAM's comparison ranks and α (target kind `finer`) */
  finer?: FinerOptions;
  /** seed of the method's random draws (noise, random weights, the NMF start); default 0 */
  seed?: number;
  /** the method's random draws as data instead (tests replay the libraries' noise), laid out as its module says */
  draws?: Float32Array;
  /** DFF: the number of concepts (default 5) */
  concepts?: number;
  /** faithfulness metrics of each explanation, computed by `ExplainOptions.evaluateMetrics` */
  metrics?: MetricsRequest;
}

export interface ExplainOptions extends RunnerOptions {
  /** computes the metrics a request asks for (src/metrics' evaluateMetrics), with the engine's batched runs */
  evaluateMetrics?: MetricsEvaluator;
  /** the trunk's outputs for this input, already run (one image of a batched forward pass) */
  trunk?: TrunkRun;
}

/** What the map loops see: the options, with the end of each step (for progress). */
type LoopOptions = ExplainOptions & { stepDone?(): void };

export interface LayerMap { layer: string; map: CamMap }

export interface Explanation {
  /** the class (target kind `binary`: the model's one output, 0), its logit and the objective's value */
  target: { index: number; logit: number; objective: number };
  /** target kind `binary`: the category explained (1: the output itself, 0: its negation) */
  category?: 0 | 1;
  /** raw map per layer, at that layer's resolution (input-gradient methods: the input's, under its name) */
  layers: LayerMap[];
  /** the map to render: the raw layer map for one layer; for several, their normalised maps at the input size combined */
  map: CamMap;
  /** the metrics asked for, by name */
  metrics?: Record<string, number>;
}

export interface ExplainResult {
  logits: Float32Array;
  /** the tensors the maps are of: the layers, or the model input for input-gradient methods */
  layers: string[];
  targetKind: TargetKind;
  explanations: Explanation[];
  /** DFF's concepts (no explanations then) */
  factorization?: Factorization;
  timings: Record<string, number>;
}

const now = () => performance.now();

export function methodOf(name: MethodName): Method {
  if (!Object.hasOwn(METHODS, name)) throw new MethodError(`unknown method ${name}`);
  return METHODS[name];
}

export async function explain(rt: ModelRuntime, req: ExplainRequest, opts: ExplainOptions = {}): Promise<ExplainResult> {
  const result = await explainOnly(rt, req, opts);
  const spec = req.metrics;
  if (!spec?.names.length) return result;
  if (!opts.evaluateMetrics) throw new Error('metrics were asked for without an evaluator');
  if (result.factorization) throw new MethodError(`${req.method} has no map per class to measure`);
  const t = now();
  const again = async (r: ExplainRequest) => (await explainOnly(rt, r, opts)).explanations[0];
  for (const e of result.explanations) {
    e.metrics = await opts.evaluateMetrics(spec, metricSubject(rt, req, e, spec.score, opts, again));
  }
  result.timings.metrics_ms = now() - t;
  return result;
}

async function explainOnly(rt: ModelRuntime, req: ExplainRequest, opts: ExplainOptions): Promise<ExplainResult> {
  const method = methodOf(req.method);
  if (req.targetKind !== 'binary') rt.checkTargets(req.targets);
  if (method.kind === 'input') {
    // Guided Grad-CAM's second factor: Grad-CAM of the same class and objective at the request's layer.
    const layerCam = async (target: number, targetKind: TargetKind) => {
      const r = await explainLayers(rt, METHODS.gradcam as CamMethod, { ...req, method: 'gradcam', targets: [target], targetKind, augSmooth: false, eigenSmooth: false }, opts);
      return atInputSize(rt, r.explanations[0].map);
    };
    return explainInput(rt, method, req, opts, layerCam);
  }
  if (method.kind === 'factorization') return explainFactorization(rt, method, req, opts);
  return explainLayers(rt, method, req, opts);
}

async function explainLayers(rt: ModelRuntime, method: CamMethod, req: ExplainRequest, opts: ExplainOptions): Promise<ExplainResult> {
  const timings: Record<string, number> = {};
  const layers = rt.resolveLayers(req.layers);

  let t = now();
  const set = await rt.layerSet(layers);
  if (method.needs === 'gradients' && !(await rt.linearGradients(set))) await rt.headRun(set);
  if (method.hessian) for (const l of layers) await rt.hessianRun(set, l);
  timings.prepare_ms = now() - t;

  const gradients = method.needs === 'gradients';
  // The first pass decides the classes and (Finer-CAM) the comparison classes; seeds follow the target kind.
  let tg: Targeting | undefined;
  const seed: SeedFn = (logits, c) => tg!.seed(logits, c);
  const kind = method.targetKind ?? req.targetKind ?? 'class';
  const base = await runPasses(rt, set, req.input, {
    gradients, timings, signal: opts.signal, seed, trunk: opts.trunk,
    choose: (logits) => {
      tg = targeting(rt, method, req, logits);
      return targetChooser(kind, req)(logits);
    },
  });

  t = now();
  const passesBefore = (timings.forward_ms ?? 0) + (timings.backward_ms ?? 0);
  // Progress counts forward runs over every (augmentation, class, layer) step; a step without any counts as one.
  const steps = (req.augSmooth ? AUGMENTATIONS.length : 1) * base.targets.length * layers.length;
  const progress = opts.progress ? new StepProgress(steps, opts.progress) : undefined;
  const loop: LoopOptions = { ...opts, progress: progress?.runner, stepDone: progress?.stepDone };
  const maps = req.augSmooth
    ? await augSmoothMaps(rt, set, method, req, base, tg!, timings, loop)
    : await layerMaps(rt, set, method, req, base, tg!, timings, loop);
  const explanations = base.targets.map((target, ti) => ({
    ...targetOf(tg!.kind, target, base.logits, tg!.objective(target)),
    ...combine(rt, layers, maps[ti], method.combine ?? 'mean'),
  }));
  // aug_smooth's and the noisy methods' extra passes are counted as forward/backward time, not twice.
  timings.cam_ms = now() - t - ((timings.forward_ms ?? 0) + (timings.backward_ms ?? 0) - passesBefore);
  // Predictions are the model's own (a quantized model's, where its float twin gave the maps).
  return { logits: base.predicted ?? base.logits, layers, targetKind: tg!.kind, explanations, timings };
}

/** Raw maps [target][layer] of one run of the passes. */
async function layerMaps(
  rt: ModelRuntime, set: LayerSet, method: CamMethod, req: ExplainRequest, run: Passes, tg: Targeting,
  timings: Record<string, number>, opts: LoopOptions, input = req.input,
): Promise<Float32Array[][]> {
  const runner = forwardRunner(rt, set, input, opts, tg.objective);
  const noisy = method.noisy ? await noisyPasses(rt, set, method.noisy, req, input, run, tg, timings, opts) : undefined;
  const out: Float32Array[][] = [];
  for (const [ti, target] of run.targets.entries()) {
    const perLayer: Float32Array[] = [];
    for (const layer of set.layers) {
      if (opts.signal?.aborted) throw cancelled();
      const [, C, h, w] = rt.tensorDims(layer)!;
      const size = C * h * w;
      // A gradient constant per channel (the linear shortcut) is handed over as such; G is spread only if read.
      const Gc = run.channelGradients?.[layer]?.subarray(ti * C, (ti + 1) * C);
      const tensors: LayerTensors = Gc
        ? withChannelGradient({ name: layer, C, h, w, A: run.activations[layer] }, Gc)
        : { name: layer, C, h, w, A: run.activations[layer], G: run.gradients?.[layer].subarray(ti * size, (ti + 1) * size) };
      if (method.hessian) tensors.HA = await hessianVector(rt, set, layer, run, tg.seed(run.logits, target), timings);
      if (noisy) {
        const runs: NoisyRun[] = noisy.map((p) => ({ A: p.activations[layer], G: p.gradients![layer].subarray(ti * size, (ti + 1) * size) }));
        perLayer.push(method.noisy!.map(tensors, runs));
        opts.stepDone?.();
        continue;
      }
      const ctx = { target, score: tg.objective(target)(run.logits), runner, seed: req.seed ?? 0, draws: req.draws };
      perLayer.push(await rawMap(method, tensors, ctx, { eigenSmooth: req.eigenSmooth }));
      opts.stepDone?.();
    }
    out.push(perLayer);
  }
  return out;
}

/** H·A of one layer for one target (seed row): one run of the head's twice-differentiated graph. */
async function hessianVector(rt: ModelRuntime, set: LayerSet, layer: string, run: Passes, seedRow: ArrayLike<number>, timings: Record<string, number>): Promise<Float32Array> {
  const hv = await rt.hessianRun(set, layer);
  if (!hv.session) return new Float32Array(run.activations[layer].length);
  const feeds: Record<string, ort.Tensor> = {
    [hv.seed]: new ort.Tensor('float32', Float32Array.from(seedRow), [1, ...rt.tensorDims(rt.info.logits)!.slice(1)]),
    [hv.vector]: new ort.Tensor('float32', Float32Array.from(run.activations[layer]), rt.tensorDims(layer)!),
  };
  for (const name of hv.inputs) feeds[name] = run.trunkOut[name] as ort.Tensor;
  const t = now();
  const out = await hv.session.session.run(feeds, [hv.output]);
  timings.backward_ms = (timings.backward_ms ?? 0) + now() - t;
  return Float32Array.from(out[hv.output].data as Float32Array);
}

/**
 * The passes of a noisy method on x + δ_s, s = 1..samples: δ_s from the request's draws [samples, …input],
 * else N(0, std²) from its seed, drawn in order.
 */
async function noisyPasses(
  rt: ModelRuntime, set: LayerSet, noisy: NonNullable<CamMethod['noisy']>, req: ExplainRequest, input: Float32Array, base: Passes,
  tg: Targeting, timings: Record<string, number>, opts: ExplainOptions,
): Promise<Passes[]> {
  const { samples, noise } = noiseSamples(input.length, { draws: req.draws, samples: noisy.samples, std: noisy.std, seed: req.seed ?? 0 });
  const out: Passes[] = [];
  for (let s = 0; s < samples; s++) {
    const d = noise(s);
    const x = Float32Array.from(input, (v, i) => v + d[i]);
    out.push(await runPasses(rt, set, x, { gradients: true, choose: () => base.targets, timings, signal: opts.signal, seed: tg.seed }));
  }
  return out;
}

/** pytorch-grad-cam's aug_smooth: horizontal flip × input scaled by 0.9/1/1.1; each map flipped back; the mean. */
const AUGMENTATIONS: readonly (readonly [flip: boolean, factor: number])[] = [[false, 1], [false, 0.9], [false, 1.1], [true, 1], [true, 0.9], [true, 1.1]];

async function augSmoothMaps(
  rt: ModelRuntime, set: LayerSet, method: CamMethod, req: ExplainRequest, base: Passes, tg: Targeting, timings: Record<string, number>, opts: LoopOptions,
): Promise<Float32Array[][]> {
  const gradients = method.needs === 'gradients';
  let sum: Float32Array[][] | undefined;
  for (const [flip, factor] of AUGMENTATIONS) {
    const input = flip || factor !== 1 ? augment(rt, req.input, flip, factor) : req.input;
    const run = input === req.input ? base : await runPasses(rt, set, input, { gradients, choose: () => base.targets, timings, signal: opts.signal, seed: tg.seed });
    const maps = await layerMaps(rt, set, method, req, run, tg, timings, opts, input);
    if (flip) for (const perLayer of maps) perLayer.forEach((map, li) => flipRows(map, ...spatial(rt, set.layers[li])));
    if (!sum) sum = maps;
    else sum.forEach((perLayer, ti) => perLayer.forEach((acc, li) => { for (let i = 0; i < acc.length; i++) acc[i] += maps[ti][li][i]; }));
  }
  for (const perLayer of sum!) for (const acc of perLayer) for (let i = 0; i < acc.length; i++) acc[i] /= AUGMENTATIONS.length;
  return sum!;
}

/**
 * One explanation's maps: each layer's raw map, and the map to render. Several layers: the mean of their
 * normalised maps at the input size (pytorch-grad-cam's aggregate_multi_layers), or their product (RefineCAM).
 */
function combine(rt: ModelRuntime, layers: string[], maps: Float32Array[], how: 'mean' | 'product'): Pick<Explanation, 'layers' | 'map'> {
  const layerMaps: LayerMap[] = layers.map((layer, li) => {
    const [h, w] = spatial(rt, layer);
    return { layer, map: { width: w, height: h, data: maps[li] } };
  });
  const { width, height } = rt.info.inputSize;
  const all = layerMaps.map((l) => l.map);
  const map = layerMaps.length === 1 ? layerMaps[0].map : how === 'product' ? refineMaps(all, width, height) : averageMaps(all, width, height);
  return { layers: layerMaps, map };
}

/** Flip horizontally and/or scale the (normalised) input, for aug_smooth. */
function augment(rt: ModelRuntime, input: Float32Array, flip: boolean, factor: number): Float32Array {
  const out = Float32Array.from(input, (v) => v * factor);
  if (!flip) return out;
  const nhwc = rt.info.manifest.input.layout === 'NHWC';
  const { height: H, width: W, channels: C } = rt.info.inputSize;
  const res = new Float32Array(out.length);
  for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const src = nhwc ? (y * W + x) * C + c : (c * H + y) * W + x;
    const dst = nhwc ? (y * W + (W - 1 - x)) * C + c : (c * H + y) * W + (W - 1 - x);
    res[dst] = out[src];
  }
  return res;
}

function spatial(rt: ModelRuntime, layer: string): [h: number, w: number] {
  const dims = rt.tensorDims(layer)!;
  return [dims[2], dims[3]];
}

function flipRows(map: Float32Array, h: number, w: number): void {
  for (let y = 0; y < h; y++) map.subarray(y * w, (y + 1) * w).reverse();
}
