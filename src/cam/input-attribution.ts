// Attributions on the input pixels built from input gradients: Captum's Saliency, Input × Gradient,
// Integrated Gradients and NoiseTunnel (SmoothGrad), and Guided Grad-CAM's product; and the map [H, W]
// an attribution [C, H, W] is shown as.
import { gaussian } from './random.js';
import type { InputGradients, InputView } from './types.js';

export type { InputGradients } from './types.js';

/**
 * The map of an attribution laid out as the input: |Σ_c a_c| per pixel, Captum's visualize_image_attr
 * default (channels summed, sign "absolute_value").
 */
export function attributionMap(a: Float32Array, view: Pick<InputView, 'height' | 'width' | 'channels' | 'layout'>): Float32Array {
  const hw = view.height * view.width;
  const C = view.channels;
  if (a.length !== hw * C) throw new RangeError(`attributionMap: ${a.length} values for ${C}×${view.height}×${view.width}`);
  const out = new Float32Array(hw);
  for (let i = 0; i < hw; i++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += view.layout === 'NHWC' ? a[i * C + c] : a[c * hw + i];
    out[i] = Math.abs(s);
  }
  return out;
}

/** Saliency (Simonyan et al. 2014, Captum's Saliency): |∂y/∂x| (abs = true, Captum's default) or ∂y/∂x. */
export async function saliency(x: Float32Array, grad: InputGradients, abs = true): Promise<Float32Array> {
  const [g] = await grad([x]);
  return abs ? Float32Array.from(g, Math.abs) : Float32Array.from(g);
}

/** Input × Gradient (Shrikumar et al. 2016): x ⊙ ∂y/∂x. */
export async function inputXGradient(x: Float32Array, grad: InputGradients): Promise<Float32Array> {
  const [g] = await grad([x]);
  return Float32Array.from(g, (v, i) => v * x[i]);
}

/**
 * n-point Gauss–Legendre nodes and weights moved from [−1, 1] to [0, 1], as Captum's
 * approximation_parameters('gausslegendre'): α_i = (1 + t_i)/2, step_i = w_i/2 (ascending α). Newton's
 * iteration on the Legendre polynomial from Chebyshev-like starting points, in float64.
 */
export function gaussLegendre(n: number): { alphas: Float64Array; steps: Float64Array } {
  const alphas = new Float64Array(n);
  const steps = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let t = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
    let dp = 0;
    for (let iter = 0; iter < 100; iter++) {
      // P_n(t) and its derivative by the three-term recurrence
      let p0 = 1;
      let p1 = t;
      for (let k = 2; k <= n; k++) {
        const p2 = ((2 * k - 1) * t * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      const pn = n === 1 ? t : p1;
      const pm = n === 1 ? 1 : p0;
      dp = (n * (t * pn - pm)) / (t * t - 1);
      const dt = pn / dp;
      t -= dt;
      if (Math.abs(dt) < 1e-15) break;
    }
    // nodes come out descending in t: store ascending
    const j = n - 1 - i;
    alphas[j] = (1 + t) / 2;
    steps[j] = 1 / ((1 - t * t) * dp * dp); // w/2 with w = 2 / ((1 − t²) P'ₙ(t)²)
  }
  return { alphas, steps };
}

export interface IntegratedGradientsOptions {
  /** default: zeros (Captum's default) */
  baseline?: Float32Array;
  /** default 50 (Captum's) */
  steps?: number;
  /** gradients asked for per call (default: all steps at once) */
  batch?: number;
}

/**
 * Integrated Gradients (Sundararajan et al., ICML 2017), Captum's default form: with b the baseline and
 * (α_i, s_i) the Gauss–Legendre rule on [0, 1],  IG(x) = (x − b) ⊙ Σ_i s_i ∂y/∂x (b + α_i (x − b)).
 */
export async function integratedGradients(x: Float32Array, grad: InputGradients, opts: IntegratedGradientsOptions = {}): Promise<Float32Array> {
  const n = opts.steps ?? 50;
  const b = opts.baseline ?? new Float32Array(x.length);
  const { alphas, steps } = gaussLegendre(n);
  const per = opts.batch ?? n;
  const total = new Float64Array(x.length);
  for (let start = 0; start < n; start += per) {
    const idx = Array.from({ length: Math.min(per, n - start) }, (_, k) => start + k);
    const inputs = idx.map((i) => Float32Array.from(x, (v, j) => b[j] + Math.fround(alphas[i]) * (v - b[j])));
    const grads = await grad(inputs);
    idx.forEach((i, k) => {
      const s = steps[i];
      const g = grads[k];
      for (let j = 0; j < g.length; j++) total[j] += s * g[j];
    });
  }
  return Float32Array.from(total, (t, j) => t * (x[j] - b[j]));
}

export interface SmoothGradOptions {
  /** Captum's NoiseTunnel defaults: 5 samples, σ = 1 */
  samples?: number;
  stdev?: number;
  /** the noise of sample s (as long as x); default: seeded Gaussian (Box–Muller, mulberry32 seed 0) */
  noise?: (sample: number) => Float32Array;
  /** the attribution of each noisy input is |∂y/∂x| (Saliency's default) or ∂y/∂x */
  abs?: boolean;
}

/**
 * SmoothGrad (Smilkov et al. 2017) as Captum's NoiseTunnel(Saliency, nt_type='smoothgrad'): the mean over
 * samples s of the saliency at x + δ_s, δ_s ~ N(0, σ²).
 */
export async function smoothGrad(x: Float32Array, grad: InputGradients, opts: SmoothGradOptions = {}): Promise<Float32Array> {
  const n = opts.samples ?? 5;
  const abs = opts.abs ?? true;
  const draw = gaussian(opts.stdev ?? 1, 0);
  const noise = opts.noise ?? (() => draw(x.length));
  const inputs = Array.from({ length: n }, (_, s) => {
    const d = noise(s);
    return Float32Array.from(x, (v, i) => v + d[i]);
  });
  const grads = await grad(inputs);
  const acc = new Float64Array(x.length);
  for (const g of grads) for (let i = 0; i < g.length; i++) acc[i] += abs ? Math.abs(g[i]) : g[i];
  return Float32Array.from(acc, (v) => v / n);
}

/**
 * Guided Grad-CAM (Selvaraju et al., ICCV 2017): guided backpropagation [C, H, W] times the Grad-CAM map
 * at the input's size [H, W], channel by channel. (Guided backpropagation itself needs a backward pass in
 * which every ReLU also zeroes negative incoming gradients; the engine does not build that one yet.)
 */
export function guidedGradCam(guided: Float32Array, cam: Float32Array): Float32Array {
  const hw = cam.length;
  if (guided.length % hw !== 0) throw new RangeError(`guided backpropagation of ${guided.length} values does not fit a ${hw}-pixel map`);
  return Float32Array.from(guided, (v, i) => v * cam[i % hw]);
}
