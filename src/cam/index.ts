// CAM methods: one module per method (channel weights or weighted activations, input attributions, the
// factorisation), the shared maths that turns them into a raw map at the layer's resolution, and targets.
export { rawMap, type CamOptions } from './compute.js';
export { METHODS } from './methods/index.js';
export {
  FINER_DEFAULTS, METHOD_NAMES, MethodError, TARGET_KINDS, isMethodName, isTargetKind,
  type BiasLayer, type CamMethod, type ClassifierWeights, type FactorizationMethod, type FinerOptions, type ForwardRunner,
  type InputGradients, type InputMethod, type InputMethodContext, type InputView, type LayerTensors, type Method,
  type MethodContext, type MethodName, type NoisyRun, type Objective, type TargetKind, type Variants,
} from './types.js';
export { gaussian, mulberry32, noiseSamples } from './random.js';
export { spreadChannels, withChannelGradient } from './maths.js';
export {
  combineGradients, evaluateTarget, finerComparison, nearestClasses, softmax, targetSpec, type TargetSpec, type TargetValue,
} from './targets.js';
export { conceptTopClasses, deepFeatureFactorization, type DffResult } from './dff.js';
export { refineMaps } from './refinecam.js';
