// The work every method shares, done once: weighted activations → channel sum (or first principal
// component with eigenSmooth) → ReLU, giving the raw map at the layer's resolution.
import { firstComponentProjection, reluInPlace, sumChannels, weightChannels, weightedSum } from './maths.js';
import type { CamMethod, LayerTensors, MethodContext } from './types.js';

export interface CamOptions {
  /** Use the first principal component of the weighted activations instead of their sum (pytorch-grad-cam's eigen_smooth). */
  eigenSmooth?: boolean;
}

/** Raw map [h, w] of `method` on one layer for one target class (after the final ReLU, before normalisation). */
export async function rawMap(method: CamMethod, layer: LayerTensors, ctx: MethodContext, opts: CamOptions = {}): Promise<Float32Array> {
  if (method.needs === 'gradients' && !(layer.Gc || layer.G)) throw new Error(`${method.name} needs gradients of layer ${layer.name}`);
  const hw = layer.h * layer.w;
  if (method.map) return reluInPlace(method.map(layer));
  const project = method.project || opts.eigenSmooth;
  // Channel weights summed straight into the map (the common case: no [C, h, w] product is needed).
  if (method.weights && !method.weighted && !project) return reluInPlace(weightedSum(layer, await method.weights(layer, ctx)));
  let weighted: Float32Array;
  if (method.weighted) weighted = method.weighted(layer);
  else if (method.weights) weighted = weightChannels(layer, await method.weights(layer, ctx));
  else throw new Error(`method ${method.name} supplies no weights, weighted activations or map`);
  const map = project
    ? firstComponentProjection(weighted, layer.C, hw)
    : sumChannels(weighted, layer.C, hw);
  return reluInPlace(map);
}
