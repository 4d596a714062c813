// `npm run bench:batch`: a batch of images in one POST /cam against one request per image, over HTTP to
// the built server (`node dist/src/http/main.js`, one worker, its default threads), JPEG 640×480 in, JSON
// out (output=json). On resnet18-dynbatch (a dynamic batch axis: the batch's forward pass is one run) and
// on resnet18 (the same network with batch 1: the images run one after another in the worker), so that
// what one forward pass buys is told apart from what one request buys. Then the same in process, without
// HTTP: explainBatch of the N inputs against N explain calls on resnet18-dynbatch (onnxruntime with all cores).
//
//   npm run bench:batch -- [--images 16] [--rounds 7] [--method gradcam] [--models resnet18-dynbatch,resnet18] [--out FILE]
//
// The models come from `/usr/bin/python3 tools/fixtures/generate.py --big-extdata` (into the git-ignored
// bench/models/); `npm run build` first. Each round runs the three ways in turn (order rotated): one
// request of N images; N requests one after another; N requests 2 at a time. Times are wall-clock from the
// first byte sent to the last answer read; the table gives the median round and images per second.
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { ModelRuntime, toModelInput, decodeImage } from '../src/engine/index.js';
import { BENCH_MODELS, available, median } from './engine.js';
import { benchJpeg, startBenchServer } from './http.js';
import { printHeaderHelp } from './usage.js';

interface Flags { images: number; rounds: number; method: string; models: string[]; out?: string }

