// One loaded model and the sessions that explain it: loading (manifest, input layout, probe run, layers),
// and a cache of layer sets, each with its trunk session and, built when first needed, its head sessions.
import path from 'node:path';
import { stat } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { buildGradientPatch } from '../autodiff/index.js';
import { ExplainError, ModelError } from '../errors/index.js';
import {
  type BatchHandling, type BatchMode, buildFloatTwin, type FloatTwin, modelPrecision, type CandidateLayer, containedFile, createSession, extractHead, findLayers, findLogits, handleFixedBatch, type HeadGraph, type LinearGradient, type LinearHead,
  foldShapeArithmetic, matchLinearGradient, matchLinearHead, nodesOnPath, OnnxModel, type OwnedSession, probeShapes, pruneToOutputs, type SessionOptions, spliceViews, type TensorInfo, type TwinKind, type ViewSpec, viewName,
} from '../onnx/index.js';
import { explainBatch, type BatchOptions } from './batch.js';
import { explain, type ExplainOptions, type ExplainRequest, type ExplainResult } from './explain.js';
import { buildHessianRun, buildInputBackward, type HessianRun, type InputBackward } from './gradients.js';
import { readManifest, type ModelManifest } from './manifest.js';
import { tensorsOf, type TensorsRequest, type TensorsResult } from './passes.js';

export interface ModelInfo {
  id: string;
  file: string;
  opset: number;
  inputName: string;
  /** [1, C, H, W] or [1, H, W, C] as fed */
  inputDims: number[];
  inputSize: { height: number; width: number; channels: number };
  logits: string;
  numClasses: number;
  defaultLayer: string;
  candidateLayers: CandidateLayer[];
  manifest: ModelManifest;
  externalData: string[];
  /** which model gives the predictions, and which the activations and gradients */
  runs: { predictions: 'model' | TwinKind; gradients: 'model' | TwinKind };
  /** the float twin, when one explains the model */
  twin?: { kind: TwinKind; quantizedOps: string[]; halfPrecision: boolean; notes: string[] };
  /** how the input batch is handled */
  batch: { mode: BatchMode; size?: number; note: string; blockedBy?: { op: string; node: string } };
  /** what loading had to give up (e.g. a float twin that could not be built) */
  warnings: string[];
  /**
   * Which files this describes (a digest of their names, sizes and times), set by the inference worker
   * that loaded them. A job names the version it was planned against, so that a reload never runs one
   * version's plan (layers, classes, input size) on another version's sessions.
   */
  version?: string;
}

/** The candidate a layer item names: by its name, its tensor, or the node that produces the tensor. */
export function findCandidate(candidates: readonly CandidateLayer[], item: string): CandidateLayer | undefined {
  return candidates.find((c) => c.name === item) ?? candidates.find((c) => c.tensor === item) ?? candidates.find((c) => c.node === item);
}

/** The engine's own defaults (the HTTP configuration and the CLI pass their values, or leave these). */
export const ENGINE_DEFAULTS = {
  /** batch size of Score-CAM / Ablation-CAM runs (where the model accepts batches) */
  batchSize: 16,
  /** layer sets whose sessions are kept (the least recently used are released) */
  maxLayerSets: 4,
  /**
   * time a batch of Score-CAM / Ablation-CAM runs should take at most (ms): batches shrink below batchSize
   * on slow models, so that a cancelled job stops within about this long
   */
  batchMs: 250,
} as const;

export interface RuntimeOptions extends SessionOptions {
  /**
   * Explain quantized and float16 models through their float twin (default true). With false a quantized
   * model is explained as it is: its maps dequantized, gradient-free methods only.
   */
  twin?: boolean;
  /**
   * Make a fixed input batch of 1 (a torch.onnx export without dynamic_axes) symbolic where the graph
   * allows it, checked by running, so that Score-CAM and the other many-run methods run in batches of
   * `batchSize` (default true). With false such a model runs one image at a time. A fixed batch > 1 is
   * always handled.
   */
  symbolicBatch?: boolean;
  /** ids are folder names; default: the folder's name */
  id?: string;
  batchSize?: number;
  maxLayerSets?: number;
  batchMs?: number;
  /**
   * Gradients of a global-average-pool → linear head (a ResNet's, a MobileNet's) from the classifier's
   * weights, ∂z_j/∂A = α·W[j, :] / (h·w) at every position, instead of the head's backward run (default
   * true). With false every gradient comes from the head's backward pass (for measurements and checks).
   */
  linearShortcut?: boolean;
  /**
   * Session options of the heads (with their backward pass; forward only for Ablation-CAM), over the
   * rest. Default: the same, but with intra-op threads that do not spin: a head runs between two trunk
   * runs, and spinning threads of the one take a core from the other (measured: explanations twice as
   * slow with both spinning).
   */
  head?: SessionOptions;
}

