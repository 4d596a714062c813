#!/usr/bin/env node
// camserve's command line: explain an image offline (no server), list a model's layers.
// Usage: camserve explain <image> --model <dir|model.onnx> [options]   (see `camserve --help`)
import { realpathSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { METHOD_NAMES, isMethodName, type MethodName } from '../cam/types.js';
import { renderJob } from '../render/job.js';
import { decodeImage, toModelInput } from '../engine/input.js';
import { ModelRuntime } from '../engine/runtime.js';
import { classScores, topK } from '../engine/scores.js';
import { COLORMAP_NAMES, isColormapName, type ColormapName } from '../render/index.js';
import { featureGridPng, graphSvg, histogramsOf, summaryText } from './inspect.js';
import { parseChannels } from '../http/routes/inspect.js';

const HELP = `camserve — class activation maps for ONNX image models

Usage:
  camserve explain <image> --model <dir|model.onnx> [options]
  camserve layers --model <dir|model.onnx>
  camserve summary --model <dir|model.onnx>                 torchsummary-style table
  camserve graph --model <dir|model.onnx> [--collapse scope] [--depth N] [--dot] -o graph.svg
  camserve features <image> --model <dir|model.onnx> [--layer L] [--nrow N] [--normalize]
                   [--channels top:16|0,3,5] [--colormap NAME] -o grid.png
  camserve histograms <image> --model <dir|model.onnx> [--layer L] [--target 3,5] [--bins N] (-o hist.png | --json)

explain options:
  -m, --model <path>       model folder (model.onnx + optional model.json, labels.txt) or .onnx file
  --method <name>          ${METHOD_NAMES.join(' | ')} (default gradcam)
  -t, --target <list>      class indices or labels, comma-separated (default: the top class)
  -k, --topk <n>           explain the n best classes
  -l, --layer <list>       target tensor name(s), comma-separated (default: the model's default layer)
  -o, --out <file.png>     write the overlay (several classes: <file>-<index>.png)
  --heatmap                write the colour map alone instead of the overlay
  --alpha <0..1>           image weight in the overlay (default 0.5)
  --colormap <name>        ${COLORMAP_NAMES.join(' | ')} (default jet)
  --eigen-smooth           first principal component instead of the weighted sum
  --aug-smooth             mean over horizontal flip × brightness 0.9/1/1.1
  --json                   print the result (predictions, raw maps) as JSON
  -h, --help
`;

class UsageError extends Error {}

function list(v: string | undefined): string[] {
  return v ? v.split(',').map((s) => s.trim()).filter(Boolean) : [];
}

function parseTargets(values: string[], labels: string[] | undefined, numClasses: number): number[] {
  return values.map((v) => {
    if (/^\d+$/.test(v)) {
      const i = Number(v);
      if (i >= numClasses) throw new UsageError(`--target ${v}: the model has classes 0..${numClasses - 1}`);
      return i;
    }
    const i = labels?.indexOf(v) ?? -1;
    if (i < 0) throw new UsageError(`--target ${v}: not a class index or label${labels ? ` (labels: ${labels.join(', ')})` : ''}`);
    return i;
  });
}

async function explain(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: {
      model: { type: 'string', short: 'm' }, method: { type: 'string', default: 'gradcam' },
      target: { type: 'string', short: 't' }, topk: { type: 'string', short: 'k' }, layer: { type: 'string', short: 'l' },
      out: { type: 'string', short: 'o' }, heatmap: { type: 'boolean' }, alpha: { type: 'string', default: '0.5' },
      colormap: { type: 'string', default: 'jet' }, 'eigen-smooth': { type: 'boolean' }, 'aug-smooth': { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('explain takes one image file');
  if (!values.model) throw new UsageError('--model is required');
  if (!isMethodName(values.method!)) throw new UsageError(`--method ${values.method}: expected one of ${METHOD_NAMES.join(', ')}`);
  const method: MethodName = values.method;
  const alpha = Number(values.alpha);
  if (!(alpha >= 0 && alpha <= 1)) throw new UsageError(`--alpha ${values.alpha}: expected a number in [0, 1]`);
  if (!isColormapName(values.colormap!)) throw new UsageError(`--colormap ${values.colormap}: expected one of ${COLORMAP_NAMES.join(', ')}`);
  const colormap = values.colormap;
  const topk = values.topk === undefined ? undefined : Number(values.topk);
  if (topk !== undefined && !(Number.isInteger(topk) && topk >= 1)) throw new UsageError(`--topk ${values.topk}: expected a positive integer`);

  const image = await decodeImage(await readFile(positionals[0]), { maxPixels: 100_000_000, maxSide: 4096 });
  const rt = await ModelRuntime.load(values.model);
  try {
    const { info } = rt;
    const targets = parseTargets(list(values.target), info.manifest.labels, info.numClasses);
    const input = await toModelInput(image.rgb, info);
    const result = await rt.explain({
      input, method, targets: targets.length ? targets : undefined, topk, layers: list(values.layer),
      eigenSmooth: values['eigen-smooth'], augSmooth: values['aug-smooth'],
    });
    const scores = classScores(result.logits, info.manifest.multiLabel);
    const label = (i: number) => info.manifest.labels?.[i] ?? String(i);
    const layers = list(values.layer).length ? list(values.layer) : [info.defaultLayer];
    if (values.json) {
      process.stdout.write(`${JSON.stringify({
        model: info.id, method, layers,
        image: { width: image.width, height: image.height },
        predictions: topK(scores, 5).map((i) => ({ index: i, label: label(i), score: scores[i] })),
        explanations: result.explanations.map((e) => ({
          target: { index: e.target.index, label: label(e.target.index), score: scores[e.target.index] },
          cam: { width: e.map.width, height: e.map.height, data: Array.from(e.map.data) },
        })),
        timings_ms: result.timings,
      })}\n`);
    } else {
      process.stdout.write(`${info.id}: top predictions\n`);
      for (const i of topK(scores, 5)) process.stdout.write(`  ${String(i).padStart(4)}  ${scores[i].toFixed(4)}  ${label(i)}\n`);
      process.stdout.write(`${method} at ${layers.join(', ')}\n`);
    }
    if (values.out) {
      const pngs = await renderJob({
        kind: values.heatmap ? 'heatmap' : 'overlay', image: image.rgb, maps: result.explanations.map((e) => e.map),
        input: { width: info.inputSize.width, height: info.inputSize.height }, resize: info.manifest.input.resize, alpha, colormap,
      });
      for (const [i, e] of result.explanations.entries()) {
        const ext = path.extname(values.out);
        const file = result.explanations.length === 1 ? values.out : `${values.out.slice(0, values.out.length - ext.length)}-${e.target.index}${ext || '.png'}`;
        await writeFile(file, pngs[i]);
        if (!values.json) process.stdout.write(`  class ${e.target.index} (${label(e.target.index)}, score ${scores[e.target.index].toFixed(4)}) → ${file}\n`);
      }
    }
  } finally {
    await rt.release();
  }
}

async function layers(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { model: { type: 'string', short: 'm' } } });
  if (!values.model) throw new UsageError('--model is required');
  const rt = await ModelRuntime.load(values.model);
  const { info } = rt;
  process.stdout.write(`${info.id}: input ${info.inputName} [${info.inputDims.join(', ')}], logits ${info.logits} (${info.numClasses} classes), opset ${info.opset}\n`);
  for (const c of info.candidateLayers) {
    process.stdout.write(`${c.name === info.defaultLayer ? '*' : ' '} ${c.name}  [${c.dims.join(', ')}]  ${c.op}\n`);
  }
  await rt.release();
}

async function summary(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { model: { type: 'string', short: 'm' } } });
  if (!values.model) throw new UsageError('--model is required');
  process.stdout.write(`${await summaryText(values.model)}\n`);
}

