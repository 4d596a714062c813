import { upsampleAlignCorners } from '../resample.js';
import type { CamMethod } from '../types.js';

/**
 * Score-CAM (Wang et al., CVPRW 2020): M_k = A_k bilinearly upsampled to the input (align_corners),
 * min-max normalised (+1e-8); w = softmax_k y_c(x ⊙ M_k). One whole-model run per channel, batched.
 */
export const scorecam: CamMethod = {
  name: 'scorecam',
  summary: 'Score-CAM: softmax of the class score with the input masked by each channel (C forward runs)',
  needs: 'input-runs',
  async weights(l, ctx) {
    const { height: H, width: W } = ctx.runner.inputSize;
    const hw = l.h * l.w;
    const masks: Float32Array[] = [];
    for (let k = 0; k < l.C; k++) {
      const m = upsampleAlignCorners(l.A.subarray(k * hw, (k + 1) * hw), l.h, l.w, H, W);
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of m) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      const scale = 1 / (hi - lo + 1e-8);
      for (let i = 0; i < m.length; i++) m[i] = (m[i] - lo) * scale;
      masks.push(m);
    }
    const scores = await ctx.runner.scoreMasked(masks, ctx.target);
    let max = -Infinity;
    for (const s of scores) max = Math.max(max, s);
    let sum = 0;
    const w = Float32Array.from(scores, (s) => { const e = Math.exp(s - max); sum += e; return e; });
    for (let k = 0; k < w.length; k++) w[k] /= sum;
    return w;
  },
};
