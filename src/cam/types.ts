// Types of the CAM layer: what a method sees (one layer's activations and gradients for one class)
// and what it supplies (channel weights, or weighted activations where weights do not suffice).
import { ExplainError } from '../errors/index.js';

/** One target layer for one image: A and (for gradient methods) G = dScore/dA, both [C, h, w]. */
export interface LayerTensors {
  name: string;
  C: number;
  h: number;
  w: number;
  A: Float32Array;
  G?: Float32Array;
  /**
   * G's value per channel [C] where G is constant over the positions (a pooling → linear head's gradient:
   * the engine's shortcut). G itself is then made from it on first read ({@link withChannelGradient}), so
   * that methods which need only the channel means (Grad-CAM, Finer-CAM) never build the [C, h, w] tensor.
   */
  Gc?: Float32Array;
  /**
   * H·A [C, h, w]: the Hessian of the score w.r.t. A applied to A itself (Σ_j ∂G_i/∂A_j · A_j). Only
   * ShapleyCAM reads it (`hessian: true`); the engine computes it by differentiating its backward graph.
   */
  HA?: Float32Array;
}

/** Variants of a tensor (an input, a layer's activations), each written on demand into a batch slot. */
export interface Variants {
  count: number;
  /** fills variant `index` into `out` (a slot of the batch buffer: no variant is held as a whole set) */
  write(index: number, out: Float32Array): void;
}

/** The preprocessed model input of the image being explained, and how its values are laid out. */
export interface InputView {
  height: number;
  width: number;
  channels: number;
  layout: 'NCHW' | 'NHWC';
  data: Float32Array;
}

/** A global-average-pool → linear head's classifier (what CAM weights channels with). */
export interface ClassifierWeights {
  channels: number;
  classes: number;
  row(target: number): Float32Array;
}

/** A score of one input's logits (a target's objective: a class's logit, its softmax probability, …). */
export type Objective = (logits: Float32Array) => number;

/**
 * Model runs a method may ask for, besides the one forward (and backward) pass every method gets. The
 * engine implements it: it batches the runs and stops between batches when the request is cancelled.
 * A class `target` is scored by the explanation's target kind (its logit for `class`).
 */
export interface ForwardRunner {
  readonly input: InputView;
  /** The target's score of the whole model on each variant of the input (or any objective of the logits). */
  scoreInputs(variants: Variants, target: number | Objective): Promise<Float32Array>;
  /** The target's score of the part of the model after `layer`, with its activations replaced by each variant. */
  scoreActivations(layer: string, variants: Variants, target: number): Promise<Float32Array>;
  /** The classifier after global average pooling of `layer` (ExplainError when the head is anything else). */
  classifier(layer: string): Promise<ClassifierWeights>;
}

export interface MethodContext {
  target: number;
  /** the target's score on the unmodified input (its logit for target kind `class`) */
  score: number;
  runner: ForwardRunner;
  /** seed of the method's random draws (Random-CAM's weights, SS-CAM's noise); default 0 */
  seed?: number;
  /** the method's random draws given as data instead (tests replay a library's noise), laid out as the method says */
  draws?: Float32Array;
}

/** What an explanation differentiates (pytorch-grad-cam's targets; see targets.ts). */
export const TARGET_KINDS = ['class', 'softmax', 'sigmoid', 'binary', 'rest', 'finer'] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];

export function isTargetKind(s: string): s is TargetKind {
  return (TARGET_KINDS as readonly string[]).includes(s);
}

/** Finer-CAM's comparison: the classes at these ranks of nearness to the target's logit (1 = the nearest), and α. */
export interface FinerOptions {
  ranks: readonly number[];
  alpha: number;
}

/** pytorch-grad-cam's FinerCAM defaults: comparison_categories [1, 2, 3], alpha 1. */
export const FINER_DEFAULTS: FinerOptions = Object.freeze({ ranks: Object.freeze([1, 2, 3]), alpha: 1 });

export const METHOD_NAMES = [
  'gradcam', 'hirescam', 'gradcam-elementwise', 'gradcam++', 'xgradcam', 'layercam',
  'eigencam', 'eigengradcam', 'scorecam', 'ablationcam', 'cam',
  'fem', 'kpcacam', 'segeigencam', 'randomcam', 'shapleycam', 'finercam', 'iscam', 'sscam',
  'smoothgradcampp', 'refinecam', 'dff',
  'saliency', 'integrated-gradients', 'smoothgrad', 'guided-backprop', 'guided-gradcam', 'fullgrad',
] as const;
export type MethodName = (typeof METHOD_NAMES)[number];

