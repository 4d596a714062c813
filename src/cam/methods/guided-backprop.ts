// Guided backpropagation: the input gradient with every ReLU passing only positive gradients;
// pytorch-grad-cam's GuidedBackpropReLUModel.
import { attributionMap } from '../input-attribution.js';
import type { InputMethod } from '../types.js';

/**
 * Guided backpropagation (Springenberg et al., "Striving for Simplicity: The All Convolutional Net", ICLR
 * workshop 2015): ∂y/∂x with each ReLU's backward dx = dy ⊙ [x > 0] ⊙ [dy > 0] (pytorch-grad-cam's
 * GuidedBackpropReLU). camserve guides every ONNX Relu node; the library swaps only nn.ReLU modules, so
 * a functional F.relu (DenseNet's after `features`) stays plain there. Map = |Σ_c a_c|. One run.
 */
export const guidedBackprop: InputMethod = {
  kind: 'input',
  name: 'guided-backprop',
  relu: 'guided',
  runs: 1,
  attribute: async (ctx) => attributionMap((await ctx.gradients([ctx.input.data]))[0], ctx.input),
};
