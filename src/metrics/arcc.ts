// ARCC (Domeniconi et al. 2026, arXiv:2605.14641): one number from Complexity, Coherency and ROAD, as
// pytorch-grad-cam's metrics/arcc.py combines them.
import { multiplyByMap } from './confidence.js';
import { roadCombined, type RoadOptions } from './road.js';
import type { Image, Scorer } from './types.js';

/** Complexity (Bhatt et al. 2020): mean |map| over pixels (0 for an empty map, 1 for an all-ones map). */
export function complexity(map: Float32Array): number {
  let s = 0;
  for (const v of map) s += Math.abs(v);
  return s / map.length;
}

/** Pearson correlation with (n − 1) normalisation and 1e-8 added to the product of deviations. */
export function pearson(a: Float32Array, b: Float32Array): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) { ma += a[i]; mb += b[i]; }
  ma /= n; mb /= n;
  let cov = 0;
  let va = 0;
  let vb = 0;
  for (let i = 0; i < n; i++) {
    cov += (a[i] - ma) * (b[i] - mb);
    va += (a[i] - ma) ** 2;
    vb += (b[i] - mb) ** 2;
  }
  return (cov / (n - 1)) / (Math.sqrt(va / (n - 1)) * Math.sqrt(vb / (n - 1)) + 1e-8);
}

/**
 * Coherency (Bhatt et al. 2020): (r + 1)/2 with r the correlation of the map and the same method's map of
 * the image multiplied by the map (`mixedMap`, computed by the caller with the same target; see
 * mixedImage).
 */
export function coherency(map: Float32Array, mixedMap: Float32Array): number {
  return (pearson(mixedMap, map) + 1) / 2;
}

/** The input whose map Coherency compares: image ⊙ map. */
export const mixedImage = multiplyByMap;

/** pytorch-grad-cam's ARCC percentiles for its ROAD term */
export const ARCC_ROAD_PERCENTILES = [20, 40, 60, 80] as const;

export interface ArccParts { complexity: number; coherency: number; road: number; arcc: number }

/**
 * ARCC = 3 / (1/(coherency + ε) + 1/(1 − complexity + ε) + 1/(road′ + ε)), ε = 1e-8, with
 * road′ = clip(2·ROADCombined over 20/40/60/80 %, 0, 1): the harmonic mean of three terms in [0, 1].
 */
export async function arcc(image: Image, map: Float32Array, mixedMap: Float32Array, s: Scorer, opts: RoadOptions): Promise<ArccParts> {
  const cx = complexity(map);
  const co = coherency(map, mixedMap);
  const road = await roadCombined(image, map, s, opts, ARCC_ROAD_PERCENTILES);
  const r = Math.min(Math.max(2 * road, 0), 1);
  const value = 3 / (1 / (co + 1e-8) + 1 / (1 - cx + 1e-8) + 1 / (r + 1e-8));
  return { complexity: cx, coherency: co, road, arcc: value };
}
