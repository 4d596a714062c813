// Finer-CAM: Grad-CAM of the target against its nearest classes, via a seed vector over the logits;
// pytorch-grad-cam's FinerCAM.
import { spatialMean } from '../maths.js';
import { evaluateTarget, nearestClasses } from '../targets.js';
import type { CamMethod } from '../types.js';

/** pytorch-grad-cam's defaults: the 3 nearest classes (its comparison_categories [1, 2, 3]), α = 1 */
export const FINER_COMPARISONS = 3;
export const FINER_ALPHA = 1;

/**
 * Finer-CAM (Zhang et al. 2025, arXiv:2501.11309), pytorch-grad-cam's form: Grad-CAM of the objective
 * f = Σ_r p_r (z_c − α z_r) / Σ_r p_r over the classes r whose logits are nearest to the target's (p =
 * softmax(z)), which highlights what separates c from its look-alikes. `seed` gives df/dz; `weights` are
 * Grad-CAM's (spatial mean of G), so G must be the gradient for that seed: Σ_i seed_i G_i.
 */
export const finercam: CamMethod = {
  name: 'finercam',
  needs: 'gradients',
  seed(logits, target) {
    const comparison = nearestClasses(logits, target, FINER_COMPARISONS);
    return Float32Array.from(evaluateTarget({ kind: 'finer', main: target, comparison, alpha: FINER_ALPHA }, logits).seed);
  },
  weights: (l) => spatialMean(l.G!, l.C, l.h * l.w),
};
