// Makes docs/gradcam-two-objects.png: Grad-CAM of the default shapes model on held-out scenes with two
// objects of different classes. One row per scene: the scene, the overlay for the first object's class,
// the overlay for the second's; the dashed box is the explained class's ground-truth box, the caption gives
// the class and the model's sigmoid probability for it.
//
//   node --import tsx tools/docs/make-localisation-figure.ts [--model DIR] [--start SEED] [--rows N] [--out FILE]
//
// Defaults: models/shapes/, the first 4 two-object scenes from held-out seed 1000000 (taken in seed order,
// not picked by result), docs/gradcam-two-objects.png. Maps go through the engine (ModelRuntime.explain)
// and the service's renderer (renderOverlay: min–max normalised, bilinear, jet, alpha 0.5).
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp, { type OverlayOptions } from 'sharp';
import { ModelRuntime } from '../../src/engine/runtime.js';
import { renderOverlay, type RgbImage } from '../../src/render/index.js';
import { explainScene, peak, sceneCases } from '../shapes/localisation.js';
import { CLASS_NAMES, generateScene, SEEDS, type Box, type Scene } from '../shapes/scenes.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values } = parseArgs({
  options: { model: { type: 'string' }, start: { type: 'string' }, rows: { type: 'string' }, out: { type: 'string' } },
});
const modelDir = path.resolve(values.model ?? path.join(ROOT, 'models/shapes'));
const start = Number(values.start ?? SEEDS.heldOut[0]);
const rows = Number(values.rows ?? 4);
const outFile = path.resolve(values.out ?? path.join(ROOT, 'docs/gradcam-two-objects.png'));
if (!(start >= SEEDS.heldOut[0])) throw new Error(`--start must be a held-out seed (≥ ${SEEDS.heldOut[0]})`);

const TILE = 256; // scenes are drawn 2× (128 → 256)
const SCALE = TILE / 128;
const PAD = 10;
const CAPTION = 26;
const TITLE = 52;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The first `n` held-out scenes with exactly two objects of different classes, in seed order. */
async function twoObjectScenes(n: number): Promise<{ seed: number; scene: Scene }[]> {
  const found: { seed: number; scene: Scene }[] = [];
  for (let seed = start; found.length < n; seed++) {
    const scene = await generateScene(seed);
    if (scene.objects.length === 2 && sceneCases(scene).length === 2) found.push({ seed, scene });
  }
  return found;
}

async function upscaled(scene: Scene): Promise<RgbImage> {
  const data = await sharp(scene.rgb, { raw: { width: scene.width, height: scene.height, channels: 3 } })
    .resize(TILE, TILE, { kernel: 'lanczos3' }).raw().toBuffer();
  return { data, width: TILE, height: TILE, channels: 3 };
}

const rt = await ModelRuntime.load(modelDir, { intraOpThreads: 1 });
try {
  const picked = await twoObjectScenes(rows);
  const W = 3 * TILE + 4 * PAD;
  const rowH = CAPTION + TILE + PAD;
  const H = TITLE + rows * rowH + PAD;
  const composites: OverlayOptions[] = [];
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">` +
    `<style>text { font-family: 'DejaVu Sans', sans-serif; fill: #222; } .t { font-size: 17px; font-weight: bold; } .c { font-size: 14px; }</style>` +
    `<text class="t" x="${PAD}" y="22">Grad-CAM of the ${esc(path.basename(modelDir))} model on held-out two-object scenes</text>` +
    `<text class="c" x="${PAD}" y="${TITLE - 10}">dashed: box of the explained class · ○: the map's maximum · p: the model's sigmoid probability</text>`;
  const summary: string[] = [];
  for (const [r, { seed, scene }] of picked.entries()) {
    const y = TITLE + r * rowH;
    const image = await upscaled(scene);
    const ex = await explainScene(rt, scene, 'gradcam');
    const x0 = PAD;
    composites.push({ input: await sharp(image.data, { raw: { width: TILE, height: TILE, channels: 3 } }).png().toBuffer(), left: x0, top: y + CAPTION });
    svg += `<text class="c" x="${x0}" y="${y + CAPTION - 8}">seed ${seed}: ${esc(scene.objects.map((o) => o.label).join(' + '))}</text>`;
    for (const [k, { case: c, map, raw }] of ex.maps.entries()) {
      const x = PAD + (k + 1) * (TILE + PAD);
      const idx = c.cls;
      const prob = 1 / (1 + Math.exp(-ex.logits[idx]!));
      // The raw layer map, rendered as the service renders an overlay for a 256×256 image.
      const png = await renderOverlay({ image, map: raw, alpha: 0.5 });
      composites.push({ input: png, left: x, top: y + CAPTION });
      const p = peak(map);
      const box = (b: Box) => `<rect x="${x + b[0] * SCALE}" y="${y + CAPTION + b[1] * SCALE}" width="${(b[2] - b[0]) * SCALE}" height="${(b[3] - b[1]) * SCALE}" ` +
        'fill="none" stroke="#fff" stroke-width="2" stroke-dasharray="6 4"/>';
      svg += c.boxes.map(box).join('');
      if (p) {
        svg += `<circle cx="${x + (p.x + 0.5) * SCALE}" cy="${y + CAPTION + (p.y + 0.5) * SCALE}" r="5" fill="none" stroke="#fff" stroke-width="2"/>`;
      }
      svg += `<text class="c" x="${x}" y="${y + CAPTION - 8}">Grad-CAM for “${esc(CLASS_NAMES[idx]!)}” (p = ${prob.toFixed(2)})</text>`;
      const hit = p !== undefined && c.boxes.some((b) => p.x >= b[0] && p.x < b[2] && p.y >= b[1] && p.y < b[3]);
      summary.push(`seed ${seed} ${CLASS_NAMES[idx]}: p=${prob.toFixed(3)} peak ${p ? `${p.x},${p.y}` : 'none'} ${hit ? 'in' : 'NOT in'} its box ${c.boxes.map((b) => `[${b.join(',')}]`).join(' ')}`);
    }
  }
  svg += '</svg>';
  await mkdir(path.dirname(outFile), { recursive: true });
  await sharp({ create: { width: W, height: H, channels: 3, background: '#ffffff' } })
    .composite([...composites, { input: Buffer.from(svg), left: 0, top: 0 }])
    .png({ compressionLevel: 9, palette: true, quality: 95, effort: 10 })
    .toFile(outFile);
  console.log(summary.join('\n'));
  console.log(`wrote ${path.relative(ROOT, outFile)}`);
} finally {
  await rt.release();
}
