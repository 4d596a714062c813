// Histograms of a layer's activations and of the class-score gradients (TensorBoard's add_histogram),
// as numbers and as a PNG plot (an SVG drawn here, rasterised by sharp).
//
// Binning is numpy.histogram's: `bins` equal-width bins over [lo, hi] (default: the finite min and max
// of the tensor), every bin half-open [a, b) except the last, which is closed [a, b]; values outside
// the range are not binned but counted in `below` / `above`; NaN and ±∞ are counted in `nonFinite`.
// A constant tensor (min = max = v) gets the range [v − 0.5, v + 0.5], as numpy does. So
// Σ counts + below + above + nonFinite = the number of elements, always.
import sharp from 'sharp';

export interface Histogram {
  bins: number;
  /** [lo, hi] actually used */
  range: [number, number];
  /** bins + 1 edges, edges[0] = lo, edges[bins] = hi */
  edges: number[];
  counts: number[];
  /** elements of the tensor */
  count: number;
  below: number;
  above: number;
  nonFinite: number;
  /** over the finite elements (0 when there are none) */
  min: number;
  max: number;
  mean: number;
  std: number;
  /** share of exact zeros, 0..1 */
  zeros: number;
}

export const HISTOGRAM_DEFAULTS = { bins: 30, maxBins: 1000 } as const;

export function histogram(data: ArrayLike<number>, opts: { bins?: number; range?: [number, number] } = {}): Histogram {
  const bins = opts.bins ?? HISTOGRAM_DEFAULTS.bins;
  if (!Number.isInteger(bins) || bins < 1 || bins > HISTOGRAM_DEFAULTS.maxBins) throw new RangeError(`bins must be an integer in 1..${HISTOGRAM_DEFAULTS.maxBins}, got ${bins}`);
  const n = data.length;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let finite = 0;
  let zeros = 0;
  for (let i = 0; i < n; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) continue;
    finite++;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
    if (v === 0) zeros++;
  }
  const mean = finite ? sum / finite : 0;
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const v = data[i];
    if (Number.isFinite(v)) sq += (v - mean) * (v - mean);
  }
  let lo: number;
  let hi: number;
  if (opts.range) {
    [lo, hi] = opts.range;
    if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo < hi)) throw new RangeError(`range must be [lo, hi] with finite lo < hi, got [${opts.range.join(', ')}]`);
  } else if (finite === 0) {
    [lo, hi] = [-0.5, 0.5];
  } else {
    [lo, hi] = min === max ? [min - 0.5, max + 0.5] : [min, max];
  }
  const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : lo + ((hi - lo) * i) / bins));
  const counts = new Array<number>(bins).fill(0);
  let below = 0;
  let above = 0;
  const norm = bins / (hi - lo);
  for (let i = 0; i < n; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) continue;
    if (v < lo) { below++; continue; }
    if (v > hi) { above++; continue; }
    let k = Math.min(bins - 1, Math.floor((v - lo) * norm));
    // Rounding of (v − lo)·norm can land one bin off; the edges decide (as numpy does).
    if (k > 0 && v < edges[k]) k--;
    else if (k < bins - 1 && v >= edges[k + 1]) k++;
    counts[k]++;
  }
  return {
    bins, range: [lo, hi], edges, counts, count: n, below, above, nonFinite: n - finite,
    min: finite ? min : 0, max: finite ? max : 0, mean, std: finite ? Math.sqrt(sq / finite) : 0, zeros: finite ? zeros / n : 0,
  };
}

export interface HistogramPanel {
  title: string;
  subtitle?: string;
  hist: Histogram;
  color?: string;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A short number for axis labels. */
function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(2);
  return Number(v.toPrecision(3)).toString();
}

const PANEL = { width: 420, height: 260, left: 56, right: 16, top: 44, bottom: 40 };

