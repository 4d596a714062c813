// The metrics a request may ask for by name (POST /cam's `metrics`), computed for one explanation from
// what the engine hands over: the image, the map at its size, the model as a batched function, and the
// same method's map of another input (ARCC's Coherency).
import type { TargetSpec } from '../cam/index.js';
import { arcc, mixedImage } from './arcc.js';
import { camMultImageConfidenceChange } from './confidence.js';
import { deletionInsertion } from './deletion-insertion.js';
import { ROAD_PERCENTILES, roadAverage, roadNoise, type RoadOptions } from './road.js';
import { objective, type Image, type LogitsFn, type Scorer } from './types.js';

export const METRIC_NAMES = [
  'road_morf', 'road_lerf', 'road_combined', 'confidence_change', 'drop_in_confidence', 'increase_in_confidence', 'arcc', 'deletion', 'insertion',
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

export function isMetricName(s: string): s is MetricName {
  return (METRIC_NAMES as readonly string[]).includes(s);
}

/** The score the metrics compare: the explained class's softmax probability (the libraries'), sigmoid, or logit. */
export const METRIC_SCORES = ['softmax', 'sigmoid', 'logit'] as const;
export type MetricScore = (typeof METRIC_SCORES)[number];

export interface MetricsSpec {
  names: readonly MetricName[];
  score: MetricScore;
  /** ROAD's percentiles for road_morf, road_lerf, road_combined (default pytorch-grad-cam's 10, 20, …, 90) */
  roadPercentiles?: readonly number[];
  /** seed of ROAD's imputation noise (default 0) */
  seed?: number;
  /** ROAD's standard-normal noise [C·H·W] as data instead (tests replay the library's) */
  roadNoise?: Float32Array;
}

/** One explanation as the metrics see it. */
export interface MetricSubject {
  /** the model input, channels first [C·H·W] */
  image: Image;
  /** the map normalised to [0, 1] at the input's size [H·W] (pytorch-grad-cam's grayscale_cam) */
  map: Float32Array;
  target: number;
  /** the model's logits for inputs laid out as `image` (batched by the engine) */
  logits: LogitsFn;
  /** the same method's normalised map at the input size for another input (channels first), for the same class and score */
  remap(input: Float32Array): Promise<Float32Array>;
}

/** The objective of a metric score for a class. */
export function metricObjective(score: MetricScore, target: number): TargetSpec {
  return score === 'logit' ? { kind: 'logit', target } : { kind: score, target };
}

/**
 * The metrics asked for, by name:
 *
 * - road_morf, road_lerf: pytorch-grad-cam's ROADMostRelevantFirstAverage / ROADLeastRelevantFirstAverage
 *   over the percentiles; road_combined: ROADCombined ((lerf − morf) / 2); noisy linear imputation with
 *   0.01·N(0, 1) noise (seeded).
 * - confidence_change: CamMultImageConfidenceChange, score(x ⊙ map) − score(x); drop_in_confidence:
 *   max(−change, 0); increase_in_confidence: 1 if the change is positive, else 0.
 * - arcc: ARCC (Complexity, Coherency with the same method's map of x ⊙ map, ROAD at 20/40/60/80 %).
 * - deletion, insertion: the AUCs of TorchCAM's DeletionInsertionMetric (20 steps, zero baseline).
 *
 * All score by `spec.score` of the explained class.
 */
export async function evaluateMetrics(spec: MetricsSpec, subject: MetricSubject): Promise<Record<string, number>> {
  const { image, map } = subject;
  const scorer: Scorer = { model: subject.logits, objective: objective(metricObjective(spec.score, subject.target)) };
  const road: RoadOptions = { noise: spec.roadNoise ?? roadNoise(image, spec.seed ?? 0), cache: new Map() };
  const percentiles = spec.roadPercentiles ?? ROAD_PERCENTILES;
  const out: Record<string, number> = {};
  const names = new Set(spec.names);
  if (names.has('road_morf') || names.has('road_combined')) {
    out.road_morf = await roadAverage(image, map, 'most-relevant-first', scorer, road, percentiles);
  }
  if (names.has('road_lerf') || names.has('road_combined')) {
    out.road_lerf = await roadAverage(image, map, 'least-relevant-first', scorer, road, percentiles);
  }
  if (names.has('road_combined')) out.road_combined = (out.road_lerf - out.road_morf) / 2;
  if (names.has('confidence_change') || names.has('drop_in_confidence') || names.has('increase_in_confidence')) {
    const change = await camMultImageConfidenceChange(image, map, scorer);
    out.confidence_change = change;
    out.drop_in_confidence = Math.max(-change, 0);
    out.increase_in_confidence = change > 0 ? 1 : 0;
  }
  if (names.has('arcc')) {
    const mixedMap = await subject.remap(mixedImage(image, map));
    out.arcc = (await arcc(image, map, mixedMap, scorer, road)).arcc;
  }
  if (names.has('deletion') || names.has('insertion')) {
    const di = await deletionInsertion(image, map, scorer);
    out.deletion = di.deletionAuc;
    out.insertion = di.insertionAuc;
  }
  // Only what was asked for, in the order of METRIC_NAMES.
  return Object.fromEntries(METRIC_NAMES.filter((n) => names.has(n)).map((n) => [n, out[n]]));
}
