// RefineCAM: Grad-CAM++ maps of several layers multiplied at the input size; pytorch-grad-cam's RefineCAM.
import type { CamMethod } from '../types.js';
import { gradcamPlusPlus } from './gradcam-plusplus.js';

/**
 * RefineCAM (Domeniconi et al., "How to Evaluate and Refine your CAM", arXiv:2605.14641), pytorch-grad-cam's
 * form with its default base method Grad-CAM++: each layer's Grad-CAM++ map, normalised and resized to the
 * input, and their element-wise product (../refinecam.ts), which keeps what the layers agree on and
 * denoises shallow layers' maps. With one layer it is Grad-CAM++; ask for several (`layer=a,b,c`).
 */
export const refinecam: CamMethod = {
  name: 'refinecam',
  needs: 'gradients',
  weights: gradcamPlusPlus.weights,
  combine: 'product',
};