/** One panel: bars, axes with ticks at lo, mid, hi and 0, ½, 1 of the largest count, title. */
function panelSvg(p: HistogramPanel, x0: number, y0: number): string {
  const { hist } = p;
  const pw = PANEL.width - PANEL.left - PANEL.right;
  const ph = PANEL.height - PANEL.top - PANEL.bottom;
  const ox = x0 + PANEL.left;
  const oy = y0 + PANEL.top + ph;
  const peak = Math.max(1, ...hist.counts);
  const bw = pw / hist.bins;
  const out: string[] = [];
  out.push(`<text x="${x0 + PANEL.width / 2}" y="${y0 + 18}" text-anchor="middle" font-size="13" font-weight="bold">${esc(p.title)}</text>`);
  if (p.subtitle) out.push(`<text x="${x0 + PANEL.width / 2}" y="${y0 + 34}" text-anchor="middle" font-size="10" fill="#495057">${esc(p.subtitle)}</text>`);
  hist.counts.forEach((c, i) => {
    if (c === 0) return;
    const h = (c / peak) * ph;
    out.push(`<rect x="${(ox + i * bw).toFixed(2)}" y="${(oy - h).toFixed(2)}" width="${Math.max(0.5, bw - 1).toFixed(2)}" height="${h.toFixed(2)}" fill="${p.color ?? '#4c6ef5'}"/>`);
  });
  out.push(`<line x1="${ox}" y1="${oy}" x2="${ox + pw}" y2="${oy}" stroke="#212529"/>`);
  out.push(`<line x1="${ox}" y1="${oy}" x2="${ox}" y2="${oy - ph}" stroke="#212529"/>`);
  const [lo, hi] = hist.range;
  for (const [f, v] of [[0, lo], [0.5, (lo + hi) / 2], [1, hi]] as const) {
    const x = ox + f * pw;
    out.push(`<line x1="${x}" y1="${oy}" x2="${x}" y2="${oy + 4}" stroke="#212529"/>`);
    out.push(`<text x="${x}" y="${oy + 16}" text-anchor="${f === 0 ? 'start' : f === 1 ? 'end' : 'middle'}" font-size="10">${esc(fmt(v))}</text>`);
  }
  if (lo < 0 && hi > 0) {
    const x = ox + ((0 - lo) / (hi - lo)) * pw;
    out.push(`<line x1="${x}" y1="${oy}" x2="${x}" y2="${oy - ph}" stroke="#adb5bd" stroke-dasharray="3,3"/>`);
  }
  for (const f of [0, 0.5, 1]) {
    const y = oy - f * ph;
    out.push(`<line x1="${ox - 4}" y1="${y}" x2="${ox}" y2="${y}" stroke="#212529"/>`);
    out.push(`<text x="${ox - 6}" y="${y + 3}" text-anchor="end" font-size="10">${esc(fmt(Math.round(f * peak)))}</text>`);
  }
  const extra = [hist.below ? `${hist.below} below` : '', hist.above ? `${hist.above} above` : '', hist.nonFinite ? `${hist.nonFinite} non-finite` : ''].filter(Boolean).join(', ');
  out.push(`<text x="${ox + pw / 2}" y="${oy + 32}" text-anchor="middle" font-size="10" fill="#495057">${esc(`n=${hist.count}  mean=${fmt(hist.mean)}  std=${fmt(hist.std)}  zeros=${(hist.zeros * 100).toFixed(1)}%${extra ? `  (${extra})` : ''}`)}</text>`);
  return out.join('\n');
}

/** Panels on a grid of `columns` columns, as one SVG document. */
export function histogramSvg(panels: HistogramPanel[], columns = 2): string {
  const cols = Math.max(1, Math.min(columns, panels.length));
  const rows = Math.ceil(panels.length / cols);
  const W = cols * PANEL.width;
  const H = rows * PANEL.height;
  const body = panels.map((p, i) => panelSvg(p, (i % cols) * PANEL.width, Math.floor(i / cols) * PANEL.height)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">\n<rect width="${W}" height="${H}" fill="white"/>\n${body}\n</svg>\n`;
}

/** The panels as a PNG (sharp rasterises the SVG at 72 dpi: one SVG unit = one pixel). */
export async function histogramPng(panels: HistogramPanel[], columns = 2): Promise<Buffer> {
  return sharp(Buffer.from(histogramSvg(panels, columns))).png().toBuffer();
}

/** The panel of one class's score gradients at a layer. */
export function gradientPanel(target: number, label: string | undefined, layer: string, hist: Histogram): HistogramPanel {
  return { title: `∂ logit[${target}${label ? ` ${label}` : ''}] / ∂ activations`, subtitle: layer, hist, color: '#e8590c' };
}
