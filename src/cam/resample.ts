// Resampling used inside methods (Score-CAM's masks): bilinear with align_corners = True, as
// torch.nn.UpsamplingBilinear2d.

/** Bilinear upsampling of an h×w map to H×W with corner pixels aligned (align_corners = True). */
export function upsampleAlignCorners(src: ArrayLike<number>, h: number, w: number, H: number, W: number): Float32Array {
  const out = new Float32Array(H * W);
  const sy = H > 1 ? (h - 1) / (H - 1) : 0;
  const sx = W > 1 ? (w - 1) / (W - 1) : 0;
  const x0 = new Int32Array(W);
  const x1 = new Int32Array(W);
  const fx = new Float32Array(W);
  for (let X = 0; X < W; X++) {
    const x = X * sx;
    x0[X] = Math.min(Math.floor(x), w - 1);
    x1[X] = Math.min(x0[X] + 1, w - 1);
    fx[X] = x - x0[X];
  }
  for (let Y = 0; Y < H; Y++) {
    const y = Y * sy;
    const y0 = Math.min(Math.floor(y), h - 1);
    const y1 = Math.min(y0 + 1, h - 1);
    const fy = y - y0;
    for (let X = 0; X < W; X++) {
      const top = src[y0 * w + x0[X]] * (1 - fx[X]) + src[y0 * w + x1[X]] * fx[X];
      const bottom = src[y1 * w + x0[X]] * (1 - fx[X]) + src[y1 * w + x1[X]] * fx[X];
      out[Y * W + X] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}

/**
 * Bilinear resampling of an h×w map to H×W with half-pixel centres (align_corners = False), as PyTorch's
 * F.interpolate(mode='bilinear'): src = (dst + 0.5)·(in/out) − 0.5, clamped at 0; the right/bottom
 * neighbour clamped to the last row/column.
 */
export function upsampleHalfPixel(src: ArrayLike<number>, h: number, w: number, H: number, W: number): Float32Array {
  const taps = (n: number, N: number) => {
    const i0 = new Int32Array(N);
    const i1 = new Int32Array(N);
    const f = new Float64Array(N);
    const scale = Math.fround(n / N);
    for (let d = 0; d < N; d++) {
      const s = Math.max(Math.fround(scale * (d + 0.5) - 0.5), 0);
      i0[d] = Math.floor(s);
      i1[d] = i0[d] + (i0[d] < n - 1 ? 1 : 0);
      f[d] = Math.fround(s - i0[d]);
    }
    return { i0, i1, f };
  };
  const ty = taps(h, H);
  const tx = taps(w, W);
  const out = new Float32Array(H * W);
  for (let Y = 0; Y < H; Y++) {
    const fy = ty.f[Y];
    const r0 = ty.i0[Y] * w;
    const r1 = ty.i1[Y] * w;
    for (let X = 0; X < W; X++) {
      const fx = tx.f[X];
      const a = src[r0 + tx.i0[X]] * (1 - fx) + src[r0 + tx.i1[X]] * fx;
      const b = src[r1 + tx.i0[X]] * (1 - fx) + src[r1 + tx.i1[X]] * fx;
      out[Y * W + X] = a * (1 - fy) + b * fy;
    }
  }
  return out;
}
