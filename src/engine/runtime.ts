// One loaded model and everything needed to explain it: the trunk run (the model with the target
// layers as extra outputs), the head run (the sub-graph after them with its backward pass), and the CAM
// methods on top. Runs in whichever thread owns it (an inference worker, or the CLI's main thread).
import path from 'node:path';
import { stat } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { buildGradientPatch, nodesOnPath } from '../autodiff/builder.js';
import { rawMap } from '../cam/compute.js';
import { METHODS } from '../cam/methods/index.js';
import { MethodError, type ForwardRunner, type LayerTensors, type MethodName } from '../cam/types.js';
import { candidateLayers, extractHead, findLogits, type CandidateLayer, type HeadGraph } from '../onnx/graph.js';
import { ModelError, OnnxModel, attrInt, attrInts } from '../onnx/model.js';
import { createSession, probeShapes, type OwnedSession, type SessionOptions, type TensorInfo } from '../onnx/session.js';
import { decodeModel, encodeModel } from '../onnx/proto.js';
import { averageMaps, type CamMap } from '../render/index.js';
import { readManifest, type ModelManifest } from './manifest.js';
import { topK } from './scores.js';

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

export interface RuntimeOptions extends SessionOptions {
  /** ids are folder names; default: the folder's name */
  id?: string;
  /** batch size of Score-CAM / Ablation-CAM runs (where the model accepts batches) */
  batchSize?: number;
  /** how many layer sets keep their sessions (least recently used are released) */
  maxLayerSets?: number;
  /**
   * Session options of the heads (with their backward pass; forward only for Ablation-CAM), over the
   * rest. Default: the same, but with intra-op threads that do not spin: a head runs between two trunk
   * runs, and spinning threads of the one take a core from the other (measured: explanations twice as
   * slow with both spinning).
   */
  head?: SessionOptions;
}

interface HeadRun {
  session: OwnedSession;
  seed: string;
  gradients: Record<string, string>;
  inputs: string[];
}

interface LayerSet {
  layers: string[];
  trunk: OwnedSession;
  /** the sub-graph after the layers (analysed once; encoded for each head session that needs it) */
  graph: HeadGraph;
  head?: Promise<HeadRun>;
  headForward?: Promise<{ session: OwnedSession; inputs: string[]; batched: boolean | undefined }>;
}

const now = () => performance.now();

export class ModelRuntime {
  private readonly layerSets = new Map<string, Promise<LayerSet>>();
  private readonly classifierCache = new Map<string, Promise<Float32Array>>();

  private constructor(
    readonly model: OnnxModel,
    readonly info: ModelInfo,
    private readonly shapes: Map<string, TensorInfo>,
    private readonly options: RuntimeOptions,
  ) {}

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
    const manifest = await readManifest(dir, typeof channelsInModel === 'number' ? channelsInModel : undefined);
    if (!isDir || manifest.input.layout === 'NCHW') manifest.input.layout = guessNhwc ? 'NHWC' : manifest.input.layout;
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

  private checkLayers(layers: readonly string[]): void {
    for (const l of layers) {
      const s = this.shapes.get(l);
      if (!s) throw new MethodError(`layer "${l}" is not a tensor of model ${this.info.id}`);
      if (s.dims.length !== 4 || s.type !== 'float32') throw new MethodError(`layer "${l}" must be a 4-D float feature map, its dims are [${s.dims.join(', ')}]`);
      if (!this.info.candidateLayers.some((c) => c.name === l)) throw new MethodError(`layer "${l}" does not lead to the logits "${this.info.logits}" or has no spatial extent`);
    }
  }

  private layerSet(layers: string[]): Promise<LayerSet> {
    const key = JSON.stringify(layers);
    let entry = this.layerSets.get(key);
    if (entry) {
      this.layerSets.delete(key);
      this.layerSets.set(key, entry);
      return entry;
    }
    entry = (async () => {
      const head = extractHead(this.model, this.shapes, layers, this.info.logits);
      const existing = new Set(this.model.outputs.map((o) => o.name));
      const extra = [...new Set([this.info.logits, ...layers, ...head.sideInputs])].filter((t) => !existing.has(t));
      const trunk = await createSession(this.model, this.model.withPatch({ output: extra.map((name) => ({ name })) }), this.options);
      return { layers, trunk, graph: head };
    })();
    this.layerSets.set(key, entry);
    entry.catch(() => this.layerSets.delete(key));
    const max = this.options.maxLayerSets ?? 4;
    while (this.layerSets.size > max) {
      const [oldKey, old] = this.layerSets.entries().next().value as [string, Promise<LayerSet>];
      this.layerSets.delete(oldKey);
      void old.then((s) => this.releaseSet(s), () => undefined);
    }
    return entry;
  }

