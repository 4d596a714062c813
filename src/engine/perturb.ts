// The forward runs that perturbation methods and metrics ask for (Score-CAM: the whole model on masked
// inputs; Ablation-CAM, DFF: the head on changed activations; metrics: the model on perturbed images),
// batched, and stopped between batches when cancelled.
import * as ort from 'onnxruntime-node';
import type { ForwardRunner, Objective, Variants } from '../cam/index.js';
import { cancelled } from '../errors/index.js';
import type { LayerSet, ModelRuntime } from './runtime.js';

export interface RunnerOptions {
  signal?: AbortSignal;
  /** called after each batch with the runs done so far and the total (progress of long methods) */
  progress?(done: number, total: number): void;
}

/**
 * Batch sizes for a run of `total` items: at most `max`, and after the first batch no more than fit in
 * `targetMs` at the speed measured so far, so that a batch (the unit between two cancellation checks)
 * stays short on slow models.
 */
export class BatchSizer {
  private msPerItem: number | undefined;
  constructor(private readonly max: number, private readonly targetMs: number) {}

  next(remaining: number): number {
    const fit = this.msPerItem === undefined ? this.max : Math.floor(this.targetMs / Math.max(this.msPerItem, 1e-3));
    return Math.max(1, Math.min(this.max, remaining, fit));
  }

  /** Records a batch of `count` items that took `ms`. */
  record(count: number, ms: number): void {
    const per = ms / count;
    this.msPerItem = this.msPerItem === undefined ? per : 0.5 * this.msPerItem + 0.5 * per;
  }
}

/**
 * The whole model on each variant of the input, batched (where the input batch is dynamic): each variant's
 * logits are handed to `take` (a view valid during the call only).
 */
export async function forEachLogits(
  rt: ModelRuntime, set: LayerSet, variants: Variants, take: (index: number, logits: Float32Array) => void, opts: RunnerOptions = {},
): Promise<void> {
  const { height, width, channels } = rt.info.inputSize;
  const n = height * width * channels;
  const classes = rt.info.numClasses;
  const sizer = new BatchSizer(rt.dynamicBatch ? rt.batchSize : 1, rt.batchMs);
  // One input buffer, reused from batch to batch (a run reads its feeds before it returns).
  const buffer = new Float32Array(Math.min(sizer.next(variants.count), variants.count) * n);
  for (let start = 0; start < variants.count;) {
    if (opts.signal?.aborted) throw cancelled();
    const count = sizer.next(variants.count - start);
    const x = buffer.subarray(0, count * n);
    for (let b = 0; b < count; b++) variants.write(start + b, x.subarray(b * n, (b + 1) * n));
    const t = performance.now();
    const out = await set.trunk.session.run({ [rt.info.inputName]: rt.inputTensor(x, count) }, [rt.info.logits]);
    sizer.record(count, performance.now() - t);
    const logits = out[rt.info.logits].data as Float32Array;
    for (let b = 0; b < count; b++) take(start + b, logits.subarray(b * classes, (b + 1) * classes));
    start += count;
    opts.progress?.(start, variants.count);
  }
}

/**
 * The part of the model after `layer` on each variant of its activations (the head's side inputs from
 * `input`'s trunk run), batched where the head allows: each variant's logits are handed to `take`.
 */
export async function forEachHeadLogits(
  rt: ModelRuntime, layer: string, input: Float32Array, variants: Variants,
  take: (index: number, logits: Float32Array) => void, opts: RunnerOptions = {},
): Promise<void> {
  const classes = rt.info.numClasses;
  const single = await rt.layerSet([layer]);
  const hf = await rt.headForward(single);
  const trunkOut = single.graph.sideInputs.length
    ? await single.trunk.session.run({ [rt.info.inputName]: rt.inputTensor(input) }, single.graph.sideInputs)
    : {};
  // A head fed integer side inputs (shape arithmetic) was made for batch 1: run it one variant at a time.
  if (Object.values(trunkOut).some((t) => (t as ort.Tensor).type !== 'float32')) hf.batched = false;
  // One batch buffer per head input, reused from batch to batch.
  const buffers = new Map<string, Float32Array>();
  const runBatch = async (start: number, count: number) => {
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of hf.inputs) {
      const side = trunkOut[name] as ort.Tensor | undefined;
      if (name !== layer && side && side.type !== 'float32') {
        // Integer side inputs (shape arithmetic such as Shape → Gather → Concat → Reshape of a model
        // with a symbolic batch) go in as the trunk computed them: they have no batch rows to repeat.
        feeds[name] = side;
        continue;
      }
      const dims = rt.tensorDims(name)!;
      const per = dims.reduce((a, b) => a * b, 1);
      let buffer = buffers.get(name);
      if (!buffer || buffer.length < count * per) buffers.set(name, buffer = new Float32Array(count * per));
      const data = buffer.subarray(0, count * per);
      for (let b = 0; b < count; b++) {
        const slot = data.subarray(b * per, (b + 1) * per);
        if (name === layer) variants.write(start + b, slot);
        else slot.set(trunkOut[name].data as Float32Array);
      }
      feeds[name] = new ort.Tensor('float32', data, [count, ...dims.slice(1)]);
    }
    const out = await hf.session.session.run(feeds, [rt.info.logits]);
    const logits = out[rt.info.logits].data as Float32Array;
    for (let b = 0; b < count; b++) take(start + b, logits.subarray(b * classes, (b + 1) * classes));
  };
  const sizer = new BatchSizer(rt.batchSize, rt.batchMs);
  for (let start = 0; start < variants.count;) {
    if (opts.signal?.aborted) throw cancelled();
    const count = hf.batched === false ? 1 : sizer.next(variants.count - start);
    try {
      const t = performance.now();
      await runBatch(start, count);
      sizer.record(count, performance.now() - t);
      if (count > 1) hf.batched = true;
    } catch (e) {
      // A head with a batch size baked into a Reshape cannot take batches: run one at a time from here on.
      if (count === 1 || hf.batched === true) throw e;
      hf.batched = false;
      continue;
    }
    start += count;
    opts.progress?.(start, variants.count);
  }
}

/**
 * The runner of one input on one layer set. A class target is scored by `objectiveOf(target)` (the
 * explanation's target kind; default: the class's logit).
 */
export function forwardRunner(
  rt: ModelRuntime, set: LayerSet, input: Float32Array, opts: RunnerOptions = {},
  objectiveOf: (target: number) => Objective = (c) => (logits) => logits[c],
): ForwardRunner {
  const { height, width, channels } = rt.info.inputSize;
  const scoring = (target: number | Objective): Objective => (typeof target === 'number' ? objectiveOf(target) : target);
  return {
    input: { height, width, channels, layout: rt.info.manifest.input.layout, data: input },

    async scoreInputs(variants, target) {
      const f = scoring(target);
      const scores = new Float32Array(variants.count);
      await forEachLogits(rt, set, variants, (i, logits) => { scores[i] = f(logits); }, opts);
      return scores;
    },

    async scoreActivations(layer, variants, target) {
      const f = objectiveOf(target);
      const scores = new Float32Array(variants.count);
      await forEachHeadLogits(rt, layer, input, variants, (i, logits) => { scores[i] = f(logits); }, opts);
      return scores;
    },

    classifier: (layer) => rt.classifier(layer),
  };
}
