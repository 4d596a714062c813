// Deep Feature Factorization as a served method: k concepts of a layer, each with its map and the classes
// the model gives it; pytorch-grad-cam's DeepFeatureFactorization / run_dff_on_image.
import type { FactorizationMethod } from '../types.js';

/**
 * DFF (Collins et al., "Deep Feature Factorization for Concept Discovery", ECCV 2018): the activations
 * A [C, h·w], minus each channel's minimum, ≈ W·H by non-negative matrix factorisation (../dff.ts);
 * concept t is W_t + the minima (a vector in the layer's channel space) and its map is H_t. Each concept
 * is run through the part of the model after the layer as a constant map, and its best classes by the
 * softmax of those logits are reported (for a global-average-pool → linear head: the classifier applied
 * to the concept, as the library's computation_on_concepts). Not class-specific: one answer per image.
 */
export const dff: FactorizationMethod = {
  kind: 'factorization',
  name: 'dff',
  concepts: 5,
  topClasses: 2,
};
