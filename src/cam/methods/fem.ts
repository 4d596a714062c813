// FEM: channel weights from the share of strongly activated positions (no gradients); pytorch-grad-cam's FEM.
// One module per method (see ../types.ts); checked against the library in test/cam/library.test.ts.
import type { CamMethod } from '../types.js';

/** k of the k-sigma rule (pytorch-grad-cam's default) */
export const FEM_K = 2;

/**
 * FEM, Feature Explanation Method (Fuad et al., "Features Understanding in 3D CNNs for Actions Recognition in Video", IPTA 2020): no gradients. A position of channel
 * k is salient when A_kij > μ_k + K·σ_k (channel mean and population standard deviation, K = 2);
 * w_k = the fraction of salient positions; map = ReLU(Σ_k w_k A_k).
 */
export const fem: CamMethod = {
  name: 'fem',
  needs: 'activations',
  weights(l) {
    const hw = l.h * l.w;
    const w = new Float32Array(l.C);
    for (let k = 0; k < l.C; k++) {
      const a = l.A.subarray(k * hw, (k + 1) * hw);
      let mean = 0;
      for (const v of a) mean += v;
      mean /= hw;
      let sq = 0;
      for (const v of a) sq += (v - mean) * (v - mean);
      // The threshold in float32, as numpy computes it on float32 activations.
      const th = Math.fround(Math.fround(mean) + FEM_K * Math.fround(Math.sqrt(sq / hw)));
      let above = 0;
      for (const v of a) if (v > th) above++;
      w[k] = above / hw;
    }
    return w;
  },
};