/** The head with its backward pass: inputs the layers (+ side tensors) and the seed, outputs the gradients. */
export interface HeadRun {
  session: OwnedSession;
  seed: string;
  gradients: Record<string, string>;
  inputs: string[];
  /** the backward takes one seed row per run (see autodiff's perSeed) */
  perSeed: boolean;
}

/**
 * Runs a head's backward for the seed rows in `feeds[head.seed]` ([K, ...]): in one run, or one run per
 * row (perSeed) with the gradients stacked in row order. Returns each gradient output's data.
 */
export async function runHeadBackward(head: HeadRun, feeds: Record<string, ort.Tensor>): Promise<Record<string, { data: Float32Array }>> {
  const fetches = Object.values(head.gradients);
  if (!head.perSeed) return await head.session.session.run(feeds, fetches) as Record<string, { data: Float32Array }>;
  const seed = feeds[head.seed];
  const K = seed.dims[0];
  const per = seed.size / K;
  const parts: Record<string, Float32Array[]> = Object.fromEntries(fetches.map((f) => [f, []]));
  for (let k = 0; k < K; k++) {
    const row = new ort.Tensor('float32', (seed.data as Float32Array).slice(k * per, (k + 1) * per), [1, ...seed.dims.slice(1)]);
    const out = await head.session.session.run({ ...feeds, [head.seed]: row }, fetches);
    for (const f of fetches) parts[f].push(Float32Array.from(out[f].data as Float32Array));
  }
  const result: Record<string, { data: Float32Array }> = {};
  for (const f of fetches) {
    const all = new Float32Array(parts[f].reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts[f]) { all.set(p, o); o += p.length; }
    result[f] = { data: all };
  }
  return result;
}

/** The head's forward alone (Ablation-CAM re-runs it); `batched` is learnt on the first batch. */
export interface HeadForward {
  session: OwnedSession;
  inputs: string[];
  batched: boolean | undefined;
}

/** Target layers with the sessions that serve them. */
export interface LayerSet {
  layers: string[];
  /** the original model with the layers (and the head's side inputs) as extra outputs */
  trunk: OwnedSession;
  /** the sub-graph after the layers (analysed once; encoded for each head session that needs it) */
  graph: HeadGraph;
  head?: Promise<HeadRun>;
  /** every layer's gradient from its GAP → linear head (undefined: some layer's head is not one) */
  linear?: Promise<Record<string, LinearGradient> | undefined>;
  headForward?: Promise<HeadForward>;
  /** the head's backward differentiated once more, by layer (ShapleyCAM's H·A) */
  hessian?: Map<string, Promise<HessianRun>>;
}

export class ModelRuntime {
  private readonly layerSets = new Map<string, Promise<LayerSet>>();
  private readonly classifiers = new Map<string, Promise<LinearHead>>();
  /** the whole model with its backward pass to the input, by ReLU treatment and extra gradient targets */
  private readonly inputBackwards = new Map<string, Promise<InputBackward>>();
  readonly batchSize: number;
  readonly batchMs: number;

  private predictorSession?: Promise<OwnedSession>;

  private constructor(
    /** the model explained: the original, or its float twin, with batch rewrites and views spliced in */
    readonly model: OnnxModel,
    readonly info: ModelInfo,
    private readonly shapes: Map<string, TensorInfo>,
    private readonly options: RuntimeOptions,
    /** the quantized original, which gives the predictions when a float twin explains it */
    readonly predictor?: OnnxModel,
    /** probed values of small integer tensors (shape arithmetic), folded into gradient heads */
    private readonly values: ReadonlyMap<string, number[]> = new Map(),
  ) {
    this.batchSize = Math.max(1, options.batchSize ?? ENGINE_DEFAULTS.batchSize);
    this.batchMs = options.batchMs ?? ENGINE_DEFAULTS.batchMs;
  }

