import type { CamMethod } from '../types.js';

/** Grad-CAM element-wise (pytorch-grad-cam's GradCAMElementWise): map = Σ_k ReLU(G_k ⊙ A_k). */
export const gradcamElementwise: CamMethod = {
  name: 'gradcam-elementwise',
  summary: 'Grad-CAM element-wise: ReLU of gradient × activation, summed over channels',
  needs: 'gradients',
  weighted: (l) => Float32Array.from(l.A, (a, i) => Math.max(a * l.G![i], 0)),
};
