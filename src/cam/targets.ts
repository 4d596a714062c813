// What a method differentiates: a scalar of the logits (pytorch-grad-cam's "targets") with its gradient
// w.r.t. the logits (the seed vector the backward pass starts from), and how per-class gradients combine.
import type { FinerOptions, TargetKind } from './types.js';

/**
 * The objectives of pytorch-grad-cam's utils/model_targets.py, on one sample's logits z:
 *
 *   logit     ClassifierOutputTarget(c):          z_c                                 seed e_c
 *   softmax   ClassifierOutputSoftmaxTarget(c):   p_c = softmax(z)_c                   seed p_c (e_c − p)
 *   sigmoid   (camserve; a multi-label model's score) s_c = σ(z_c)                    seed s_c (1 − s_c) e_c
 *   rest      ClassifierOutputReST(c):            z_c − CE(z, c) = 2 z_c − logsumexp(z) seed 2 e_c − p
 *   binary    BinaryClassifierOutputTarget(k) on a one-output model z = [z_0]:  ±z_0 (+ for k = 1)
 *   finer     FinerWeightedTarget(m, R, α):       Σ_r p_r (z_m − α z_r) / (Σ_r p_r + 1e-9)
 *
 * (ReST: H. Cai 2025, arXiv:2501.06261; Finer: Zhang et al. 2025, arXiv:2501.11309.)
 */
export type TargetSpec =
  | { kind: 'logit'; target: number }
  | { kind: 'softmax'; target: number }
  | { kind: 'sigmoid'; target: number }
  | { kind: 'rest'; target: number }
  | { kind: 'binary'; category: 0 | 1 }
  | { kind: 'finer'; main: number; comparison: readonly number[]; alpha: number }
  /** TorchCAM's Finer-CAM objective: z_c − γ · mean_r z_r */
  | { kind: 'contrast'; target: number; comparison: readonly number[]; gamma: number };

export interface TargetValue {
  score: number;
  /** dScore/dz, as long as the logits */
  seed: Float64Array;
}

/** softmax in float64, shifted by the maximum */
export function softmax(z: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < z.length; i++) max = Math.max(max, z[i]);
  const p = new Float64Array(z.length);
  let sum = 0;
  for (let i = 0; i < z.length; i++) sum += p[i] = Math.exp(z[i] - max);
  for (let i = 0; i < z.length; i++) p[i] /= sum;
  return p;
}

/** The objective's value and its gradient w.r.t. the logits (float64, analytic). */
export function evaluateTarget(spec: TargetSpec, z: ArrayLike<number>): TargetValue {
  const n = z.length;
  const seed = new Float64Array(n);
  switch (spec.kind) {
    case 'logit':
      seed[spec.target] = 1;
      return { score: z[spec.target], seed };
    case 'softmax': {
      const p = softmax(z);
      const c = spec.target;
      for (let i = 0; i < n; i++) seed[i] = p[c] * ((i === c ? 1 : 0) - p[i]);
      return { score: p[c], seed };
    }
    case 'sigmoid': {
      const v = 1 / (1 + Math.exp(-z[spec.target]));
      seed[spec.target] = v * (1 - v);
      return { score: v, seed };
    }
    case 'rest': {
      const p = softmax(z);
      let max = -Infinity;
      for (let i = 0; i < n; i++) max = Math.max(max, z[i]);
      let s = 0;
      for (let i = 0; i < n; i++) s += Math.exp(z[i] - max);
      const lse = max + Math.log(s);
      for (let i = 0; i < n; i++) seed[i] = (i === spec.target ? 2 : 0) - p[i];
      return { score: 2 * z[spec.target] - lse, seed };
    }
    case 'binary': {
      if (n !== 1) throw new RangeError(`a binary target needs a one-output model, got ${n} outputs`);
      const sign = spec.category === 1 ? 1 : -1;
      seed[0] = sign;
      return { score: sign * z[0], seed };
    }
    case 'finer': {
      // f = N / (D + ε), N = Σ_r p_r (z_m − α z_r), D = Σ_r p_r; ∂p_r/∂z_i = p_r (δ_ri − p_i).
      const p = softmax(z);
      const m = spec.main;
      let N = 0;
      let D = 0;
      for (const r of spec.comparison) {
        N += p[r] * (z[m] - spec.alpha * z[r]);
        D += p[r];
      }
      const den = D + 1e-9;
      for (let i = 0; i < n; i++) {
        let dN = 0;
        let dD = 0;
        for (const r of spec.comparison) {
          const dp = p[r] * ((r === i ? 1 : 0) - p[i]);
          dN += dp * (z[m] - spec.alpha * z[r]) + p[r] * ((i === m ? 1 : 0) - spec.alpha * (i === r ? 1 : 0));
          dD += dp;
        }
        seed[i] = dN / den - (N * dD) / (den * den);
      }
      return { score: N / den, seed };
    }
    case 'contrast': {
      const k = spec.comparison.length;
      let mean = 0;
      for (const r of spec.comparison) mean += z[r] / k;
      seed[spec.target] += 1;
      for (const r of spec.comparison) seed[r] -= spec.gamma / k;
      return { score: z[spec.target] - spec.gamma * mean, seed };
    }
  }
}

