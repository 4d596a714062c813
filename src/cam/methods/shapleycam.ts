// ShapleyCAM: Grad-CAM corrected by a Hessian-vector product the caller supplies; pytorch-grad-cam's
// ShapleyCAM.
import { MethodError, type CamMethod } from '../types.js';

/**
 * ShapleyCAM (H. Cai, "CAMs as Shapley Value-based Explainers", arXiv:2501.06261): Grad-CAM read as a second-order Shapley estimate,
 * w_k = mean_ij (G − ½·H·A)_kij with H the Hessian of the score w.r.t. A; map = ReLU(Σ_k w_k A_k).
 *
 * The engine supplies `HA` = H·A (a Hessian-vector product with A as the vector, as the library's
 * autograd.grad(G, A, grad_outputs=A)) by differentiating the head's backward graph once more (reverse over
 * reverse: the gradient of Σ A·G w.r.t. A). H·A = 0 where the head is piecewise linear (ReLU, max-pooling,
 * linear layers), and ShapleyCAM is then Grad-CAM.
 */
export const shapleycam: CamMethod = {
  name: 'shapleycam',
  needs: 'gradients',
  hessian: true,
  weights(l) {
    if (!l.HA) throw new MethodError(`shapleycam needs the Hessian-vector product H·A at ${l.name}, which the engine does not compute`);
    const hw = l.h * l.w;
    const w = new Float32Array(l.C);
    for (let k = 0; k < l.C; k++) {
      let s = 0;
      for (let i = k * hw; i < (k + 1) * hw; i++) s += l.G![i] - 0.5 * l.HA[i];
      w[k] = s / hw;
    }
    return w;
  },
};
