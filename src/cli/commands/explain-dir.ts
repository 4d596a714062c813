// camserve explain-dir: every image under a folder (recursively; images known by their content, not their
// names), offline, with the parameters of POST /cam: one overlay per image under --out (the folder's tree
// mirrored), a results.jsonl line per image and an index.html contact sheet. A progress bar with rate and
// ETA on a terminal (cli-progress), plain lines otherwise. A run resumes where the last one stopped: an
// image whose content and parameters are unchanged, with its overlay still there, is not explained again.
// Images that fail are listed at the end, and the exit status is then non-zero.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, lstat, mkdir, open, readdir, readFile, realpath, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { CAM_PARAMETERS, collectParameters, parseCamParams, pictureJob, predictions, resolveLayers, resolveTargets, type CamParams } from '../../api/index.js';
import { decodeImage, toModelInput, topK, type ModelRuntime } from '../../engine/index.js';
import { CamserveError } from '../../errors/index.js';
import { renderJob } from '../../render/index.js';
import { CLI_IMAGE_LIMITS, PICTURE_OPTIONS, UsageError, asParameters, pictureExtension, pictureParameters, requireModel, withModel } from '../common.js';

export const RESULTS_FILE = 'results.jsonl';
export const INDEX_FILE = 'index.html';

/** The image formats camserve decodes, by their first bytes. */
export function sniffImage(head: Buffer): string | undefined {
  const ascii = (from: number, to: number) => head.subarray(from, to).toString('latin1');
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (head.length >= 8 && head.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (ascii(0, 6) === 'GIF87a' || ascii(0, 6) === 'GIF89a') return 'gif';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') return 'tiff';
  if (ascii(4, 8) === 'ftyp' && ['avif', 'avis'].includes(ascii(8, 12))) return 'avif';
  return undefined;
}

interface Found { file: string; rel: string }

/** Files under `root` (sorted, recursively), leaving out `exclude` (the output folder) and symlinked folders. */
async function walk(root: string, exclude: string): Promise<Found[]> {
  const out: Found[] = [];
  const visit = async (dir: string) => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if ((await realpath(p)) !== exclude) await visit(p);
      } else if (e.isFile() || (e.isSymbolicLink() && (await stat(p).catch(() => undefined))?.isFile())) {
        out.push({ file: p, rel: path.relative(root, p) });
      }
    }
  };
  await visit(root);
  return out;
}

async function head(file: string, n = 32): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export interface ResultLine {
  file: string;
  sha256: string;
  params: string;
  status: 'ok' | 'failed';
  output?: string;
  model?: string;
  method?: string;
  layers?: string[];
  image?: { width: number; height: number };
  predictions?: { index: number; label: string | null; score: number | null }[];
  explained?: { index: number; label: string | null; score: number | null }[];
  ms?: number;
  error?: { code: string; message: string };
}

/** What decides an overlay besides the image: the model file and every parameter. */
async function paramsKey(model: string, params: CamParams, layers: string[], targets: number[] | undefined): Promise<string> {
  const modelFile = (await stat(model)).isDirectory() ? path.join(model, 'model.onnx') : model;
  const m = await stat(modelFile);
  return createHash('sha256').update(JSON.stringify({
    model: await realpath(modelFile), size: m.size, mtime: m.mtimeMs,
    method: params.method, targets, topk: params.topk, layers, output: params.output, alpha: params.alpha,
    colormap: params.colormap, eigenSmooth: params.eigenSmooth, augSmooth: params.augSmooth,
    maxSide: params.maxSide, format: params.format, pngCompression: params.pngCompression, quality: params.quality,
  })).digest('hex').slice(0, 16);
}

async function readResults(file: string): Promise<Map<string, ResultLine>> {
  const map = new Map<string, ResultLine>();
  const text = await readFile(file, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as ResultLine;
      if (typeof r.file === 'string') map.set(r.file, r);
    } catch {
      // a line cut short by an interrupted run
    }
  }
  return map;
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const href = (rel: string) => rel.split(path.sep).map(encodeURIComponent).join('/');

