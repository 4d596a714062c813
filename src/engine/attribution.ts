// Input-gradient methods (saliency, integrated gradients, SmoothGrad, guided backpropagation, Guided
// Grad-CAM, FullGrad): a trunk run chooses the classes, then the whole model with its backward pass down
// to the input runs on every input the method asks for, batched where the model takes batches.
import * as ort from 'onnxruntime-node';
import { type BiasLayer, type InputGradients, type InputMethod, type InputMethodContext } from '../cam/index.js';
import { cancelled } from '../errors/index.js';
import { ancestorsOf, attrFloat } from '../onnx/index.js';
import { averageMaps } from '../render/index.js';
import type { ExplainOptions, ExplainRequest, ExplainResult, Explanation } from './explain.js';
import { targetChooser, targeting, targetOf, type Targeting } from './targeting.js';
import type { InputBackward } from './gradients.js';
import { BatchSizer, forEachLogits } from './perturb.js';
import type { LayerSet, ModelRuntime } from './runtime.js';

const now = () => performance.now();

/** A biased layer of the graph: its output tensor and bias (FullGrad). */
export interface BiasTensor { tensor: string; bias: Float32Array }

/**
 * Every Conv with a bias input and every BatchNormalization (bias B − mean·scale/√(var + ε)) whose output
 * is a 4-D feature map the logits depend on, in graph order: FullGrad's biased layers.
 */
export async function biasTensors(rt: ModelRuntime): Promise<BiasTensor[]> {
  const up = ancestorsOf(rt.model, rt.info.logits);
  const out: BiasTensor[] = [];
  for (const n of rt.model.nodes) {
    const y = n.output[0];
    if (!y || !up.has(y) || rt.tensorDims(y)?.length !== 4) continue;
    if (n.op_type === 'Conv' && n.input[2]) {
      const b = await rt.model.constantValue(n.input[2]);
      if (b?.data instanceof Float32Array) out.push({ tensor: y, bias: Float32Array.from(b.data) });
    } else if (n.op_type === 'BatchNormalization') {
      const [scale, B, mean, variance] = await Promise.all(n.input.slice(1, 5).map((t) => rt.model.constantValue(t)));
      if (![scale, B, mean, variance].every((v) => v?.data instanceof Float32Array)) continue;
      const eps = attrFloat(n, 'epsilon', 1e-5);
      const [s, b, m, v] = [scale, B, mean, variance].map((x) => x!.data as Float32Array);
      out.push({ tensor: y, bias: Float32Array.from(b, (bi, c) => bi - (m[c] * s[c]) / Math.sqrt(v[c] + eps)) });
    }
  }
  return out;
}

/**
 * Runs the backward session on `inputs` with one seed row each, batched (learning once whether the graph
 * takes batches), and returns each requested output per input, copied.
 */
async function runBackward(
  rt: ModelRuntime, bw: InputBackward, inputs: Float32Array[], seeds: Float32Array[], outputs: string[],
  timings: Record<string, number>, opts: ExplainOptions,
): Promise<Float32Array[][]> {
  const n = inputs[0].length;
  const classes = rt.info.numClasses;
  const logitDims = rt.tensorDims(rt.info.logits)!.slice(1);
  const result: Float32Array[][] = inputs.map(() => []);
  const sizer = new BatchSizer(rt.dynamicBatch ? rt.batchSize : 1, rt.batchMs);
  for (let start = 0; start < inputs.length;) {
    if (opts.signal?.aborted) throw cancelled();
    const count = bw.batched === false ? 1 : sizer.next(inputs.length - start);
    const x = new Float32Array(count * n);
    const seed = new Float32Array(count * classes);
    for (let b = 0; b < count; b++) {
      x.set(inputs[start + b], b * n);
      seed.set(seeds[start + b], b * classes);
    }
    let out;
    const t = now();
    try {
      out = await bw.session.session.run({
        [rt.info.inputName]: rt.inputTensor(x, count),
        [bw.seed]: new ort.Tensor('float32', seed, [count, ...logitDims]),
      }, outputs);
    } catch (e) {
      // A graph with its batch size baked in somewhere: one input at a time from here on.
      if (count === 1 || bw.batched === true) throw e;
      bw.batched = false;
      continue;
    }
    if (count > 1) bw.batched = true;
    const ms = now() - t;
    sizer.record(count, ms);
    timings.backward_ms = (timings.backward_ms ?? 0) + ms;
    for (const name of outputs) {
      const data = out[name].data as Float32Array;
      const per = data.length / count;
      for (let b = 0; b < count; b++) result[start + b].push(Float32Array.from(data.subarray(b * per, (b + 1) * per)));
    }
    start += count;
  }
  return result;
}

