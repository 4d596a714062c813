// StepProgress: the progress of steps that each report their own (done, total) folded into one monotone
// count of runs, exact once every step has begun, ending with done = total.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StepProgress } from '../../src/engine/index.js';

function record(steps: number) {
  const seen: [number, number][] = [];
  return { p: new StepProgress(steps, (d, t) => seen.push([d, t])), seen };
}

test('steps of equal size: the total is known from the first report; done counts up to it', () => {
  const { p, seen } = record(3);
  for (let s = 0; s < 3; s++) {
    for (let d = 4; d <= 8; d += 4) p.runner(d, 8);
    p.stepDone();
  }
  assert.deepEqual(seen, [[4, 24], [8, 24], [12, 24], [16, 24], [20, 24], [24, 24]]);
});

test('a step with several calls, steps of other sizes, and steps without runs', () => {
  const { p, seen } = record(3);
  p.runner(2, 2); // first call of step 1
  p.runner(1, 3); // second call of the same step
  p.runner(3, 3);
  p.stepDone();
  p.stepDone(); // step 2: no runs, counts one
  p.runner(10, 10);
  p.stepDone();
  const done = seen.map(([d]) => d);
  for (let i = 1; i < done.length; i++) assert.ok(done[i] >= done[i - 1], 'monotone');
  assert.deepEqual(seen.at(-1), [16, 16]);
  for (const [d, t] of seen) assert.ok(d <= t);
});

test('no runs at all: one per step', () => {
  const { p, seen } = record(2);
  p.stepDone();
  p.stepDone();
  assert.deepEqual(seen, [[1, 2], [2, 2]]);
});
