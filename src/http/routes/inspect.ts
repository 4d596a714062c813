// HTTP routes for looking inside a model:
//   POST /features              feature-map grid of layers for an image (PNG, or JSON with statistics)
//   POST /histograms            histograms of activations and class-score gradients (JSON, or PNG plot)
//   GET  /models/{id}/summary   torchsummary-style table (JSON, or text/plain)
//   GET  /models/{id}/graph     computation graph (SVG, or DOT with Accept: text/vnd.graphviz)
// Tensors come from the pool (`tensors` jobs); each model's graph facts are asked of the pool once (a
// `facts` job) and cached here, as are rendered graphs.
import type { IRouter, Request, Response } from 'express';
import {
  FEATURE_PARAMETERS, GRAPH_PARAMETERS, HISTOGRAM_PARAMETERS, MAX_LAYERS, collectParameters, finite, histogramJson, list, oneOf,
  parseGraphOptions, parseGridOptions, parseHistogramParams, predictions, resolveLayers, resolveTargets, scoreFunction, summaryJson, timeoutMs,
  type Params,
} from '../../api/index.js';
import { toModelInput, topK, type ModelInfo, type TensorsRequest } from '../../engine/index.js';
import {
  GRID_DEFAULTS, featureGrid, formatSummary, gradientPanel, graphDot, histogram, histogramPng, renderDot, summarize, type HistogramPanel, type ModelFacts,
} from '../../inspect/index.js';
import { admit, clientGone, findModel, jobSignal, requirePool, routeLabel, type AppContext, type ServicePool } from '../context.js';
import { decodeUpload, readUpload } from '../upload.js';

/** Route templates and their methods, for the app's 405 table. */
export const INSPECT_ROUTES: Record<string, string[]> = {
  '/features': ['POST'],
  '/histograms': ['POST'],
  '/models/{id}/summary': ['GET', 'HEAD'],
  '/models/{id}/graph': ['GET', 'HEAD'],
};

const GRAPH_CACHE_SIZE = 32;
/** model versions whose graph facts are kept (a reload adds versions; the oldest go) */
const FACTS_CACHE_SIZE = 16;

/** The top class of the logits, with its score and logit, as /cam's predictions are. */
function topPrediction(logits: Float32Array, info: ModelInfo) {
  const pred = predictions(logits, info);
  return { pred, top: pred.of(topK(logits, 1)[0]) };
}

