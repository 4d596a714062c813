// The two runs every explanation starts with: the trunk (the model with the target layers as extra
// outputs: logits and activations) and, for gradient methods, the head's backward for K classes at once.
import * as ort from 'onnxruntime-node';
import { spreadChannels } from '../cam/index.js';
import { cancelled } from '../errors/index.js';
import type { LinearGradient } from '../onnx/index.js';
import { runHeadBackward, type LayerSet, type ModelRuntime } from './runtime.js';
import { topK } from './scores.js';

/** What the passes give: logits, the classes chosen, each layer's A [C·h·w] and G [K·C·h·w] by layer. */
export interface Passes {
  logits: Float32Array;
  /** the model's own logits where a float twin explains it (a quantized model): targets are chosen by them */
  predicted?: Float32Array;
  targets: number[];
  activations: Record<string, Float32Array>;
  /** per layer, K·C·h·w values: d objective[targets[k]] / d activations (spread on first read where channelGradients has the layer) */
  gradients?: Record<string, Float32Array>;
  /**
   * per layer whose gradient is constant over the positions (the pooling → linear shortcut), K·C values:
   * G[k, c, ·] = channelGradients[layer][k·C + c]
   */
  channelGradients?: Record<string, Float32Array>;
  /** every trunk output (the head's side inputs among them) */
  trunkOut: ort.InferenceSession.OnnxValueMapType;
}

/** The trunk's outputs for one input, run already (one image of a batched forward pass), and its share of the run's time. */
export interface TrunkRun {
  out: ort.InferenceSession.OnnxValueMapType;
  ms: number;
}

/** Picks the classes to explain once the logits are known. */
export type TargetChooser = (logits: Float32Array) => number[];

/** The seed row of an explained target for one run's logits: ∂objective/∂logits (one-hot for a class's logit). */
export type SeedFn = (logits: Float32Array, target: number) => ArrayLike<number>;

/** One-hot seeds: the gradient of the class's logit. */
export const oneHotSeed: SeedFn = (logits, target) => {
  const s = new Float32Array(logits.length);
  s[target] = 1;
  return s;
};

/** The given targets, else the `topk` best (default 1). */
export function chooseTargets(targets: readonly number[] | undefined, topk: number | undefined): TargetChooser {
  return (logits) => (targets?.length ? [...targets] : topK(logits, Math.min(Math.max(1, topk ?? 1), logits.length)));
}

const now = () => performance.now();

/** Runs the trunk and, with `gradients`, the head's backward for every chosen class in one run. */
export async function runPasses(
  rt: ModelRuntime, set: LayerSet, input: Float32Array,
  opts: { gradients: boolean; choose: TargetChooser; timings: Record<string, number>; signal?: AbortSignal; trunk?: TrunkRun; seed?: SeedFn },
): Promise<Passes> {
  const { timings, signal } = opts;
  let t = now();
  const trunkOut = opts.trunk?.out ?? await set.trunk.session.run({ [rt.info.inputName]: rt.inputTensor(input) });
  timings.forward_ms = (timings.forward_ms ?? 0) + (opts.trunk ? opts.trunk.ms : now() - t);
  if (signal?.aborted) throw cancelled();
  const logits = trunkOut[rt.info.logits].data as Float32Array;
  const predicted = await rt.predictionLogits(input);
  const targets = opts.choose(predicted ?? logits);
  const activations = Object.fromEntries(set.layers.map((l) => [l, trunkOut[l].data as Float32Array]));
  if (!opts.gradients) return { logits, predicted, targets, activations, trunkOut };

  const K = targets.length;
  const classes = rt.info.numClasses;
  const seed = new Float32Array(K * classes);
  const seedOf = opts.seed ?? oneHotSeed;
  targets.forEach((c, k) => { seed.set(seedOf(logits, c), k * classes); });
  // A GAP → linear head: the gradient is the seed times the classifier's weights, at every position.
  const linear = await rt.linearGradients(set);
  if (linear) {
    t = now();
    const channelGradients: Record<string, Float32Array> = {};
    for (const l of set.layers) {
      const g = linearChannelGradient(linear[l], seed, K, rt.tensorDims(l)![1]);
      if (!g) break;
      channelGradients[l] = g;
    }
    timings.backward_ms = (timings.backward_ms ?? 0) + now() - t;
    if (Object.keys(channelGradients).length === set.layers.length) {
      return { logits, predicted, targets, activations, gradients: spreadOnRead(channelGradients, rt, set.layers), channelGradients, trunkOut };
    }
  }
  const head = await rt.headRun(set);
  const feeds: Record<string, ort.Tensor> = {
    [head.seed]: new ort.Tensor('float32', seed, [K, ...rt.tensorDims(rt.info.logits)!.slice(1)]),
  };
  for (const name of head.inputs) feeds[name] = trunkOut[name] as ort.Tensor;
  t = now();
  const out = await runHeadBackward(head, feeds);
  timings.backward_ms = (timings.backward_ms ?? 0) + now() - t;
  const gradients = Object.fromEntries(set.layers.map((l) => [l, out[head.gradients[l]].data as Float32Array]));
  return { logits, predicted, targets, activations, gradients, trunkOut };
}

