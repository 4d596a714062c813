import type { CamMethod } from '../types.js';

/** HiResCAM (Draelos & Carin, 2020): map = ReLU(Σ_k G_k ⊙ A_k), element-wise, provably faithful for GAP heads. */
export const hirescam: CamMethod = {
  name: 'hirescam',
  needs: 'gradients',
  weighted: (l) => Float32Array.from(l.A, (a, i) => a * l.G![i]),
};
