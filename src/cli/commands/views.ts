// Commands that look inside a model for one image: the feature-map grid and the histograms of
// activations and class-score gradients, with the parameters of POST /features and POST /histograms.
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import {
  FEATURE_PARAMETERS, HISTOGRAM_PARAMETERS, MAX_LAYERS, collectParameters, histogramJson, list, parseGridOptions, parseHistogramParams, resolveLayers, resolveTargets,
} from '../../api/index.js';
import { UsageError, asParameters, imageInput, requireModel, withModel } from '../common.js';
import { featureGridPng, histogramsOf } from '../inspect.js';

export async function featuresCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: {
      model: { type: 'string', short: 'm' }, layer: { type: 'string', short: 'l' }, nrow: { type: 'string' }, padding: { type: 'string' },
      normalize: { type: 'boolean' }, range: { type: 'string' }, 'scale-each': { type: 'boolean' }, 'pad-value': { type: 'string' },
      channels: { type: 'string' }, colormap: { type: 'string' }, scale: { type: 'string' }, out: { type: 'string', short: 'o' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('features takes one image file');
  const model = requireModel(values.model);
  if (!values.out) throw new UsageError('--out is required');
  const { out, model: _m, ...options } = values;
  const p = collectParameters('camserve features', FEATURE_PARAMETERS, asParameters(options, { 'scale-each': 'scale_each', 'pad-value': 'pad_value' }));
  const opts = parseGridOptions(p);
  const png = await withModel(model, async (rt) => {
    const layers = resolveLayers(list(p, 'layer', MAX_LAYERS), rt.info);
    return featureGridPng(rt, (await imageInput(rt, positionals[0])).input, layers, opts);
  });
  await writeFile(out, png);
  process.stdout.write(`${out}\n`);
}

export async function histogramsCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: {
      model: { type: 'string', short: 'm' }, layer: { type: 'string', short: 'l' }, target: { type: 'string', short: 't' },
      bins: { type: 'string' }, range: { type: 'string' }, 'grad-range': { type: 'string' }, out: { type: 'string', short: 'o' }, json: { type: 'boolean' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('histograms takes one image file');
  const model = requireModel(values.model);
  if (!values.out && !values.json) throw new UsageError('--out (PNG) or --json is required');
  const p = collectParameters('camserve histograms', HISTOGRAM_PARAMETERS, asParameters(
    { layer: values.layer, target: values.target, bins: values.bins, range: values.range, grad_range: values['grad-range'] },
  ));
  const hp = parseHistogramParams(p);
  const r = await withModel(model, async (rt) => {
    const layers = resolveLayers(list(p, 'layer', MAX_LAYERS), rt.info);
    const targets = hp.target ? resolveTargets(hp.target, rt.info) : undefined;
    const { input } = await imageInput(rt, positionals[0]);
    return histogramsOf(rt, input, layers, { targets, bins: hp.bins, range: hp.range, gradRange: hp.gradRange, png: !!values.out });
  });
  if (values.out) await writeFile(values.out, r.png!);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({
      targets: r.targets,
      layers: r.layers.map((l) => ({ layer: l.layer, dims: l.dims, activations: histogramJson(l.activations), gradients: l.gradients.map((g) => ({ target: g.target, histogram: histogramJson(g.histogram) })) })),
    })}\n`);
  } else process.stdout.write(`${values.out}\n`);
}
