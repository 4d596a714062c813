// Reverse-mode differentiation of ONNX graphs into standard ONNX nodes: the builder (the reverse sweep)
// and its table of vector-Jacobian rules, one per op type.
export { buildGradientPatch, type GradientPatch, type GradientSpec } from './builder.js';
export { GradientError, type VjpContext, type VjpRule } from './context.js';
export { RULES } from './rules/index.js';
