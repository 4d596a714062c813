// Histograms: numpy.histogram binning, every element accounted for, edge cases, the PNG plot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { histogram, histogramPng, histogramSvg } from '../../src/inspect/histogram.js';

const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);

function noNaN(h: ReturnType<typeof histogram>): void {
  for (const v of [h.min, h.max, h.mean, h.std, h.zeros, ...h.range, ...h.edges]) assert.ok(Number.isFinite(v), `${v} is not finite`);
}

test('counts sum to the element count; default 30 bins over min..max', () => {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 4 - 1;
  const data = Float32Array.from({ length: 10007 }, rnd);
  const h = histogram(data);
  assert.equal(h.bins, 30);
  assert.equal(h.counts.length, 30);
  assert.equal(h.edges.length, 31);
  assert.equal(sum(h.counts), data.length);
  assert.equal(h.count, data.length);
  assert.deepEqual([h.below, h.above, h.nonFinite], [0, 0, 0]);
  assert.equal(h.edges[0], h.min);
  assert.equal(h.edges[30], h.max);
  noNaN(h);
});

test('numpy binning: half-open bins, the last one closed; values on an edge go right', () => {
  const h = histogram([0, 1, 2, 3, 4], { bins: 4 });
  assert.deepEqual(h.edges, [0, 1, 2, 3, 4]);
  assert.deepEqual(h.counts, [1, 1, 1, 2]);
  // 0.1 steps where (v − lo)·bins / (hi − lo) rounds badly
  const g = histogram([0, 0.1, 0.2, 0.3, 0.7, 1], { bins: 10, range: [0, 1] });
  assert.equal(sum(g.counts), 6);
  g.counts.forEach((c, i) => {
    const inBin = [0, 0.1, 0.2, 0.3, 0.7, 1].filter((v) => v >= g.edges[i] && (i === 9 ? v <= g.edges[i + 1] : v < g.edges[i + 1])).length;
    assert.equal(c, inBin, `bin ${i}`);
  });
});

test('a given range: values outside are counted as below/above, not binned', () => {
  const h = histogram([-5, -1, 0, 0.5, 1, 9, 10], { bins: 2, range: [-1, 1] });
  assert.deepEqual(h.counts, [1, 3]);
  assert.deepEqual([h.below, h.above], [1, 2]);
  assert.equal(sum(h.counts) + h.below + h.above, 7);
  assert.throws(() => histogram([1], { range: [1, 1] }), RangeError);
  assert.throws(() => histogram([1], { bins: 0 }), RangeError);
});

test('a constant tensor gets [v − 0.5, v + 0.5] (numpy) and no NaN anywhere', () => {
  const h = histogram(new Float32Array(64).fill(2), { bins: 5 });
  assert.deepEqual(h.range, [1.5, 2.5]);
  assert.deepEqual(h.counts, [0, 0, 64, 0, 0]);
  assert.deepEqual([h.min, h.max, h.mean, h.std], [2, 2, 2, 0]);
  noNaN(h);
  const zeros = histogram(new Float32Array(10));
  assert.equal(zeros.zeros, 1);
  assert.equal(sum(zeros.counts), 10);
  noNaN(zeros);
});

test('NaN and infinities are counted apart; an empty or all-NaN tensor is still NaN-free', () => {
  const h = histogram([1, Number.NaN, 2, Number.POSITIVE_INFINITY, 3, Number.NEGATIVE_INFINITY], { bins: 2 });
  assert.equal(h.nonFinite, 3);
  assert.equal(sum(h.counts) + h.nonFinite, 6);
  assert.deepEqual(h.range, [1, 3]);
  noNaN(h);
  noNaN(histogram([Number.NaN, Number.NaN]));
  const empty = histogram([]);
  assert.equal(sum(empty.counts), 0);
  noNaN(empty);
});

test('the plot: one panel per histogram as SVG, rasterised to a PNG of the SVG\'s size', async () => {
  const a = histogram([0, 0, 1, 2, 3]);
  const b = histogram([-1, 1]);
  const svg = histogramSvg([{ title: 'activations <A&B>', hist: a }, { title: 'gradients', hist: b }], 2);
  assert.match(svg, /activations &lt;A&amp;B&gt;/);
  assert.equal((svg.match(/<rect /g) ?? []).length, 1 + a.counts.filter((c) => c > 0).length + b.counts.filter((c) => c > 0).length);
  const png = await histogramPng([{ title: 'activations', hist: a }, { title: 'gradients', hist: b }, { title: 'more', hist: b }], 2);
  const meta = await sharp(png).metadata();
  assert.equal(meta.format, 'png');
  assert.deepEqual([meta.width, meta.height], [2 * 420, 2 * 260]);
});
