// Explaining one input, top-down as pytorch-grad-cam's BaseCAM.forward reads: resolve the method, layers
// and classes → run the passes → one raw map per class and layer → aggregate over layers. aug_smooth is
// the same loop over augmented inputs, in its own function.
import { type CamMethod, type LayerTensors, MethodError, type MethodName, METHODS, rawMap } from '../cam/index.js';
import { cancelled } from '../errors/index.js';
import { averageMaps, type CamMap } from '../render/index.js';
import { chooseTargets, runPasses, type Passes, type TrunkRun } from './passes.js';
import { forwardRunner, type RunnerOptions } from './perturb.js';
import { StepProgress } from './progress.js';
import type { LayerSet, ModelRuntime } from './runtime.js';

export interface ExplainRequest {
  /** the preprocessed input, laid out as info.inputDims */
  input: Float32Array;
  method: MethodName;
  /** class indices to explain; default: the top `topk` classes (default 1) */
  targets?: number[];
  topk?: number;
  /** target tensors; default: the model's default layer */
  layers?: string[];
  eigenSmooth?: boolean;
  augSmooth?: boolean;
}

export interface ExplainOptions extends RunnerOptions {
  /** the trunk's outputs for this input, already run (one image of a batched forward pass) */
  trunk?: TrunkRun;
}

/** What the map loops see: the runner's options, and the end of each step (for progress). */
type LoopOptions = RunnerOptions & { stepDone?(): void };

export interface LayerMap { layer: string; map: CamMap }

export interface Explanation {
  target: { index: number; logit: number };
  /** raw map per layer, at that layer's resolution */
  layers: LayerMap[];
  /** the map to render: the raw layer map for one layer; for several, the mean of their normalised maps at the input size */
  map: CamMap;
}

export interface ExplainResult {
  logits: Float32Array;
  explanations: Explanation[];
  timings: Record<string, number>;
}

const now = () => performance.now();

export async function explain(rt: ModelRuntime, req: ExplainRequest, opts: ExplainOptions = {}): Promise<ExplainResult> {
  const timings: Record<string, number> = {};
  const method = methodOf(req.method);
  const layers = rt.resolveLayers(req.layers);
  rt.checkTargets(req.targets);

  let t = now();
  const set = await rt.layerSet(layers);
  if (method.needs === 'gradients') await rt.headRun(set);
  timings.prepare_ms = now() - t;

  const gradients = method.needs === 'gradients';
  const base = await runPasses(rt, set, req.input, { gradients, choose: chooseTargets(req.targets, req.topk), timings, signal: opts.signal, trunk: opts.trunk });

  t = now();
  const passesBefore = (timings.forward_ms ?? 0) + (timings.backward_ms ?? 0);
  // Progress counts forward runs over every (augmentation, class, layer) step; a step without any counts as one.
  const steps = (req.augSmooth ? AUGMENTATIONS.length : 1) * base.targets.length * layers.length;
  const progress = opts.progress ? new StepProgress(steps, opts.progress) : undefined;
  const loop: LoopOptions = { signal: opts.signal, progress: progress?.runner, stepDone: progress?.stepDone };
  const maps = req.augSmooth
    ? await augSmoothMaps(rt, set, method, req, base, timings, loop)
    : await layerMaps(rt, set, method, req, base, loop);
  const explanations = base.targets.map((target, ti) => aggregate(rt, layers, maps[ti], { index: target, logit: base.logits[target] }));
  // aug_smooth's extra passes are counted as forward/backward time, not twice.
  timings.cam_ms = now() - t - ((timings.forward_ms ?? 0) + (timings.backward_ms ?? 0) - passesBefore);
  // Predictions are the model's own (a quantized model's, where its float twin gave the maps).
  return { logits: base.predicted ?? base.logits, explanations, timings };
}

function methodOf(name: MethodName): CamMethod {
  if (!Object.hasOwn(METHODS, name)) throw new MethodError(`unknown method ${name}`);
  return METHODS[name];
}

/** Raw maps [target][layer] of one run of the passes. */
async function layerMaps(rt: ModelRuntime, set: LayerSet, method: CamMethod, req: ExplainRequest, run: Passes, opts: LoopOptions): Promise<Float32Array[][]> {
  const runner = forwardRunner(rt, set, req.input, opts);
  const out: Float32Array[][] = [];
  for (const [ti, target] of run.targets.entries()) {
    const perLayer: Float32Array[] = [];
    for (const layer of set.layers) {
      if (opts.signal?.aborted) throw cancelled();
      const [, C, h, w] = rt.tensorDims(layer)!;
      const G = run.gradients?.[layer].subarray(ti * C * h * w, (ti + 1) * C * h * w);
      const tensors: LayerTensors = { name: layer, C, h, w, A: run.activations[layer], G };
      perLayer.push(await rawMap(method, tensors, { target, score: run.logits[target], runner }, { eigenSmooth: req.eigenSmooth }));
      opts.stepDone?.();
    }
    out.push(perLayer);
  }
  return out;
}

/** pytorch-grad-cam's aug_smooth: horizontal flip × input scaled by 0.9/1/1.1; each map flipped back; the mean. */
const AUGMENTATIONS: readonly (readonly [flip: boolean, factor: number])[] = [[false, 1], [false, 0.9], [false, 1.1], [true, 1], [true, 0.9], [true, 1.1]];

async function augSmoothMaps(
  rt: ModelRuntime, set: LayerSet, method: CamMethod, req: ExplainRequest, base: Passes, timings: Record<string, number>, opts: LoopOptions,
): Promise<Float32Array[][]> {
  const gradients = method.needs === 'gradients';
  let sum: Float32Array[][] | undefined;
  for (const [flip, factor] of AUGMENTATIONS) {
    const input = flip || factor !== 1 ? augment(rt, req.input, flip, factor) : req.input;
    const run = input === req.input ? base : await runPasses(rt, set, input, { gradients, choose: () => base.targets, timings, signal: opts.signal });
    const maps = await layerMaps(rt, set, method, { ...req, input }, run, opts);
    if (flip) for (const perLayer of maps) perLayer.forEach((map, li) => flipRows(map, ...spatial(rt, set.layers[li])));
    if (!sum) sum = maps;
    else sum.forEach((perLayer, ti) => perLayer.forEach((acc, li) => { for (let i = 0; i < acc.length; i++) acc[i] += maps[ti][li][i]; }));
  }
  for (const perLayer of sum!) for (const acc of perLayer) for (let i = 0; i < acc.length; i++) acc[i] /= AUGMENTATIONS.length;
  return sum!;
}

/** One explanation: each layer's raw map, and the map to render (several layers: the mean of their normalised maps). */
function aggregate(rt: ModelRuntime, layers: string[], maps: Float32Array[], target: Explanation['target']): Explanation {
  const layerMaps: LayerMap[] = layers.map((layer, li) => {
    const [h, w] = spatial(rt, layer);
    return { layer, map: { width: w, height: h, data: maps[li] } };
  });
  const map = layerMaps.length === 1
    ? layerMaps[0].map
    : averageMaps(layerMaps.map((l) => l.map), rt.info.inputSize.width, rt.info.inputSize.height);
  return { target, layers: layerMaps, map };
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
