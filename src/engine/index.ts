// The inference engine: a loaded model (ModelRuntime) and what it does — explain an input with a CAM
// method, give the tensors behind it — plus decoding images into model inputs and class scores.
export { ENGINE_DEFAULTS, findCandidate, ModelRuntime, type HeadForward, type HeadRun, type LayerSet, type ModelInfo, type RuntimeOptions } from './runtime.js';
export type { ExplainOptions, ExplainRequest, ExplainResult, Explanation, LayerMap } from './explain.js';
export { canBatch, sharesTrunk, type BatchOptions } from './batch.js';
export { StepProgress, type ProgressFn } from './progress.js';
export type { Concept, Factorization } from './factorization.js';
export type { MetricSubject, MetricsEvaluator, MetricsRequest } from './subject.js';
export { tensorTransferables, type LayerTensorsOut, type TensorsRequest, type TensorsResult } from './passes.js';
export {
  ALPHA_BACKGROUND, IMAGE_FORMATS, ImageError, PAD_BACKGROUND, decodeImage, toModelInput,
  type DecodeLimits, type DecodedImage, type ImageFormat, type ModelInputSpec,
} from './input.js';
export { fitOf, readManifest, type InputSpec, type ManifestProblem, type ModelManifest } from './manifest.js';
export { classScores, topK } from './scores.js';
