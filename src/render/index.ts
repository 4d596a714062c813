// Public API of the rendering layer.
export { COLORMAPS, COLORMAP_NAMES, isColormapName, type ColormapName } from './colormaps.js';
export {
  DEFAULT_COMPRESSION_LEVEL,
  applyColormap,
  averageMaps,
  blend,
  normalizeMap,
  renderHeatmap,
  renderOverlay,
  resizeBilinear,
  type CamMap,
  type HeatmapOptions,
  type OverlayOptions,
  type RgbImage,
} from './render.js';
export { inputGeometry, mapToImage, type FitOptions, type InputGeometry, type ResizeMode } from './geometry.js';
export { renderJob, type RenderJob } from './job.js';
export { conceptColour, renderFactorization } from './factorization.js';
