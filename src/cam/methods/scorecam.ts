import { maskInput } from '../maths.js';
import { upsampleAlignCorners } from '../resample.js';
import type { CamMethod, InputView, LayerTensors } from '../types.js';

/**
 * Score-CAM (Wang et al., CVPRW 2020): M_k = A_k bilinearly upsampled to the input (align_corners),
 * min-max normalised (+1e-8); w = softmax_k y_c(x ⊙ M_k). One whole-model run per channel, batched.
 */
export const scorecam: CamMethod = {
  name: 'scorecam',
  needs: 'input-runs',
  async weights(l, ctx) {
    const input = ctx.runner.input;
    const scores = await ctx.runner.scoreInputs({ count: l.C, write: (k, out) => maskInput(input, channelMask(l, k, input), out) }, ctx.target);
    return softmax(scores);
  },
};

/** Channel k of the layer upsampled to the input size and min-max normalised to [0, 1]. */
function channelMask(l: LayerTensors, k: number, input: InputView): Float32Array {
  const hw = l.h * l.w;
  const m = upsampleAlignCorners(l.A.subarray(k * hw, (k + 1) * hw), l.h, l.w, input.height, input.width);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of m) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const scale = 1 / (hi - lo + 1e-8);
  for (let i = 0; i < m.length; i++) m[i] = (m[i] - lo) * scale;
  return m;
}


function softmax(scores: Float32Array): Float32Array {
  let max = -Infinity;
  for (const s of scores) max = Math.max(max, s);
  let sum = 0;
  const w = Float32Array.from(scores, (s) => { const e = Math.exp(s - max); sum += e; return e; });
  for (let k = 0; k < w.length; k++) w[k] /= sum;
  return w;
}
