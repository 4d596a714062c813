// Numeric building blocks shared by the CAM methods: channel-weighted activations, channel sums,
// ReLU and the first principal component projection (Eigen-CAM).
import type { InputView, LayerTensors } from './types.js';

/** w_k · A_k for every channel: [C, h, w]. */
export function weightChannels(l: LayerTensors, weights: Float32Array): Float32Array {
  const hw = l.h * l.w;
  const out = new Float32Array(l.C * hw);
  for (let k = 0; k < l.C; k++) {
    const wk = weights[k];
    const base = k * hw;
    for (let i = 0; i < hw; i++) out[base + i] = wk * l.A[base + i];
  }
  return out;
}

/**
 * Σ_k w_k A_k: [h, w], as sumChannels(weightChannels(l, weights)) computes it (the same float32 roundings in
 * the same order: each product rounded, then each partial sum) without the [C, h, w] product. Four channels
 * per pass over the map, so that each position is loaded and stored once per four (1.6× faster for
 * MobileNetV2's 1280 × 7 × 7; the rounding sequence is the same).
 */
export function weightedSum(l: LayerTensors, weights: Float32Array): Float32Array {
  const hw = l.h * l.w;
  const out = new Float32Array(hw);
  const A = l.A;
  const C = l.C;
  const f = Math.fround;
  let k = 0;
  for (; k + 4 <= C; k += 4) {
    const w0 = weights[k];
    const w1 = weights[k + 1];
    const w2 = weights[k + 2];
    const w3 = weights[k + 3];
    const b0 = k * hw;
    const b1 = b0 + hw;
    const b2 = b1 + hw;
    const b3 = b2 + hw;
    for (let i = 0; i < hw; i++) out[i] = f(f(f(f(out[i] + f(w0 * A[b0 + i])) + f(w1 * A[b1 + i])) + f(w2 * A[b2 + i])) + f(w3 * A[b3 + i]));
  }
  for (; k < C; k++) {
    const wk = weights[k];
    const base = k * hw;
    for (let i = 0; i < hw; i++) out[i] = f(out[i] + f(wk * A[base + i]));
  }
  return out;
}

/** Σ_k X_k: [C, h, w] → [h, w]. */
export function sumChannels(x: Float32Array, C: number, hw: number): Float32Array {
  const out = new Float32Array(hw);
  for (let k = 0; k < C; k++) {
    const base = k * hw;
    for (let i = 0; i < hw; i++) out[i] += x[base + i];
  }
  return out;
}

/**
 * The spatial mean of each channel of G: Gc itself where G is constant per channel (the mean of h·w equal
 * float32 values, summed in doubles, is that value exactly; −0 sums to +0, hence `+ 0`), else
 * {@link spatialMean} of G.
 */
export function gradientMeans(l: LayerTensors): Float32Array {
  return l.Gc ? Float32Array.from(l.Gc, (v) => v + 0) : spatialMean(l.G!, l.C, l.h * l.w);
}

/**
 * The tensors of a layer whose gradient is `Gc[c]` at every position of channel c: G [C, h, w] is spread
 * from Gc on its first read (and kept), so that a method that reads only Gc costs no G.
 */
export function withChannelGradient(l: Omit<LayerTensors, 'G' | 'Gc'>, Gc: Float32Array): LayerTensors {
  let G: Float32Array | undefined;
  const hw = l.h * l.w;
  const out: LayerTensors = { ...l, Gc };
  Object.defineProperty(out, 'G', {
    enumerable: true,
    get: () => (G ??= spreadChannels(Gc, hw)),
  });
  return out;
}

/** [n] per-channel values → [n, hw]: each value at every position of its channel. */
export function spreadChannels(values: Float32Array, hw: number): Float32Array {
  const out = new Float32Array(values.length * hw);
  for (let c = 0; c < values.length; c++) out.fill(values[c], c * hw, (c + 1) * hw);
  return out;
}

/** Mean over the spatial positions of each channel. */
export function spatialMean(x: Float32Array, C: number, hw: number): Float32Array {
  const out = new Float32Array(C);
  for (let k = 0; k < C; k++) {
    let s = 0;
    for (let i = 0; i < hw; i++) s += x[k * hw + i];
    out[k] = s / hw;
  }
  return out;
}