function contactSheet(results: ResultLine[], notImages: string[], title: string): string {
  const ok = results.filter((r) => r.status === 'ok');
  const failed = results.filter((r) => r.status === 'failed');
  const cards = ok.map((r) => {
    const e = r.explained?.[0];
    const what = e ? `${e.label ?? `class ${e.index}`} (${e.score === null ? '–' : (100 * e.score).toFixed(1)}%)` : '';
    return `<figure><a href="${href(r.output!)}"><img src="${href(r.output!)}" loading="lazy" alt="${escape(r.file)}"></a>`
      + `<figcaption><b>${escape(r.file)}</b><br>${escape(r.method ?? '')}: ${escape(what)}</figcaption></figure>`;
  }).join('\n');
  const list = (items: string[]) => `<ul>${items.map((i) => `<li>${i}</li>`).join('')}</ul>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr)); gap: 1rem; }
figure { margin: 0; } img { width: 100%; height: auto; border: 1px solid #8884; border-radius: 4px; }
figcaption { font-size: 0.85rem; overflow-wrap: anywhere; } .bad { color: #c62828; }
</style></head><body>
<h1>${escape(title)}</h1>
<p>${ok.length} explained${failed.length ? `, <span class="bad">${failed.length} failed</span>` : ''}${notImages.length ? `, ${notImages.length} not images` : ''}.</p>
<div class="grid">
${cards}
</div>
${failed.length ? `<h2 class="bad">Failed</h2>${list(failed.map((r) => `${escape(r.file)}: ${escape(r.error?.message ?? '')}`))}` : ''}
${notImages.length ? `<h2>Not images (skipped)</h2>${list(notImages.map(escape))}` : ''}
</body></html>
`;
}

/** Progress: a bar with rate and ETA on a terminal, a line per image otherwise. */
function progressReporter(total: number, tty: boolean) {
  const started = performance.now();
  let done = 0;
  const rate = () => done / Math.max(1e-3, (performance.now() - started) / 1000);
  if (tty && total > 0) {
    const bar = new cliProgress.SingleBar({
      format: ' {bar} {percentage}% | {value}/{total} | {rate} img/s | ETA {eta_formatted} | {file}',
      hideCursor: true, clearOnComplete: false, stream: process.stderr, etaBuffer: 20,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, { rate: '0.0', file: '' });
    return {
      tick(file: string) {
        done++;
        bar.update(done, { rate: rate().toFixed(1), file });
      },
      stop: () => bar.stop(),
    };
  }
  return {
    tick(file: string, status = 'ok') {
      done++;
      const r = rate();
      const eta = r > 0 ? Math.ceil((total - done) / r) : 0;
      process.stderr.write(`[${done}/${total}] ${file} ${status} (${r.toFixed(1)} img/s, ETA ${eta} s)\n`);
    },
    stop: () => undefined,
  };
}

export async function explainDirCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: {
      model: { type: 'string', short: 'm' }, method: { type: 'string' }, target: { type: 'string', short: 't' },
      topk: { type: 'string', short: 'k' }, layer: { type: 'string', short: 'l' }, out: { type: 'string', short: 'o' },
      heatmap: { type: 'boolean' }, alpha: { type: 'string' }, colormap: { type: 'string' },
      'eigen-smooth': { type: 'boolean' }, 'aug-smooth': { type: 'boolean' }, concurrency: { type: 'string', short: 'j' },
      progress: { type: 'boolean' }, 'no-progress': { type: 'boolean' }, ...PICTURE_OPTIONS,
    },
  });
  if (positionals.length !== 1) throw new UsageError('explain-dir takes one folder');
  const model = requireModel(values.model);
  if (!values.out) throw new UsageError('--out <folder> is required');
  const concurrency = values.concurrency === undefined ? 1 : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new UsageError('--concurrency must be an integer in 1..64');
  const root = path.resolve(positionals[0]);
  if (!(await stat(root).catch(() => undefined))?.isDirectory()) throw new UsageError(`${positionals[0]} is not a folder`);
  const params = parseCamParams(collectParameters('camserve explain-dir', CAM_PARAMETERS, asParameters(
    { method: values.method, target: values.target, topk: values.topk, layer: values.layer, alpha: values.alpha, colormap: values.colormap,
      eigen_smooth: values['eigen-smooth'], aug_smooth: values['aug-smooth'], output: values.heatmap ? 'heatmap' : undefined,
      ...pictureParameters(values) },
  )));
  if ((params.topk ?? 1) > 1 || (params.target?.length ?? 1) > 1) throw new UsageError('explain-dir writes one overlay per image: give one class (--target) or none (the top class)');
  const outDir = path.resolve(values.out);
  await mkdir(outDir, { recursive: true });
  const outReal = await realpath(outDir);
  const tty = values.progress ?? (!values['no-progress'] && process.stderr.isTTY === true);

  await withModel(model, async (rt) => {
    const { info } = rt;
    const targets = params.target ? resolveTargets(params.target, info) : undefined;
    const layers = resolveLayers(params.layer, info);
    const key = await paramsKey(model, params, layers, targets);
    const resultsFile = path.join(outDir, RESULTS_FILE);
    const previous = await readResults(resultsFile);

    const files = await walk(root, outReal);
    const notImages: string[] = [];
    const todo: (Found & { sha: string })[] = [];
    const results = new Map<string, ResultLine>();
    let resumed = 0;
    for (const f of files) {
      if (!sniffImage(await head(f.file))) {
        // results.jsonl and index.html of an --out inside the folder are left out by the walk; anything else is reported.
        notImages.push(f.rel);
        continue;
      }
      const sha = await sha256(f.file);
      const before = previous.get(f.rel);
      if (before?.status === 'ok' && before.sha256 === sha && before.params === key && before.output
        && (await lstat(path.join(outDir, before.output)).catch(() => undefined))) {
        results.set(f.rel, before);
        resumed++;
        continue;
      }
      todo.push({ ...f, sha });
    }
    process.stdout.write(`${info.id}: ${files.length - notImages.length} images under ${positionals[0]}: ${todo.length} to explain, ${resumed} done before${notImages.length ? `, ${notImages.length} not images` : ''}\n`);

    const progress = progressReporter(todo.length, tty);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < todo.length; i = next++) {
        const f = todo[i];
        const line = await explainOne(rt, f, { params, targets, layers, key, outDir });
        results.set(f.rel, line);
        // Appended as it comes: an interrupted run keeps what it did.
        await appendFile(resultsFile, `${JSON.stringify(line)}\n`);
        progress.tick(f.rel, line.status === 'ok' ? 'ok' : `FAILED: ${line.error?.message ?? ''}`);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, todo.length)) }, worker));
    } finally {
      progress.stop();
    }

    // One line per image found now, in the folder's order; the contact sheet from them.
    const ordered = files.flatMap((f) => results.get(f.rel) ?? []);
    const tmp = `${resultsFile}.tmp`;
    await writeFile(tmp, ordered.map((r) => JSON.stringify(r)).join('\n') + (ordered.length ? '\n' : ''));
    await rename(tmp, resultsFile);
    await writeFile(path.join(outDir, INDEX_FILE), contactSheet(ordered, notImages, `${info.id} · ${params.method} · ${positionals[0]}`));

    const failed = ordered.filter((r) => r.status === 'failed');
    const explained = ordered.length - failed.length - resumed;
    process.stdout.write(`explained ${explained}, done before ${resumed}, failed ${failed.length}${notImages.length ? `, not images ${notImages.length}` : ''} → ${path.join(values.out!, INDEX_FILE)}\n`);
    for (const n of notImages) process.stdout.write(`  not an image (skipped): ${n}\n`);
    if (failed.length) {
      throw new Error(`${failed.length} of ${ordered.length} images failed:\n${failed.map((r) => `  ${r.file}: ${r.error?.message}`).join('\n')}`);
    }
  });
}

