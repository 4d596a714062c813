// The answer shapes the HTTP routes and the CLI share: one rule for float values, one prediction shape.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { camJson, finite, histogramJson, predictions } from '../../src/api/index.js';
import { histogram } from '../../src/inspect/index.js';

const info = (multiLabel: boolean, labels?: string[]) => ({ manifest: { multiLabel, labels, input: {} } }) as unknown as Parameters<typeof predictions>[1];

test('non-finite values are null everywhere: in maps, histograms and predictions', () => {
  assert.equal(finite(NaN), null);
  assert.equal(finite(Infinity), null);
  assert.equal(finite(-Infinity), null);
  assert.equal(finite(Math.fround(0.1)), 0.100000001);
  assert.deepEqual(camJson({ width: 3, height: 1, data: new Float32Array([1, NaN, Infinity]) }).data, [1, null, null]);
  const h = histogramJson({ ...histogram(new Float32Array([1, 2]), { bins: 2 }), mean: NaN, max: Infinity });
  assert.deepEqual([h.mean, h.max, h.min], [null, null, 1]);
  const p = predictions(new Float32Array([NaN, 1]), info(false)).of(0);
  assert.deepEqual(p, { index: 0, label: null, score: null, logit: null });
});

test('a prediction has index, label, score (softmax, or sigmoid for multi-label) and logit', () => {
  const logits = new Float32Array([0, Math.log(3)]);
  const soft = predictions(logits, info(false, ['a', 'b'])).of(1);
  assert.deepEqual(soft, { index: 1, label: 'b', score: 0.75, logit: finite(Math.fround(Math.log(3))) });
  const sig = predictions(logits, info(true)).of(1);
  assert.equal(sig.score, 0.75);
  assert.equal(predictions(logits, info(true)).of(0).score, 0.5);
});
