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

/**
 * The indices of the `k` largest values, largest first, ties in index order: what a stable sort by
 * descending value gives, by selection in one pass (k is small). With NaNs, the sort itself.
 */
export function topK(values: ArrayLike<number>, k: number): number[] {
  const top: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isNaN(v)) return Array.from({ length: values.length }, (_, j) => j).sort((a, b) => values[b] - values[a]).slice(0, k);
    if (top.length === k && !(v > values[top[k - 1]])) continue;
    let j = top.length === k ? k - 1 : top.length;
    while (j > 0 && v > values[top[j - 1]]) j--;
    top.splice(j, 0, i);
    if (top.length > k) top.pop();
  }
  return top;
}
