// The shapes of answers that the HTTP routes and the CLI share (snake_case, as the HTTP API): one
// prediction shape, one rule for float values (9 significant digits; non-finite → null), the map and
// histogram and summary bodies.
import { classScores, type ModelInfo } from '../engine/index.js';
import type { Histogram, ModelSummary } from '../inspect/index.js';
import type { CamMap } from '../render/index.js';

/** A float32 value as a JSON number with 9 significant digits (exact for float32, without float64 noise); NaN and ±∞ → null. */
export function finite(v: number): number | null {
  return Number.isFinite(v) ? Number(v.toPrecision(9)) : null;
}

export function finiteArray(values: ArrayLike<number>): (number | null)[] {
  return Array.from(values, finite);
}

/** A class with its probability (`score`: softmax, or sigmoid for multi-label models) and its raw logit. */
export interface Prediction {
  index: number;
  label: string | null;
  score: number | null;
  logit: number | null;
}

/** How a model's logits become scores. */
export function scoreFunction(info: Pick<ModelInfo, 'manifest'>): 'softmax' | 'sigmoid' {
  return info.manifest.multiLabel ? 'sigmoid' : 'softmax';
}

/** Predictions of one set of logits: `of(i)` describes class i; `top(k)` the k best, best first. */
export function predictions(logits: Float32Array, info: Pick<ModelInfo, 'manifest'>) {
  const scores = classScores(logits, info.manifest.multiLabel);
  const labels = info.manifest.labels;
  const of = (index: number): Prediction => ({ index, label: labels?.[index] ?? null, score: finite(scores[index]), logit: finite(logits[index]) });
  return { scores, of };
}

/** A raw map as served: its size and row-major values. */
export function camJson(map: CamMap) {
  return { width: map.width, height: map.height, data: finiteArray(map.data) };
}

export function histogramJson(h: Histogram) {
  return {
    bins: h.bins, range: h.range.map(finite), edges: h.edges.map(finite), counts: h.counts, count: h.count,
    below: h.below, above: h.above, non_finite: h.nonFinite,
    min: finite(h.min), max: finite(h.max), mean: finite(h.mean), std: finite(h.std), zeros: finite(h.zeros),
  };
}

const round4 = (v: number) => Math.round(v * 1e4) / 1e4;

/** A summary as served by GET /models/{id}/summary and `camserve summary --json`. */
export function summaryJson(s: ModelSummary) {
  return {
    model: s.model,
    producer: s.producer,
    opset: s.opset,
    input: s.input,
    rows: s.rows.map((r) => ({ layer: r.layer, scope: r.scope, ops: r.ops, nodes: r.nodes, outputs: r.outputs, params: r.params })),
    totals: {
      parameters: s.totals.parameters,
      unused_parameters: s.totals.unusedParameters,
      trainable_estimate: s.totals.trainableEstimate,
      trainable_notes: s.totals.trainableNotes,
    },
    sizes_mb: {
      input: round4(s.sizes.inputMB),
      forward: round4(s.sizes.forwardMB),
      forward_backward: round4(s.sizes.forwardBackwardMB),
      params: round4(s.sizes.paramsMB),
      total: round4(s.sizes.totalMB),
    },
  };
}

/** A DFF concept's class: its index, label and probability (the softmax of the concept's logits). */
export function conceptClass(c: { index: number; probability: number }, info: Pick<ModelInfo, 'manifest'>) {
  return { index: c.index, label: info.manifest.labels?.[c.index] ?? null, probability: finite(c.probability) };
}
