import type { CamMethod } from '../types.js';

/**
 * Ablation-CAM (Desai & Ramaswamy, WACV 2020): w_k = (y_c − y_c(A with channel k ablated)) / y_c, where
 * ablated means 0 when min(A) = 0, else min(A) − 1e7 (as pytorch-grad-cam). Only the part of the model
 * after the layer is re-run, batched.
 */
export const ablationcam: CamMethod = {
  name: 'ablationcam',
  needs: 'head-runs',
  async weights(l, ctx) {
    const hw = l.h * l.w;
    let min = Infinity;
    for (const v of l.A) min = Math.min(min, v);
    const fill = min === 0 ? 0 : min - 1e7;
    const scores = await ctx.runner.scoreActivations(l.name, {
      count: l.C,
      write(k, out) {
        out.set(l.A);
        out.fill(fill, k * hw, (k + 1) * hw);
      },
    }, ctx.target);
    return Float32Array.from(scores, (s) => (ctx.score - s) / ctx.score);
  },
};
