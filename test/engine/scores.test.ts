// The class selection of explanations without a target: the k largest logits, as a stable sort would give.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { topK } from '../../src/engine/scores.js';

test('topK equals a stable descending sort, ties in index order, NaN as the sort has it', () => {
  let seed = 3;
  const r = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  const sorted = (x: Float32Array, k: number) => Array.from(x.keys()).sort((a, b) => x[b] - x[a]).slice(0, k);
  for (let t = 0; t < 500; t++) {
    const n = 1 + Math.floor(r() * 40);
    const x = Float32Array.from({ length: n }, () => Math.round(r() * 6) / 2 - 1.5); // many ties
    const k = 1 + Math.floor(r() * n);
    assert.deepEqual(topK(x, k), sorted(x, k), `[${[...x]}] k=${k}`);
  }
  assert.deepEqual(topK(Float32Array.from([1, 5, 5, -Infinity, 7]), 3), [4, 1, 2]);
  const withNaN = Float32Array.from([1, NaN, 3]);
  assert.deepEqual(topK(withNaN, 2), sorted(withNaN, 2));
});
