// Deep Feature Factorization: non-negative matrix factorisation of one layer's activations into concepts
// (channel vectors) and where each concept is present (maps), as pytorch-grad-cam's DeepFeatureFactorization.
import { gaussian } from './random.js';

export interface DffResult {
  /** [C, k]: concept vectors in the layer's channel space (W + the channel offsets) */
  concepts: Float32Array;
  /** [k, h·w]: the maps, unnormalised */
  maps: Float32Array;
  iterations: number;
}

export interface DffOptions {
  /** scikit-learn's NMF defaults: max_iter 200, tol 1e-4 */
  maxIter?: number;
  tol?: number;
  /** the factors to start from ([C, k] and [k, h·w]); default: scikit-learn's 'random' scheme, |N(0,1)|·√(mean(X)/k), seeded */
  init?: { W: Float32Array; H: Float32Array };
  seed?: number;
}

/**
 * Deep Feature Factorization (Collins et al., ECCV 2018): X = A as [C, h·w] minus each channel's minimum
 * (so X ≥ 0); X ≈ W·H with W [C, k], H [k, h·w] ≥ 0, fitted by scikit-learn's coordinate descent
 * (Cichocki & Phan 2009: per component t and row i, W_it ← max(0, W_it − ((W HHᵀ)_it − (X Hᵀ)_it) / (HHᵀ)_tt),
 * then the same for Hᵀ with W; stop when the summed projected gradient falls to tol × its first value);
 * concepts = W + offsets, maps = H. Computed in float64 (the library: float32).
 */
export function deepFeatureFactorization(A: Float32Array, C: number, hw: number, k: number, opts: DffOptions = {}): DffResult {
  const X = new Float64Array(C * hw);
  const offset = new Float64Array(C);
  let mean = 0;
  for (let c = 0; c < C; c++) {
    let min = Infinity;
    for (let i = 0; i < hw; i++) min = Math.min(min, A[c * hw + i]);
    offset[c] = min;
    for (let i = 0; i < hw; i++) mean += X[c * hw + i] = A[c * hw + i] - min;
  }
  mean /= C * hw;
  let W: Float64Array;
  let Ht: Float64Array; // [hw, k]
  if (opts.init) {
    W = Float64Array.from(opts.init.W);
    Ht = transpose(Float64Array.from(opts.init.H), k, hw);
  } else {
    const avg = Math.sqrt(mean / k);
    const draw = gaussian(1, opts.seed ?? 0);
    Ht = transpose(Float64Array.from(draw(k * hw), (v) => avg * Math.abs(v)), k, hw);
    W = Float64Array.from(draw(C * k), (v) => avg * Math.abs(v));
  }
  const Xt = transpose(X, C, hw);
  const maxIter = opts.maxIter ?? 200;
  const tol = opts.tol ?? 1e-4;
  let first = 0;
  let iterations = 0;
  for (let it = 1; it <= maxIter; it++) {
    iterations = it;
    const violation = coordinateDescent(X, W, Ht, C, hw, k) + coordinateDescent(Xt, Ht, W, hw, C, k);
    if (it === 1) first = violation;
    if (first === 0 || violation / first <= tol) break;
  }
  const concepts = Float32Array.from(W, (v, i) => v + offset[Math.floor(i / k)]);
  return { concepts, maps: Float32Array.from(transpose(Ht, hw, k)), iterations };
}

/** One sweep over W [n, k] for X [n, m] ≈ W·Htᵀ (Ht [m, k]); returns the summed |projected gradient|. */
function coordinateDescent(X: Float64Array, W: Float64Array, Ht: Float64Array, n: number, m: number, k: number): number {
  const HHt = new Float64Array(k * k);
  for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) {
    let s = 0;
    for (let j = 0; j < m; j++) s += Ht[j * k + a] * Ht[j * k + b];
    HHt[a * k + b] = s;
  }
  const XHt = new Float64Array(n * k);
  for (let i = 0; i < n; i++) for (let t = 0; t < k; t++) {
    let s = 0;
    for (let j = 0; j < m; j++) s += X[i * m + j] * Ht[j * k + t];
    XHt[i * k + t] = s;
  }
  let violation = 0;
  for (let t = 0; t < k; t++) {
    const hess = HHt[t * k + t];
    for (let i = 0; i < n; i++) {
      let grad = -XHt[i * k + t];
      for (let r = 0; r < k; r++) grad += HHt[t * k + r] * W[i * k + r];
      const w = W[i * k + t];
      violation += Math.abs(w === 0 ? Math.min(0, grad) : grad);
      if (hess !== 0) W[i * k + t] = Math.max(w - grad / hess, 0);
    }
  }
  return violation;
}

function transpose(m: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = m[r * cols + c];
  return out;
}

/** Each concept's `top` classes by the classifier's outputs [k, classes] (softmax keeps the order; ties: higher index first, as numpy's reversed argsort). */
export function conceptTopClasses(outputs: Float32Array, classes: number, top = 2): number[][] {
  const k = outputs.length / classes;
  return Array.from({ length: k }, (_, c) => {
    const row = outputs.subarray(c * classes, (c + 1) * classes);
    return Array.from(row.keys()).sort((a, b) => row[b] - row[a] || b - a).slice(0, top);
  });
}
