// Makes the example pictures of docs/inspect.md: a feature-map grid, the graph (SVG and PNG), the
// histograms and the summary table, for one model and one image.
//
//   node --import tsx tools/docs/make-inspect-figures.ts [--model DIR] [--image FILE] [--out DIR]
//
// Defaults: the model models/shapes/ (else the ResNet test fixture when that folder has no model.onnx),
// the image examples/star-ring.png, the folder docs/. The image is prepared as the service does
// (engine/input.ts: resized to model.json's input size, (pixel/255 − mean)/std, NCHW).
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { modelFacts } from '../../src/inspect/facts.js';
import { featureGrid } from '../../src/inspect/grid.js';
import { graphDot, renderDot } from '../../src/inspect/graph.js';
import { histogram, histogramPng } from '../../src/inspect/histogram.js';
import { formatSummary, summarize } from '../../src/inspect/summary.js';
import { decodeImage, toModelInput } from '../../src/engine/input.js';
import { ModelRuntime } from '../../src/engine/runtime.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values } = parseArgs({ options: { model: { type: 'string' }, image: { type: 'string' }, out: { type: 'string' } } });
const shapes = path.join(ROOT, 'models/shapes');
const modelDir = values.model ?? (existsSync(path.join(shapes, 'model.onnx')) ? shapes : path.join(ROOT, 'test/fixtures/models/resnet'));
const imageFile = values.image ?? path.join(ROOT, 'examples/star-ring.png');
const out = values.out ?? path.join(ROOT, 'docs');
await mkdir(out, { recursive: true });

const rt = await ModelRuntime.load(modelDir, { intraOpThreads: 1 });
try {
  const decoded = await decodeImage(await readFile(imageFile), { maxPixels: 40e6, maxSide: 2048 });
  const input = await toModelInput(decoded.rgb, rt.info);
  const labels = rt.info.manifest.labels;
  const written: string[] = [];
  const save = async (name: string, data: string | Buffer) => {
    await writeFile(path.join(out, name), data);
    written.push(name);
  };

  // Feature maps: the first candidate layer with at least 16×16 positions, and the default layer, stacked;
  // the 16 channels of largest mean, each normalised alone, viridis.
  const early = rt.info.candidateLayers.find((c) => c.dims[2] * c.dims[3] >= 256 && c.name !== rt.info.defaultLayer);
  const layers = [...(early ? [early.name] : []), rt.info.defaultLayer];
  const t = await rt.tensors({ input, layers });
  const grid = await featureGrid(
    t.layers.map((l) => ({ layer: l.layer, maps: { C: l.dims[1], h: l.dims[2], w: l.dims[3], data: l.activations } })),
    { channels: { top: 16 }, normalize: true, scaleEach: true, colormap: 'viridis', padValue: 1 },
  );
  await save('inspect-features.png', grid.png);

  // Histograms at the default layer for the top class.
  const g = await rt.tensors({ input, layers: [rt.info.defaultLayer], topk: 1 });
  const l = g.layers[0];
  const target = g.targets[0];
  await save('inspect-histograms.png', await histogramPng([
    { title: 'activations', subtitle: l.layer, hist: histogram(l.activations) },
    { title: `∂ logit[${target}${labels?.[target] ? ` ${labels[target]}` : ''}] / ∂ activations`, subtitle: l.layer, hist: histogram(l.gradients!), color: '#e8590c' },
  ], 2));

  // Graph: every node, and collapsed to the top-level scopes; PNGs rasterised from the SVGs by sharp.
  const facts = modelFacts(rt);
  for (const [name, opts] of [['inspect-graph', {}], ['inspect-graph-scope', { collapse: 'scope' as const, depth: 1 }]] as const) {
    const svg = await renderDot(graphDot(facts, opts));
    await save(`${name}.svg`, svg);
    await save(`${name}.png`, await sharp(Buffer.from(svg), { density: 96 }).flatten({ background: '#ffffff' }).png().toBuffer());
  }
  await save('inspect-summary.txt', formatSummary(summarize(facts)));

  const caption = {
    model: path.relative(ROOT, modelDir), image: path.relative(ROOT, imageFile), layers,
    prediction: Array.from(g.logits.keys()).sort((a, b) => g.logits[b] - g.logits[a]).slice(0, 3).map((i) => labels?.[i] ?? i),
  };
  console.log(JSON.stringify(caption));
  console.log(`wrote ${written.map((w) => path.join(path.relative(ROOT, out), w)).join(', ')}`);
} finally {
  await rt.release();
}