export function isMethodName(s: string): s is MethodName {
  return (METHOD_NAMES as readonly string[]).includes(s);
}

/** One noisy run of the model: a layer's activations and gradients on a noisy copy of the input. */
export interface NoisyRun { A: Float32Array; G: Float32Array }

/**
 * A CAM method of a layer's activations (and gradients). It supplies either `weights` (one per channel;
 * the map is then ReLU(Σ_k w_k A_k)), `weighted` (the weighted activations [C,h,w] whose channel sum, or
 * first principal component, is the map), `map`, or `noisy` (a map from several noisy runs).
 */
export interface CamMethod {
  readonly kind?: 'layer';
  readonly name: MethodName;
  /** what it costs: gradients (one backward), activations only, or extra forward runs */
  readonly needs: 'gradients' | 'activations' | 'input-runs' | 'head-runs' | 'classifier';
  /** always take the first principal component of the weighted activations (Eigen-CAM) instead of their sum */
  readonly project?: boolean;
  weights?(layer: LayerTensors, ctx: MethodContext): Float32Array | Promise<Float32Array>;
  weighted?(layer: LayerTensors): Float32Array;
  /** the map [h, w] before the final ReLU, for methods that are no channel combination (KPCA-CAM); eigen smoothing does not apply */
  map?(layer: LayerTensors): Float32Array;
  /** the target kind the method explains, whatever the request says (Finer-CAM: `finer`) */
  readonly targetKind?: TargetKind;
  /** the method reads H·A (ShapleyCAM): the engine differentiates the head's backward graph once more */
  readonly hessian?: boolean;
  /** how the maps of several layers combine: the mean of their normalised maps (default) or their product (RefineCAM) */
  readonly combine?: 'mean' | 'product';
  /**
   * The method reads `samples` runs on noisy copies x + δ_s of the input (δ_s ~ N(0, std²) per value,
   * seeded, or the request's draws [samples, …input]): the map [h, w] after its ReLU, from the clean
   * activations and the noisy runs' A and G (Smooth Grad-CAM++).
   */
  readonly noisy?: { samples: number; std: number; map(layer: LayerTensors, runs: NoisyRun[]): Float32Array };
}

/** dObjective/dInput for each input (each laid out as the model input), from the engine's trunk+backward runs. */
export type InputGradients = (inputs: Float32Array[]) => Promise<Float32Array[]>;

/** A biased layer's output gradient and bias (FullGrad): G [C, h, w], bias [C]. */
export interface BiasLayer { name: string; C: number; h: number; w: number; bias: Float32Array; G: Float32Array }

export interface InputMethodContext {
  /** the preprocessed input x */
  input: InputView;
  target: number;
  /** ∂score/∂x of the target's objective (with guided ReLUs for methods whose relu is guided) */
  gradients: InputGradients;
  /** seed of the method's noise (SmoothGrad) */
  seed: number;
  /** the method's random draws given as data (tests) */
  draws?: Float32Array;
  /** Grad-CAM of the target at the request's layer, normalised, at the input size (methods with layerCam) */
  layerCam?: Float32Array;
  /** ∂score/∂x at x and every biased layer's output gradient (methods with biasGradients) */
  bias?: { inputGradient: Float32Array; layers: BiasLayer[] };
}

/**
 * A method of input gradients (Captum's attributions, guided backpropagation, FullGrad): a map at the
 * input's resolution [H, W], ≥ 0.
 */
export interface InputMethod {
  readonly kind: 'input';
  readonly name: MethodName;
  /** how the backward pass treats Relu nodes (guided backpropagation: guided) */
  readonly relu: 'plain' | 'guided';
  /** trunk + backward runs per explained class (batched): its cost in units of Saliency */
  readonly runs: number;
  /** the method multiplies by the layer's Grad-CAM (Guided Grad-CAM): it uses a layer */
  readonly layerCam?: boolean;
  /** the method reads the gradients at every biased layer (FullGrad) */
  readonly biasGradients?: boolean;
  attribute(ctx: InputMethodContext): Promise<Float32Array>;
}

/** Deep Feature Factorization: concepts of a layer's activations, not a map per class (see ../dff.ts). */
export interface FactorizationMethod {
  readonly kind: 'factorization';
  readonly name: MethodName;
  /** pytorch-grad-cam's run_dff_on_image defaults: 5 concepts, 2 classes each */
  readonly concepts: number;
  readonly topClasses: number;
}

export type Method = CamMethod | InputMethod | FactorizationMethod;

/** A method that cannot explain this model, layer or class (HTTP 422). */
export class MethodError extends ExplainError {
  override name = 'MethodError';
}
