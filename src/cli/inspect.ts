// The inspection views for the command line (no server, no worker): each loads the model in this
// thread (or uses a runtime the caller holds), does one thing and releases what it loaded. `modelDir` is
// a model folder (model.onnx + model.json) or a .onnx file, as ModelRuntime.load takes it.
import { ModelRuntime } from '../engine/index.js';
import {
  featureGrid, formatSummary, gradientPanel, graphDot, histogram, histogramPng, modelFacts, renderDot, summarize,
  type GraphOptions, type GridOptions, type GridResult, type Histogram, type HistogramPanel, type ModelFacts, type ModelSummary,
} from '../inspect/index.js';

/** A model folder or .onnx file (loaded and released here), or a runtime the caller already holds. */
export type ModelSource = string | ModelRuntime;

async function withRuntime<T>(model: ModelSource, f: (rt: ModelRuntime) => Promise<T>): Promise<T> {
  if (typeof model !== 'string') return f(model);
  const rt = await ModelRuntime.load(model);
  try {
    return await f(rt);
  } finally {
    await rt.release();
  }
}

/** The graph facts of a model (what summary and graph are made from). */
export function loadFacts(modelDir: string): Promise<ModelFacts> {
  return withRuntime(modelDir, async (rt) => modelFacts(rt));
}

/** The summary as data (see summary.ts). */
export async function summaryOf(modelDir: string): Promise<ModelSummary> {
  return summarize(await loadFacts(modelDir));
}

/** The torchsummary-style table as text. */
export async function summaryText(modelDir: string): Promise<string> {
  return formatSummary(await summaryOf(modelDir));
}

/** The computation graph as SVG (or DOT with `format: 'dot'`). */
export async function graphSvg(modelDir: string, opts: GraphOptions & { format?: 'svg' | 'dot' } = {}): Promise<string> {
  const dot = graphDot(await loadFacts(modelDir), opts);
  return opts.format === 'dot' ? dot : renderDot(dot);
}

/**
 * The feature-map grid PNG of `layer` (a name, several names stacked top to bottom, or undefined for the
 * model's default layer) for a preprocessed input (laid out as the model's inputDims: see
 * engine/input.ts toModelInput).
 */
export async function featureGridPng(model: ModelSource, imageInput: Float32Array, layer: string | string[] | undefined, opts: GridOptions = {}): Promise<Buffer> {
  return (await featureGridOf(model, imageInput, layer, opts)).png;
}

/** Like featureGridPng, with the layout and per-channel statistics. */
export function featureGridOf(model: ModelSource, imageInput: Float32Array, layer: string | string[] | undefined, opts: GridOptions = {}): Promise<GridResult> {
  return withRuntime(model, async (rt) => {
    const layers = layer === undefined ? [rt.info.defaultLayer] : Array.isArray(layer) ? layer : [layer];
    const t = await rt.tensors({ input: imageInput, layers });
    return featureGrid(t.layers.map((l) => ({ layer: l.layer, maps: { C: l.dims[1], h: l.dims[2], w: l.dims[3], data: l.activations } })), opts);
  });
}

export interface LayerHistograms {
  layer: string;
  dims: number[];
  activations: Histogram;
  gradients: { target: number; histogram: Histogram }[];
}

/**
 * Histograms of activations and class-score gradients at `layer` (default: the model's default layer)
 * for the `targets` (default: the top class); `png` also draws them.
 */
export function histogramsOf(
  model: ModelSource, imageInput: Float32Array, layer: string | string[] | undefined,
  opts: { targets?: number[]; bins?: number; range?: [number, number]; gradRange?: [number, number]; png?: boolean } = {},
): Promise<{ layers: LayerHistograms[]; targets: number[]; png?: Buffer }> {
  return withRuntime(model, async (rt) => {
    const layers = layer === undefined ? [rt.info.defaultLayer] : Array.isArray(layer) ? layer : [layer];
    const t = await rt.tensors(opts.targets?.length ? { input: imageInput, layers, targets: opts.targets } : { input: imageInput, layers, topk: 1 });
    const out: LayerHistograms[] = t.layers.map((l) => ({
      layer: l.layer, dims: l.dims,
      activations: histogram(l.activations, { bins: opts.bins, range: opts.range }),
      gradients: t.targets.map((target, k) => ({
        target, histogram: histogram(l.gradients!.subarray(k * l.activations.length, (k + 1) * l.activations.length), { bins: opts.bins, range: opts.gradRange }),
      })),
    }));
    if (!opts.png) return { layers: out, targets: t.targets };
    const panels: HistogramPanel[] = out.flatMap((l) => [
      { title: 'activations', subtitle: l.layer, hist: l.activations },
      ...l.gradients.map((g) => gradientPanel(g.target, rt.info.manifest.labels?.[g.target], l.layer, g.histogram)),
    ]);
    return { layers: out, targets: t.targets, png: await histogramPng(panels, 1 + t.targets.length) };
  });
}
