// DFF as an explanation: one trunk run, the factorisation of the layer's activations, and each concept run
// through the head (batched) to name its classes.
import { conceptTopClasses, deepFeatureFactorization, type FactorizationMethod, MethodError, softmax } from '../cam/index.js';
import type { CamMap } from '../render/index.js';
import type { ExplainOptions, ExplainRequest, ExplainResult } from './explain.js';
import { forEachHeadLogits } from './perturb.js';
import type { ModelRuntime } from './runtime.js';

export interface Concept {
  /** where the concept is present: H_t, at the layer's resolution, unnormalised */
  map: CamMap;
  /** the head's logits for the concept as a constant feature map */
  logits: Float32Array;
  /** the best classes by the softmax of those logits, best first */
  classes: { index: number; probability: number }[];
}

export interface Factorization {
  layer: string;
  concepts: Concept[];
  /** NMF sweeps until scikit-learn's stopping rule held (or its limit, 200) */
  iterations: number;
}

const now = () => performance.now();

/**
 * Factorises the layer's activations into `req.concepts` concepts (default the method's 5). The NMF start
 * is seeded (`req.seed`), or given as draws: W0 [C, k] then H0 [k, h·w].
 */
export async function explainFactorization(rt: ModelRuntime, method: FactorizationMethod, req: ExplainRequest, opts: ExplainOptions): Promise<ExplainResult> {
  const timings: Record<string, number> = {};
  const layers = rt.resolveLayers(req.layers);
  if (layers.length !== 1) throw new MethodError(`${method.name} factorises one layer, not ${layers.length}`);
  const [layer] = layers;
  const [, C, h, w] = rt.tensorDims(layer)!;
  const hw = h * w;
  const k = req.concepts ?? method.concepts;
  if (!(Number.isInteger(k) && k >= 1 && k <= C)) throw new MethodError(`${method.name}: ${k} concepts asked for; a layer of ${C} channels allows 1..${C}`);

  let t = now();
  const set = await rt.layerSet(layers);
  timings.prepare_ms = now() - t;
  t = now();
  const out = await set.trunk.session.run({ [rt.info.inputName]: rt.inputTensor(req.input) }, [rt.info.logits, layer]);
  timings.forward_ms = now() - t;
  const logits = Float32Array.from(out[rt.info.logits].data as Float32Array);
  const A = Float32Array.from(out[layer].data as Float32Array);

  t = now();
  let init;
  if (req.draws) {
    if (req.draws.length !== C * k + k * hw) throw new RangeError(`${method.name}: ${req.draws.length} drawn values, the NMF start takes ${C * k + k * hw}`);
    init = { W: req.draws.subarray(0, C * k), H: req.draws.subarray(C * k) };
  }
  const r = deepFeatureFactorization(A, C, hw, k, { seed: req.seed ?? 0, init });
  const factorMs = now() - t;

  // Each concept as a constant map through the head: for a pooling → linear head, the classifier of the concept.
  t = now();
  const classes = rt.info.numClasses;
  const conceptLogits = new Float32Array(k * classes);
  await forEachHeadLogits(rt, layer, req.input, {
    count: k,
    write(t2, slot) {
      for (let c = 0; c < C; c++) slot.fill(r.concepts[c * k + t2], c * hw, (c + 1) * hw);
    },
  }, (i, l) => conceptLogits.set(l, i * classes), opts);
  timings.forward_ms += now() - t;
  const top = conceptTopClasses(conceptLogits, classes, Math.min(method.topClasses, classes));
  const concepts: Concept[] = Array.from({ length: k }, (_, i) => {
    const z = conceptLogits.slice(i * classes, (i + 1) * classes);
    const p = softmax(z);
    return {
      map: { width: w, height: h, data: r.maps.slice(i * hw, (i + 1) * hw) },
      logits: z,
      classes: top[i].map((index) => ({ index, probability: p[index] })),
    };
  });
  timings.cam_ms = factorMs;
  return { logits, layers, targetKind: 'class', explanations: [], factorization: { layer, concepts, iterations: r.iterations }, timings };
}