/**
 * The classes pytorch-grad-cam's Finer-CAM compares the target with: the `count` classes whose logits are
 * nearest to the target's (|z_i − z_t| ascending, ties by index), the target itself excluded.
 */
export function nearestClasses(z: ArrayLike<number>, target: number, count: number): number[] {
  const order = Array.from({ length: z.length }, (_, i) => i).filter((i) => i !== target);
  order.sort((a, b) => Math.abs(z[a] - z[target]) - Math.abs(z[b] - z[target]) || a - b);
  return order.slice(0, count);
}

/**
 * Finer-CAM's comparison classes: those at `ranks` of the classes ordered by nearness of their logit to the
 * target's (pytorch-grad-cam sorts all classes by |z_i − z_t|, the target itself first at rank 0; rank r ≥ 1
 * is the r-th nearest other class).
 */
export function finerComparison(z: ArrayLike<number>, target: number, ranks: readonly number[]): number[] {
  const order = nearestClasses(z, target, z.length - 1);
  return ranks.map((r) => {
    if (!Number.isInteger(r) || r < 1 || r > order.length) throw new RangeError(`comparison rank ${r} is outside 1..${order.length}`);
    return order[r - 1];
  });
}

/**
 * The objective a request's target kind names for class (or, for `binary`, category) `target`, given the
 * clean input's logits (Finer-CAM chooses its comparison classes from them). `class` is the class's logit.
 */
export function targetSpec(kind: TargetKind, target: number, logits: ArrayLike<number>, finer?: FinerOptions): TargetSpec {
  switch (kind) {
    case 'class': return { kind: 'logit', target };
    case 'softmax': return { kind: 'softmax', target };
    case 'sigmoid': return { kind: 'sigmoid', target };
    case 'rest': return { kind: 'rest', target };
    case 'binary': return { kind: 'binary', category: target === 1 ? 1 : 0 };
    case 'finer': {
      const f = finer ?? { ranks: [1, 2, 3], alpha: 1 };
      return { kind: 'finer', main: target, comparison: finerComparison(logits, target, f.ranks), alpha: f.alpha };
    }
  }
}

/**
 * The gradient for a seed vector from the one-hot gradients of every class: G = Σ_c seed_c · G_c (the
 * backward pass is linear in its seed). `perClass` is [classes · size], class-major, as
 * ModelRuntime.activationsAndGradients returns it for targets 0..classes−1.
 */
export function combineGradients(seed: ArrayLike<number>, perClass: Float32Array, size: number): Float32Array {
  if (perClass.length !== seed.length * size) throw new RangeError(`${perClass.length} gradient values for ${seed.length} classes of ${size}`);
  const acc = new Float64Array(size);
  for (let c = 0; c < seed.length; c++) {
    const s = seed[c];
    if (s === 0) continue;
    const off = c * size;
    for (let i = 0; i < size; i++) acc[i] += s * perClass[off + i];
  }
  return Float32Array.from(acc);
}