  /**
   * Loads `<dir>/model.onnx` (or a .onnx file) with its manifest. On the way: a float twin for quantized
   * and float16 models, the batch made symbolic (or a zero batch) for fixed-batch exports, the probe run,
   * the layers (token and channels-last maps through views spliced into the graph).
   */
  static async load(location: string, options: RuntimeOptions = {}): Promise<ModelRuntime> {
    const isDir = (await stat(location).catch(() => undefined))?.isDirectory() ?? false;
    // In a model folder, model.onnx must really be there (a symbolic link may not lead out of the folder).
    const file = isDir ? (await containedFile(location, 'model.onnx', 'model file'), path.join(location, 'model.onnx')) : location;
    const dir = path.dirname(path.resolve(file));
    const source = await OnnxModel.load(file);
    if (source.inputs.length !== 1) {
      throw new ModelError(`${file}: expected one image input, found ${source.inputs.length} (${source.inputs.map((i) => i.name).join(', ')})`);
    }
    // A quantized or float16 model is explained through its float twin; a quantized one whose twin cannot
    // be built (an unknown quantized form) is explained as it is, by the gradient-free methods.
    const warnings: string[] = [];
    let twin: FloatTwin | undefined;
    if (options.twin !== false) {
      try {
        twin = await buildFloatTwin(source);
      } catch (e) {
        if (!(e instanceof ModelError)) throw e;
        warnings.push(`${e.message}; the model is explained as it is (gradient-free methods only)`);
      }
    }
    const asIs = !twin && modelPrecision(source).quantizedOps.length > 0;
    let model = twin ? await OnnxModel.fromBytes(twin.bytes, file) : source;
    const input = model.inputs[0];
    if (input.elemType !== 1) throw new ModelError(`${file}: input "${input.name}" must be float32 or float16 (element type ${input.elemType})`);
    const rawDims = input.dims ?? [];
    if (rawDims.length !== 4) throw new ModelError(`${file}: input "${input.name}" must be 4-D (NCHW or NHWC), got [${rawDims.join(', ')}]`);
    const guessNhwc = typeof rawDims[3] === 'number' && (rawDims[3] === 1 || rawDims[3] === 3) && !(rawDims[1] === 1 || rawDims[1] === 3);
    const channelsInModel = (guessNhwc ? rawDims[3] : rawDims[1]) as number | string;
    const manifest = await readManifest(dir, {
      channelsInModel: typeof channelsInModel === 'number' ? channelsInModel : undefined,
      // A bare .onnx file has no model.json to say its layout: the graph's guess decides.
      layout: !isDir || guessNhwc ? (guessNhwc ? 'NHWC' : 'NCHW') : undefined,
    });
    const nhwc = manifest.input.layout === 'NHWC';
    const ch = manifest.input.channels === 'gray' ? 1 : 3;
    const [hIdx, wIdx, cIdx] = nhwc ? [1, 2, 3] : [2, 3, 1];
    const fixed = (i: number, dflt: number) => (typeof rawDims[i] === 'number' && (rawDims[i] as number) > 0 ? rawDims[i] as number : dflt);
    const height = fixed(hIdx, manifest.input.size?.[0] ?? 224);
    const width = fixed(wIdx, manifest.input.size?.[1] ?? 224);
    if (manifest.input.size && (manifest.input.size[0] !== height || manifest.input.size[1] !== width)) {
      throw new ModelError(`${file}: model.json input.size [${manifest.input.size.join(', ')}] disagrees with the model's input [${height}, ${width}]`, { field: 'input.size' });
    }
    const channels = fixed(cIdx, ch);
    if (channels !== ch) throw new ModelError(`${file}: the model takes ${channels} channels but model.json says ${manifest.input.channels}`, { field: 'input.channels' });
    const inputDims = nhwc ? [1, height, width, channels] : [1, channels, height, width];

    // A fixed batch > 1: symbolic where the graph allows, else the image as row 0 of a zero batch. A fixed
    // batch of 1: symbolic where the graph allows (Score-CAM's runs in batches), else one image per run.
    const fixedSize = typeof rawDims[0] === 'number' && rawDims[0] > 0 ? rawDims[0] : undefined;
    let batch: BatchHandling = fixedSize !== undefined
      ? { mode: 'one', size: fixedSize, note: `the input batch is ${fixedSize}` }
      : { mode: 'dynamic', note: 'the input batch is symbolic' };
    let logits = findLogits(model, manifest.output);
    if (fixedSize !== undefined && (fixedSize > 1 || (options.symbolicBatch !== false && manifest.symbolicBatch !== false))) {
      batch = await handleFixedBatch(model, inputDims.slice(1), logits, options);
      if (batch.bytes) model = await OnnxModel.fromBytes(batch.bytes, file);
    } else if (fixedSize === 1 && manifest.symbolicBatch === false) {
      batch = { ...batch, note: 'the input batch is 1, kept as exported (model.json: "symbolicBatch": false); runs go one image at a time' };
    }
    const rows = batch.mode === 'zero-batch' ? batch.size : undefined;
    const inputName = model.inputs[0].name;
    const feeds = () => ({ [inputName]: new ort.Tensor('float32', new Float32Array(inputDims.reduce((a, b) => a * b, 1)), inputDims) });
    const values = new Map<string, number[]>();
    let shapes = await probeShapes(model, feeds(), options, values);
    const found = findLayers(model, shapes, logits, { inputLayout: manifest.input.layout, tokens: manifest.tokens, rows, quantized: asIs });
    const views: ViewSpec[] = found.candidates.flatMap((c) => (c.view ? [c.view] : []));
    if (rows !== undefined) {
      const dims = shapes.get(logits)?.dims ?? [];
      views.push({ kind: 'plain', source: logits, sourceDims: dims, rows });
    }
    if (views.length) {
      model = await OnnxModel.fromBytes(spliceViews(model, views), file);
      values.clear();
      shapes = await probeShapes(model, feeds(), options, values);
      if (rows !== undefined) logits = viewName(views[views.length - 1]);
    }
    const logitDims = shapes.get(logits)?.dims;
    if (!logitDims || logitDims.length < 2 || logitDims[0] !== 1) throw new ModelError(`${file}: logits "${logits}" must be [1, classes], got [${logitDims?.join(', ')}]`);
    const numClasses = logitDims.slice(1).reduce((a, b) => a * b, 1);
    const candidates = found.candidates;
    let layer = found.defaultLayer;
    if (manifest.layer) {
      const c = findCandidate(candidates, manifest.layer);
      if (!c) {
        if (!shapes.has(manifest.layer) && !model.nodes.some((n) => n.name === manifest.layer)) throw new ModelError(`${file}: model.json layer "${manifest.layer}" is not a tensor or node of the model`, { field: 'layer' });
        throw new ModelError(`${file}: model.json layer "${manifest.layer}" is not a candidate layer (a feature map or token map that leads to the logits)`, { field: 'layer' });
      }
      layer = c.name;
    }
    if (!layer) throw new ModelError(`${file}: no feature map leads to the logits (no 4-D map with spatial size > 1, and no token map of a transformer)`);
    if (manifest.labels && manifest.labels.length !== numClasses) {
      throw new ModelError(`${file}: ${manifest.labels.length} labels for ${numClasses} classes`, { field: 'labels' });
    }
    const quantized = twin?.kind === 'float twin';
    // The quantized model itself predicts (a model whose batch was rewritten would need the rewrite too).
    // (A fixed batch of 1 made symbolic: the original takes one image as it is.)
    const rewritten = batch.bytes !== undefined && (batch.size ?? 1) > 1;
    const predictor = quantized && !rewritten ? source : undefined;
    const info: ModelInfo = {
      id: options.id ?? path.basename(isDir ? path.resolve(location) : dir),
      file: path.resolve(file), opset: model.opset, inputName, inputDims,
      inputSize: { height, width, channels }, logits, numClasses, defaultLayer: layer, candidateLayers: candidates,
      manifest, externalData: model.externalFiles,
      runs: {
        predictions: predictor ? 'model' : twin ? twin.kind : 'model',
        gradients: twin ? twin.kind : 'model',
      },
      ...(twin ? { twin: { kind: twin.kind, quantizedOps: twin.precision.quantizedOps, halfPrecision: twin.precision.halfPrecision, notes: twin.notes } } : {}),
      batch: { mode: batch.mode, ...(batch.size !== undefined ? { size: batch.size } : {}), note: batch.note, ...(batch.blockedBy ? { blockedBy: batch.blockedBy } : {}) },
      warnings,
    };
    return new ModelRuntime(model, info, shapes, options, predictor, values);
  }

