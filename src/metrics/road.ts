// ROAD, RemOve And Debias (Rong et al., ICML 2022), as pytorch-grad-cam's metrics: remove the most (or
// least) relevant pixels by noisy linear imputation and measure the change of the score.
import { gaussian } from '../cam/index.js';
import { noisyLinearImpute } from './imputation.js';
import { checkMap, scores, type Image, type Scorer } from './types.js';

/** pytorch-grad-cam's percentiles for the averaged forms */
export const ROAD_PERCENTILES = [10, 20, 30, 40, 50, 60, 70, 80, 90] as const;
/** the noise ROAD adds to imputed pixels: 0.01 · N(0, 1) */
export const ROAD_NOISE_SCALE = 0.01;

/**
 * numpy.percentile(values, p) (linear method), with numpy's float32 rounding: virtual index (n − 1)·p/100,
 * a + (b − a)·g (or b − (b − a)(1 − g) for g ≥ 0.5, numpy's _lerp), the difference in float32, the
 * result rounded to float32 as numpy compares it with a float32 array.
 */
export function percentile(values: Float32Array, p: number): number {
  const sorted = Float32Array.from(values).sort();
  const n = sorted.length;
  const v = (n - 1) * (p / 100);
  const i = Math.min(Math.max(Math.floor(v), 0), n - 1);
  const j = Math.min(i + 1, n - 1);
  const g = v - i;
  const a = sorted[i];
  const b = sorted[j];
  const diff = Math.fround(b - a);
  return Math.fround(g >= 0.5 ? b - diff * (1 - g) : a + diff * g);
}

export type RoadOrder = 'most-relevant-first' | 'least-relevant-first';

/**
 * Which pixels ROAD keeps (1) at a percentile: most relevant first removes the pixels with map ≥ the
 * p-th percentile of the map; least relevant first the pixels with 1 − map ≥ the p-th percentile of 1 − map.
 */
export function roadKeep(map: Float32Array, p: number, order: RoadOrder): Uint8Array {
  const m = order === 'most-relevant-first' ? map : Float32Array.from(map, (v) => 1 - v);
  const t = percentile(m, p);
  return Uint8Array.from(m, (v) => (v < t ? 1 : 0));
}

export interface RoadOptions {
  /** standard-normal noise [C·H·W] read at removed pixels (×0.01); see roadNoise for a seeded one */
  noise: Float32Array;
  /**
   * Imputed images by order and percentile, reused across calls: only for one image, map and noise (several
   * ROAD variants or objectives on one map share their imputations, the costly part).
   */
  cache?: Map<string, Float32Array>;
}

/** Seeded standard-normal noise for ROAD (the library draws torch.randn_like at each imputation). */
export function roadNoise(image: Image, seed = 0): Float32Array {
  return gaussian(1, seed)(image.data.length);
}

/** The image after ROAD's removal at one percentile. */
export function roadImpute(image: Image, map: Float32Array, p: number, order: RoadOrder, opts: RoadOptions): Float32Array {
  checkMap(image, map, 'roadImpute');
  const key = `${order}/${p}`;
  const hit = opts.cache?.get(key);
  if (hit) return hit;
  const out = noisyLinearImpute(image.data, image.channels, image.height, image.width, roadKeep(map, p, order),
    { scale: ROAD_NOISE_SCALE, noise: opts.noise });
  opts.cache?.set(key, out);
  return out;
}

/** ROADMostRelevantFirst / ROADLeastRelevantFirst at percentile p: score(imputed) − score(image). */
export async function road(image: Image, map: Float32Array, p: number, order: RoadOrder, s: Scorer, opts: RoadOptions): Promise<number> {
  const [before, after] = await scores(s, [image.data, roadImpute(image, map, p, order, opts)]);
  return after - before;
}

/** The mean of `road` over percentiles (ROADMostRelevantFirstAverage / ROADLeastRelevantFirstAverage). */
export async function roadAverage(image: Image, map: Float32Array, order: RoadOrder, s: Scorer, opts: RoadOptions,
  percentiles: readonly number[] = ROAD_PERCENTILES): Promise<number> {
  const inputs = [image.data, ...percentiles.map((p) => roadImpute(image, map, p, order, opts))];
  const [before, ...after] = await scores(s, inputs);
  return after.reduce((acc, v) => acc + (v - before), 0) / percentiles.length;
}

/** ROADCombined: (least-relevant-first average − most-relevant-first average) / 2. */
export async function roadCombined(image: Image, map: Float32Array, s: Scorer, opts: RoadOptions,
  percentiles: readonly number[] = ROAD_PERCENTILES): Promise<number> {
  const lerf = await roadAverage(image, map, 'least-relevant-first', s, opts, percentiles);
  const morf = await roadAverage(image, map, 'most-relevant-first', s, opts, percentiles);
  return (lerf - morf) / 2;
}
