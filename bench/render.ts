// Render benchmark: the 640×480 overlay of bench/http.ts's JPEG as PNG at zlib levels 0..9 (size and time,
// this package's PngWriter against sharp's PNG encoder on the same pixels at the same level), as WebP and
// JPEG, and at max_side=320. `npm run bench:render [-- --runs N]`; with `--http`, the same pictures over HTTP
// instead: the built server (dist/, `npm run build` first) with bench/models/resnet50, JPEGs of 640×480 and
// 2048×1536 in, the parameter sets side by side in alternating rounds, client latency and Server-Timing stages.
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { decodeImage } from '../src/engine/index.js';
import { normalizeMap, renderJob, renderOverlay, resizeBilinear, type CamMap, type PictureEncoding, type RenderJob } from '../src/render/index.js';
import { encodePngRgb } from '../src/render/png.js';
import { colormapBlend } from '../src/render/render.js';
import { median } from './engine.js';
import { benchJpeg, postCam, startBenchServer } from './http.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' }, http: { type: 'boolean' }, baseline: { type: 'string' }, help: { type: 'boolean' } } });
if (values.help) {
  console.log('npm run bench:render [-- --runs N] [-- --http [--baseline DIR]]   (N timed runs of each case, in alternating rounds; default 15; --http: over HTTP, resnet50; --baseline: also the default parameters on the server built in DIR (DIR/dist), e.g. a checkout of main)');
  process.exit(0);
}
const RUNS = Number(values.runs);

/** A 7×7 map with one smooth blob, as ResNet-50's last layer gives for the bench image. */
function camMap(): CamMap {
  const data = new Float32Array(49);
  for (let y = 0; y < 7; y++) for (let x = 0; x < 7; x++) data[y * 7 + x] = Math.exp(-((x - 4.3) ** 2 + (y - 3.1) ** 2) / 4);
  return { width: 7, height: 7, data };
}

interface Case { name: string; run(): Promise<Buffer | Uint8Array> }

async function main(): Promise<void> {
  const decoded = await decodeImage(await benchJpeg(640, 480), { maxPixels: 1e8, maxSide: 2048 });
  const image = decoded.rgb;
  const map = camMap();
  const map01 = normalizeMap(map);
  const rgb = colormapBlend(resizeBilinear(map01, image.width, image.height), image.data, 0.5, 'jet');
  const job = (e: PictureEncoding & { maxSide?: number }): RenderJob => ({
    kind: 'overlay', image, maps: [map], input: { width: 224, height: 224 }, resize: 'stretch', alpha: 0.5, colormap: 'jet', ...e,
  });
  const cases: Case[] = [];
  for (let level = 0; level <= 9; level++) {
    cases.push({ name: `overlay png L${level} (map + blend + encode, as served)`, run: () => renderOverlay({ image, map, alpha: 0.5, colormap: 'jet', compressionLevel: level }) });
    cases.push({ name: `encode png L${level} PngWriter`, run: () => encodePngRgb(rgb, image.width, image.height, level) });
    cases.push({ name: `encode png L${level} sharp`, run: () => sharp(rgb, { raw: { width: image.width, height: image.height, channels: 3 } }).png({ compressionLevel: level }).toBuffer() });
  }
  cases.push({ name: 'overlay webp q80', run: () => renderOverlay({ image, map, alpha: 0.5, colormap: 'jet', format: 'webp' }) });
  cases.push({ name: 'overlay jpeg q80', run: () => renderOverlay({ image, map, alpha: 0.5, colormap: 'jet', format: 'jpeg' }) });
  cases.push({ name: 'render job png default', run: async () => (await renderJob(job({})))[0] });
  cases.push({ name: 'render job png max_side=320', run: async () => (await renderJob(job({ maxSide: 320 })))[0] });
  cases.push({ name: 'render job webp max_side=320', run: async () => (await renderJob(job({ maxSide: 320, format: 'webp' })))[0] });

  // Same pixels: every PNG decodes to the blended RGB.
  for (const c of cases.filter((x) => x.name.startsWith('encode png'))) {
    const back = await sharp(await c.run()).raw().toBuffer();
    if (!back.equals(rgb)) throw new Error(`${c.name}: decodes to other pixels`);
  }
  const times = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  const sizes = new Map<string, number>();
  for (const c of cases) sizes.set(c.name, (await c.run()).length); // warm-up
  const rounds = 5;
  for (let r = 0; r < rounds; r++) {
    for (const c of cases) {
      for (let i = 0; i < Math.ceil(RUNS / rounds); i++) {
        const t = performance.now();
        await c.run();
        times.get(c.name)!.push(performance.now() - t);
      }
    }
  }
  console.log(`${machine()}; ${Math.ceil(RUNS / rounds) * rounds} runs per case in ${rounds} alternating rounds`);
  console.log('| case | median ms | size KiB |');
  console.log('|---|---:|---:|');
  for (const c of cases) console.log(`| ${c.name} | ${median(times.get(c.name)!).toFixed(2)} | ${(sizes.get(c.name)! / 1024).toFixed(0)} |`);
}

