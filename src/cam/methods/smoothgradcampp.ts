// Smooth Grad-CAM++: Grad-CAM++-like weights from several runs on noisy copies of the input; TorchCAM's
// SmoothGradCAMpp.
import { smoothGradCamPlusPlus } from '../smoothgradcampp.js';
import type { CamMethod } from '../types.js';

/** TorchCAM's defaults: 4 noisy samples, σ = 0.3 (on the normalised input) */
export const SMOOTHGRADCAMPP_SAMPLES = 4;
export const SMOOTHGRADCAMPP_STD = 0.3;

/**
 * Smooth Grad-CAM++ (Omeiza et al. 2019, arXiv:1908.01224) as TorchCAM computes it, from n runs on x + δ_s,
 * δ_s ~ N(0, σ²): D2 = mean_s G_s², D3 = mean_s G_s³, α = D2 / (2·D2 + Σ_ij(D3 ⊙ A_clean) + 1e-8),
 * w_k = Σ_ij α ⊙ ReLU(G_n), map = ReLU(Σ_k w_k A_n) with G_n, A_n those of the last noisy run (see
 * ../smoothgradcampp.ts). n + 1 forward and backward passes.
 */
export const smoothgradcampp: CamMethod = {
  name: 'smoothgradcampp',
  needs: 'gradients',
  noisy: {
    samples: SMOOTHGRADCAMPP_SAMPLES,
    std: SMOOTHGRADCAMPP_STD,
    map: (l, runs) => smoothGradCamPlusPlus({ C: l.C, h: l.h, w: l.w, clean: l.A, noisy: runs }),
  },
};