async function explainOne(
  rt: ModelRuntime, f: Found & { sha: string },
  o: { params: CamParams; targets: number[] | undefined; layers: string[]; key: string; outDir: string },
): Promise<ResultLine> {
  const { params } = o;
  const t = performance.now();
  const base = { file: f.rel, sha256: f.sha, params: o.key };
  try {
    const image = await decodeImage(await readFile(f.file), CLI_IMAGE_LIMITS);
    const input = await toModelInput(image.rgb, rt.info);
    const result = await rt.explain({ input, method: params.method, targets: o.targets, topk: params.topk, layers: o.layers, eigenSmooth: params.eigenSmooth, augSmooth: params.augSmooth });
    const [picture] = await renderJob(pictureJob(params.output === 'heatmap' ? 'heatmap' : 'overlay', image, rt.info, [result.explanations[0].map], params));
    const output = `${f.rel}${pictureExtension(params.format)}`;
    await mkdir(path.dirname(path.join(o.outDir, output)), { recursive: true });
    await writeFile(path.join(o.outDir, output), picture);
    const pred = predictions(result.logits, rt.info);
    const brief = (p: { index: number; label: string | null; score: number | null }) => ({ index: p.index, label: p.label, score: p.score });
    return {
      ...base, status: 'ok', output, model: rt.info.id, method: params.method, layers: o.layers,
      image: { width: image.width, height: image.height },
      predictions: topK(pred.scores, 5).map((i) => brief(pred.of(i))),
      explained: result.explanations.map((e) => brief(pred.of(e.target.index))),
      ms: Math.round(performance.now() - t),
    };
  } catch (e) {
    const err = e instanceof CamserveError ? { code: e.code, message: e.message } : { code: 'internal', message: (e as Error).message };
    return { ...base, status: 'failed', error: err, ms: Math.round(performance.now() - t) };
  }
}
