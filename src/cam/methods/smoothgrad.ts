// SmoothGrad: saliency averaged over noisy copies of the input; Captum's NoiseTunnel(Saliency).
import { attributionMap, smoothGrad as smoothGradOf } from '../input-attribution.js';
import { noiseSamples } from '../random.js';
import type { InputMethod } from '../types.js';

/** Captum's NoiseTunnel defaults: 5 samples, σ = 1 (on the normalised input) */
export const SMOOTHGRAD_SAMPLES = 5;
export const SMOOTHGRAD_STD = 1;

/**
 * SmoothGrad (Smilkov et al., "SmoothGrad: removing noise by adding noise", 2017) as Captum's
 * NoiseTunnel(Saliency(abs=True), nt_type='smoothgrad'): a = mean_s |∂y/∂x (x + δ_s)|, δ_s ~ N(0, σ²) per
 * value, drawn from the request's seed (or given as draws [samples, …input]); map = Σ_c a_c.
 * 5 trunk + backward runs, batched.
 */
export const smoothgrad: InputMethod = {
  kind: 'input',
  name: 'smoothgrad',
  relu: 'plain',
  runs: SMOOTHGRAD_SAMPLES,
  async attribute(ctx) {
    const x = ctx.input.data;
    const { samples, noise } = noiseSamples(x.length, { draws: ctx.draws, samples: SMOOTHGRAD_SAMPLES, std: SMOOTHGRAD_STD, seed: ctx.seed });
    return attributionMap(await smoothGradOf(x, ctx.gradients, { samples, noise }), ctx.input);
  },
};
