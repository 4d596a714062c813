// Checks the exported model end to end in Node:
//   1. regenerates the held-out scenes listed in <data>/onnx_check.json from their seeds with the TS generator,
//      preprocesses them as model.json says, runs models/shapes/model.onnx with onnxruntime-node and compares
//      the logits with the PyTorch logits written by train_shapes.py (max |Δ| ≤ 1e-4);
//   2. scores exact-match and per-class accuracy on --n held-out scenes (seeds 1000000…) generated here.
//
//   node --import tsx tools/train/check_onnx.ts [--model models/shapes] [--data tmp/shapes] [--n 500]
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { generateScene, SEEDS, type Scene } from '../shapes/scenes.js';

interface ModelJson {
  input: { size: [number, number]; layout: 'NCHW'; channels: 'RGB'; scale: number; mean: number[]; std: number[]; resize: 'stretch' };
  labels: string;
  multiLabel: boolean;
}

const arg = (name: string, def: string): string => {
  const k = process.argv.indexOf(`--${name}`);
  return k >= 0 && process.argv[k + 1] !== undefined ? process.argv[k + 1]! : def;
};

/** The service's preprocessing: stretch to the input size, then (pixel·scale − mean)/std per channel, NCHW. */
async function preprocess(scene: Scene, cfg: ModelJson['input']): Promise<Float32Array> {
  const [w, h] = cfg.size;
  let rgb: Buffer = scene.rgb;
  if (scene.width !== w || scene.height !== h) {
    rgb = await sharp(scene.rgb, { raw: { width: scene.width, height: scene.height, channels: 3 } })
      .resize(w, h, { fit: 'fill' }).raw().toBuffer();
  }
  const out = new Float32Array(3 * w * h);
  const scale = Math.fround(cfg.scale);
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(cfg.mean[c]!), s = Math.fround(cfg.std[c]!);
    for (let i = 0; i < w * h; i++) {
      // float32 steps like PyTorch's (x/255 − mean)/std; ·scale instead of /255 differs by at most an ulp.
      const v = Math.fround(rgb[i * 3 + c]! * scale);
      out[c * w * h + i] = Math.fround(Math.fround(v - m) / s);
    }
  }
  return out;
}

async function main(): Promise<void> {
  const modelDir = arg('model', 'models/shapes');
  const dataDir = arg('data', 'tmp/shapes');
  const n = Number(arg('n', '500'));
  const cfg = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8')) as ModelJson;
  const labels = readFileSync(path.join(modelDir, cfg.labels), 'utf8').trim().split('\n');
  const session = await ort.InferenceSession.create(path.join(modelDir, 'model.onnx'), { intraOpNumThreads: 1 });
  const [h, w] = [cfg.input.size[1], cfg.input.size[0]];
  const run = async (scene: Scene): Promise<Float32Array> => {
    const x = new ort.Tensor('float32', await preprocess(scene, cfg.input), [1, 3, h, w]);
    const out = await session.run({ [session.inputNames[0]!]: x });
    return out[session.outputNames[0]!]!.data as Float32Array;
  };
  console.log(`model inputs ${session.inputNames} outputs ${session.outputNames}, ${labels.length} labels`);

  // 1. logits parity with PyTorch
  const ref = JSON.parse(readFileSync(path.join(dataDir, 'onnx_check.json'), 'utf8')) as { seeds: number[]; logits: number[][] };
  let worst = 0;
  for (let i = 0; i < ref.seeds.length; i++) {
    const got = await run(await generateScene(ref.seeds[i]!));
    const want = ref.logits[i]!;
    if (got.length !== want.length) throw new Error(`seed ${ref.seeds[i]}: ${got.length} logits, expected ${want.length}`);
    const d = Math.max(...want.map((v, k) => Math.abs(v - got[k]!)));
    worst = Math.max(worst, d);
  }
  const ok = worst <= 1e-4;
  console.log(`logits vs PyTorch on ${ref.seeds.length} held-out scenes: max |diff| = ${worst.toExponential(2)} (${ok ? 'OK' : 'FAIL'}, tolerance 1e-4)`);

  // 2. held-out accuracy through onnxruntime
  const start = SEEDS.heldOut[0];
  let exact = 0;
  const correct = new Array<number>(labels.length).fill(0);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const scene = await generateScene(start + i);
    const logits = await run(scene);
    let all = true;
    for (let k = 0; k < labels.length; k++) {
      const hit = (logits[k]! > 0 ? 1 : 0) === scene.labels[k];
      if (hit) correct[k]!++; else all = false;
    }
    if (all) exact++;
  }
  const ms = (performance.now() - t0) / n;
  console.log(`held-out seeds ${start}..${start + n - 1} via onnxruntime: exact-match ${(exact / n).toFixed(4)} (${exact}/${n}), ` +
    `${ms.toFixed(1)} ms/scene incl. generation`);
  console.log('per-class accuracy: ' + labels.map((l, k) => `${l} ${(correct[k]! / n).toFixed(3)}`).join(', '));
  if (!ok) process.exit(1);
}

main().catch((e: unknown) => { console.error(e); process.exit(1); });