export function reluInPlace(x: Float32Array): Float32Array {
  for (let i = 0; i < x.length; i++) if (!(x[i] > 0)) x[i] = 0;
  return x;
}

/**
 * Projection of X (rows = the hw positions, columns = the C channels, given as [C, h, w]) on its first
 * right singular vector after centring each column, as pytorch-grad-cam's get_2d_projection. The SVD's
 * sign is arbitrary; we choose it so that max ≥ |min|. Computed by power iteration on the smaller Gram
 * matrix (XXᵀ, hw × hw, or XᵀX, C × C) in float64.
 */
export function firstComponentProjection(x: Float32Array, C: number, hw: number): Float32Array {
  const X = new Float64Array(hw * C); // row-major [hw, C]
  for (let k = 0; k < C; k++) {
    let mean = 0;
    for (let i = 0; i < hw; i++) mean += x[k * hw + i];
    mean /= hw;
    for (let i = 0; i < hw; i++) X[i * C + k] = x[k * hw + i] - mean;
  }
  const proj = new Float64Array(hw);
  if (hw <= C) {
    // u = top eigenvector of XXᵀ; projection = X v = σ u = XXᵀu / σ.
    const gram = new Float64Array(hw * hw);
    for (let i = 0; i < hw; i++) for (let j = i; j < hw; j++) {
      let s = 0;
      for (let k = 0; k < C; k++) s += X[i * C + k] * X[j * C + k];
      gram[i * hw + j] = s;
      gram[j * hw + i] = s;
    }
    const { vector, value } = topEigen(gram, hw);
    const sigma = Math.sqrt(Math.max(value, 0));
    for (let i = 0; i < hw; i++) proj[i] = sigma * vector[i];
  } else {
    const gram = new Float64Array(C * C);
    for (let i = 0; i < hw; i++) {
      const row = i * C;
      for (let a = 0; a < C; a++) {
        const xa = X[row + a];
        if (xa === 0) continue;
        for (let b = a; b < C; b++) gram[a * C + b] += xa * X[row + b];
      }
    }
    for (let a = 0; a < C; a++) for (let b = 0; b < a; b++) gram[a * C + b] = gram[b * C + a];
    const { vector } = topEigen(gram, C);
    for (let i = 0; i < hw; i++) {
      let s = 0;
      for (let k = 0; k < C; k++) s += X[i * C + k] * vector[k];
      proj[i] = s;
    }
  }
  let max = -Infinity;
  let min = Infinity;
  for (const v of proj) { max = Math.max(max, v); min = Math.min(min, v); }
  const sign = max >= Math.abs(min) ? 1 : -1;
  return Float32Array.from(proj, (v) => sign * v);
}

/** Largest eigenpair of a symmetric positive semi-definite n×n matrix by power iteration. */
function topEigen(m: Float64Array, n: number): { vector: Float64Array; value: number } {
  let v = new Float64Array(n);
  // Start from the row sums plus a fixed perturbation: deterministic and rarely orthogonal to the top vector.
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += m[i * n + j];
    v[i] = s + 1e-3 * Math.sin(i + 1);
  }
  let value = 0;
  normalise(v);
  for (let iter = 0; iter < 2000; iter++) {
    const next = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      const row = i * n;
      for (let j = 0; j < n; j++) s += m[row + j] * v[j];
      next[i] = s;
    }
    const norm = normalise(next);
    let delta = 0;
    for (let i = 0; i < n; i++) delta = Math.max(delta, Math.abs(next[i] - v[i]));
    v = next;
    value = norm;
    if (delta < 1e-12) break;
  }
  return { vector: v, value };
}

function normalise(v: Float64Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  const norm = Math.sqrt(s);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] /= norm;
  return norm;
}

/** out = input ⊙ (scale · mask), the mask (height × width) broadcast over the channels in the input's layout. */
export function maskInput(input: InputView, mask: ArrayLike<number>, out: Float32Array, scale = 1): void {
  const { channels: C, data: x } = input;
  const hw = input.height * input.width;
  if (input.layout === 'NHWC') {
    for (let i = 0; i < hw; i++) for (let c = 0; c < C; c++) out[i * C + c] = x[i * C + c] * (scale * mask[i]);
  } else {
    for (let c = 0; c < C; c++) for (let i = 0, o = c * hw; i < hw; i++) out[o + i] = x[o + i] * (scale * mask[i]);
  }
}
