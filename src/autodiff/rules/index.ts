// The registry of vector-Jacobian rules: one entry per ONNX op type (default domain).
import type { VjpRule } from '../context.js';
import { convRules } from './conv.js';
import { elementwiseRules } from './elementwise.js';
import { linearRules } from './linear.js';
import { reduceRules } from './reduce.js';
import { shapeRules } from './shape.js';

export const RULES: Readonly<Record<string, VjpRule>> = Object.freeze({
  ...elementwiseRules,
  ...convRules,
  ...linearRules,
  ...shapeRules,
  ...reduceRules,
});
