// Class scores from logits: softmax for exclusive classes, sigmoid for multi-label models.

/** Softmax over the logits, or the sigmoid of each when the classes are independent (multi-label). */
export function classScores(logits: ArrayLike<number>, multiLabel: boolean): Float32Array {
  if (multiLabel) return Float32Array.from(logits, (z) => 1 / (1 + Math.exp(-z)));
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  const out = Float32Array.from(logits, (z) => { const e = Math.exp(z - max); sum += e; return e; });
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/** Indices of the k largest values, largest first. */
export function topK(values: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: values.length }, (_, i) => i).sort((a, b) => values[b] - values[a]).slice(0, Math.max(0, k));
}
