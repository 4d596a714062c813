// Types of the CAM layer: what a method sees (one layer's activations and gradients for one class)
// and what it supplies (channel weights, or weighted activations where weights do not suffice).

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

/** Variants of a layer's activations [C·h·w], made on demand. */
export interface ActivationVariants {
  count: number;
  write(index: number, out: Float32Array): void;
}

/** Forward runs a method may ask for (Score-CAM, Ablation-CAM) and head facts (CAM). */
export interface ForwardRunner {
  /** Spatial size of the model input. */
  readonly inputSize: { height: number; width: number };
  /** Target-class logit of the whole model on the current input multiplied by each mask (height × width, broadcast over channels). */
  scoreMasked(masks: Float32Array[], target: number): Promise<Float32Array>;
  /**
   * Target-class logit of the part of the model after `layer`, with its activations replaced by each of
   * `variants.count` variants; `write(i, out)` fills variant i into `out` (written straight into the batch
   * buffer, so no variant is ever held in memory as a whole set).
   */
  scoreActivations(layer: string, variants: ActivationVariants, target: number): Promise<Float32Array>;
  /** Row `target` of the linear classifier that follows global average pooling of `layer` (throws if the head is not GAP → linear). */
  classifierWeights(layer: string, target: number): Promise<Float32Array>;
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
  /** one line: formula and paper */
  readonly summary: string;
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

/** A method that cannot explain this model or layer (HTTP 422). */
export class MethodError extends Error {
  override name = 'MethodError';
}
