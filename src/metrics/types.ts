// What the faithfulness metrics are given: the image, a map at its size, and the model as a function (the
// metrics never load a model), with the objective that turns logits into the score they compare.
import { evaluateTarget, type TargetSpec } from '../cam/index.js';

/** An image as the model takes it, channels first: data [C·H·W]. */
export interface Image {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** The model: logits for each input (each laid out as the image). */
export type LogitsFn = (inputs: Float32Array[]) => Promise<Float32Array[]>;

/** The score a metric compares, from one input's logits (pytorch-grad-cam's target callables). */
export type Objective = (logits: Float32Array) => number;

/** An objective from a target (logit: ClassifierOutputTarget, softmax: ClassifierOutputSoftmaxTarget, …). */
export function objective(spec: TargetSpec): Objective {
  return (logits) => evaluateTarget(spec, logits).score;
}

export interface Scorer {
  model: LogitsFn;
  objective: Objective;
}

/** Objective of each input, in one call of the model. */
export async function scores(s: Scorer, inputs: Float32Array[]): Promise<number[]> {
  return (await s.model(inputs)).map((l) => s.objective(l));
}

export function checkMap(image: Image, map: Float32Array, who: string): void {
  if (map.length !== image.height * image.width) throw new RangeError(`${who}: a ${map.length}-value map for a ${image.width}×${image.height} image`);
  if (image.data.length !== image.channels * image.height * image.width) throw new RangeError(`${who}: the image has ${image.data.length} values, not ${image.channels}×${image.height}×${image.width}`);
}