function machine(): string {
  return `date: ${new Date().toISOString()}; ${os.cpus()[0]?.model}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; Node ${process.version}; sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips})`;
}

/** Over HTTP: each parameter set on each image, in alternating rounds. */
async function overHttp(): Promise<void> {
  const server = await startBenchServer(['resnet50']);
  const baseline = values.baseline ? await startBenchServer(['resnet50'], {}, [], path.resolve(values.baseline, 'dist/src/http/main.js')) : undefined;
  try {
    const images = [{ name: '640×480', jpeg: await benchJpeg(640, 480) }, { name: '2048×1536', jpeg: await benchJpeg(2048, 1536) }];
    const sets = ['', 'max_side=320', 'format=webp', 'max_side=320&format=webp', 'format=jpeg', 'png_compression=0'];
    const cases = images.flatMap((im) => [
      ...(baseline ? [{ im, q: '', url: baseline.url, label: `(defaults) on ${values.baseline}` }] : []),
      ...sets.map((q) => ({ im, q, url: server.url, label: q || '(defaults)' })),
    ].map((c) => ({ ...c, ms: [] as number[], stages: {} as Record<string, number[]>, bytes: 0, type: '' })));
    const base = 'model=resnet50&method=gradcam';
    for (const c of cases) for (let i = 0; i < 2; i++) await postCam(c.url, `${base}${c.q ? '&' + c.q : ''}`, c.im.jpeg); // warm-up
    const rounds = 5;
    for (let r = 0; r < rounds; r++) {
      for (const c of cases) {
        for (let i = 0; i < Math.ceil(RUNS / rounds); i++) {
          const a = await postCam(c.url, `${base}${c.q ? '&' + c.q : ''}`, c.im.jpeg);
          c.ms.push(a.ms);
          c.bytes = a.body.length;
          c.type = a.type;
          for (const [k, v] of Object.entries(a.timing)) (c.stages[k] ??= []).push(v);
        }
      }
    }
    console.log(`${machine()}; server: default configuration, resnet50 (bench/models, random weights, 224×224 stretch), gradcam; ${Math.ceil(RUNS / rounds) * rounds} requests per case in ${rounds} alternating rounds at concurrency 1`);
    console.log('| JPEG in | parameters | answer | p50 ms | decode / preprocess / forward / render / total (server, medians) ms |');
    console.log('|---|---|---|---:|---|');
    const st = (c: (typeof cases)[number], k: string) => (c.stages[k] ? median(c.stages[k]).toFixed(2) : '–');
    for (const c of cases) {
      console.log(`| ${c.im.name} | ${c.label} | ${c.type.split(';')[0]}, ${(c.bytes / 1024).toFixed(0)} KiB | ${median(c.ms).toFixed(1)} | ${['decode', 'preprocess', 'forward', 'render', 'total'].map((k) => st(c, k)).join(' / ')} |`);
    }
  } finally {
    await server.stop();
    await baseline?.stop();
  }
}

await (values.http ? overHttp() : main());
