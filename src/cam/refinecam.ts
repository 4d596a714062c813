// RefineCAM (pytorch-grad-cam): several layers' maps of one method multiplied at the input's size, which
// keeps what the layers agree on and denoises shallow layers' maps.
import { averageMaps, type CamMap } from '../render/index.js';

/**
 * RefineCAM (Domeniconi et al., "How to Evaluate and Refine your CAM", arXiv:2605.14641), pytorch-grad-cam's form: each layer's raw map (base
 * method Grad-CAM++ by default) becomes what the library's single-layer call returns — ReLU, min–max
 * normalise, bilinear resize to the input (OpenCV), ReLU, normalise — and the result is their
 * element-wise product (before the library's final min–max scaling, which the renderer applies).
 */
export function refineMaps(layerMaps: CamMap[], width: number, height: number): CamMap {
  if (layerMaps.length === 0) throw new RangeError('refineMaps: no maps');
  const out = new Float32Array(width * height).fill(1);
  for (const m of layerMaps) {
    const scaled = averageMaps([m], width, height).data;
    for (let i = 0; i < out.length; i++) out[i] *= scaled[i];
  }
  return { width, height, data: out };
}