  /** Static dims of a tensor (from the probe run), or undefined. */
  tensorDims(name: string): number[] | undefined {
    return this.shapes.get(name)?.dims;
  }

  /** Every tensor's static dims and element type, from the probe run. */
  tensorInfos(): ReadonlyMap<string, TensorInfo> {
    return this.shapes;
  }

  /** Explains one input: the requested method's map for every target class and layer (see explain.ts). */
  explain(req: ExplainRequest, opts: ExplainOptions = {}): Promise<ExplainResult> {
    return explain(this, req, opts);
  }

  /** Explains several inputs, in one trunk run where the model takes batches (see batch.ts). */
  explainBatch(reqs: readonly ExplainRequest[], opts: BatchOptions = {}): Promise<ExplainResult[]> {
    return explainBatch(this, reqs, opts);
  }

  /**
   * The raw material of every method, for inspection: logits, the layers' activations and, when classes
   * are asked for (`targets`, or the `topk` best), their score gradients; copies that may cross threads.
   */
  tensors(req: TensorsRequest): Promise<TensorsResult> {
    return tensorsOf(this, req);
  }

  /** `tensors` for given classes: activations and gradients by layer (the tests' entry to the engine). */
  async activationsAndGradients(input: Float32Array, layers: string[], targets: number[]) {
    const r = await this.tensors({ input, layers, targets });
    return {
      logits: r.logits,
      activations: Object.fromEntries(r.layers.map((l) => [l.layer, l.activations])),
      gradients: Object.fromEntries(r.layers.map((l) => [l.layer, l.gradients!])),
    };
  }

