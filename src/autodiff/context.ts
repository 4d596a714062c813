// The contract between the gradient-graph builder and its vector-Jacobian rules.
// A rule sees one forward node and the gradients of its outputs, and emits standard ONNX nodes.
import { ExplainError } from '../errors/index.js';
import type { AttrValue, NodeProto } from '../onnx/index.js';

/**
 * Everything a rule may use. Shapes are the static forward shapes learnt by the probe run; every tensor
 * on the differentiated path has batch 1 in axis 0, and every gradient has the same shape with axis 0
 * replaced by K (the number of seeds, i.e. classes explained at once; dynamic). So a gradient broadcasts
 * against the batch-1 forward tensors, and one backward run yields K gradients.
 */
export interface VjpContext {
  readonly node: NodeProto;
  /** The model's default-domain opset: emitted nodes must be valid at this version. */
  readonly opset: number;
  /**
   * One seed per run: gradients have exactly their tensors' forward dims (K = 1 is not an extra axis),
   * so tensors whose axis 0 is not a batch of 1 (attention that moves or merges the batch axis, windows
   * folded into the batch) may lie on the path, and rules need not keep axis 0 for K.
   */
  readonly perSeed: boolean;
  /** How Relu passes gradients: plainly, or guided (only positive gradients, guided backpropagation). */
  readonly relu: 'plain' | 'guided';
  /** Static forward dims of a tensor. */
  shape(name: string): number[];
  /** Whether input `i` of the node is on the differentiated path (needs a gradient). */
  needs(i: number): boolean;
  /** Value of a small constant input (initializer or Constant node), or undefined if not constant. */
  constant(name: string): number[] | undefined;
  /** Like `constant`, but throws an error naming the node when the tensor is not constant. */
  requireConstant(name: string, what: string): number[];
  /** Emits a node; returns its output names (fresh names unless `outputs` is given). */
  emit(opType: string, inputs: readonly string[], attrs?: Record<string, AttrValue | undefined>, outputs?: number | readonly string[]): string[];
  /** Emits a single-output node and returns its output name. */
  op(opType: string, inputs: readonly string[], attrs?: Record<string, AttrValue | undefined>): string;
  /** A float32 constant (initializer). */
  constF(values: ArrayLike<number>, dims?: readonly number[]): string;
  /** An int64 constant (initializer). */
  constI(values: readonly number[], dims?: readonly number[]): string;
  /** Error that names this node and says why it cannot be differentiated. */
  fail(why: string): never;
}

/**
 * A vector-Jacobian rule: given dL/d(outputs) (undefined where an output is not on the path), return
 * dL/d(inputs) (undefined where an input is not on the path or has no gradient).
 */
export type VjpRule = (ctx: VjpContext, dOutputs: readonly (string | undefined)[]) => (string | undefined)[];

/** A graph that cannot be differentiated (an op without a rule on the path, a form a rule refuses): 422. */
export class GradientError extends ExplainError {
  override name = 'GradientError';
}
