// How large an upload is decoded: no larger than the answer and the model input need. A JPEG decoded at a
// reduced size is cheaper (libjpeg scales by 1/2, 1/4 or 1/8 while decoding, which sharp uses when the
// reduction is large enough: its shrink-on-load), and every later step (the model input's resize, the
// render) works on fewer pixels.
import { fitOf, type ModelInfo } from '../engine/index.js';
import { fitInside, inputGeometry } from '../render/index.js';

/**
 * The decoded image covers the image the model input is resized from (the whole input for stretch, the
 * scaled image before crop's window or pad's borders) by at least this factor on each axis, so that the
 * model input is still a reduction by sharp's bilinear kernel, as from the full image.
 */
export const MODEL_HEADROOM = 2;

/**
 * sharp decodes a JPEG at 1/2, 1/4 or 1/8 of its size only where it reduces it by at least this factor
 * (its shrink-on-load: the largest of 8, 4, 2 that the reduction reaches, one step less where the reduction
 * rounds down to the step, for libjpeg's rounding; sharp's src/pipeline.cc). A smaller reduction decodes the
 * whole image and then resamples it: no cheaper, and the model input would be resampled twice.
 */
export const JPEG_SHRINK_FROM = 3;

/** What an upload's header says: its format (sharp's name) and its upright size. */
export interface UploadHeader {
  format: string;
  width: number;
  height: number;
}

/**
 * The longest side to decode an upload at (the cap, MAX_IMAGE_SIDE, unless less will do):
 *
 * - without `maxSide` (the client did not ask for smaller pictures), or not a JPEG: the cap, as always (the
 *   model input is made from the full image; pictures are shrunk to `maxSide` when rendered);
 * - a JPEG with `maxSide`: the larger of the picture's side (`maxSide`, or the cap; none when the answer has no picture)
 *   and the side at which the image still covers {@link MODEL_HEADROOM}× the model's resized image, where
 *   that is a reduction by {@link JPEG_SHRINK_FROM} or more (sharp then decodes it shrunk); else the cap.
 *
 * `picture`: whether the answer (or a job's result) carries a picture.
 */
export function decodeSide(
  header: UploadHeader | undefined, answer: { picture: boolean; maxSide?: number }, info: Pick<ModelInfo, 'inputSize' | 'manifest'>, cap: number,
  headroom = MODEL_HEADROOM,
): number {
  // Opt-in: a shrunk decode changes the model input by a few levels of resampling (bench/RESULTS.md).
  if (answer.maxSide === undefined || !header || header.format !== 'jpeg' || !(header.width > 0 && header.height > 0)) return cap;
  const { width, height } = header;
  const long = Math.max(width, height);
  const picture = answer.picture ? Math.min(cap, answer.maxSide) : 0;
  const input = { width: info.inputSize.width, height: info.inputSize.height };
  const need = inputGeometry({ width, height }, input, info.manifest.input.resize, fitOf(info.manifest.input)).scaled;
  // The smallest side whose fit-inside image covers the need on both axes (the image's aspect is kept).
  let side = Math.ceil(headroom * Math.max(need.width * (long / width), need.height * (long / height)));
  while (side < long) {
    const d = fitInside(width, height, side);
    if (d.width >= headroom * need.width && d.height >= headroom * need.height) break;
    side++;
  }
  const target = Math.max(picture, side);
  return long >= JPEG_SHRINK_FROM * target ? Math.min(cap, target) : cap;
}
