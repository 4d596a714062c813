import type { CamMethod } from '../types.js';

/**
 * Grad-CAM++ (Chattopadhyay et al., WACV 2018), with pytorch-grad-cam's closed form:
 * a_kij = G² / (2G² + (Σ_ij A_k)·G³ + 1e-6) (0 where G = 0); w_k = Σ_ij ReLU(G_kij)·a_kij.
 */
export const gradcamPlusPlus: CamMethod = {
  name: 'gradcam++',
  needs: 'gradients',
  weights(l) {
    const hw = l.h * l.w;
    const G = l.G!;
    const w = new Float32Array(l.C);
    for (let k = 0; k < l.C; k++) {
      let sumA = 0;
      for (let i = 0; i < hw; i++) sumA += l.A[k * hw + i];
      let s = 0;
      for (let i = 0; i < hw; i++) {
        const g = G[k * hw + i];
        if (g === 0) continue;
        const g2 = g * g;
        const a = g2 / (2 * g2 + sumA * g2 * g + 1e-6);
        s += Math.max(g, 0) * a;
      }
      w[k] = s;
    }
    return w;
  },
};
