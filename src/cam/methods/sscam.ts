// SS-CAM: Score-CAM weights averaged over noisy masks (forward runs only); TorchCAM's SSCAM.
// One module per method (see ../types.ts); checked against the library in test/cam/library.test.ts.
import { gaussian } from '../random.js';
import { maskInput } from '../maths.js';
import type { CamMethod } from '../types.js';
import { softmaxOfMean, torchcamMasks } from './torchcam-score.js';

/** Noise added to mask k in sample s: H·W values. */
export type MaskNoise = (sample: number, channel: number, size: number) => Float32Array;

/** TorchCAM's default number of samples */
export const SSCAM_SAMPLES = 35;

export interface SscamOptions {
  /** TorchCAM's defaults: 35 samples, σ = 2 */
  samples?: number;
  std?: number;
  /** the noise; default: seeded Gaussian N(0, σ²) (Box–Muller on mulberry32, seed 0) */
  noise?: MaskNoise;
}

/**
 * SS-CAM, Smoothed Score-CAM (Wang et al. 2020, arXiv:2006.14255), as TorchCAM computes it: with M_k
 * TorchCAM's Score-CAM mask (see torchcamMasks) and δ_sk ~ N(0, σ²) per pixel,
 * w = softmax_k( (1/N) Σ_s [y_c(x ⊙ (M_k + δ_sk)) − y_c(x)] ); map = ReLU(Σ_k w_k A_k). N·C forward runs.
 */
export function createSscam(opts: SscamOptions = {}): CamMethod {
  const std = opts.std ?? 2;
  return {
    name: 'sscam',
    needs: 'input-runs',
    async weights(l, ctx) {
      const input = ctx.runner.input;
      const { height: H, width: W } = input;
      // The request's draws [S, C, H, W] replay a library's noise (S samples); else seeded N(0, σ²).
      const per = l.C * H * W;
      if (ctx.draws && ctx.draws.length % per !== 0) throw new RangeError(`sscam: ${ctx.draws.length} drawn values are not samples of ${l.C}×${H}×${W}`);
      const draws = ctx.draws;
      const samples = draws ? draws.length / per : opts.samples ?? SSCAM_SAMPLES;
      const noise: MaskNoise = opts.noise
        ?? (draws ? (s, k) => draws.subarray((s * l.C + k) * H * W, (s * l.C + k + 1) * H * W) : gaussianNoise(std, ctx.seed ?? 0));
      const masks = torchcamMasks(l, H, W);
      const sums = new Float64Array(l.C);
      for (let s = 0; s < samples; s++) {
        const noisy = masks.map((m, k) => {
          const d = noise(s, k, H * W);
          return Float32Array.from(m, (v, i) => v + d[i]);
        });
        const scores = await ctx.runner.scoreInputs({ count: l.C, write: (k, out) => maskInput(input, noisy[k], out) }, ctx.target);
        for (let k = 0; k < l.C; k++) sums[k] += scores[k] - ctx.score;
      }
      return softmaxOfMean(sums, samples);
    },
  };
}

export const sscam: CamMethod = createSscam();

/** N(0, σ²) mask noise from one seeded stream, drawn in call order. */
export function gaussianNoise(std: number, seed: number): MaskNoise {
  const draw = gaussian(std, seed);
  return (_s, _k, size) => draw(size);
}
