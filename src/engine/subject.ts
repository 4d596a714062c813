// What faithfulness metrics need of an explanation, from the engine: the input channels first, the map
// normalised at the input's size, the model as a batched function of inputs, and the same method's map of
// another input. The metrics themselves (src/metrics) are computed by the caller's evaluator.
import type { TargetKind } from '../cam/index.js';
import { atInputSize } from './attribution.js';
import type { ExplainOptions, ExplainRequest, Explanation } from './explain.js';
import { forEachLogits } from './perturb.js';
import type { ModelRuntime } from './runtime.js';

/** The metrics a request asks for (names as src/metrics defines them), and what they score. */
export interface MetricsRequest {
  names: readonly string[];
  /** the explained class's softmax probability, sigmoid or logit */
  score: 'softmax' | 'sigmoid' | 'logit';
  /** ROAD's percentiles (default the library's) */
  roadPercentiles?: readonly number[];
  /** seed of ROAD's noise (default 0) */
  seed?: number;
}

/** One explanation as faithfulness metrics see it (src/metrics' MetricSubject). */
export interface MetricSubject {
  image: { data: Float32Array; channels: number; height: number; width: number };
  map: Float32Array;
  target: number;
  logits(inputs: Float32Array[]): Promise<Float32Array[]>;
  remap(input: Float32Array): Promise<Float32Array>;
}

/** Computes the metrics of one explanation (the worker and the CLI hand in src/metrics' evaluateMetrics). */
export type MetricsEvaluator = (spec: MetricsRequest, subject: MetricSubject) => Promise<Record<string, number>>;

/** The model input as channels first (a copy), and back. */
function toChw(rt: ModelRuntime, x: Float32Array): Float32Array {
  if (rt.info.manifest.input.layout !== 'NHWC') return x;
  const { height: H, width: W, channels: C } = rt.info.inputSize;
  const out = new Float32Array(x.length);
  for (let i = 0; i < H * W; i++) for (let c = 0; c < C; c++) out[c * H * W + i] = x[i * C + c];
  return out;
}

function fromChw(rt: ModelRuntime, x: Float32Array): Float32Array {
  if (rt.info.manifest.input.layout !== 'NHWC') return x;
  const { height: H, width: W, channels: C } = rt.info.inputSize;
  const out = new Float32Array(x.length);
  for (let i = 0; i < H * W; i++) for (let c = 0; c < C; c++) out[i * C + c] = x[c * H * W + i];
  return out;
}

const SCORE_KIND: Record<MetricsRequest['score'], TargetKind> = { softmax: 'softmax', sigmoid: 'sigmoid', logit: 'class' };

/**
 * The subject of one explanation of `req`. `explainAgain` explains another input with the request's
 * method, layers and smoothing for one class and target kind (Coherency's second map).
 */
export function metricSubject(
  rt: ModelRuntime, req: ExplainRequest, e: Explanation, score: MetricsRequest['score'], opts: ExplainOptions,
  explainAgain: (r: ExplainRequest) => Promise<Explanation>,
): MetricSubject {
  const { height, width, channels } = rt.info.inputSize;
  const target = e.target.index;
  return {
    image: { data: toChw(rt, req.input), channels, height, width },
    map: atInputSize(rt, e.map),
    target,
    async logits(inputs) {
      const set = await rt.layerSet([rt.info.defaultLayer]);
      const out: Float32Array[] = new Array(inputs.length);
      await forEachLogits(rt, set, { count: inputs.length, write: (i, slot) => slot.set(fromChw(rt, inputs[i])) }, (i, l) => { out[i] = Float32Array.from(l); }, opts);
      return out;
    },
    async remap(input) {
      const again = await explainAgain({
        ...req, input: fromChw(rt, input), targets: [e.category ?? target], topk: undefined, targetKind: req.targetKind === 'binary' ? 'binary' : SCORE_KIND[score], metrics: undefined,
      });
      return atInputSize(rt, again.map);
    },
  };
}
