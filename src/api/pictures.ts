// The pictures of an explanation, made the same way for an HTTP answer, a job's result and the CLI's files:
// the overlay or heat map of each map placed over the image as the model input was cut from it (resize
// mode, crop or pad anchor), in the colours, size and encoding the parameters ask for.
import { fitOf, type DecodedImage, type ExplainResult, type ModelInfo } from '../engine/index.js';
import type { CamMap, RenderJob } from '../render/index.js';
import type { CamParams } from './params.js';

/** The look of the pictures: colours, size and encoding. */
export type PictureParams = Pick<CamParams, 'alpha' | 'colormap' | 'maxSide' | 'format' | 'pngCompression' | 'quality'>;

/** The render job of `maps` over the image (one picture per map; factorization: one of all maps, `alpha` the image's weight). */
export function pictureJob(
  kind: RenderJob['kind'], decoded: DecodedImage, info: ModelInfo, maps: CamMap[], params: PictureParams, alpha = params.alpha,
): RenderJob {
  return {
    kind, image: decoded.rgb, maps, input: { width: info.inputSize.width, height: info.inputSize.height },
    resize: info.manifest.input.resize, fit: fitOf(info.manifest.input), alpha, colormap: params.colormap,
    maxSide: params.maxSide, format: params.format, compressionLevel: params.pngCompression, quality: params.quality,
  };
}

/**
 * The picture of a result as an image answer shows it: the overlay or heat map of its first explanation,
 * or DFF's concepts (each in its own colour; `heatmap`: the colours alone).
 */
export function resultPicture(kind: 'overlay' | 'heatmap', decoded: DecodedImage, info: ModelInfo, result: ExplainResult, params: PictureParams): RenderJob {
  if (result.factorization) {
    const maps = result.factorization.concepts.map((c) => c.map);
    return pictureJob('factorization', decoded, info, maps, params, kind === 'heatmap' ? 0 : params.alpha);
  }
  return pictureJob(kind, decoded, info, [result.explanations[0].map], params);
}
