// camserve explain: one image, offline (no server): the predictions, and the overlay (or heat map, or the
// raw maps as JSON) of the classes asked for, with the parameters of POST /cam (target kinds, metrics,
// DFF's concepts included).
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  CAM_PARAMETERS, collectParameters, conceptsJson, explainedClasses, explainRequest, explanationJson, parseCamParams, pictureJob, predictions, resolveLayers,
  resultHead, resultPicture,
} from '../../api/index.js';
import { topK } from '../../engine/index.js';
import { evaluateMetrics, isMetricName, type MetricName } from '../../metrics/index.js';
import { renderJob } from '../../render/index.js';
import { PICTURE_OPTIONS, UsageError, asParameters, imageInput, pictureExtension, pictureParameters, requireModel, withModel } from '../common.js';

/** The CLI's MAX_TARGETS: offline, as many classes as the model has. */
const CLI_MAX_TARGETS = Number.MAX_SAFE_INTEGER;

export async function explainCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: {
      model: { type: 'string', short: 'm' }, method: { type: 'string' },
      target: { type: 'string', short: 't' }, topk: { type: 'string', short: 'k' }, layer: { type: 'string', short: 'l' },
      out: { type: 'string', short: 'o' }, heatmap: { type: 'boolean' }, alpha: { type: 'string' },
      colormap: { type: 'string' }, 'eigen-smooth': { type: 'boolean' }, 'aug-smooth': { type: 'boolean' },
      json: { type: 'boolean' },
      'target-kind': { type: 'string' }, 'finer-comparison': { type: 'string' }, 'finer-alpha': { type: 'string' },
      seed: { type: 'string' }, concepts: { type: 'string' }, metrics: { type: 'string' },
      'road-percentiles': { type: 'string' }, 'metric-score': { type: 'string' }, ...PICTURE_OPTIONS,
    },
  });
  if (positionals.length !== 1) throw new UsageError('explain takes one image file');
  const model = requireModel(values.model);
  const { out, json, heatmap } = values;
  if (!out && Object.values(pictureParameters(values)).some((v) => v !== undefined)) throw new UsageError('--format, --max-side, --png-compression and --quality set the picture: give --out');
  const params = parseCamParams(collectParameters('camserve explain', CAM_PARAMETERS, asParameters(
    { method: values.method, target: values.target, topk: values.topk, layer: values.layer, alpha: values.alpha, colormap: values.colormap,
      eigen_smooth: values['eigen-smooth'], aug_smooth: values['aug-smooth'], output: heatmap ? 'heatmap' : undefined,
      target_kind: values['target-kind'], finer_comparison: values['finer-comparison'], finer_alpha: values['finer-alpha'],
      seed: values.seed, concepts: values.concepts, metrics: values.metrics,
      road_percentiles: values['road-percentiles'], metric_score: values['metric-score'], ...pictureParameters(values, out) },
  )));

  await withModel(model, async (rt) => {
    const { info } = rt;
    // Offline every class may be explained at once, and files take any number of PNGs.
    const targets = explainedClasses({ ...params, output: 'json' }, info, CLI_MAX_TARGETS);
    const layers = resolveLayers(params.layer, info);
    const { image, input } = await imageInput(rt, positionals[0]);
    const result = await rt.explain(explainRequest(params, input, targets, layers, info), {
      evaluateMetrics: (spec, subject) => evaluateMetrics({ ...spec, names: spec.names.filter(isMetricName) as MetricName[] }, subject),
    });
    const pred = predictions(result.logits, info);
    const top = topK(pred.scores, 5).map(pred.of);
    const name = (i: number) => info.manifest.labels?.[i] ?? String(i);
    const f = result.factorization;
    if (json) {
      const common = resultHead(info, params.method, result, image);
      process.stdout.write(`${JSON.stringify(f
        ? { ...common, concepts: conceptsJson(f, info), nmf_iterations: f.iterations, timings_ms: result.timings }
        : {
          ...common,
          target_kind: result.targetKind,
          explanations: result.explanations.map((e) => explanationJson(e, pred)),
          timings_ms: result.timings,
        })}\n`);
    } else {
      process.stdout.write(`${info.id}: top predictions\n`);
      for (const p of top) process.stdout.write(`  ${String(p.index).padStart(4)}  ${(p.score ?? NaN).toFixed(4)}  ${name(p.index)}\n`);
      process.stdout.write(`${params.method} at ${result.layers.join(', ')}${result.targetKind !== 'class' && !f ? ` (target_kind=${result.targetKind})` : ''}${info.runs.gradients !== 'model' ? ` (activations and gradients of the ${info.runs.gradients})` : ''}\n`);
      for (const [i, c] of (f?.concepts ?? []).entries()) {
        process.stdout.write(`  concept ${i}: ${c.classes.map((k) => `${name(k.index)} ${k.probability.toFixed(3)}`).join(', ')}\n`);
      }
      for (const e of result.explanations) {
        if (!e.metrics) continue;
        process.stdout.write(`  class ${e.target.index} metrics: ${Object.entries(e.metrics).map(([k, v]) => `${k} ${v.toPrecision(4)}`).join(', ')}\n`);
      }
    }
    if (!out) return;
    if (f) {
      const [picture] = await renderJob(resultPicture(params.output === 'heatmap' ? 'heatmap' : 'overlay', image, info, result, params));
      await writeFile(out, picture);
      if (!json) process.stdout.write(`  ${f.concepts.length} concepts → ${out}\n`);
      return;
    }
    const pictures = await renderJob(pictureJob(params.output === 'heatmap' ? 'heatmap' : 'overlay', image, info, result.explanations.map((e) => e.map), params));
    for (const [i, e] of result.explanations.entries()) {
      const ext = path.extname(out);
      const file = result.explanations.length === 1 ? out : `${out.slice(0, out.length - ext.length)}-${e.category ?? e.target.index}${ext || pictureExtension(params.format)}`;
      await writeFile(file, pictures[i]);
      const p = pred.of(e.target.index);
      if (!json) process.stdout.write(`  class ${p.index} (${name(p.index)}, score ${(p.score ?? NaN).toFixed(4)}) → ${file}\n`);
    }
  });
}