  /** The head with its backward pass: inputs the layers (+ side tensors) and the seed, outputs the gradients. */
  private headRun(set: LayerSet): Promise<HeadRun> {
    set.head ??= (async () => {
      const head = set.graph;
      const headModel = await OnnxModel.fromBytes(head.encode(), this.model.file);
      const grad = await buildGradientPatch(headModel, this.shapes, { targets: set.layers, output: this.info.logits });
      // Only what the gradients need: onnxruntime runs every node of a graph whatever the fetches, and the
      // head's own forward (pooling, classifier) is dead weight when the backward does not read it.
      const pruned = pruneToOutputs(headModel.withPatch(grad.patch), Object.values(grad.gradients));
      const session = await createSession(this.model, pruned.bytes, this.headOptions());
      return { session, seed: grad.seed, gradients: grad.gradients, inputs: head.inputs.filter((i) => pruned.inputs.has(i)) };
    })();
    return set.head;
  }

  private headForward(set: LayerSet) {
    set.headForward ??= (async () => {
      const session = await createSession(this.model, set.graph.encode(), this.headOptions());
      return { session, inputs: set.graph.inputs, batched: undefined as boolean | undefined };
    })();
    return set.headForward;
  }

  /** Options of the head sessions (backward, and forward-only for Ablation-CAM): see RuntimeOptions.head. */
  private headOptions(): SessionOptions {
    return { ...this.options, spinning: false, ...this.options.head };
  }

  private async releaseSet(s: LayerSet): Promise<void> {
    await s.trunk.release();
    if (s.head) await (await s.head).session.release();
    if (s.headForward) await (await s.headForward).session.release();
  }

  /** Frees every session. */
  async release(): Promise<void> {
    const sets = [...this.layerSets.values()];
    this.layerSets.clear();
    for (const s of sets) await this.releaseSet(await s).catch(() => undefined);
  }

  private inputTensor(data: Float32Array): ort.Tensor {
    const n = this.info.inputDims.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new RangeError(`input has ${data.length} values, the model takes ${n} ([${this.info.inputDims.join(', ')}])`);
    return new ort.Tensor('float32', data, this.info.inputDims);
  }

  /** Plain forward: the logits for one input. */
  async predict(input: Float32Array): Promise<Float32Array> {
    const set = await this.layerSet([this.info.defaultLayer]);
    const out = await set.trunk.session.run({ [this.info.inputName]: this.inputTensor(input) }, [this.info.logits]);
    return out[this.info.logits].data as Float32Array;
  }

  /** Runs the trunk and, for gradient methods, the head's backward for every target at once. */
  private async forwardBackward(set: LayerSet, input: Float32Array, withGradients: boolean, chooseTargets: (logits: Float32Array) => number[], timings: Record<string, number>) {
    let t = now();
    const trunkOut = await set.trunk.session.run({ [this.info.inputName]: this.inputTensor(input) });
    timings.forward_ms = (timings.forward_ms ?? 0) + now() - t;
    const logits = trunkOut[this.info.logits].data as Float32Array;
    const targets = chooseTargets(logits);
    const activations = Object.fromEntries(set.layers.map((l) => [l, trunkOut[l].data as Float32Array]));
    let gradients: Record<string, Float32Array> | undefined;
    if (withGradients) {
      const head = await this.headRun(set);
      const seed = new Float32Array(targets.length * this.info.numClasses);
      targets.forEach((c, k) => { seed[k * this.info.numClasses + c] = 1; });
      const feeds: Record<string, ort.Tensor> = {
        [head.seed]: new ort.Tensor('float32', seed, [targets.length, ...this.shapes.get(this.info.logits)!.dims.slice(1)]),
      };
      for (const name of head.inputs) feeds[name] = trunkOut[name];
      t = now();
      const out = await head.session.session.run(feeds, Object.values(head.gradients));
      timings.backward_ms = (timings.backward_ms ?? 0) + now() - t;
      gradients = Object.fromEntries(set.layers.map((l) => [l, out[head.gradients[l]].data as Float32Array]));
    }
    return { logits, targets, activations, gradients, trunkOut };
  }

