import type { CamMethod } from '../types.js';

/** XGrad-CAM (Fu et al., BMVC 2020): w_k = Σ_ij G_kij·A_kij / (Σ_ij A_kij + 1e-7). */
export const xgradcam: CamMethod = {
  name: 'xgradcam',
  needs: 'gradients',
  weights(l) {
    const hw = l.h * l.w;
    const w = new Float32Array(l.C);
    for (let k = 0; k < l.C; k++) {
      let ga = 0;
      let a = 0;
      for (let i = 0; i < hw; i++) {
        ga += l.G![k * hw + i] * l.A[k * hw + i];
        a += l.A[k * hw + i];
      }
      w[k] = ga / (a + 1e-7);
    }
    return w;
  },
};
