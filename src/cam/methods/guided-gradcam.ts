// Guided Grad-CAM: guided backpropagation times the layer's Grad-CAM at the input's size; pytorch-grad-cam's
// README recipe (GuidedBackpropReLUModel × GradCAM).
import { attributionMap, guidedGradCam as product } from '../input-attribution.js';
import { MethodError, type InputMethod } from '../types.js';

/**
 * Guided Grad-CAM (Selvaraju et al., "Grad-CAM", ICCV 2017): a = GB(x) ⊙ L, with GB the guided
 * backpropagation (guided-backprop.ts) and L the Grad-CAM map of the layer, normalised and resized to the
 * input (pytorch-grad-cam's GradCAM output); map = |Σ_c a_c|. One guided run plus Grad-CAM's passes.
 */
export const guidedGradcam: InputMethod = {
  kind: 'input',
  name: 'guided-gradcam',
  relu: 'guided',
  runs: 2,
  layerCam: true,
  async attribute(ctx) {
    if (!ctx.layerCam) throw new MethodError('guided-gradcam needs the Grad-CAM map of a layer');
    const [gb] = await ctx.gradients([ctx.input.data]);
    if (ctx.input.layout === 'NHWC') {
      const C = ctx.input.channels;
      return attributionMap(Float32Array.from(gb, (v, i) => v * ctx.layerCam![Math.floor(i / C)]), ctx.input);
    }
    return attributionMap(product(gb, ctx.layerCam), ctx.input);
  },
};