async function graph(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { model: { type: 'string', short: 'm' }, collapse: { type: 'string', default: 'none' }, depth: { type: 'string' }, dot: { type: 'boolean' }, out: { type: 'string', short: 'o' } },
  });
  if (!values.model) throw new UsageError('--model is required');
  if (values.collapse !== 'none' && values.collapse !== 'scope') throw new UsageError(`--collapse ${values.collapse}: expected none or scope`);
  const depth = values.depth === undefined ? undefined : Number(values.depth);
  if (depth !== undefined && !(Number.isInteger(depth) && depth >= 1)) throw new UsageError(`--depth ${values.depth}: expected a positive integer`);
  const text = await graphSvg(values.model, { collapse: values.collapse, depth, format: values.dot ? 'dot' : 'svg' });
  if (values.out) await writeFile(values.out, text);
  else process.stdout.write(text);
}

async function features(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: {
      model: { type: 'string', short: 'm' }, layer: { type: 'string', short: 'l' }, nrow: { type: 'string' },
      normalize: { type: 'boolean' }, channels: { type: 'string' }, colormap: { type: 'string' }, out: { type: 'string', short: 'o' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('features takes one image file');
  if (!values.model) throw new UsageError('--model is required');
  if (!values.out) throw new UsageError('--out is required');
  if (values.colormap !== undefined && !isColormapName(values.colormap)) throw new UsageError(`--colormap ${values.colormap}: expected one of ${COLORMAP_NAMES.join(', ')}`);
  const nrow = values.nrow === undefined ? undefined : Number(values.nrow);
  if (nrow !== undefined && !(Number.isInteger(nrow) && nrow >= 1)) throw new UsageError(`--nrow ${values.nrow}: expected a positive integer`);
  const channels = parseChannels(values.channels);
  const layers = list(values.layer);
  const png = await withModelInput(values.model, positionals[0], (rt, input) => featureGridPng(rt, input, layers.length ? layers : undefined, {
    nrow, normalize: values.normalize, channels, colormap: values.colormap as ColormapName | undefined,
  }));
  await writeFile(values.out, png);
  process.stdout.write(`${values.out}\n`);
}

/** Loads the model once and runs `f` with it and the image file as the model's preprocessed input. */
async function withModelInput<T>(model: string, imageFile: string, f: (rt: ModelRuntime, input: Float32Array) => Promise<T>): Promise<T> {
  const rt = await ModelRuntime.load(model);
  try {
    const image = await decodeImage(await readFile(imageFile), { maxPixels: 100_000_000, maxSide: 4096 });
    return await f(rt, await toModelInput(image.rgb, rt.info));
  } finally {
    await rt.release();
  }
}

async function histograms(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: {
      model: { type: 'string', short: 'm' }, layer: { type: 'string', short: 'l' }, target: { type: 'string', short: 't' },
      bins: { type: 'string' }, out: { type: 'string', short: 'o' }, json: { type: 'boolean' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('histograms takes one image file');
  if (!values.model) throw new UsageError('--model is required');
  if (!values.out && !values.json) throw new UsageError('--out (PNG) or --json is required');
  const bins = values.bins === undefined ? undefined : Number(values.bins);
  if (bins !== undefined && !(Number.isInteger(bins) && bins >= 1 && bins <= 1000)) throw new UsageError(`--bins ${values.bins}: expected an integer in 1..1000`);
  const targets = list(values.target).map((t) => {
    if (!/^\d+$/.test(t)) throw new UsageError(`--target ${t}: expected class indices`);
    return Number(t);
  });
  const layers = list(values.layer);
  const r = await withModelInput(values.model, positionals[0], (rt, input) => histogramsOf(rt, input, layers.length ? layers : undefined, { targets, bins, png: !!values.out }));
  if (values.out) await writeFile(values.out, r.png!);
  if (values.json) process.stdout.write(`${JSON.stringify({ targets: r.targets, layers: r.layers })}\n`);
  else process.stdout.write(`${values.out}\n`);
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === '-h' || command === '--help' || rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(HELP);
      return command ? 0 : 2;
    }
    if (command === 'explain') await explain(rest);
    else if (command === 'layers') await layers(rest);
    else if (command === 'summary') await summary(rest);
    else if (command === 'graph') await graph(rest);
    else if (command === 'features') await features(rest);
    else if (command === 'histograms') await histograms(rest);
    else throw new UsageError(`unknown command ${command}`);
    return 0;
  } catch (e) {
    const err = e as Error;
    process.stderr.write(`camserve: ${err.message}\n`);
    const usage = err instanceof UsageError || err.constructor.name === 'HttpProblem' || (err.name === 'TypeError' && /parseArgs|option/i.test(err.message));
    return usage ? 2 : 1;
  }
}

// Run when executed directly (also through npm's bin symlink), not when imported.
const isEntry = !!process.argv[1] && realpathSync(path.resolve(process.argv[1])) === realpathSync(fileURLToPath(import.meta.url));
if (isEntry) {
  // `camserve layers … | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); else throw e; });
  void main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
