// Writes examples/: two-object scenes of different classes, as PNG (one as JPEG), one upscaled 512×512 JPEG
// for curl examples, and examples/README.md listing each file's classes and boxes.
//
//   node --import tsx tools/shapes/make-examples.ts [--out examples]
//
// The scenes come from held-out seeds (1000000+ range, here 2000000+), so they were never trained on.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { CLASS_NAMES, generateScene, type Scene } from './scenes.js';

const k = process.argv.indexOf('--out');
const OUT = k >= 0 && process.argv[k + 1] ? process.argv[k + 1]! : 'examples';

const cls = (name: (typeof CLASS_NAMES)[number]): number => CLASS_NAMES.indexOf(name);

interface Example { seed: number; classes: (typeof CLASS_NAMES)[number][]; format: 'png' | 'jpg'; size?: number; name?: string }

const EXAMPLES: Example[] = [
  { seed: 2_000_001, classes: ['star', 'ring'], format: 'png' },
  { seed: 2_000_002, classes: ['circle', 'triangle'], format: 'png' },
  { seed: 2_000_003, classes: ['square', 'heart'], format: 'png' },
  { seed: 2_000_004, classes: ['cross', 'crescent'], format: 'png' },
  { seed: 2_000_005, classes: ['diamond', 'arrow'], format: 'png' },
  { seed: 2_000_006, classes: ['heart', 'star'], format: 'jpg' },
  { seed: 2_000_008, classes: ['arrow', 'ring'], format: 'jpg', size: 512, name: 'scene-512' },
];

function encode(scene: Scene, format: 'png' | 'jpg', size: number): Promise<Buffer> {
  let img = sharp(scene.rgb, { raw: { width: scene.width, height: scene.height, channels: 3 } });
  if (size !== scene.width) img = img.resize(size, size, { kernel: 'lanczos3' });
  return format === 'png' ? img.png({ compressionLevel: 9 }).toBuffer() : img.jpeg({ quality: 92 }).toBuffer();
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const rows: string[] = [];
  for (const ex of EXAMPLES) {
    const scene = await generateScene(ex.seed, { classes: ex.classes.map(cls) });
    const placed = scene.objects.map((o) => o.label);
    if (placed.join() !== ex.classes.join()) throw new Error(`seed ${ex.seed}: placed ${placed.join()} not ${ex.classes.join()}`);
    const size = ex.size ?? scene.width;
    const file = `${ex.name ?? ex.classes.join('-')}.${ex.format}`;
    writeFileSync(path.join(OUT, file), await encode(scene, ex.format, size));
    const f = size / scene.width;
    const boxes = scene.objects
      .map((o) => `${o.label} [${o.box.map((v) => v * f).join(', ')}]`)
      .join('; ');
    rows.push(`| \`${file}\` | ${size}×${size} | ${ex.seed} | ${scene.objects.map((o) => o.label).join(', ')} | ${boxes} |`);
    console.log(`${file}: ${boxes}`);
  }
  const readme = `# Example scenes

Synthetic two-object scenes from the shapes generator (\`tools/shapes/scenes.ts\`), the data the default model
(\`models/shapes/\`) was trained on. Their seeds are outside the training and validation ranges, so the model has
never seen them. Boxes are \`[x0, y0, x1, y1]\` in pixels of the file, inclusive-exclusive (x0 ≤ x < x1), so an
explanation heatmap for a class should peak inside that class's box.

Regenerate with \`node --import tsx tools/shapes/make-examples.ts\`.

| file | size | seed | classes | boxes |
|---|---|---|---|---|
${rows.join('\n')}

\`scene-512.jpg\` is scene ${EXAMPLES.at(-1)!.seed} upscaled 4× (Lanczos), for examples where an overlay at a larger
size is easier to look at; the service stretches it back to the model's 128×128 input.
`;
  writeFileSync(path.join(OUT, 'README.md'), readme);
}

main().catch((e: unknown) => { console.error(e); process.exit(1); });
