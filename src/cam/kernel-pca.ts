// Kernel PCA's first component (KPCA-CAM): the sigmoid kernel over positions, double-centred, and its
// largest eigenpair, computed as scikit-learn's KernelPCA(n_components=1, kernel='sigmoid') defines it.

/**
 * X = x as rows of positions ([C, hw] in, centred per channel); K_ij = tanh(γ x_i·x_j + c₀); K̃ = K
 * double-centred; returns √λ₁ u₁ (λ₁ the largest eigenvalue, u₁ its unit eigenvector with the sign of
 * its largest-|·| entry made positive), as float32 [hw].
 */
export function kernelPcaFirstComponent(x: Float32Array, C: number, hw: number, gamma = 1 / C, coef0 = 1): Float32Array {
  const X = new Float64Array(hw * C);
  for (let k = 0; k < C; k++) {
    let mean = 0;
    for (let i = 0; i < hw; i++) mean += x[k * hw + i];
    mean /= hw;
    for (let i = 0; i < hw; i++) X[i * C + k] = x[k * hw + i] - mean;
  }
  const K = new Float64Array(hw * hw);
  for (let i = 0; i < hw; i++) {
    for (let j = i; j < hw; j++) {
      let s = 0;
      for (let k = 0; k < C; k++) s += X[i * C + k] * X[j * C + k];
      K[i * hw + j] = K[j * hw + i] = Math.tanh(gamma * s + coef0);
    }
  }
  // K̃ = K − 1K/n − K1/n + 1K1/n² (scikit-learn's KernelCenterer)
  const rowMean = new Float64Array(hw);
  let total = 0;
  for (let i = 0; i < hw; i++) {
    let s = 0;
    for (let j = 0; j < hw; j++) s += K[i * hw + j];
    rowMean[i] = s / hw;
    total += s;
  }
  total /= hw * hw;
  for (let i = 0; i < hw; i++) for (let j = 0; j < hw; j++) K[i * hw + j] += total - rowMean[i] - rowMean[j];

  let { vector, value } = dominantEigen(K, hw, 0);
  if (value < 0) {
    // The largest-magnitude eigenvalue is negative: shift by it so that the largest algebraic one dominates.
    ({ vector, value } = dominantEigen(K, hw, -value));
  }
  let at = 0;
  for (let i = 1; i < hw; i++) if (Math.abs(vector[i]) > Math.abs(vector[at])) at = i;
  const sign = vector[at] < 0 ? -1 : 1;
  const scale = sign * Math.sqrt(Math.max(value, 0));
  return Float32Array.from(vector, (v) => v * scale);
}

/** Power iteration on (M + shift·I) for its dominant eigenvector; returns M's eigenvalue (Rayleigh quotient). */
function dominantEigen(m: Float64Array, n: number, shift: number): { vector: Float64Array; value: number } {
  let v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = 1 + 0.01 * Math.sin(i + 1);
  normalise(v);
  const next = new Float64Array(n);
  for (let iter = 0; iter < 10000; iter++) {
    multiply(m, v, next, n);
    for (let i = 0; i < n; i++) next[i] += shift * v[i];
    normalise(next);
    let delta = 0;
    for (let i = 0; i < n; i++) delta = Math.max(delta, Math.abs(next[i] - v[i]));
    v = Float64Array.from(next);
    if (delta < 1e-13) break;
  }
  multiply(m, v, next, n);
  let value = 0;
  for (let i = 0; i < n; i++) value += v[i] * next[i];
  return { vector: v, value };
}

function multiply(m: Float64Array, v: Float64Array, out: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) {
    let s = 0;
    const row = i * n;
    for (let j = 0; j < n; j++) s += m[row + j] * v[j];
    out[i] = s;
  }
}

function normalise(v: Float64Array): void {
  let s = 0;
  for (const x of v) s += x * x;
  const norm = Math.sqrt(s);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] /= norm;
}