  /** Plain forward: the logits for one input (of the quantized original, when a float twin explains it). */
  async predict(input: Float32Array): Promise<Float32Array> {
    const own = await this.predictionLogits(input);
    if (own) return own;
    const set = await this.layerSet([this.info.defaultLayer]);
    const out = await set.trunk.session.run({ [this.info.inputName]: this.inputTensor(input) }, [this.info.logits]);
    return out[this.info.logits].data as Float32Array;
  }

  /**
   * The logits of the model's own forward pass where it is not the model explained (a quantized model
   * explained through its float twin); undefined otherwise.
   */
  async predictionLogits(input: Float32Array): Promise<Float32Array | undefined> {
    const p = this.predictor;
    if (!p) return undefined;
    this.predictorSession ??= createSession(p, p.bytes, this.options);
    const { session } = await this.predictorSession;
    const name = p.inputs[0].name;
    const out = await session.run({ [name]: this.inputTensor(input) }, [this.info.logits]);
    return out[this.info.logits].data as Float32Array;
  }

  /**
   * The layers asked for, de-duplicated (default: the model's default layer), each checked. A layer is
   * named by its candidate name, its tensor or the node that produces it.
   */
  resolveLayers(layers: readonly string[] | undefined): string[] {
    if (!layers?.length) return [this.info.defaultLayer];
    const out: string[] = [];
    for (const l of layers) {
      const c = findCandidate(this.info.candidateLayers, l);
      if (!c) {
        const s = this.shapes.get(l);
        if (!s && !this.model.nodes.some((n) => n.name === l)) throw new ExplainError(`layer "${l}" is not a tensor or node of model ${this.info.id}`);
        throw new ExplainError(`layer "${l}" is not a candidate layer of model ${this.info.id}: not a feature map${s ? ` (its dims are [${s.dims.join(', ')}])` : ''}, or it does not lead to the logits "${this.info.logits}"`);
      }
      if (!out.includes(c.name)) out.push(c.name);
    }
    return out;
  }

