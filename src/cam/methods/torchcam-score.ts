// The masks of TorchCAM's Score-CAM family (ISCAM, SSCAM) and the softmax of averaged score differences
// they turn into channel weights.
import { upsampleHalfPixel } from '../resample.js';
import type { LayerTensors } from '../types.js';

/**
 * TorchCAM's Score-CAM masks: each channel min–max normalised at the layer's resolution,
 * (A_k − min) / (max(A_k − min) + 1e-8), then bilinearly upsampled to the input (align_corners = False).
 * (pytorch-grad-cam's Score-CAM upsamples first, with align_corners = True, and normalises after.)
 */
export function torchcamMasks(l: LayerTensors, H: number, W: number): Float32Array[] {
  const hw = l.h * l.w;
  const masks: Float32Array[] = [];
  for (let k = 0; k < l.C; k++) {
    const a = l.A.subarray(k * hw, (k + 1) * hw);
    let min = Infinity;
    for (const v of a) min = Math.min(min, v);
    const n = Float32Array.from(a, (v) => v - min);
    let max = -Infinity;
    for (const v of n) max = Math.max(max, v);
    const d = Math.fround(max + 1e-8);
    for (let i = 0; i < hw; i++) n[i] /= d;
    masks.push(upsampleHalfPixel(n, l.h, l.w, H, W));
  }
  return masks;
}

/** w = softmax_k(mean_s(score_sk − baseline)): the weights of ISCAM and SSCAM from summed differences. */
export function softmaxOfMean(sums: Float64Array, samples: number): Float32Array {
  let max = -Infinity;
  for (const s of sums) max = Math.max(max, s / samples);
  let total = 0;
  const w = Float64Array.from(sums, (s) => { const e = Math.exp(s / samples - max); total += e; return e; });
  return Float32Array.from(w, (e) => e / total);
}