  /**
   * The raw material of every method: logits, the layers' activations A [C·h·w] and, when classes are
   * asked for (`targets`, or the `topk` best), dLogit_target/dA per target ([K·C·h·w], targets in order),
   * from one trunk run and, with classes, one head run. Without classes no backward graph is built.
   */
  async tensors(input: Float32Array, layers: string[], classes: { targets?: number[]; topk?: number } = {}) {
    if (layers.length === 0) throw new MethodError('no layers asked for');
    this.checkLayers(layers);
    this.checkTargets(classes.targets);
    const withGradients = (classes.targets?.length ?? 0) > 0 || classes.topk !== undefined;
    const set = await this.layerSet(layers);
    const r = await this.forwardBackward(set, input, withGradients, withGradients ? chooseTargets(classes.targets, classes.topk) : () => [], {});
    return { logits: r.logits, targets: r.targets, activations: r.activations, gradients: r.gradients };
  }

  /** `tensors` for given classes: activations and gradients (the tests' entry to the engine). */
  async activationsAndGradients(input: Float32Array, layers: string[], targets: number[]) {
    const r = await this.tensors(input, layers, { targets });
    return { logits: r.logits, activations: r.activations, gradients: r.gradients! };
  }

  private checkTargets(targets: readonly number[] | undefined): void {
    for (const c of targets ?? []) {
      if (!Number.isInteger(c) || c < 0 || c >= this.info.numClasses) throw new MethodError(`target class ${c} is outside 0..${this.info.numClasses - 1}`);
    }
  }

  /** Explains one input: the requested method's map for every target class and layer. */
  async explain(req: ExplainRequest): Promise<ExplainResult> {
    const timings: Record<string, number> = {};
    const method = METHODS[req.method];
    if (!method) throw new MethodError(`unknown method ${req.method}`);
    const layers = req.layers && req.layers.length ? [...new Set(req.layers)] : [this.info.defaultLayer];
    this.checkLayers(layers);
    this.checkTargets(req.targets);
    let t = now();
    const set = await this.layerSet(layers);
    if (method.needs === 'gradients') await this.headRun(set);
    timings.prepare_ms = now() - t;

    const withGradients = method.needs === 'gradients';
    const base = await this.forwardBackward(set, req.input, withGradients, chooseTargets(req.targets, req.topk), timings);
    const targets = base.targets;

    t = now();
    const perTarget: Float32Array[][] = targets.map(() => layers.map(() => new Float32Array(0)));
    const accumulate = async (run: typeof base, flip: boolean, weight: number) => {
      for (const [li, layer] of layers.entries()) {
        const [, C, h, w] = this.shapes.get(layer)!.dims;
        const A = run.activations[layer];
        for (const [ti, target] of targets.entries()) {
          const G = run.gradients?.[layer].subarray(ti * C * h * w, (ti + 1) * C * h * w);
          const tensors: LayerTensors = { name: layer, C, h, w, A, G };
          const score = run.logits[target];
          const map = await rawMap(method, tensors, { target, score, runner: this.runner(req.input, set) }, { eigenSmooth: req.eigenSmooth });
          if (flip) flipRows(map, h, w);
          const acc = perTarget[ti][li];
          if (acc.length === 0) perTarget[ti][li] = Float32Array.from(map, (v) => v * weight);
          else for (let i = 0; i < acc.length; i++) acc[i] += map[i] * weight;
        }
      }
    };
    if (!req.augSmooth) await accumulate(base, false, 1);
    else {
      // pytorch-grad-cam's aug_smooth: horizontal flip × multiply the input by 0.9/1/1.1; each map flipped back; mean.
      const augs: [boolean, number][] = [[false, 1], [false, 0.9], [false, 1.1], [true, 1], [true, 0.9], [true, 1.1]];
      for (const [flip, factor] of augs) {
        const x = this.augment(req.input, flip, factor);
        const run = flip || factor !== 1 ? await this.forwardBackward(set, x, withGradients, () => targets, timings) : base;
        await accumulate(run, flip, 1 / augs.length);
      }
    }
    const explanations: Explanation[] = targets.map((target, ti) => {
      const layerMaps: LayerMap[] = layers.map((layer, li) => {
        const [, , h, w] = this.shapes.get(layer)!.dims;
        return { layer, map: { width: w, height: h, data: perTarget[ti][li] } };
      });
      const map = layerMaps.length === 1
        ? layerMaps[0].map
        : averageMaps(layerMaps.map((l) => l.map), this.info.inputSize.width, this.info.inputSize.height);
      return { target: { index: target, logit: base.logits[target] }, layers: layerMaps, map };
    });
    timings.cam_ms = now() - t;
    return { logits: base.logits, explanations, timings };
  }

