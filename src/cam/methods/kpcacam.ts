// KPCA-CAM: the first kernel principal component of the activations as the map; pytorch-grad-cam's KPCA_CAM.
// One module per method (see ../types.ts); checked against the library in test/cam/library.test.ts.
import { kernelPcaFirstComponent } from '../kernel-pca.js';
import type { CamMethod } from '../types.js';

/**
 * KPCA-CAM (Karmani et al. 2024, arXiv:2410.00267): Eigen-CAM with kernel PCA. Rows x_i = the C
 * activations at position i, centred per channel; K_ij = tanh(x_i·x_j / C + 1) (the sigmoid kernel with
 * scikit-learn's defaults γ = 1/C, c₀ = 1), double-centred; map = ReLU(√λ₁ · u₁) with (λ₁, u₁) the
 * largest eigenpair, u₁ signed so that its largest-magnitude entry is positive (scikit-learn's svd_flip).
 * No gradients, not class-specific.
 */
export const kpcacam: CamMethod = {
  name: 'kpcacam',
  needs: 'activations',
  map: (l) => kernelPcaFirstComponent(l.A, l.C, l.h * l.w),
};
