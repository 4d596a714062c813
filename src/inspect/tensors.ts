// Intermediate tensors of one input for inspection (forward hooks): the activations of chosen layers
// and, when classes are given, the class-score gradients at them. Runs where the model lives (an
// inference worker, or the CLI's main thread).
//
// With classes, this is ModelRuntime.activationsAndGradients: the engine's trunk (the layers as extra
// outputs) and the head's backward pass, sessions shared with the explanations. Without classes only
// a forward pass is needed, so no backward graph is built (and models whose backward cannot be built
// still show feature maps): a session of the model with the layers as extra outputs, as the runtime's
// trunk is made, kept per layer set (the `maxSessions` most recently used).
import * as ort from 'onnxruntime-node';
import { MethodError } from '../cam/types.js';
import type { ModelRuntime } from '../models/runtime.js';
import { createSession, type OwnedSession, type SessionOptions } from '../onnx/session.js';

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

export class TensorProbe {
  private readonly sessions = new Map<string, Promise<OwnedSession>>();

  constructor(readonly rt: ModelRuntime, private readonly options: SessionOptions & { maxSessions?: number } = {}) {}

  private checkLayers(layers: string[]): void {
    if (layers.length === 0) throw new MethodError('no layers asked for');
    const names = new Set(this.rt.info.candidateLayers.map((c) => c.name));
    for (const l of layers) {
      if (!names.has(l)) throw new MethodError(`layer "${l}" is not a candidate layer of model ${this.rt.info.id} (a 4-D feature map that leads to the logits)`);
    }
  }

  private forwardSession(layers: string[]): Promise<OwnedSession> {
    const key = JSON.stringify(layers);
    let s = this.sessions.get(key);
    if (s) {
      this.sessions.delete(key);
      this.sessions.set(key, s);
      return s;
    }
    const model = this.rt.model;
    const existing = new Set(model.outputs.map((o) => o.name));
    const extra = [...new Set([this.rt.info.logits, ...layers])].filter((t) => !existing.has(t));
    s = createSession(model, model.withPatch({ output: extra.map((name) => ({ name })) }), this.options);
    this.sessions.set(key, s);
    s.catch(() => this.sessions.delete(key));
    while (this.sessions.size > Math.max(1, this.options.maxSessions ?? 2)) {
      const [oldKey, old] = this.sessions.entries().next().value as [string, Promise<OwnedSession>];
      this.sessions.delete(oldKey);
      void old.then((o) => o.release(), () => undefined);
    }
    return s;
  }

  async run(req: TensorsRequest): Promise<TensorsResult> {
    const layers = [...new Set(req.layers)];
    this.checkLayers(layers);
    const { numClasses } = this.rt.info;
    const dims = (l: string) => this.rt.tensorDims(l) ?? [];
    let targets = req.targets ?? [];
    for (const c of targets) {
      if (!Number.isInteger(c) || c < 0 || c >= numClasses) throw new MethodError(`target class ${c} is outside 0..${numClasses - 1}`);
    }
    if (targets.length === 0 && req.topk !== undefined) {
      const logits = await this.rt.predict(req.input);
      const k = Math.min(Math.max(1, req.topk), logits.length);
      targets = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b).slice(0, k);
    }
    if (targets.length > 0) {
      const r = await this.rt.activationsAndGradients(req.input, layers, targets);
      // Copies: onnxruntime's outputs may share one buffer, and results are transferred between threads.
      return {
        logits: Float32Array.from(r.logits),
        targets,
        layers: layers.map((l) => ({ layer: l, dims: dims(l), activations: Float32Array.from(r.activations[l]), gradients: Float32Array.from(r.gradients[l]) })),
      };
    }
    const n = this.rt.info.inputDims.reduce((a, b) => a * b, 1);
    if (req.input.length !== n) throw new RangeError(`input has ${req.input.length} values, the model takes ${n} ([${this.rt.info.inputDims.join(', ')}])`);
    const { session } = await this.forwardSession(layers);
    const out = await session.run({ [this.rt.info.inputName]: new ort.Tensor('float32', req.input, this.rt.info.inputDims) }, [...new Set([this.rt.info.logits, ...layers])]);
    return {
      logits: Float32Array.from(out[this.rt.info.logits].data as Float32Array),
      targets: [],
      layers: layers.map((l) => ({ layer: l, dims: dims(l), activations: Float32Array.from(out[l].data as Float32Array) })),
    };
  }

  async release(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s).release().catch(() => undefined);
  }
}

/** The buffers of a result, for postMessage's transfer list. */
export function tensorTransferables(r: TensorsResult): ArrayBuffer[] {
  const list = new Set<ArrayBuffer>([r.logits.buffer as ArrayBuffer]);
  for (const l of r.layers) {
    list.add(l.activations.buffer as ArrayBuffer);
    if (l.gradients) list.add(l.gradients.buffer as ArrayBuffer);
  }
  return [...list];
}
