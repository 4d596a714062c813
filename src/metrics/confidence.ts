// pytorch-grad-cam's confidence-change metrics: the score of the image multiplied by the map, compared
// with the score of the image itself.
import { checkMap, scores, type Image, type Scorer } from './types.js';

/** The image multiplied by the map (broadcast over channels): pytorch-grad-cam's multiply_tensor_with_cam. */
export function multiplyByMap(image: Image, map: Float32Array): Float32Array {
  checkMap(image, map, 'multiplyByMap');
  const hw = image.height * image.width;
  return Float32Array.from(image.data, (v, i) => v * map[i % hw]);
}

/** CamMultImageConfidenceChange: score(image ⊙ map) − score(image). */
export async function camMultImageConfidenceChange(image: Image, map: Float32Array, s: Scorer): Promise<number> {
  const [before, after] = await scores(s, [image.data, multiplyByMap(image, map)]);
  return after - before;
}

/** DropInConfidence: max(score(image) − score(image ⊙ map), 0). */
export async function dropInConfidence(image: Image, map: Float32Array, s: Scorer): Promise<number> {
  return Math.max(-(await camMultImageConfidenceChange(image, map, s)), 0);
}

/** IncreaseInConfidence: 1 if score(image ⊙ map) > score(image), else 0. */
export async function increaseInConfidence(image: Image, map: Float32Array, s: Scorer): Promise<number> {
  return (await camMultImageConfidenceChange(image, map, s)) > 0 ? 1 : 0;
}
