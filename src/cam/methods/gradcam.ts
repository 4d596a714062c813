import { gradientMeans } from '../maths.js';
import type { CamMethod } from '../types.js';

/** Grad-CAM (Selvaraju et al., ICCV 2017): w_k = mean_ij ∂y_c/∂A_kij; map = ReLU(Σ_k w_k A_k). */
export const gradcam: CamMethod = {
  name: 'gradcam',
  needs: 'gradients',
  weights: (l) => gradientMeans(l),
};
