import type { CamMethod } from '../types.js';

/** CAM (Zhou et al., CVPR 2016): map = ReLU(Σ_k W_ck A_k) for heads that are global-average-pool → linear. */
export const cam: CamMethod = {
  name: 'cam',
  needs: 'classifier',
  weights: async (l, ctx) => (await ctx.runner.classifier(l.name)).row(ctx.target),
};
