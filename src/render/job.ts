// One rendering request (POST /cam, the CLI): the image, its maps over the model input, how the input was made
// from the image, and the look (overlay or heat map, alpha, colour map); turned into PNGs.
import type { ColormapName } from './colormaps.js';
import { renderFactorization } from './factorization.js';
import { inputGeometry, mapToImage, type FitOptions, type ResizeMode } from './geometry.js';
import { normalizeMap, renderHeatmap, renderOverlay, resizeBilinear, type CamMap, type RgbImage } from './render.js';

export interface RenderJob {
  /** overlay or heat map: one PNG per map; factorization: one PNG of all maps (DFF's concepts), alpha the image weight */
  kind: 'overlay' | 'heatmap' | 'factorization';
  image: RgbImage;
  /** raw maps over the model input (any resolution), one PNG each */
  maps: CamMap[];
  input: { width: number; height: number };
  resize: ResizeMode;
  /** crop's resize size, pad's anchor (model.json) */
  fit?: FitOptions;
  alpha: number;
  colormap: ColormapName;
}

/** PNGs of the image's size: each map normalised, carried back onto the image (crop/pad undone) and drawn. */
export async function renderJob(job: RenderJob): Promise<Uint8Array[]> {
  const { image } = job;
  const g = inputGeometry(image, job.input, job.resize, job.fit);
  const out: Uint8Array[] = [];
  if (job.kind === 'factorization') {
    const full = job.maps.map((m) => {
      const map01 = normalizeMap(m);
      return job.resize === 'stretch' ? resizeBilinear(map01, image.width, image.height) : mapToImage(map01, g, image.width, image.height);
    });
    const png = await renderFactorization(image, full, job.alpha);
    return [png.byteOffset === 0 && png.byteLength === png.buffer.byteLength ? new Uint8Array(png.buffer, 0, png.byteLength) : Uint8Array.from(png)];
  }
  for (const map of job.maps) {
    // stretch: mapToImage is a plain resize to the image, which the renderers do on the fly
    const map01 = normalizeMap(map);
    const full = job.resize === 'stretch' ? map01 : mapToImage(map01, g, image.width, image.height);
    const png = job.kind === 'heatmap'
      ? await renderHeatmap({ map: full, width: image.width, height: image.height, colormap: job.colormap, normalize: false })
      : await renderOverlay({ image, map: full, alpha: job.alpha, colormap: job.colormap, normalize: false });
    // A Buffer may share a larger pool; hand over exactly its bytes.
    out.push(png.byteOffset === 0 && png.byteLength === png.buffer.byteLength ? new Uint8Array(png.buffer, 0, png.byteLength) : Uint8Array.from(png));
  }
  return out;
}
