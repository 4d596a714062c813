import type { CamMethod } from '../types.js';

/** LayerCAM (Jiang et al., TIP 2021): map = ReLU(Σ_k ReLU(G_k) ⊙ A_k); good on shallow layers. */
export const layercam: CamMethod = {
  name: 'layercam',
  needs: 'gradients',
  weighted: (l) => Float32Array.from(l.A, (a, i) => Math.max(l.G![i], 0) * a),
};
