import type { CamMethod } from '../types.js';

/** Grad-CAM element-wise (pytorch-grad-cam's GradCAMElementWise): map = Σ_k ReLU(G_k ⊙ A_k). */
export const gradcamElementwise: CamMethod = {
  name: 'gradcam-elementwise',
  needs: 'gradients',
  weighted: (l) => Float32Array.from(l.A, (a, i) => Math.max(a * l.G![i], 0)),
};
