import type { CamMethod } from '../types.js';

/** Eigen-CAM (Muhammad & Yeasin, IJCNN 2020): first principal component of the activations; class-agnostic, no gradients. */
export const eigencam: CamMethod = {
  name: 'eigencam',
  needs: 'activations',
  project: true,
  weighted: (l) => l.A,
};
