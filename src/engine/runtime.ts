// One loaded model and the sessions that explain it: loading (manifest, input layout, probe run, layers),
// and a cache of layer sets, each with its trunk session and, built when first needed, its head sessions.
import path from 'node:path';
import { stat } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { buildGradientPatch } from '../autodiff/index.js';
import { ExplainError, ModelError } from '../errors/index.js';
import { type CandidateLayer, candidateLayers, createSession, extractHead, findLogits, type HeadGraph, type LinearHead, matchLinearHead, OnnxModel, type OwnedSession, probeShapes, pruneToOutputs, type SessionOptions, type TensorInfo } from '../onnx/index.js';
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
  /** ids are folder names; default: the folder's name */
  id?: string;
  batchSize?: number;
  maxLayerSets?: number;
  batchMs?: number;
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

  private constructor(
    readonly model: OnnxModel,
    readonly info: ModelInfo,
    private readonly shapes: Map<string, TensorInfo>,
    private readonly options: RuntimeOptions,
  ) {
    this.batchSize = Math.max(1, options.batchSize ?? ENGINE_DEFAULTS.batchSize);
    this.batchMs = options.batchMs ?? ENGINE_DEFAULTS.batchMs;
  }

  /** Loads `<dir>/model.onnx` (or a .onnx file) with its manifest, probes shapes and finds the layers. */
  static async load(location: string, options: RuntimeOptions = {}): Promise<ModelRuntime> {
    const isDir = (await stat(location).catch(() => undefined))?.isDirectory() ?? false;
    const file = isDir ? path.join(location, 'model.onnx') : location;
    const dir = path.dirname(path.resolve(file));
    const model = await OnnxModel.load(file);
    if (model.inputs.length !== 1) {
      throw new ModelError(`${file}: expected one image input, found ${model.inputs.length} (${model.inputs.map((i) => i.name).join(', ')})`);
    }
    const input = model.inputs[0];
    if (input.elemType !== 1) throw new ModelError(`${file}: input "${input.name}" must be float32`);
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
      throw new ModelError(`${file}: model.json input.size [${manifest.input.size.join(', ')}] disagrees with the model's input [${height}, ${width}]`);
    }
    const channels = fixed(cIdx, ch);
    if (channels !== ch) throw new ModelError(`${file}: the model takes ${channels} channels but model.json says ${manifest.input.channels}`);
    if (fixed(0, 1) !== 1) throw new ModelError(`${file}: input batch size must be 1 or dynamic, got ${rawDims[0]}`);
    const inputDims = nhwc ? [1, height, width, channels] : [1, channels, height, width];

    const feeds = { [input.name]: new ort.Tensor('float32', new Float32Array(inputDims.reduce((a, b) => a * b, 1)), inputDims) };
    const shapes = await probeShapes(model, feeds, options);
    const logits = findLogits(model, manifest.output);
    const logitDims = shapes.get(logits)?.dims;
    if (!logitDims || logitDims.length < 2 || logitDims[0] !== 1) throw new ModelError(`${file}: logits "${logits}" must be [1, classes], got [${logitDims?.join(', ')}]`);
    const numClasses = logitDims.slice(1).reduce((a, b) => a * b, 1);
    const { candidates, defaultLayer } = candidateLayers(model, shapes, logits, manifest.input.layout);
    const layer = manifest.layer ?? defaultLayer;
    if (!layer) throw new ModelError(`${file}: no 4-D feature map with spatial size > 1 leads to the logits`);
    if (manifest.layer && !shapes.has(manifest.layer)) throw new ModelError(`${file}: model.json layer "${manifest.layer}" is not a tensor of the model`);
    if (manifest.labels && manifest.labels.length !== numClasses) {
      throw new ModelError(`${file}: ${manifest.labels.length} labels for ${numClasses} classes`);
    }
    const info: ModelInfo = {
      id: options.id ?? path.basename(isDir ? path.resolve(location) : dir),
      file: path.resolve(file), opset: model.opset, inputName: input.name, inputDims,
      inputSize: { height, width, channels }, logits, numClasses, defaultLayer: layer, candidateLayers: candidates,
      manifest, externalData: model.externalFiles,
    };
    return new ModelRuntime(model, info, shapes, options);
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

  /** Plain forward: the logits for one input. */
  async predict(input: Float32Array): Promise<Float32Array> {
    const set = await this.layerSet([this.info.defaultLayer]);
    const out = await set.trunk.session.run({ [this.info.inputName]: this.inputTensor(input) }, [this.info.logits]);
    return out[this.info.logits].data as Float32Array;
  }

  /** The layers asked for, de-duplicated (default: the model's default layer), each checked. */
  resolveLayers(layers: readonly string[] | undefined): string[] {
    const out = layers?.length ? [...new Set(layers)] : [this.info.defaultLayer];
    for (const l of out) {
      const s = this.shapes.get(l);
      if (!s) throw new ExplainError(`layer "${l}" is not a tensor of model ${this.info.id}`);
      if (s.dims.length !== 4 || s.type !== 'float32') throw new ExplainError(`layer "${l}" must be a 4-D float feature map, its dims are [${s.dims.join(', ')}]`);
      if (!this.info.candidateLayers.some((c) => c.name === l)) throw new ExplainError(`layer "${l}" does not lead to the logits "${this.info.logits}" or has no spatial extent`);
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

  /** The head with its backward pass, pruned to what the gradients need. */
  headRun(set: LayerSet): Promise<HeadRun> {
    set.head ??= (async () => {
      const headModel = await OnnxModel.fromBytes(set.graph.encode(), this.model.file);
      const grad = await buildGradientPatch(headModel, this.shapes, { targets: set.layers, output: this.info.logits });
      // Only what the gradients need: onnxruntime runs every node of a graph whatever the fetches, and the
      // head's own forward (pooling, classifier) is dead weight when the backward does not read it.
      const pruned = pruneToOutputs(headModel.withPatch(grad.patch), Object.values(grad.gradients));
      const session = await createSession(this.model, pruned.bytes, this.headOptions());
      return { session, seed: grad.seed, gradients: grad.gradients, inputs: set.graph.inputs.filter((i) => pruned.inputs.has(i)) };
    })();
    return set.head;
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
      return { session, inputs: set.graph.inputs, batched: undefined };
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
