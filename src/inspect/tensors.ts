// Intermediate tensors of one input for inspection (forward hooks): the activations of chosen layers
// and, when classes are given, the class-score gradients at them. Runs where the model lives (an
// inference worker, or the CLI's main thread).
//
// This is ModelRuntime.tensors: the engine's trunk (the layers as extra outputs) and, with classes, the
// head's backward pass, sessions shared with the explanations. Without classes no backward graph is
// built, so models whose backward cannot be built still show feature maps.
import type { ModelRuntime } from '../engine/runtime.js';

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
  constructor(readonly rt: ModelRuntime) {}

  async run(req: TensorsRequest): Promise<TensorsResult> {
    const layers = [...new Set(req.layers)];
    const r = await this.rt.tensors(req.input, layers, { targets: req.targets, topk: req.topk });
    // Copies: onnxruntime's outputs may share one buffer, and results are transferred between threads.
    return {
      logits: Float32Array.from(r.logits),
      targets: r.targets,
      layers: layers.map((l) => ({
        layer: l,
        dims: this.rt.tensorDims(l) ?? [],
        activations: Float32Array.from(r.activations[l]),
        ...(r.gradients ? { gradients: Float32Array.from(r.gradients[l]) } : {}),
      })),
    };
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
