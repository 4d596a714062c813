import type { CamMethod } from '../types.js';

/** CAM (Zhou et al., CVPR 2016): map = ReLU(Σ_k W_ck A_k) for heads that are global-average-pool → linear. */
export const cam: CamMethod = {
  name: 'cam',
  summary: 'CAM: the linear classifier\'s weights of the class (GAP → linear heads only)',
  needs: 'classifier',
  weights: (l, ctx) => ctx.runner.classifierWeights(l.name, ctx.target),
};