function parseFlags(argv: string[]): Flags {
  const { values } = parseArgs({
    args: argv,
    options: {
      images: { type: 'string', default: '16' },
      rounds: { type: 'string', default: '7' },
      method: { type: 'string', default: 'gradcam' },
      models: { type: 'string', default: 'resnet18-dynbatch,resnet18' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) printHeaderHelp(import.meta.url);
  return {
    images: Number(values.images),
    rounds: Number(values.rounds),
    method: values.method,
    models: values.models.split(',').map((s) => s.trim()).filter(Boolean),
    out: values.out,
  };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

/** A multipart body of `images` in field `image` and the fields. */
function multipart(images: Buffer[], fields: Record<string, string>): { body: Buffer; type: string } {
  const boundary = `----camservebench${Date.now()}`;
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  images.forEach((img, i) => {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="${i}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`), img, Buffer.from('\r\n'));
  });
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), type: `multipart/form-data; boundary=${boundary}` };
}

function post(url: string, body: Buffer, type: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/cam`, { method: 'POST', agent, headers: { 'Content-Type': type, 'Content-Length': body.length, Accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const b = Buffer.concat(chunks);
        if (res.statusCode !== 200) reject(new Error(`POST /cam: ${res.statusCode} ${b.toString().slice(0, 300)}`));
        else resolve(b);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2));
  const missing = f.models.filter((m) => !available(m));
  if (missing.length) throw new Error(`bench/models/{${missing.join(',')}} missing: /usr/bin/python3 tools/fixtures/generate.py --big-extdata`);
  // N different pictures: the bench photograph mirrored, rotated and re-toned.
  const base = await benchJpeg();
  const images = await Promise.all(Array.from({ length: f.images }, (_, i) => {
    let s = sharp(base).modulate({ brightness: 0.8 + (0.4 * i) / Math.max(1, f.images - 1), hue: (i * 23) % 360 });
    if (i % 2) s = s.flop();
    if (i % 4 >= 2) s = s.flip();
    return s.jpeg({ quality: 90 }).toBuffer();
  }));
  const fields = { method: f.method, output: 'json' };
  const lines: string[] = [];
  const say = (l: string) => { process.stdout.write(`${l}\n`); lines.push(l); };
  say(`# POST /cam: a batch of ${f.images} images vs ${f.images} requests`);
  say('');
  say(`${new Date().toISOString()}, ${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism?.() ?? os.cpus().length} cores, Node ${process.version}; method ${f.method}, JPEG 640×480 → JSON; ${f.rounds} rounds after a warm-up, median round.`);
  say('');
  say('| model | forward | 1 request × ' + f.images + ' images | ' + f.images + ' requests, 1 at a time | ' + f.images + ' requests, 2 at a time | batch speed-up (vs 1 / 2 at a time) |');
  say('|---|---|---:|---:|---:|---:|');
  // Every model's server up at once, and every round going through every (model, way) in turn (the order
  // rotated), so that the load of a shared machine falls on all of them alike.
  const servers = await Promise.all(f.models.map((model) => startBenchServer([model], {
    WORKERS: '1', MAX_BATCH: String(f.images), MAX_QUEUE: String(2 * f.images), LOG_LEVEL: 'warn', DEFAULT_MODEL: model,
  })));
  try {
    const batch = multipart(images, fields);
    const singles = images.map((img) => multipart([img], fields));
    const ways = (url: string): Record<string, () => Promise<void>> => ({
      batch: async () => { await post(url, batch.body, batch.type); },
      serial: async () => { for (const s of singles) await post(url, s.body, s.type); },
      pairs: async () => {
        let next = 0;
        await Promise.all([0, 1].map(async () => { for (let i = next++; i < singles.length; i = next++) await post(url, singles[i].body, singles[i].type); }));
      },
    });
    const cases: { model: string; way: string; run: () => Promise<void> }[] = [];
    for (const [i, model] of f.models.entries()) {
      const url = servers[i].url;
      // Same answers both ways (the first image's map), then a warm-up of each way.
      const one = JSON.parse((await post(url, batch.body, batch.type)).toString()) as { results: { explanations: { cam: unknown }[] }[] };
      const alone = JSON.parse((await post(url, singles[0].body, singles[0].type)).toString()) as { explanations: { cam: unknown }[] };
      if (JSON.stringify(one.results[0].explanations[0].cam) !== JSON.stringify(alone.explanations[0].cam)) process.stderr.write(`${model}: the batch's first map differs from the single request's\n`);
      for (const [way, run] of Object.entries(ways(url))) {
        await run();
        cases.push({ model, way, run });
      }
    }
    const ms = new Map<string, number[]>();
    for (let r = 0; r < f.rounds; r++) {
      for (let k = 0; k < cases.length; k++) {
        const c = cases[(r + k) % cases.length];
        const t = performance.now();
        await c.run();
        const key = `${c.model} ${c.way}`;
        ms.set(key, [...(ms.get(key) ?? []), performance.now() - t]);
      }
    }
    for (const model of f.models) {
      const m = (way: string) => median(ms.get(`${model} ${way}`)!);
      const cell = (x: number) => `${x.toFixed(0)} ms (${((1000 * f.images) / x).toFixed(1)} img/s)`;
      const dyn = model.includes('dynbatch');
      say(`| ${model} | ${dyn ? 'one run per batch (exported with a dynamic batch)' : 'one run per batch where the fixed batch of 1 was made symbolic at load, else one per image'} | ${cell(m('batch'))} | ${cell(m('serial'))} | ${cell(m('pairs'))} | ${(m('serial') / m('batch')).toFixed(2)}× / ${(m('pairs') / m('batch')).toFixed(2)}× |`);
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }

  // In process: the engine alone (decoded inputs, no HTTP, no render).
  const dyn = f.models.find((m) => m.includes('dynbatch'));
  if (dyn) {
    const rt = await ModelRuntime.load(`${BENCH_MODELS}/${dyn}`, { intraOpThreads: os.availableParallelism?.() ?? os.cpus().length });
    try {
      const inputs = await Promise.all(images.map(async (b) => toModelInput((await decodeImage(b, { maxPixels: 1e8, maxSide: 4096 })).rgb, rt.info)));
      const reqs = () => inputs.map((x) => ({ input: x, method: f.method as 'gradcam' }));
      await rt.explainBatch(reqs());
      for (const r of reqs()) await rt.explain(r);
      const one: number[] = [];
      const each: number[] = [];
      for (let r = 0; r < f.rounds; r++) {
        const order = r % 2 ? ['each', 'one'] : ['one', 'each'];
        for (const w of order) {
          const t = performance.now();
          if (w === 'one') await rt.explainBatch(reqs());
          else for (const q of reqs()) await rt.explain(q);
          (w === 'one' ? one : each).push(performance.now() - t);
        }
      }
      say('');
      say(`In process (${dyn}, ${f.method}, ${f.images} decoded inputs, onnxruntime with ${os.availableParallelism?.() ?? os.cpus().length} threads): `
        + `one batched trunk run ${median(one).toFixed(0)} ms, one run per input ${median(each).toFixed(0)} ms (${(median(each) / median(one)).toFixed(2)}×).`);
    } finally {
      await rt.release();
    }
  }
  say('');
  say(`Load average at the end of the run (1, 5, 15 min): ${os.loadavg().map((x) => x.toFixed(2)).join(', ')}.`);
  if (f.out) writeFileSync(f.out, lines.join('\n') + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
