// What an explanation differentiates: the request's target kind (or the method's) turned into an objective
// of the logits for each class, its seed vectors, and the classes chosen once the logits are known.
import { evaluateTarget, type Method, type Objective, type TargetKind, targetSpec, type TargetSpec } from '../cam/index.js';
import { ExplainError } from '../errors/index.js';
import type { ExplainRequest, Explanation } from './explain.js';
import type { SeedFn } from './passes.js';
import type { ModelRuntime } from './runtime.js';
import { topK } from './scores.js';

/** The target kind of a request for a method, and its objective for each class given the clean logits. */
export interface Targeting {
  kind: TargetKind;
  spec(target: number): TargetSpec;
  /** ∂objective/∂logits at a run's logits */
  seed: SeedFn;
  /** the objective's value on any logits */
  objective(target: number): Objective;
}

export function targeting(rt: ModelRuntime, method: Method, req: Pick<ExplainRequest, 'targetKind' | 'finer'>, clean: Float32Array): Targeting {
  const kind = ('targetKind' in method && method.targetKind) || req.targetKind || 'class';
  if (kind === 'binary' && rt.info.numClasses !== 1) {
    throw new ExplainError(`target kind binary needs a model with one output (pytorch-grad-cam's BinaryClassifierOutputTarget); this one has ${rt.info.numClasses}`);
  }
  const specs = new Map<number, TargetSpec>();
  const spec = (t: number) => {
    let s = specs.get(t);
    if (!s) specs.set(t, s = targetSpec(kind, t, clean, req.finer));
    return s;
  };
  return {
    kind,
    spec,
    seed: kind === 'class'
      ? (logits, t) => { const s = new Float32Array(logits.length); s[t] = 1; return s; }
      : (logits, t) => evaluateTarget(spec(t), logits).seed,
    objective: (t) => (kind === 'class' ? (logits) => logits[t] : (logits) => evaluateTarget(spec(t), logits).score),
  };
}

/** The classes to explain: the request's (checked), else the best `topk`; for `binary`, the predicted category. */
export function targetChooser(kind: TargetKind, req: Pick<ExplainRequest, 'targets' | 'topk'>) {
  return (logits: Float32Array): number[] => {
    if (kind === 'binary') {
      for (const c of req.targets ?? []) if (c !== 0 && c !== 1) throw new ExplainError(`a binary target's category is 0 or 1, not ${c}`);
      return req.targets?.length ? [...req.targets] : [logits[0] >= 0 ? 1 : 0];
    }
    return req.targets?.length ? [...req.targets] : topK(logits, Math.min(Math.max(1, req.topk ?? 1), logits.length));
  };
}

/** The explained target as results carry it. */
export function targetOf(kind: TargetKind, target: number, logits: Float32Array, objective: Objective): Pick<Explanation, 'target' | 'category'> {
  const index = kind === 'binary' ? 0 : target;
  return {
    target: { index, logit: logits[index], objective: objective(logits) },
    ...(kind === 'binary' ? { category: target === 1 ? 1 as const : 0 as const } : {}),
  };
}

