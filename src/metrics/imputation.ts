// ROAD's noisy linear imputation (Rong et al., ICML 2022): removed pixels are filled by solving for the
// values that equal the weighted mean of their 8 neighbours, then a little noise is added.

/** Neighbour offsets (dy, dx) and weights: 1/6 for the 4 direct neighbours, 1/12 for the diagonals (sum 1). */
export const NEIGHBOURS: readonly (readonly [number, number, number])[] = [
  [1, 1, 1 / 12], [0, 1, 1 / 6], [-1, 1, 1 / 12], [1, -1, 1 / 12], [0, -1, 1 / 6], [-1, -1, 1 / 12], [1, 0, 1 / 6], [-1, 0, 1 / 6],
];

export interface ImputeOptions {
  /** the added noise is scale · noise(c, i) at removed pixel i of channel c (ROAD: scale 0.01, N(0, 1)) */
  scale?: number;
  /** standard-normal values [C·H·W] read at the removed pixels; default: none added */
  noise?: Float32Array;
}

/**
 * The image with every pixel where `keep` is 0 replaced, per channel, by the solution x of
 *
 *   Σ_{n in image} w_n (v_n − x_i) = 0 for every removed pixel i,   v_n = x_n if n is removed, else the pixel,
 *
 * (neighbours outside the image left out, as pytorch-grad-cam's NoisyLinearImputer), plus scale·noise.
 * The system (diag(Σ w) − W_removed) x = Σ_kept w v is symmetric positive definite whenever some pixel is
 * kept; it is solved directly in float64 (banded Cholesky; the library: scipy's sparse LU). With every pixel
 * removed the image becomes 0 plus the noise (the library: NaN, from a singular solve).
 */
export function noisyLinearImpute(data: Float32Array, channels: number, height: number, width: number, keep: Uint8Array, opts: ImputeOptions = {}): Float32Array {
  const n = height * width;
  if (keep.length !== n) throw new RangeError(`noisyLinearImpute: a ${keep.length}-pixel mask for ${n} pixels`);
  const removed: number[] = [];
  const index = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) if (!keep[i]) { index[i] = removed.length; removed.push(i); }
  const out = Float32Array.from(data);
  const m = removed.length;
  if (m === 0) return out;
  if (m === n) {
    // Nothing left to interpolate from: the system is singular (its null space the constant images) and the
    // library's sparse solve returns NaN. camserve takes its minimum-norm solution, 0, plus the noise — what
    // a map whose percentile threshold is its minimum (a constant map, or ties at 0) removes to.
    const scale = opts.scale ?? 0;
    for (let i = 0; i < out.length; i++) out[i] = opts.noise ? Math.fround(Math.fround(scale) * opts.noise[i]) : 0;
    return out;
  }

  // The system in compressed rows: diagonal, and the removed neighbours' (column, weight).
  const diag = new Float64Array(m);
  const rowStart = new Int32Array(m + 1);
  const cols = new Int32Array(8 * m);
  const vals = new Float64Array(8 * m);
  const knownRow: number[] = [];
  const knownPixel: number[] = [];
  const knownWeight: number[] = [];
  let nnz = 0;
  for (let r = 0; r < m; r++) {
    const p = removed[r];
    const y = Math.floor(p / width);
    const x = p % width;
    for (const [dy, dx, w] of NEIGHBOURS) {
      const yy = y + dy;
      const xx = x + dx;
      if (yy < 0 || xx < 0 || yy >= height || xx >= width) continue;
      diag[r] += w;
      const q = yy * width + xx;
      if (index[q] >= 0) { cols[nnz] = index[q]; vals[nnz++] = w; } else { knownRow.push(r); knownPixel.push(q); knownWeight.push(w); }
    }
    rowStart[r + 1] = nnz;
  }
  // One right-hand side per channel, solved together (they share the matrix).
  const b = new Float64Array(channels * m);
  for (let c = 0; c < channels; c++) {
    for (let k = 0; k < knownRow.length; k++) b[c * m + knownRow[k]] += knownWeight[k] * data[c * n + knownPixel[k]];
  }
  const x = solveBanded({ diag, rowStart, cols, vals }, b, channels);
  const scale = opts.scale ?? 0;
  for (let c = 0; c < channels; c++) {
    const off = c * n;
    for (let r = 0; r < m; r++) {
      const p = removed[r];
      const v = Math.fround(x[c * m + r]);
      out[off + p] = opts.noise ? Math.fround(v + Math.fround(Math.fround(scale) * opts.noise[off + p])) : v;
    }
  }
  return out;
}

interface SparseSystem { diag: Float64Array; rowStart: Int32Array; cols: Int32Array; vals: Float64Array }

/**
 * Solves (diag − offdiag) X = B for `k` right-hand sides (B, X: [k, m]) by a banded Cholesky factorisation.
 * Unknowns are numbered in raster order, so a neighbour is at most one image row (width + 1) away: the
 * band is that narrow and the factorisation costs about m·band²/2, exact up to rounding (the library uses a
 * sparse LU, scipy's spsolve).
 */
function solveBanded(A: SparseSystem, B: Float64Array, k: number): Float64Array {
  const { diag, rowStart, cols, vals } = A;
  const m = diag.length;
  let bw = 0;
  for (let r = 0; r < m; r++) for (let e = rowStart[r]; e < rowStart[r + 1]; e++) bw = Math.max(bw, r - cols[e]);
  const w = bw + 1;
  // L[r·w + d] holds L(r, r − bw + d); the lower band of M = diag − offdiag is written there first.
  const L = new Float64Array(m * w);
  for (let r = 0; r < m; r++) {
    L[r * w + bw] = diag[r];
    for (let e = rowStart[r]; e < rowStart[r + 1]; e++) if (cols[e] < r) L[r * w + bw - (r - cols[e])] -= vals[e];
  }
  // With base(r) = r·w + bw − r, L(r, q) is L[base(r) + q] for r − bw ≤ q ≤ r.
  for (let i = 0; i < m; i++) {
    const bi = i * w + bw - i;
    const j0 = Math.max(0, i - bw);
    for (let j = j0; j <= i; j++) {
      const bj = j * w + bw - j;
      let s = L[bi + j];
      for (let q = Math.max(j0, j - bw); q < j; q++) s -= L[bi + q] * L[bj + q];
      if (i === j) {
        if (!(s > 0)) throw new RangeError('noisyLinearImpute: the system is not positive definite');
        L[bi + i] = Math.sqrt(s);
      } else L[bi + j] = s / L[bj + j];
    }
  }
  const X = Float64Array.from(B);
  for (let c = 0; c < k; c++) {
    const o = c * m;
    for (let i = 0; i < m; i++) { // L y = b
      let s = X[o + i];
      for (let q = Math.max(0, i - bw); q < i; q++) s -= L[i * w + bw - (i - q)] * X[o + q];
      X[o + i] = s / L[i * w + bw];
    }
    for (let i = m - 1; i >= 0; i--) { // Lᵀ x = y
      let s = X[o + i];
      for (let q = i + 1; q <= Math.min(m - 1, i + bw); q++) s -= L[q * w + bw - (q - i)] * X[o + q];
      X[o + i] = s / L[i * w + bw];
    }
  }
  return X;
}