  checkTargets(targets: readonly number[] | undefined): void {
    for (const c of targets ?? []) {
      if (!Number.isInteger(c) || c < 0 || c >= this.info.numClasses) throw new ExplainError(`target class ${c} is outside 0..${this.info.numClasses - 1}`);
    }
  }

  /** The sessions of a layer set (built once, kept for the last `maxLayerSets` sets used). */
  layerSet(layers: string[]): Promise<LayerSet> {
    const key = JSON.stringify(layers);
    let entry = this.layerSets.get(key);
    if (entry) {
      this.layerSets.delete(key);
      this.layerSets.set(key, entry);
      return entry;
    }
    entry = (async () => {
      const graph = extractHead(this.model, this.shapes, layers, this.info.logits);
      const existing = new Set(this.model.outputs.map((o) => o.name));
      const extra = [...new Set([this.info.logits, ...layers, ...graph.sideInputs])].filter((t) => !existing.has(t));
      const trunk = await createSession(this.model, this.model.withPatch({ output: extra.map((name) => ({ name })) }), this.options);
      return { layers, trunk, graph };
    })();
    this.layerSets.set(key, entry);
    entry.catch(() => this.layerSets.delete(key));
    const max = this.options.maxLayerSets ?? ENGINE_DEFAULTS.maxLayerSets;
    while (this.layerSets.size > max) {
      const [oldKey, old] = this.layerSets.entries().next().value as [string, Promise<LayerSet>];
      this.layerSets.delete(oldKey);
      void old.then((s) => releaseSet(s), () => undefined);
    }
    return entry;
  }

  /** The head after the set's layers as a model of its own, its shape arithmetic (Shape → Gather → Concat → Reshape) folded to constants: the rules need them constant. */
  async headModel(set: LayerSet): Promise<OnnxModel> {
    const headModel = await OnnxModel.fromBytes(set.graph.encode(), this.model.file);
    const folded = foldShapeArithmetic(headModel, this.values, this.shapes);
    return folded ? await OnnxModel.fromBytes(folded, this.model.file) : headModel;
  }

  /**
   * Whether the head's backward takes one seed per run (see autodiff's perSeed): attention that moves or merges
   * the batch axis, or windows folded into it, leave a tensor on the float path without batch 1 in axis 0.
   */
  perSeed(headModel: OnnxModel, set: LayerSet): boolean {
    const floating = (t: string) => /float/.test(this.shapes.get(t)?.type ?? 'float32');
    return nodesOnPath(headModel, set.layers, this.info.logits, floating)
      .some((i) => [...headModel.nodes[i].input, ...headModel.nodes[i].output].some((t) => t && floating(t) && !headModel.isConstant(t) && (this.shapes.get(t)?.dims[0] ?? 1) !== 1));
  }

  /** The head with its backward pass, pruned to what the gradients need. */
  headRun(set: LayerSet): Promise<HeadRun> {
    set.head ??= (async () => {
      const b = this.info.batch;
      if (b.mode === 'zero-batch') {
        throw new ExplainError(
          `gradient methods cannot explain model ${this.info.id}: ${b.note}, and the backward pass needs batch 1 on its path; eigencam, scorecam and ablationcam work`,
          { model: this.info.id, ...(b.blockedBy ? { op: b.blockedBy.op, node: b.blockedBy.node } : {}) },
        );
      }
      const headModel = await this.headModel(set);
      const perSeed = this.perSeed(headModel, set);
      const grad = await buildGradientPatch(headModel, this.shapes, { targets: set.layers, output: this.info.logits, perSeed });
      // Only what the gradients need: onnxruntime runs every node of a graph whatever the fetches, and the
      // head's own forward (pooling, classifier) is dead weight when the backward does not read it.
      const pruned = pruneToOutputs(headModel.withPatch(grad.patch), Object.values(grad.gradients));
      const session = await createSession(this.model, pruned.bytes, this.headOptions());
      return { session, seed: grad.seed, gradients: grad.gradients, inputs: set.graph.inputs.filter((i) => pruned.inputs.has(i)), perSeed };
    })();
    return set.head;
  }

