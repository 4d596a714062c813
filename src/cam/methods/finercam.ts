// Finer-CAM: Grad-CAM of the target against its nearest classes, via a seed vector over the logits;
// pytorch-grad-cam's FinerCAM.
import { gradientMeans } from '../maths.js';
import { FINER_DEFAULTS, type CamMethod } from '../types.js';

/** pytorch-grad-cam's defaults: the 3 nearest classes (its comparison_categories [1, 2, 3]), α = 1 */
export const FINER_COMPARISONS = FINER_DEFAULTS.ranks.length;
export const FINER_ALPHA = FINER_DEFAULTS.alpha;

/**
 * Finer-CAM (Zhang et al. 2025, arXiv:2501.11309), pytorch-grad-cam's form: Grad-CAM of the objective
 * f = Σ_r p_r (z_c − α z_r) / Σ_r p_r over the classes r whose logits are nearest to the target's (p =
 * softmax(z)), which highlights what separates c from its look-alikes. The engine seeds the backward
 * pass with df/dz (target kind `finer`, see ../targets.ts), so G is the gradient of f; the weights are
 * Grad-CAM's (spatial mean of G). Finer-CAM is Grad-CAM with `target_kind=finer`.
 */
export const finercam: CamMethod = {
  name: 'finercam',
  needs: 'gradients',
  targetKind: 'finer',
  weights: (l) => gradientMeans(l),
};
