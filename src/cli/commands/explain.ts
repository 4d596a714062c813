// camserve explain: one image, offline (no server): the predictions, and the overlay (or heat map, or the
// raw maps as JSON) of the classes asked for, with the parameters of POST /cam.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CAM_PARAMETERS, camJson, collectParameters, parseCamParams, predictions, resolveLayers, resolveTargets, scoreFunction } from '../../api/index.js';
import { fitOf, topK } from '../../engine/index.js';
import { renderJob } from '../../render/index.js';
import { UsageError, asParameters, imageInput, requireModel, withModel } from '../common.js';

export async function explainCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: {
      model: { type: 'string', short: 'm' }, method: { type: 'string' },
      target: { type: 'string', short: 't' }, topk: { type: 'string', short: 'k' }, layer: { type: 'string', short: 'l' },
      out: { type: 'string', short: 'o' }, heatmap: { type: 'boolean' }, alpha: { type: 'string' },
      colormap: { type: 'string' }, 'eigen-smooth': { type: 'boolean' }, 'aug-smooth': { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('explain takes one image file');
  const model = requireModel(values.model);
  const { out, json, heatmap } = values;
  const params = parseCamParams(collectParameters('camserve explain', CAM_PARAMETERS, asParameters(
    { method: values.method, target: values.target, topk: values.topk, layer: values.layer, alpha: values.alpha, colormap: values.colormap,
      eigen_smooth: values['eigen-smooth'], aug_smooth: values['aug-smooth'], output: heatmap ? 'heatmap' : undefined },
  )));

  await withModel(model, async (rt) => {
    const { info } = rt;
    const targets = params.target ? resolveTargets(params.target, info) : undefined;
    const layers = resolveLayers(params.layer, info);
    const { image, input } = await imageInput(rt, positionals[0]);
    const result = await rt.explain({
      input, method: params.method, targets, topk: params.topk, layers, eigenSmooth: params.eigenSmooth, augSmooth: params.augSmooth,
    });
    const pred = predictions(result.logits, info);
    const top = topK(pred.scores, 5).map(pred.of);
    const name = (i: number) => info.manifest.labels?.[i] ?? String(i);
    if (json) {
      process.stdout.write(`${JSON.stringify({
        model: info.id, method: params.method, layers,
        image: { width: image.width, height: image.height },
        score_function: scoreFunction(info),
        predictions_from: info.runs.predictions,
        gradients: info.runs.gradients,
        predictions: top,
        explanations: result.explanations.map((e) => ({ target: pred.of(e.target.index), cam: camJson(e.map) })),
        timings_ms: result.timings,
      })}\n`);
    } else {
      process.stdout.write(`${info.id}: top predictions\n`);
      for (const p of top) process.stdout.write(`  ${String(p.index).padStart(4)}  ${(p.score ?? NaN).toFixed(4)}  ${name(p.index)}\n`);
      process.stdout.write(`${params.method} at ${layers.join(', ')}${info.runs.gradients !== 'model' ? ` (activations and gradients of the ${info.runs.gradients})` : ''}\n`);
    }
    if (!out) return;
    const pngs = await renderJob({
      kind: params.output === 'heatmap' ? 'heatmap' : 'overlay', image: image.rgb, maps: result.explanations.map((e) => e.map),
      input: { width: info.inputSize.width, height: info.inputSize.height }, resize: info.manifest.input.resize, fit: fitOf(info.manifest.input), alpha: params.alpha, colormap: params.colormap,
    });
    for (const [i, e] of result.explanations.entries()) {
      const ext = path.extname(out);
      const file = result.explanations.length === 1 ? out : `${out.slice(0, out.length - ext.length)}-${e.target.index}${ext || '.png'}`;
      await writeFile(file, pngs[i]);
      const p = pred.of(e.target.index);
      if (!json) process.stdout.write(`  class ${p.index} (${name(p.index)}, score ${(p.score ?? NaN).toFixed(4)}) → ${file}\n`);
    }
  });
}