/** The seed row of `target` for each input: one-hot for a class's logit, else from each input's own logits (a forward run). */
async function seedsFor(rt: ModelRuntime, set: LayerSet, tg: Targeting, target: number, inputs: Float32Array[], timings: Record<string, number>, opts: ExplainOptions): Promise<Float32Array[]> {
  const classes = rt.info.numClasses;
  if (tg.kind === 'class') return inputs.map(() => { const s = new Float32Array(classes); s[target] = 1; return s; });
  const seeds: Float32Array[] = new Array(inputs.length);
  const t = now();
  await forEachLogits(rt, set, { count: inputs.length, write: (i, out) => out.set(inputs[i]) }, (i, logits) => { seeds[i] = Float32Array.from(tg.seed(logits, target)); }, opts);
  timings.forward_ms = (timings.forward_ms ?? 0) + now() - t;
  return seeds;
}

/**
 * Explains with an input-gradient method. `layerCam` gives a class's Grad-CAM map at the request's layer
 * (Guided Grad-CAM).
 */
export async function explainInput(
  rt: ModelRuntime, method: InputMethod, req: ExplainRequest, opts: ExplainOptions,
  layerCam?: (target: number, targetKind: Targeting['kind']) => Promise<Float32Array>,
): Promise<ExplainResult> {
  const timings: Record<string, number> = {};
  const { height: H, width: W, channels } = rt.info.inputSize;
  const camLayers = method.layerCam ? rt.resolveLayers(req.layers) : [];
  let t = now();
  const set = await rt.layerSet(camLayers.length ? camLayers : [rt.info.defaultLayer]);
  const bias = method.biasGradients ? await biasTensors(rt) : [];
  const bw = await rt.inputBackward(method.relu, bias.map((b) => b.tensor));
  timings.prepare_ms = now() - t;

  t = now();
  const trunk = await set.trunk.session.run({ [rt.info.inputName]: rt.inputTensor(req.input) }, [rt.info.logits]);
  timings.forward_ms = now() - t;
  const logits = Float32Array.from(trunk[rt.info.logits].data as Float32Array);
  const tg = targeting(rt, method, req, logits);
  const targets = targetChooser(tg.kind, req)(logits);
  const gradOut = bw.gradients[rt.info.inputName];

  const explanations: Explanation[] = [];
  t = now();
  const before = (timings.forward_ms ?? 0) + (timings.backward_ms ?? 0);
  for (const target of targets) {
    const gradients: InputGradients = async (inputs) => {
      const seeds = await seedsFor(rt, set, tg, target, inputs, timings, opts);
      return (await runBackward(rt, bw, inputs, seeds, [gradOut], timings, opts)).map((r) => r[0]);
    };
    const ctx: InputMethodContext = {
      input: { height: H, width: W, channels, layout: rt.info.manifest.input.layout, data: req.input },
      target, gradients, seed: req.seed ?? 0, draws: req.draws,
    };
    if (method.layerCam) {
      if (!layerCam) throw new Error(`${method.name} needs a layer's Grad-CAM`);
      ctx.layerCam = await layerCam(target, tg.kind);
    }
    if (method.biasGradients) {
      const seeds = await seedsFor(rt, set, tg, target, [req.input], timings, opts);
      const [outs] = await runBackward(rt, bw, [req.input], seeds, [gradOut, ...bias.map((b) => bw.gradients[b.tensor])], timings, opts);
      const layers: BiasLayer[] = bias.map((b, i) => {
        const [, C, h, w] = rt.tensorDims(b.tensor)!;
        return { name: b.tensor, C, h, w, bias: b.bias, G: outs[i + 1] };
      });
      ctx.bias = { inputGradient: outs[0], layers };
    }
    const map = { width: W, height: H, data: await method.attribute(ctx) };
    explanations.push({
      ...targetOf(tg.kind, target, logits, tg.objective(target)),
      layers: [{ layer: camLayers[0] ?? rt.info.inputName, map }],
      map,
    });
  }
  timings.cam_ms = now() - t - ((timings.forward_ms ?? 0) + (timings.backward_ms ?? 0) - before);
  return { logits, layers: camLayers.length ? camLayers : [rt.info.inputName], targetKind: tg.kind, explanations, timings };
}

/** Grad-CAM normalised and resized to the input, as pytorch-grad-cam's GradCAM returns it. */
export function atInputSize(rt: ModelRuntime, map: { width: number; height: number; data: Float32Array }): Float32Array {
  return averageMaps([map], rt.info.inputSize.width, rt.info.inputSize.height).data;
}
