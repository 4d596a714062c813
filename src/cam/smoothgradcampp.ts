// Smooth Grad-CAM++ (TorchCAM's SmoothGradCAMpp) from several runs of the model on noisy copies of the
// input: a method that needs more than one layer's A and G, so it is a function, not a CamMethod.
import { reluInPlace } from './maths.js';

export interface SmoothGradCamPPInput {
  C: number;
  h: number;
  w: number;
  /** activations of the clean input [C·h·w] */
  clean: Float32Array;
  /** per noisy input x + δ_s (s = 1..n, δ_s ~ N(0, σ²), TorchCAM: n = 4, σ = 0.3): its activations and gradients */
  noisy: { A: Float32Array; G: Float32Array }[];
}

/**
 * Smooth Grad-CAM++ (Omeiza et al. 2019, arXiv:1908.01224) as TorchCAM computes it (its "personal
 * correction": the numerator is the averaged squared gradient):
 *
 *   D2 = mean_s G_s², D3 = mean_s G_s³;  α = D2 / (2·D2 + Σ_ij(D3 ⊙ A_clean) + 1e-8);
 *   w_k = Σ_ij α ⊙ ReLU(G_n);  map = ReLU(Σ_k w_k A_n)
 *
 * where G_n and A_n are those of the last noisy run: TorchCAM's hooks keep the last forward's tensors, so
 * its weights read the last gradients and its map the last activations (the clean ones enter α only).
 */
export function smoothGradCamPlusPlus(x: SmoothGradCamPPInput): Float32Array {
  const { C, h, w, clean, noisy } = x;
  const hw = h * w;
  const n = noisy.length;
  if (n === 0) throw new RangeError('smoothGradCamPlusPlus needs at least one noisy run');
  const last = noisy[n - 1];
  const map = new Float64Array(hw);
  for (let k = 0; k < C; k++) {
    const off = k * hw;
    const d2 = new Float64Array(hw);
    const d3 = new Float64Array(hw);
    for (const { G } of noisy) {
      for (let i = 0; i < hw; i++) {
        const g = G[off + i];
        d2[i] += (g * g) / n;
        d3[i] += (g * g * g) / n;
      }
    }
    let sum = 0;
    for (let i = 0; i < hw; i++) sum += d3[i] * clean[off + i];
    let wk = 0;
    for (let i = 0; i < hw; i++) wk += (d2[i] / (2 * d2[i] + sum + 1e-8)) * Math.max(last.G[off + i], 0);
    for (let i = 0; i < hw; i++) map[i] += wk * last.A[off + i];
  }
  return reluInPlace(Float32Array.from(map));
}
