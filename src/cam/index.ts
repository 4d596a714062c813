// CAM methods: one module per method (channel weights or weighted activations) and the shared maths
// that turns them into a raw map at the layer's resolution.
export { rawMap, type CamOptions } from './compute.js';
export { METHODS } from './methods/index.js';
export {
  METHOD_NAMES, MethodError, isMethodName,
  type CamMethod, type ClassifierWeights, type ForwardRunner, type InputView, type LayerTensors, type MethodContext, type MethodName, type Variants,
} from './types.js';
export { gaussian, mulberry32 } from './random.js';
export { combineGradients, evaluateTarget, nearestClasses, type TargetSpec, type TargetValue } from './targets.js';