/** Registers the routes on the app (not a sub-router: its automatic OPTIONS answer would shadow the app's 405 table). */
export function inspectRoutes(router: IRouter, ctx: AppContext): void {
  const factsCache = new Map<string, Promise<ModelFacts>>();
  const graphCache = new Map<string, Promise<string>>();

  /** A model version's facts, asked of a worker once (a reload's new version is another key). */
  const factsOf = (pool: ServicePool, info: ModelInfo): Promise<ModelFacts> => {
    const key = `${info.id}@${info.version ?? ''}`;
    let p = factsCache.get(key);
    if (!p) {
      p = pool.facts(info.id, { version: info.version });
      factsCache.set(key, p);
      p.catch(() => factsCache.delete(key));
      while (factsCache.size > FACTS_CACHE_SIZE) factsCache.delete(factsCache.keys().next().value as string);
    }
    return p;
  };

  /** What both image routes start with: the pool, a signal for a client that leaves, the upload and its parameters. */
  const imageRequest = async (req: Request, res: Response, route: string, allowed: readonly string[]) => {
    const t0 = performance.now();
    routeLabel(res, route);
    res.setHeader('Cache-Control', 'no-store');
    const pool = requirePool(ctx);
    const reservation = admit(pool, req, res);
    const gone = clientGone(res);
    const upload = await readUpload(req, res, ctx.config);
    const p = collectParameters(`POST ${route}`, allowed, req.query as Record<string, unknown>, upload.fields);
    const signal = jobSignal(gone, t0, timeoutMs(p, ctx.config.maxTimeoutMs));
    const info = findModel(pool.models(), p.get('model') ?? ctx.defaultModel(), 'model');
    res.locals.model = info.id;
    const layers = resolveLayers(list(p, 'layer', MAX_LAYERS), info);
    /** The image as the model's input, once every parameter is checked. */
    const input = async () => toModelInput((await decodeUpload(upload.bytes, ctx.config)).rgb, info);
    return { pool, gone, signal, reservation, p, info, layers, input };
  };

  router.post('/features', async (req: Request, res: Response) => {
    const { pool, gone, signal, reservation, p, info, layers, input } = await imageRequest(req, res, '/features', FEATURE_PARAMETERS);
    const preferJson = req.accepts(['image/png', 'application/json']) === 'application/json';
    const output = oneOf(p, 'output', ['png', 'json'] as const, preferJson ? 'json' : 'png');
    const opts = parseGridOptions(p);
    const x = await input();
    if (gone.aborted) return;
    const t = await pool.tensors(info.id, { input: x, layers }, { signal, reservation, version: info.version });
    const grid = await featureGrid(t.layers.map((l) => ({ layer: l.layer, maps: { C: l.dims[1], h: l.dims[2], w: l.dims[3], data: l.activations } })), opts, output === 'png');
    if (gone.aborted) return;
    if (output === 'png') {
      res.setHeader('X-Camserve-Model', info.id);
      res.setHeader('X-Camserve-Layers', encodeURIComponent(layers.join(',')));
      res.type('image/png').send(grid.png);
      return;
    }
    res.json({
      model: info.id,
      score_function: scoreFunction(info),
      prediction: topPrediction(t.logits, info).top,
      width: grid.width,
      height: grid.height,
      layers: grid.layers.map((g, i) => ({
        layer: g.layer,
        dims: t.layers[i].dims,
        channels: g.layout.channels,
        grid: {
          nrow: opts.nrow ?? GRID_DEFAULTS.nrow, padding: opts.padding ?? GRID_DEFAULTS.padding, xmaps: g.layout.xmaps, ymaps: g.layout.ymaps,
          scale: g.layout.scale, tile_width: g.layout.tileWidth, tile_height: g.layout.tileHeight,
          width: g.layout.width, height: g.layout.height, offset_y: g.offsetY,
        },
        stats: g.stats.map((s) => ({ channel: s.channel, min: finite(s.min), max: finite(s.max), mean: finite(s.mean), std: finite(s.std), zeros: finite(s.zeros) })),
      })),
    });
  });

  router.post('/histograms', async (req: Request, res: Response) => {
    const { pool, gone, signal, reservation, p, info, layers, input } = await imageRequest(req, res, '/histograms', HISTOGRAM_PARAMETERS);
    const output = oneOf(p, 'output', ['json', 'png'] as const, req.accepts(['application/json', 'image/png']) === 'image/png' ? 'png' : 'json');
    const hp = parseHistogramParams(p);
    const targets = hp.target ? resolveTargets(hp.target, info) : undefined;
    const x = await input();
    if (gone.aborted) return;
    const job: TensorsRequest = !hp.gradients ? { input: x, layers } : targets ? { input: x, layers, targets } : { input: x, layers, topk: 1 };
    const t = await pool.tensors(info.id, job, { signal, reservation, version: info.version });
    if (gone.aborted) return;
    const layerHists = t.layers.map((l) => {
      const per = l.activations.length;
      return {
        layer: l.layer,
        dims: l.dims,
        activations: histogram(l.activations, { bins: hp.bins, range: hp.range }),
        gradients: t.targets.map((target, k) => ({ target, hist: histogram(l.gradients!.subarray(k * per, (k + 1) * per), { bins: hp.bins, range: hp.gradRange }) })),
      };
    });
    if (output === 'png') {
      const panels: HistogramPanel[] = [];
      for (const l of layerHists) {
        panels.push({ title: 'activations', subtitle: l.layer, hist: l.activations });
        for (const g of l.gradients) panels.push(gradientPanel(g.target, info.manifest.labels?.[g.target], l.layer, g.hist));
      }
      res.setHeader('X-Camserve-Model', info.id);
      res.type('image/png').send(await histogramPng(panels, 1 + t.targets.length));
      return;
    }
    const { pred, top } = topPrediction(t.logits, info);
    res.json({
      model: info.id,
      score_function: scoreFunction(info),
      prediction: top,
      targets: t.targets.map(pred.of),
      layers: layerHists.map((l) => ({
        layer: l.layer,
        dims: l.dims,
        activations: histogramJson(l.activations),
        gradients: l.gradients.map((g) => ({ target: g.target, histogram: histogramJson(g.hist) })),
      })),
    });
  });

  router.get('/models/:id/summary', async (req: Request, res: Response) => {
    routeLabel(res, '/models/{id}/summary');
    const pool = requirePool(ctx);
    collectParameters('GET /models/{id}/summary', [], req.query as Record<string, unknown>);
    const info = findModel(pool.models(), String(req.params.id), 'id');
    res.locals.model = info.id;
    const summary = summarize(await factsOf(pool, info));
    if (req.accepts(['application/json', 'text/plain']) === 'text/plain') {
      res.type('text/plain; charset=utf-8').send(formatSummary(summary));
      return;
    }
    res.json(summaryJson(summary));
  });

  router.get('/models/:id/graph', async (req: Request, res: Response) => {
    routeLabel(res, '/models/{id}/graph');
    const pool = requirePool(ctx);
    const p: Params = collectParameters('GET /models/{id}/graph', GRAPH_PARAMETERS, req.query as Record<string, unknown>);
    const accepted = req.accepts(['image/svg+xml', 'text/vnd.graphviz']);
    const format = oneOf(p, 'format', ['svg', 'dot'] as const, accepted === 'text/vnd.graphviz' ? 'dot' : 'svg');
    const opts = parseGraphOptions(p);
    const info = findModel(pool.models(), String(req.params.id), 'id');
    res.locals.model = info.id;
    const facts = await factsOf(pool, info);
    if (format === 'dot') {
      res.type('text/vnd.graphviz; charset=utf-8').send(graphDot(facts, opts));
      return;
    }
    const key = JSON.stringify([info.id, info.version ?? null, opts.collapse, opts.depth ?? null, opts.rankdir]);
    let svg = graphCache.get(key);
    if (!svg) {
      svg = renderDot(graphDot(facts, opts));
      graphCache.set(key, svg);
      svg.catch(() => graphCache.delete(key));
      while (graphCache.size > GRAPH_CACHE_SIZE) graphCache.delete(graphCache.keys().next().value as string);
    }
    res.type('image/svg+xml').send(await svg);
  });
}