  /**
   * The gradients of the set's layers in closed form, where every layer's head is exactly global average
   * pooling → one linear layer → the logits (matchLinearGradient) and the engine's option allows it;
   * undefined otherwise (the head's backward run gives them). Matched once per set.
   */
  linearGradients(set: LayerSet): Promise<Record<string, LinearGradient> | undefined> {
    set.linear ??= (async () => {
      if (this.options.linearShortcut === false || this.info.manifest.linearShortcut === false || this.info.batch.mode === 'zero-batch') return undefined;
      const out: Record<string, LinearGradient> = {};
      for (const layer of set.layers) {
        const g = await matchLinearGradient(this.model, this.shapes, layer, this.info.logits);
        if (!g) return undefined;
        out[layer] = g;
      }
      return out;
    })();
    return set.linear;
  }

  /** H·A for `layer` of the set: the head's backward pass differentiated once more (built once). */
  hessianRun(set: LayerSet, layer: string): Promise<HessianRun> {
    set.hessian ??= new Map();
    let p = set.hessian.get(layer);
    if (!p) {
      p = buildHessianRun(this, set, layer, this.headOptions());
      set.hessian.set(layer, p);
    }
    return p;
  }

  /**
   * The whole model with the backward pass from the logits down to the input (guided: guided ReLUs), also
   * yielding the gradients of `extra` tensors (FullGrad's biased layers); built once per kind.
   */
  inputBackward(relu: 'plain' | 'guided', extra: readonly string[] = []): Promise<InputBackward> {
    const key = JSON.stringify([relu, extra]);
    let p = this.inputBackwards.get(key);
    if (!p) {
      p = buildInputBackward(this, relu, extra, this.options);
      this.inputBackwards.set(key, p);
      p.catch(() => this.inputBackwards.delete(key));
    }
    return p;
  }

  /** The head's forward alone. */
  headForward(set: LayerSet): Promise<HeadForward> {
    set.headForward ??= (async () => {
      const session = await createSession(this.model, set.graph.encode(), this.headOptions());
      // A zero batch holds one image: its head runs one ablation at a time.
      return { session, inputs: set.graph.inputs, batched: this.info.batch.mode === 'zero-batch' ? false : undefined };
    })();
    return set.headForward;
  }

  /** The classifier after global average pooling of `layer` (matched once per layer). */
  classifier(layer: string): Promise<LinearHead> {
    let p = this.classifiers.get(layer);
    if (!p) {
      p = matchLinearHead(this.model, this.shapes, layer, this.info.logits);
      this.classifiers.set(layer, p);
      p.catch(() => this.classifiers.delete(layer));
    }
    return p;
  }

  /** Whether the model's input takes a batch of any size (Score-CAM can then batch its runs). */
  get dynamicBatch(): boolean {
    return typeof (this.model.inputs[0].dims ?? [])[0] === 'string';
  }

  inputTensor(data: Float32Array, batch = 1): ort.Tensor {
    const dims = [batch, ...this.info.inputDims.slice(1)];
    const n = dims.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new RangeError(`input has ${data.length} values, the model takes ${n} ([${dims.join(', ')}])`);
    return new ort.Tensor('float32', data, dims);
  }

  private headOptions(): SessionOptions {
    return { ...this.options, spinning: false, ...this.options.head };
  }

  /** Frees every session. */
  async release(): Promise<void> {
    if (this.predictorSession) await (await this.predictorSession).release().catch(() => undefined);
    this.predictorSession = undefined;
    const sets = [...this.layerSets.values()];
    this.layerSets.clear();
    for (const s of sets) await releaseSet(await s).catch(() => undefined);
    const backwards = [...this.inputBackwards.values()];
    this.inputBackwards.clear();
    for (const b of backwards) await b.then((r) => r.session.release(), () => undefined);
  }
}

async function releaseSet(s: LayerSet): Promise<void> {
  await s.trunk.release();
  if (s.head) await (await s.head).session.release();
  if (s.headForward) await (await s.headForward).session.release();
  for (const h of s.hessian?.values() ?? []) await h.then((r) => r.session?.release(), () => undefined);
}
