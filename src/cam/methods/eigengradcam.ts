import type { CamMethod } from '../types.js';

/** Eigen-Grad-CAM (pytorch-grad-cam): first principal component of G ⊙ A; class-specific, cleaner than Eigen-CAM. */
export const eigengradcam: CamMethod = {
  name: 'eigengradcam',
  needs: 'gradients',
  project: true,
  weighted: (l) => Float32Array.from(l.A, (a, i) => a * l.G![i]),
};
