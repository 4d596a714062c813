// One rendering request (POST /cam, the CLI): the image, its maps over the model input, how the input was made
// from the image, and the look (overlay or heat map, alpha, colour map, size, format); turned into pictures.
import sharp from 'sharp';
import type { ColormapName } from './colormaps.js';
import { renderFactorization } from './factorization.js';
import { inputGeometry, mapToImage, type FitOptions, type ResizeMode } from './geometry.js';
import { normalizeMap, renderHeatmap, renderOverlay, resizeBilinear, type CamMap, type PictureEncoding, type RgbImage } from './render.js';

export interface RenderJob extends PictureEncoding {
  /** overlay or heat map: one picture per map; factorization: one picture of all maps (DFF's concepts), alpha the image weight */
  kind: 'overlay' | 'heatmap' | 'factorization';
  /** the image the model input was made from (the maps are placed over it) */
  image: RgbImage;
  /** raw maps over the model input (any resolution), one picture each */
  maps: CamMap[];
  input: { width: number; height: number };
  resize: ResizeMode;
  /** crop's resize size, pad's anchor (model.json) */
  fit?: FitOptions;
  alpha: number;
  colormap: ColormapName;
  /** the pictures' longer side at most this (aspect kept, never enlarged); default the image's size */
  maxSide?: number;
}

/** The size of a `width`×`height` picture shrunk to fit `maxSide` (aspect kept, never enlarged, each side at least 1). */
export function fitInside(width: number, height: number, maxSide: number | undefined): { width: number; height: number } {
  const long = Math.max(width, height);
  if (maxSide === undefined || long <= maxSide) return { width, height };
  const s = maxSide / long;
  return width >= height
    ? { width: maxSide, height: Math.max(1, Math.round(height * s)) }
    : { width: Math.max(1, Math.round(width * s)), height: maxSide };
}

/** The image shrunk to fit `maxSide` (bilinear, antialiased); the image itself when it fits. */
async function shrinkImage(image: RgbImage, maxSide: number | undefined): Promise<RgbImage> {
  const { width, height } = fitInside(image.width, image.height, maxSide);
  if (width === image.width && height === image.height) return image;
  const data = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize({ width, height, fit: 'fill', kernel: 'linear' }).raw().toBuffer();
  return { data, width, height, channels: 3 };
}

/** Pictures of the image's size (or `maxSide`): each map normalised, carried back onto the image (crop/pad undone) and drawn. */
export async function renderJob(job: RenderJob): Promise<Uint8Array[]> {
  // The geometry of the input is that of the image the model saw; the maps are carried onto the picture's
  // size, which has the same aspect ratio.
  const g = inputGeometry(job.image, job.input, job.resize, job.fit);
  const image = await shrinkImage(job.image, job.maxSide);
  const place = (map01: CamMap) => (job.resize === 'stretch' ? map01 : mapToImage(map01, g, image.width, image.height));
  const encoding: PictureEncoding = { format: job.format, compressionLevel: job.compressionLevel, quality: job.quality };
  const out: Uint8Array[] = [];
  if (job.kind === 'factorization') {
    const full = job.maps.map((m) => {
      const map01 = normalizeMap(m);
      return job.resize === 'stretch' ? resizeBilinear(map01, image.width, image.height) : place(map01);
    });
    const pic = await renderFactorization(image, full, job.alpha, encoding);
    return [exactBytes(pic)];
  }
  for (const map of job.maps) {
    // stretch: mapToImage is a plain resize to the image, which the renderers do on the fly
    const full = place(normalizeMap(map));
    const pic = job.kind === 'heatmap'
      ? await renderHeatmap({ map: full, width: image.width, height: image.height, colormap: job.colormap, normalize: false, ...encoding })
      : await renderOverlay({ image, map: full, alpha: job.alpha, colormap: job.colormap, normalize: false, ...encoding });
    out.push(exactBytes(pic));
  }
  return out;
}

/** A Buffer may share a larger pool; hand over exactly its bytes. */
function exactBytes(b: Buffer): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? new Uint8Array(b.buffer, 0, b.byteLength) : Uint8Array.from(b);
}
