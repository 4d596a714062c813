// DFF's picture: every concept in its own colour where it is the strongest, over the image, as
// pytorch-grad-cam's show_factorization_on_image (without the legend: the JSON answer names the classes).
import { encodeRgb, type CamMap, type PictureEncoding, type RgbImage } from './render.js';

/** matplotlib's gist_rainbow segments: (x, value) per channel, linear between. */
const GIST_RAINBOW: readonly (readonly (readonly [number, number])[])[] = [
  [[0, 1], [0.03, 1], [0.215, 1], [0.4, 0], [0.586, 0], [0.77, 0], [0.954, 1], [1, 1]],
  [[0, 0], [0.03, 0], [0.215, 1], [0.4, 1], [0.586, 1], [0.77, 0], [0.954, 0], [1, 0]],
  [[0, 0.16], [0.03, 0], [0.215, 0], [0.4, 0], [0.586, 1], [0.77, 1], [0.954, 1], [1, 0.75]],
];

/** The colour of concept i of k: gist_rainbow at i/k (as the library; matplotlib's 256-entry table), RGB in [0, 1]. */
export function conceptColour(i: number, k: number): [number, number, number] {
  const x = Math.min(Math.floor((i / k) * 256), 255) / 255;
  return GIST_RAINBOW.map((seg) => {
    for (let s = 1; s < seg.length; s++) {
      const [x0, v0] = seg[s - 1];
      const [x1, v1] = seg[s];
      if (x <= x1) return v0 + ((x - x0) / (x1 - x0)) * (v1 - v0);
    }
    return seg[seg.length - 1][1];
  }) as [number, number, number];
}

/**
 * The factorisation over the image, as a picture of the image's size (PNG unless `encoding` says otherwise): with m_t the concept maps (each in [0, 1]
 * at the image's size), each pixel takes the colour c_t of its strongest concept t scaled by m_t (the
 * library sets the colour's HSV value to m_t; its colours are saturated with value 1, so that is c_t·m_t),
 * and is blended as image·w + colour·(1 − w). `imageWeight` 0 gives the colours alone.
 */
export async function renderFactorization(image: RgbImage, maps01: CamMap[], imageWeight: number, encoding: PictureEncoding = {}): Promise<Buffer> {
  const { width, height } = image;
  const n = width * height;
  for (const m of maps01) if (m.width !== width || m.height !== height) throw new RangeError('renderFactorization: maps must have the image size');
  const colours = maps01.map((_, i) => conceptColour(i, maps01.length));
  const out = Buffer.allocUnsafe(n * 3);
  for (let p = 0; p < n; p++) {
    let best = 0;
    let v = -Infinity;
    maps01.forEach((m, t) => { if (m.data[p] > v) { v = m.data[p]; best = t; } });
    const c = colours[best];
    const value = Math.min(Math.max(v, 0), 1);
    for (let ch = 0; ch < 3; ch++) {
      const mixed = (image.data[p * 3 + ch] / 255) * imageWeight + c[ch] * value * (1 - imageWeight);
      out[p * 3 + ch] = Math.min(255, Math.max(0, Math.trunc(mixed * 255)));
    }
  }
  return encodeRgb(out, width, height, encoding);
}
