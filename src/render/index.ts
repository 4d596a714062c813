// Public API of the rendering layer.
export { COLORMAPS, COLORMAP_NAMES, isColormapName, type ColormapName } from './colormaps.js';
export {
  DEFAULT_COMPRESSION_LEVEL,
  DEFAULT_QUALITY,
  PICTURE_FORMATS,
  applyColormap,
  averageMaps,
  blend,
  encodeRgb,
  normalizeMap,
  pictureType,
  renderHeatmap,
  renderOverlay,
  resizeBilinear,
  type CamMap,
  type HeatmapOptions,
  type OverlayOptions,
  type PictureEncoding,
  type PictureFormat,
  type RgbImage,
} from './render.js';
export { inputGeometry, mapToImage, type FitOptions, type InputGeometry, type ResizeMode } from './geometry.js';
export { fitInside, renderJob, type RenderJob } from './job.js';
export { conceptColour, renderFactorization } from './factorization.js';
export { PNG_SIGNATURE, crc32 } from './png.js';