/** Multiply-adds above which seed rows are left to the head's backward run (onnxruntime's GEMM beats a JS loop). */
const LINEAR_MAX_MACS = 1 << 18;

/**
 * The per-channel gradient [K, C] of a GAP → linear head for seed rows [K, classes]: scale · Σ_j seed[k, j]
 * W[j, c] (one-hot seeds: one row of W), the value G[k, c, ·] has at every position — what the head's backward
 * pass computes, without running it; undefined for seeds with so many non-zero entries (softmax) that the
 * head's run is faster.
 */
function linearChannelGradient(g: LinearGradient, seed: Float32Array, K: number, C: number): Float32Array | undefined {
  const { classes, weights: W, transposed } = g;
  let nonzero = 0;
  for (let i = 0; i < seed.length; i++) if (seed[i] !== 0) nonzero++;
  if (nonzero * C > LINEAR_MAX_MACS) return undefined;
  const out = new Float32Array(K * C);
  const v = new Float64Array(C);
  for (let k = 0; k < K; k++) {
    v.fill(0);
    for (let j = 0; j < classes; j++) {
      const s = seed[k * classes + j];
      if (s === 0) continue;
      if (transposed) for (let c = 0, o = j * C; c < C; c++) v[c] += s * W[o + c];
      else for (let c = 0; c < C; c++) v[c] += s * W[c * classes + j];
    }
    for (let c = 0; c < C; c++) out[k * C + c] = Math.fround(v[c] * g.scale);
  }
  return out;
}

/** The full gradients of per-channel ones, each layer's spread on its first read (and kept). */
function spreadOnRead(channel: Record<string, Float32Array>, rt: ModelRuntime, layers: string[]): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const l of layers) {
    let g: Float32Array | undefined;
    const [, , h, w] = rt.tensorDims(l)!;
    Object.defineProperty(out, l, { enumerable: true, get: () => (g ??= spreadChannels(channel[l], h * w)) });
  }
  return out;
}

export interface TensorsRequest {
  /** the preprocessed input, laid out as the model's inputDims */
  input: Float32Array;
  /** candidate layers (4-D feature maps that lead to the logits) */
  layers: string[];
  /** classes whose score gradients are wanted; none and no topk: activations only */
  targets?: number[];
  /** the k best classes instead of `targets` */
  topk?: number;
}

export interface LayerTensorsOut {
  layer: string;
  /** [1, C, h, w] */
  dims: number[];
  /** C·h·w values */
  activations: Float32Array;
  /** K·C·h·w values: d logit[targets[k]] / d activations, targets in order; absent without targets */
  gradients?: Float32Array;
}

export interface TensorsResult {
  logits: Float32Array;
  /** the classes the gradients are of (empty for activations only) */
  targets: number[];
  layers: LayerTensorsOut[];
}

/**
 * Activations (and, with classes, gradients) of one input for inspection, as copies: onnxruntime's
 * outputs may share one buffer, and results are transferred between threads. Without classes no backward
 * graph is built, so models whose backward cannot be built still show feature maps.
 */
export async function tensorsOf(rt: ModelRuntime, req: TensorsRequest): Promise<TensorsResult> {
  const layers = rt.resolveLayers(req.layers);
  rt.checkTargets(req.targets);
  const withGradients = (req.targets?.length ?? 0) > 0 || req.topk !== undefined;
  const set = await rt.layerSet(layers);
  const r = await runPasses(rt, set, req.input, { gradients: withGradients, choose: withGradients ? chooseTargets(req.targets, req.topk) : () => [], timings: {} });
  return {
    logits: Float32Array.from(r.predicted ?? r.logits),
    targets: r.targets,
    layers: layers.map((l) => ({
      layer: l,
      dims: rt.tensorDims(l) ?? [],
      activations: Float32Array.from(r.activations[l]),
      ...(r.gradients ? { gradients: Float32Array.from(r.gradients[l]) } : {}),
    })),
  };
}

/** The buffers of a tensors result, for postMessage's transfer list. */
export function tensorTransferables(r: TensorsResult): ArrayBuffer[] {
  const list = new Set<ArrayBuffer>([r.logits.buffer as ArrayBuffer]);
  for (const l of r.layers) {
    list.add(l.activations.buffer as ArrayBuffer);
    if (l.gradients) list.add(l.gradients.buffer as ArrayBuffer);
  }
  return [...list];
}