  /** Flip horizontally and/or scale the (normalised) input, for aug_smooth. */
  private augment(input: Float32Array, flip: boolean, factor: number): Float32Array {
    const out = Float32Array.from(input, (v) => v * factor);
    if (!flip) return out;
    const nhwc = this.info.manifest.input.layout === 'NHWC';
    const { height: H, width: W, channels: C } = this.info.inputSize;
    const res = new Float32Array(out.length);
    for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      const src = nhwc ? (y * W + x) * C + c : (c * H + y) * W + x;
      const dst = nhwc ? (y * W + (W - 1 - x)) * C + c : (c * H + y) * W + (W - 1 - x);
      res[dst] = out[src];
    }
    return res;
  }

  private runner(input: Float32Array, set: LayerSet): ForwardRunner {
    const { height, width, channels } = this.info.inputSize;
    const nhwc = this.info.manifest.input.layout === 'NHWC';
    const batchSize = Math.max(1, this.options.batchSize ?? 16);
    const dynamicBatch = typeof (this.model.inputs[0].dims ?? [])[0] === 'string';
    return {
      inputSize: { height, width },
      scoreMasked: async (masks, target) => {
        const n = height * width * channels;
        const scores = new Float32Array(masks.length);
        const per = dynamicBatch ? batchSize : 1;
        const hw = height * width;
        // One input buffer, reused from batch to batch (a run reads its feeds before it returns).
        const buffer = new Float32Array(Math.min(per, masks.length) * n);
        for (let start = 0; start < masks.length; start += per) {
          const chunk = masks.slice(start, start + per);
          const x = buffer.subarray(0, chunk.length * n);
          chunk.forEach((m, b) => {
            const o = b * n;
            if (nhwc) {
              for (let i = 0; i < hw; i++) for (let c = 0; c < channels; c++) x[o + i * channels + c] = input[i * channels + c] * m[i];
            } else {
              for (let c = 0; c < channels; c++) for (let i = 0, k = c * hw; i < hw; i++) x[o + k + i] = input[k + i] * m[i];
            }
          });
          const dims = [chunk.length, ...this.info.inputDims.slice(1)];
          const out = await set.trunk.session.run({ [this.info.inputName]: new ort.Tensor('float32', x, dims) }, [this.info.logits]);
          const logits = out[this.info.logits].data as Float32Array;
          chunk.forEach((_, b) => { scores[start + b] = logits[b * this.info.numClasses + target]; });
        }
        return scores;
      },
      scoreActivations: async (layer, variants, target) => {
        const total = variants.count;
        const single = await this.layerSet([layer]);
        const hf = await this.headForward(single);
        const trunkOut = single.graph.sideInputs.length
          ? await single.trunk.session.run({ [this.info.inputName]: this.inputTensor(input) }, single.graph.sideInputs)
          : {};
        const scores = new Float32Array(total);
        // One batch buffer per input, reused from batch to batch (a run reads its feeds before it returns).
        const buffers = new Map<string, Float32Array>();
        const runChunk = async (start: number, count: number) => {
          const feeds: Record<string, ort.Tensor> = {};
          for (const name of hf.inputs) {
            const dims = this.shapes.get(name)!.dims;
            const per = dims.reduce((a, b) => a * b, 1);
            let buffer = buffers.get(name);
            if (!buffer || buffer.length < count * per) buffers.set(name, buffer = new Float32Array(count * per));
            const data = buffer.subarray(0, count * per);
            for (let b = 0; b < count; b++) {
              const slot = data.subarray(b * per, (b + 1) * per);
              if (name === layer) variants.write(start + b, slot);
              else slot.set(trunkOut[name].data as Float32Array);
            }
            feeds[name] = new ort.Tensor('float32', data, [count, ...dims.slice(1)]);
          }
          const out = await hf.session.session.run(feeds, [this.info.logits]);
          const logits = out[this.info.logits].data as Float32Array;
          for (let b = 0; b < count; b++) scores[start + b] = logits[b * this.info.numClasses + target];
        };
        for (let start = 0; start < total;) {
          const count = hf.batched === false ? 1 : Math.min(batchSize, total - start);
          try {
            await runChunk(start, count);
            if (count > 1) hf.batched = true;
          } catch (e) {
            // A head with a batch size baked into a Reshape cannot take batches: run one at a time from here on.
            if (count === 1 || hf.batched === true) throw e;
            hf.batched = false;
            continue;
          }
          start += count;
        }
        return scores;
      },
      classifierWeights: (layer, target) => this.classifierRow(layer, target),
    };
  }

  /** Row `target` of the linear layer after global average pooling of `layer`; MethodError if the head is different. */
  private classifierRow(layer: string, target: number): Promise<Float32Array> {
    const key = `${layer}\u0000${target}`;
    let p = this.classifierCache.get(key);
    if (!p) {
      p = this.readClassifier(layer, target);
      this.classifierCache.set(key, p);
      p.catch(() => this.classifierCache.delete(key));
    }
    return p;
  }

  private async readClassifier(layer: string, target: number): Promise<Float32Array> {
    const path_ = nodesOnPath(this.model, [layer], this.info.logits).map((i) => this.model.nodes[i]);
    const ops = path_.map((n) => n.op_type);
    const why = `cam needs a head that is global average pooling then one linear layer; after "${layer}" the path is ${ops.join(' → ') || '(empty)'}`;
    const C = this.shapes.get(layer)!.dims[1];
    let i = 0;
    const pool = path_[i];
    if (!pool) throw new MethodError(why);
    if (pool.op_type === 'ReduceMean') {
      const axes = attrInts(pool, 'axes') ?? (pool.input[1] ? await this.model.constantNumbers(pool.input[1], 'axes') : undefined);
      if (!axes || [...axes].map((a) => (a < 0 ? a + 4 : a)).sort().join() !== '2,3') throw new MethodError(why);
    } else if (pool.op_type !== 'GlobalAveragePool') throw new MethodError(why);
    i++;
    while (i < path_.length && ['Flatten', 'Reshape', 'Squeeze', 'Identity', 'Dropout'].includes(path_[i].op_type)) i++;
    const linear = path_[i];
    if (!linear || (linear.op_type !== 'Gemm' && linear.op_type !== 'MatMul')) throw new MethodError(why);
    const rest = path_.slice(i + 1);
    if (rest.length > 1 || (rest.length === 1 && rest[0].op_type !== 'Add')) throw new MethodError(why);
    const w = await this.model.constantValue(linear.input[1]);
    if (!w || !(w.data instanceof Float32Array) || w.dims.length !== 2) throw new MethodError(`${why}: its weights are not a constant matrix`);
    const transposed = linear.op_type === 'Gemm' && attrInt(linear, 'transB', 0) === 1; // [classes, C]
    if (linear.op_type === 'Gemm' && attrInt(linear, 'transA', 0) === 1) throw new MethodError(why);
    const [r, c] = w.dims;
    const row = new Float32Array(C);
    if (transposed) {
      if (c !== C) throw new MethodError(why);
      row.set(w.data.subarray(target * c, (target + 1) * c));
    } else {
      if (r !== C) throw new MethodError(why);
      for (let k = 0; k < C; k++) row[k] = w.data[k * c + target];
    }
    return row;
  }
}

