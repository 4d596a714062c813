// IS-CAM: Score-CAM weights integrated over scaled masks (forward runs only); TorchCAM's ISCAM.
// One module per method (see ../types.ts); checked against the library in test/cam/library.test.ts.
import { maskInput } from '../maths.js';
import type { CamMethod } from '../types.js';
import { softmaxOfMean, torchcamMasks } from './torchcam-score.js';

/** TorchCAM's default number of integration steps */
export const ISCAM_SAMPLES = 10;

/**
 * IS-CAM, Integrated Score-CAM (Naidu et al. 2020, arXiv:2010.03023), as TorchCAM computes it: with
 * M_k TorchCAM's Score-CAM mask (see torchcamMasks) and c_s = Σ_{j=1..s} j/N for s = 1..N (N = 10),
 * w = softmax_k( (1/N) Σ_s [y_c(c_s · x ⊙ M_k) − y_c(x)] ); map = ReLU(Σ_k w_k A_k). N·C forward runs.
 * (c_s grows past 1: TorchCAM accumulates the coefficients, and so does this.)
 */
export const iscam: CamMethod = {
  name: 'iscam',
  needs: 'input-runs',
  async weights(l, ctx) {
    const input = ctx.runner.input;
    const masks = torchcamMasks(l, input.height, input.width);
    const sums = new Float64Array(l.C);
    let coeff = 0;
    for (let s = 0; s < ISCAM_SAMPLES; s++) {
      coeff += (s + 1) / ISCAM_SAMPLES;
      const c = coeff;
      const scores = await ctx.runner.scoreInputs({ count: l.C, write: (k, out) => maskInput(input, masks[k], out, c) }, ctx.target);
      for (let k = 0; k < l.C; k++) sums[k] += scores[k] - ctx.score;
    }
    return softmaxOfMean(sums, ISCAM_SAMPLES);
  },
};
