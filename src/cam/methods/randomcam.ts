// Random-CAM: seeded random channel weights, the baseline metrics compare real methods with;
// pytorch-grad-cam's RandomCAM.
import { mulberry32 } from '../random.js';
import type { CamMethod } from '../types.js';

/**
 * Random-CAM (pytorch-grad-cam's RandomCAM, a sanity baseline for metrics): w_k ~ U(−1, 1) independently
 * per channel; map = ReLU(Σ_k w_k A_k). Seeded (mulberry32). The method object keeps one stream: each
 * explanation it makes draws the next weights, as the library's successive calls do from numpy's global
 * generator.
 */
export function createRandomCam(seed = 0): CamMethod {
  const next = mulberry32(seed);
  return {
    name: 'randomcam',
    needs: 'activations',
    weights: (l) => Float32Array.from({ length: l.C }, () => 2 * next() - 1),
  };
}

/** The registry's instance: a fresh stream from the request's seed (default 0) per map, so a request is reproducible. */
export const randomcam: CamMethod = {
  name: 'randomcam',
  needs: 'activations',
  weights: (l, ctx) => {
    if (ctx.draws) {
      if (ctx.draws.length !== l.C) throw new RangeError(`randomcam: ${ctx.draws.length} drawn weights for ${l.C} channels`);
      return Float32Array.from(ctx.draws);
    }
    const next = mulberry32(ctx.seed ?? 0);
    return Float32Array.from({ length: l.C }, () => 2 * next() - 1);
  },
};
