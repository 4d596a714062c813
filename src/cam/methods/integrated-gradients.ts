// Integrated Gradients along the straight path from a zero baseline; Captum's IntegratedGradients.
import { attributionMap, integratedGradients as ig } from '../input-attribution.js';
import type { InputMethod } from '../types.js';

/** Captum's default number of steps (Gauss–Legendre) */
export const IG_STEPS = 50;

/**
 * Integrated Gradients (Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017),
 * Captum's defaults: zero baseline b, 50 Gauss–Legendre nodes (α_i, s_i) on [0, 1],
 * a = (x − b) ⊙ Σ_i s_i ∂y/∂x(b + α_i (x − b)); map = |Σ_c a_c|. 50 trunk + backward runs, batched.
 */
export const integratedGradients: InputMethod = {
  kind: 'input',
  name: 'integrated-gradients',
  relu: 'plain',
  runs: IG_STEPS,
  attribute: async (ctx) => attributionMap(await ig(ctx.input.data, ctx.gradients, { steps: IG_STEPS }), ctx.input),
};
