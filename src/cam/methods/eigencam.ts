import type { CamMethod } from '../types.js';

/** Eigen-CAM (Muhammad & Yeasin, IJCNN 2020): first principal component of the activations; class-agnostic, no gradients. */
export const eigencam: CamMethod = {
  name: 'eigencam',
  summary: 'Eigen-CAM: first principal component of the activations (no gradients, not class-specific)',
  needs: 'activations',
  project: true,
  weighted: (l) => l.A,
};
