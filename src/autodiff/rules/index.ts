// The registry of vector-Jacobian rules: one entry per ONNX op type (default domain).
import type { VjpRule } from '../context.js';
import { convRules } from './conv.js';
import { elementwiseRules } from './elementwise.js';
import { linearRules } from './linear.js';
import { reduceRules } from './reduce.js';
import { resizeRules } from './resize.js';
import { shapeRules } from './shape.js';

/**
 * Every rule refuses models below opset 7: there, Add/Mul/Sub/Div/Greater broadcast only through the
 * legacy `broadcast`/`axis` attributes, which cannot spread a [1, ...] factor over the K gradients, and
 * onnxruntime has no opset-6 kernels for them (nor for Dropout or BatchNormalization-6) anyway.
 */
function fromOpset7(rule: VjpRule): VjpRule {
  return (ctx, dOutputs) => {
    if (ctx.opset < 7) ctx.fail(`the model has opset ${ctx.opset}; gradients need opset 7 or later (numpy-style broadcasting)`);
    return rule(ctx, dOutputs);
  };
}

const table: Record<string, VjpRule> = {
  ...elementwiseRules,
  ...convRules,
  ...linearRules,
  ...shapeRules,
  ...reduceRules,
  ...resizeRules,
};

// A prototype-less table, so that an op type such as "constructor" finds no rule.
const guarded: Record<string, VjpRule> = Object.create(null) as Record<string, VjpRule>;
for (const [op, rule] of Object.entries(table)) guarded[op] = fromOpset7(rule);
export const RULES: Readonly<Record<string, VjpRule>> = Object.freeze(guarded);