/**
 * The graph cut down to the nodes that `outputs` depend on, with only those outputs and the inputs and
 * initializers that the remaining nodes read.
 */
function pruneToOutputs(bytes: Uint8Array, outputs: string[]): { bytes: Uint8Array; inputs: Set<string> } {
  const model = decodeModel(bytes);
  const graph = model.graph!;
  const nodes = graph.node ?? [];
  // Sub-graphs (If, Loop, Scan) may read outer tensors by name: leave such graphs whole.
  if (nodes.some((n) => (n.attribute ?? []).some((a) => a.g || ((a as { graphs?: unknown[] }).graphs?.length ?? 0) > 0))) {
    return { bytes, inputs: new Set((graph.input ?? []).map((v) => v.name ?? '')) };
  }
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => { for (const o of n.output ?? []) if (o) producer.set(o, i); });
  const keep = new Set<number>();
  const read = new Set<string>(outputs);
  const stack = [...outputs];
  while (stack.length) {
    const i = producer.get(stack.pop()!);
    if (i === undefined || keep.has(i)) continue;
    keep.add(i);
    for (const t of nodes[i].input ?? []) {
      if (!t) continue;
      read.add(t);
      stack.push(t);
    }
  }
  graph.node = nodes.filter((_, i) => keep.has(i));
  graph.initializer = (graph.initializer ?? []).filter((t) => read.has(t.name ?? ''));
  graph.input = (graph.input ?? []).filter((v) => read.has(v.name ?? ''));
  graph.output = outputs.map((name) => ({ name }));
  return { bytes: encodeModel(model), inputs: new Set(graph.input.map((v) => v.name ?? '')) };
}


/** The classes to explain once the logits are known: the given targets, else the `topk` best (default 1). */
function chooseTargets(targets: readonly number[] | undefined, topk: number | undefined): (logits: Float32Array) => number[] {
  return (logits) => (targets?.length ? [...targets] : topK(logits, Math.min(Math.max(1, topk ?? 1), logits.length)));
}

function flipRows(map: Float32Array, h: number, w: number): void {
  for (let y = 0; y < h; y++) map.subarray(y * w, (y + 1) * w).reverse();
}
