// The shapes of answers that the HTTP routes and the CLI share (snake_case, as the HTTP API): one
// prediction shape, one rule for float values (9 significant digits; non-finite → null), the map and
// histogram and summary bodies, and the parts of an explanation answer (head, explanation, DFF concepts).
import { classScores, topK, type ExplainResult, type Explanation, type ModelInfo } from '../engine/index.js';
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

/**
 * What every explanation answer starts with (POST /cam's JSON, a job's result, the CLI's --json): the
 * model, method and layers, the image's size, and the model's top-5 predictions with the model that made them.
 */
export function resultHead(info: ModelInfo, method: string, result: ExplainResult, image: { width: number; height: number }) {
  const pred = predictions(result.logits, info);
  return {
    model: info.id,
    method,
    layers: result.layers,
    image: { width: image.width, height: image.height },
    score_function: scoreFunction(info),
    // Which model predicted, and which gave the activations and gradients (a quantized model's float twin).
    predictions_from: info.runs.predictions,
    gradients: info.runs.gradients,
    predictions: topK(pred.scores, 5).map(pred.of),
  };
}

/** One explanation as answered: its class, the objective's value, the category (binary), the map and the metrics. */
export function explanationJson(e: Explanation, pred: ReturnType<typeof predictions>) {
  return {
    target: pred.of(e.target.index),
    objective: finite(e.target.objective),
    ...(e.category !== undefined ? { category: e.category } : {}),
    cam: camJson(e.map),
    ...(e.metrics ? { metrics: Object.fromEntries(Object.entries(e.metrics).map(([k, v]) => [k, finite(v)])) } : {}),
  };
}

/** DFF's concepts as answered: each one's classes and map. */
export function conceptsJson(f: NonNullable<ExplainResult['factorization']>, info: Pick<ModelInfo, 'manifest'>) {
  return f.concepts.map((c, i) => ({ index: i, classes: c.classes.map((k) => conceptClass(k, info)), cam: camJson(c.map) }));
}

