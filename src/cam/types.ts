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
   * H·A [C, h, w]: the Hessian of the score w.r.t. A applied to A itself (Σ_j ∂G_i/∂A_j · A_j). Only
   * ShapleyCAM reads it; the engine does not compute it yet (see src/cam/methods/shapleycam.ts).
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

/**
 * Model runs a method may ask for, besides the one forward (and backward) pass every method gets. The
 * engine implements it: it batches the runs and stops between batches when the request is cancelled.
 */
export interface ForwardRunner {
  readonly input: InputView;
  /** Target-class logit of the whole model on each variant of the input. */
  scoreInputs(variants: Variants, target: number): Promise<Float32Array>;
  /** Target-class logit of the part of the model after `layer`, with its activations replaced by each variant. */
  scoreActivations(layer: string, variants: Variants, target: number): Promise<Float32Array>;
  /** The classifier after global average pooling of `layer` (ExplainError when the head is anything else). */
  classifier(layer: string): Promise<ClassifierWeights>;
}

export interface MethodContext {
  target: number;
  /** the target class's logit on the unmodified input */
  score: number;
  runner: ForwardRunner;
}

export const METHOD_NAMES = [
  'gradcam', 'hirescam', 'gradcam-elementwise', 'gradcam++', 'xgradcam', 'layercam',
  'eigencam', 'eigengradcam', 'scorecam', 'ablationcam', 'cam',
] as const;
export type MethodName = (typeof METHOD_NAMES)[number];

/**
 * Methods implemented as modules (src/cam/methods/candidates.ts) and checked against their libraries, but
 * not served: the HTTP contract (openapi.yaml's MethodName) lists the served ones, and some of these need
 * engine support first (seed vectors, Hessian-vector products, several runs per explanation).
 */
export const CANDIDATE_METHOD_NAMES = [
  'fem', 'kpcacam', 'randomcam', 'segeigencam', 'shapleycam', 'finercam', 'iscam', 'sscam',
] as const;
export type CandidateMethodName = (typeof CANDIDATE_METHOD_NAMES)[number];

export function isMethodName(s: string): s is MethodName {
  return (METHOD_NAMES as readonly string[]).includes(s);
}

/**
 * A CAM method. It supplies either `weights` (one per channel; the map is then ReLU(Σ_k w_k A_k)) or
 * `weighted` (the weighted activations [C,h,w] whose channel sum, or first principal component, is the map).
 */
export interface CamMethod {
  readonly name: MethodName | CandidateMethodName;
  /** what it costs: gradients (one backward), activations only, or extra forward runs */
  readonly needs: 'gradients' | 'activations' | 'input-runs' | 'head-runs' | 'classifier';
  /** always take the first principal component of the weighted activations (Eigen-CAM) instead of their sum */
  readonly project?: boolean;
  weights?(layer: LayerTensors, ctx: MethodContext): Float32Array | Promise<Float32Array>;
  weighted?(layer: LayerTensors): Float32Array;
  /** the map [h, w] before the final ReLU, for methods that are no channel combination (KPCA-CAM); eigen smoothing does not apply */
  map?(layer: LayerTensors): Float32Array;
  /**
   * The method differentiates a combination of the logits instead of one class's logit: dObjective/dlogits
   * for the given logits and target. The G it is handed must be the gradient for that seed, i.e.
   * Σ_c seed_c · G_c (see src/cam/targets.ts); the engine still seeds one-hot vectors.
   */
  seed?(logits: Float32Array, target: number): Float32Array;
}

/** A method that cannot explain this model, layer or class (HTTP 422). */
export class MethodError extends ExplainError {
  override name = 'MethodError';
}
