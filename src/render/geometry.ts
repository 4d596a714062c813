// Where the image lies in the model input (stretched, centre-cropped or letterboxed), and the way back:
// a map over the model input carried onto the image, with the crop window or the borders undone.
import { type CamMap, resizeBilinear } from './render.js';

/** How the image was fitted to the model input: stretch (ignore aspect), crop (short side, centre crop), pad (letterbox). */
export type ResizeMode = 'stretch' | 'crop' | 'pad';

/**
 * Where the image lies in the model input. `stretch`: the whole input; `crop`: the image is scaled to
 * `scaled` (short side = input side) and the input is the window at `offset` in it; `pad`: the image is
 * scaled to `scaled` (long side = input side) and placed at `offset` in the input.
 */
export interface InputGeometry {
  resize: ResizeMode;
  scaled: { width: number; height: number };
  offset: { x: number; y: number };
  input: { width: number; height: number };
}

/**
 * How exporters' preprocessing places the image beyond the three modes: `resizeSize`, crop's short side
 * before the centre crop (torchvision's Resize(256) then CenterCrop(224)); `anchor`, where a letterboxed
 * image sits (top-left: the borders only right and below, as detection models pad).
 */
export interface FitOptions {
  resizeSize?: number;
  anchor?: 'center' | 'top-left';
}

export function inputGeometry(image: { width: number; height: number }, input: { width: number; height: number }, resize: ResizeMode, fit: FitOptions = {}): InputGeometry {
  const { width: W, height: H } = input;
  if (resize === 'stretch') return { resize, scaled: { width: W, height: H }, offset: { x: 0, y: 0 }, input };
  const short = fit.resizeSize && resize === 'crop' ? fit.resizeSize : undefined;
  const s = short !== undefined
    ? short / Math.min(image.width, image.height)
    : resize === 'crop' ? Math.max(W / image.width, H / image.height) : Math.min(W / image.width, H / image.height);
  const clampTo = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
  const sw = resize === 'crop' ? clampTo(Math.round(image.width * s), W, Infinity) : clampTo(Math.round(image.width * s), 1, W);
  const sh = resize === 'crop' ? clampTo(Math.round(image.height * s), H, Infinity) : clampTo(Math.round(image.height * s), 1, H);
  const offset = resize === 'crop'
    ? { x: Math.floor((sw - W) / 2), y: Math.floor((sh - H) / 2) }
    : fit.anchor === 'top-left' ? { x: 0, y: 0 } : { x: Math.floor((W - sw) / 2), y: Math.floor((H - sh) / 2) };
  return { resize, scaled: { width: sw, height: sh }, offset, input };
}

/**
 * A map over the model input (any resolution; values already in [0, 1]) carried back onto the image
 * (`width`×`height`): stretched for `stretch`; for `crop`, zero outside the window the model saw; for
 * `pad`, without the borders. The result is ready for rendering without further normalisation.
 */
export function mapToImage(map01: CamMap, g: InputGeometry, width: number, height: number): CamMap {
  if (g.resize === 'stretch') return resizeBilinear(map01, width, height);
  const atInput = resizeBilinear(map01, g.input.width, g.input.height);
  if (g.resize === 'pad') {
    const { width: sw, height: sh } = g.scaled;
    const part = new Float32Array(sw * sh);
    for (let y = 0; y < sh; y++) {
      const row = (y + g.offset.y) * g.input.width + g.offset.x;
      part.set(atInput.data.subarray(row, row + sw), y * sw);
    }
    return resizeBilinear({ width: sw, height: sh, data: part }, width, height);
  }
  const { width: sw, height: sh } = g.scaled;
  const canvas = new Float32Array(sw * sh);
  for (let y = 0; y < g.input.height; y++) {
    canvas.set(atInput.data.subarray(y * g.input.width, (y + 1) * g.input.width), (y + g.offset.y) * sw + g.offset.x);
  }
  return resizeBilinear({ width: sw, height: sh, data: canvas }, width, height);
}
