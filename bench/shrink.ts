// Shrink-on-load check: how much the model input changes when a JPEG is decoded at the reduced size that
// decodeSide (src/api/decode.ts) picks for an answer without a picture (or with max_side below the model's need), against the full decode; whether
// the top-1 / top-5 classes stay the same; and what each decode costs. `npm run bench:shrink`.
import os from 'node:os';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { decodeSide } from '../src/api/index.js';
import { decodeImage, readManifest, toModelInput } from '../src/engine/index.js';
import { benchJpeg } from './http.js';
import { median } from './engine.js';

const CAP = 2048;

interface Case { name: string; bytes: Buffer }

async function cases(): Promise<Case[]> {
  const out: Case[] = [];
  for (const f of ['scene-512.jpg', 'heart-star.jpg']) out.push({ name: `examples/${f}`, bytes: await readFile(path.join('examples', f)) });
  for (const [w, h] of [[640, 480], [1280, 960], [2048, 1536], [3000, 2000]]) out.push({ name: `bench JPEG ${w}×${h}`, bytes: await benchJpeg(w, h) });
  // A photograph-like scene at 2048 from examples: scene-512 upscaled 4× (a smooth image, as photographs are at full size)
  out.push({ name: 'examples/scene-512.jpg ×4 (2048²)', bytes: await sharp(await readFile('examples/scene-512.jpg')).resize(2048, 2048, { kernel: 'lanczos3' }).jpeg({ quality: 90 }).toBuffer() });
  return out;
}

function top5(logits: Float32Array): number[] {
  return [...logits.keys()].sort((a, b) => logits[b] - logits[a]).slice(0, 5);
}

async function main(): Promise<void> {
  const models = [
    { name: 'shapes', dir: 'models/shapes' },
    { name: 'resnet50 (bench, random weights)', dir: 'bench/models/resnet50' },
  ];
  const rows: string[] = [];
  for (const m of models) {
    const manifest = await readManifest(m.dir);
    const [H, W] = manifest.input.size ?? [224, 224];
    const C = manifest.input.channels === 'gray' ? 1 : 3;
    const spec = { inputDims: [1, C, H, W], inputSize: { height: H, width: W, channels: C }, manifest };
    const session = await ort.InferenceSession.create(path.join(m.dir, 'model.onnx'), { intraOpNumThreads: 2 });
    const run = async (x: Float32Array) => (await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [1, C, H, W]) }))[session.outputNames[0]].data as Float32Array;
    for (const c of await cases()) {
      const meta = await sharp(c.bytes).metadata();
      const header = { format: meta.format!, width: meta.width!, height: meta.height! };
      const full = await decodeImage(c.bytes, { maxPixels: 1e8, maxSide: CAP });
      const x0 = await toModelInput(full.rgb, spec);
      const l0 = await run(x0);
      for (const headroom of [1, 2]) {
        const side = decodeSide(header, { picture: false, maxSide: 16 }, spec, CAP, headroom);
        if (side >= Math.min(CAP, Math.max(header.width, header.height))) {
          rows.push(`| ${m.name} | ${c.name} | ${headroom} | full (no shrink) | – | – | – | – | – |`);
          continue;
        }
        const small = await decodeImage(c.bytes, { maxPixels: 1e8, maxSide: side });
        const x1 = await toModelInput(small.rgb, spec);
        let maxAbs = 0;
        let sumAbs = 0;
        for (let i = 0; i < x0.length; i++) { const d = Math.abs(x0[i] - x1[i]); sumAbs += d; if (d > maxAbs) maxAbs = d; }
        // the largest difference in pixel levels (0..255) after the model's resize
        const step = manifest.input.std[0] / manifest.input.scale;
        const l1 = await run(x1);
        const t0 = top5(l0);
        const t1 = top5(l1);
        let dLogit = 0;
        for (let i = 0; i < l0.length; i++) dLogit = Math.max(dLogit, Math.abs(l0[i] - l1[i]));
        const margin = l0[t0[0]] - l0[t0[1]];
        const time = async (maxSide: number) => {
          const ts: number[] = [];
          for (let r = 0; r < 15; r++) { const t = performance.now(); await decodeImage(c.bytes, { maxPixels: 1e8, maxSide }); ts.push(performance.now() - t); }
          return median(ts);
        };
        const [tf, ts] = [await time(CAP), await time(side)];
        rows.push(`| ${m.name} | ${c.name} | ${headroom} | ${small.rgb.width}×${small.rgb.height} | ${maxAbs.toFixed(4)} (≈${(maxAbs * step).toFixed(1)} levels), mean ${(sumAbs / x0.length).toFixed(5)} | ${dLogit.toPrecision(2)} (top-1 margin ${margin.toPrecision(2)}) | ${t0[0] === t1[0] ? 'same' : `${t0[0]} → ${t1[0]}`} | ${t0.join(',') === t1.join(',') ? 'same' : `${t0.join(',')} → ${t1.join(',')}`} | ${tf.toFixed(2)} → ${ts.toFixed(2)} ms |`);
      }
    }
  }
  console.log(`date: ${new Date().toISOString()}; ${os.cpus()[0]?.model}, ${os.cpus().length} cores; Node ${process.version}; sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips})`);
  console.log('| model | image | headroom | decoded at | max abs difference of the model input | max abs logit difference | top-1 | top-5 | decode (median of 15): full → reduced |');
  console.log('|---|---|---:|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

await main();
