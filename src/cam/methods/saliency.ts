// Saliency: the absolute input gradient; Captum's Saliency.
import { attributionMap, saliency as saliencyOf } from '../input-attribution.js';
import type { InputMethod } from '../types.js';

/**
 * Saliency (Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks", ICLR workshop 2014), as
 * Captum's Saliency (abs=True): a = |∂y/∂x|; map = Σ_c a_c (attributionMap). One trunk + backward run.
 */
export const saliency: InputMethod = {
  kind: 'input',
  name: 'saliency',
  relu: 'plain',
  runs: 1,
  attribute: async (ctx) => attributionMap(await saliencyOf(ctx.input.data, ctx.gradients), ctx.input),
};
