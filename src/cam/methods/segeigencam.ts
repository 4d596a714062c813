// Seg-Eigen-CAM: Eigen-CAM of |gradient| × activation with a sign correction; pytorch-grad-cam's SegEigenCAM.
// One module per method (see ../types.ts); checked against the library in test/cam/library.test.ts.
import type { CamMethod } from '../types.js';

/**
 * Seg-Eigen-CAM (Chung & Ying, Applied Sciences 15(13) 7562, 2025): the first principal component of
 * |G| ⊙ A (absolute gradients keep the negative evidence Grad-CAM drops), signed so that max ≥ |min|
 * (the paper's sign correction, which is camserve's Eigen-CAM sign rule); map = ReLU of it.
 */
export const segeigencam: CamMethod = {
  name: 'segeigencam',
  needs: 'gradients',
  project: true,
  weighted: (l) => Float32Array.from(l.A, (a, i) => a * Math.abs(l.G![i])),
};
