// Deletion and insertion (Petsiuk et al., RISE, BMVC 2018) as TorchCAM's DeletionInsertionMetric: remove
// (or restore) pixels from the most relevant down and integrate the score along the way.
import { checkMap, scores, type Image, type Scorer } from './types.js';

export interface DeletionInsertion {
  /** perturbed fraction at each point, 0 … 1 */
  fractions: number[];
  deletion: number[];
  insertion: number[];
  deletionAuc: number;
  insertionAuc: number;
}

export interface DeletionInsertionOptions {
  /** at most this many intervals (TorchCAM's default 20): ⌈N/steps⌉ pixels per step */
  steps?: number;
  /** the image the removed pixels take (default zeros, TorchCAM's) */
  baseline?: Float32Array;
}

/** Trapezoidal area under y(x) (torch.trapezoid). */
export function trapezoid(y: readonly number[], x: readonly number[]): number {
  let s = 0;
  for (let i = 1; i < y.length; i++) s += ((x[i] - x[i - 1]) * (y[i] + y[i - 1])) / 2;
  return s;
}

/**
 * Pixels ranked by the map, highest first (ties: lower index first, a stable sort); with N pixels and
 * step ⌈N/steps⌉, the points are 0, step, 2·step, …, N pixels perturbed. Deletion replaces the top-ranked
 * pixels by the baseline (starting from the image); insertion shows only the top-ranked pixels of the image
 * on the baseline (ending at the image). Scores by the scorer's objective (TorchCAM: softmax); AUC over the
 * perturbed fraction.
 */
export async function deletionInsertion(image: Image, map: Float32Array, s: Scorer, opts: DeletionInsertionOptions = {}): Promise<DeletionInsertion> {
  checkMap(image, map, 'deletionInsertion');
  const n = map.length;
  const steps = opts.steps ?? 20;
  const baseline = opts.baseline ?? new Float32Array(image.data.length);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => map[b] - map[a] || a - b);
  const rank = new Int32Array(n);
  order.forEach((p, r) => { rank[p] = r; });
  const stepSize = Math.ceil(n / steps);
  const counts: number[] = [];
  for (let c = 0; c < n; c += stepSize) counts.push(c);
  counts.push(n);
  const fractions = counts.map((c) => Math.fround(c / n));
  const compose = (count: number, keepTop: boolean) =>
    Float32Array.from(image.data, (v, i) => ((rank[i % n] < count) === keepTop ? v : baseline[i]));
  const inputs = [image.data, compose(n, false)];
  const interior = counts.slice(1, -1);
  for (const c of interior) inputs.push(compose(c, false), compose(c, true));
  const sc = await scores(s, inputs);
  const [original, empty] = sc;
  const deletion = [original, ...interior.map((_, k) => sc[2 + 2 * k]), empty];
  const insertion = [empty, ...interior.map((_, k) => sc[3 + 2 * k]), original];
  return { fractions, deletion, insertion, deletionAuc: trapezoid(deletion, fractions), insertionAuc: trapezoid(insertion, fractions) };
}
