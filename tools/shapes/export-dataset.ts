// Writes scenes [start, start + n) to a folder that Python reads with numpy:
//   images.u8   n × 128 × 128 × 3 uint8, raw RGB (HWC), scene i at byte offset i·49152
//   labels.u8   n × 10 uint8 multi-hot
//   meta.json   { start, n, width, height, classNames, seeds, objects[i] = [{cls,label,box}], seconds, msPerScene }
//
//   node --import tsx tools/shapes/export-dataset.ts --start 0 --n 30000 --out tmp/shapes/train [--workers 2]
//
// Rendering costs about 10 ms of one core per scene, so the scenes are split over worker threads
// (default: 2) that each render a contiguous range and send rows back to be written in place.
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { CLASS_NAMES, generateScene, NUM_CLASSES, SCENE_SIZE, type SceneObject } from './scenes.js';

const BYTES = SCENE_SIZE * SCENE_SIZE * 3;
// Worker threads do not inherit tsx's loader hooks on Node 20, so each worker registers tsx first and
// then imports this file.
const WORKER_BOOT = `import('tsx/esm/api').then((m) => { m.register(); return import(require('node:worker_threads').workerData.self); })`;

interface Job { from: number; to: number; self?: string }
interface Row { i: number; rgb: Uint8Array; objects: SceneObject[]; labels: number[] }

function parseArgs(argv: string[]): { start: number; n: number; out: string; workers: number } {
  const get = (name: string, def?: string): string => {
    const k = argv.indexOf(`--${name}`);
    if (k >= 0 && argv[k + 1] !== undefined) return argv[k + 1]!;
    if (def === undefined) throw new Error(`missing --${name}`);
    return def;
  };
  return { start: Number(get('start', '0')), n: Number(get('n')), out: get('out'), workers: Number(get('workers', '2')) };
}

async function workerMain(): Promise<void> {
  const { from, to } = workerData as Job;
  for (let i = from; i < to; i++) {
    const s = await generateScene(i);
    const rgb = new Uint8Array(s.rgb.buffer, s.rgb.byteOffset, s.rgb.length).slice();
    const row: Row = { i, rgb, objects: s.objects, labels: s.labels };
    parentPort!.postMessage(row, [rgb.buffer]);
  }
}

async function main(): Promise<void> {
  const { start, n, out, workers } = parseArgs(process.argv.slice(2));
  if (!(n > 0) || !(start >= 0)) throw new Error('need --n > 0 and --start >= 0');
  mkdirSync(out, { recursive: true });
  const fd = openSync(path.join(out, 'images.u8'), 'w');
  const labels = new Uint8Array(n * NUM_CLASSES);
  const objects: SceneObject[][] = new Array(n);
  const t0 = performance.now();
  let done = 0;
  const nw = Math.max(1, Math.min(workers, n));
  const per = Math.ceil(n / nw);
  const jobs: Job[] = [];
  for (let w = 0; w < nw; w++) jobs.push({ from: start + w * per, to: start + Math.min(n, (w + 1) * per) });
  await Promise.all(jobs.filter((j) => j.to > j.from).map((job) => new Promise<void>((resolve, reject) => {
    const worker = new Worker(WORKER_BOOT, { eval: true, workerData: { ...job, self: import.meta.url } });
    worker.on('message', (row: Row) => {
      const k = row.i - start;
      writeSync(fd, row.rgb, 0, BYTES, k * BYTES);
      labels.set(row.labels, k * NUM_CLASSES);
      objects[k] = row.objects;
      if (++done % 2000 === 0) {
        const s = (performance.now() - t0) / 1000;
        console.error(`${done}/${n} scenes, ${s.toFixed(1)} s, ${(1000 * s / done).toFixed(2)} ms/scene`);
      }
    });
    worker.on('error', reject);
    worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}`))));
  })));
  closeSync(fd);
  const seconds = (performance.now() - t0) / 1000;
  writeFileSync(path.join(out, 'labels.u8'), labels);
  writeFileSync(path.join(out, 'meta.json'), JSON.stringify({
    start, n, width: SCENE_SIZE, height: SCENE_SIZE, layout: 'NHWC uint8 RGB', classNames: CLASS_NAMES,
    workers: nw, seconds, msPerScene: (1000 * seconds) / n, objects,
  }));
  console.error(`wrote ${n} scenes (seeds ${start}..${start + n - 1}) to ${out} in ${seconds.toFixed(1)} s ` +
    `(${((1000 * seconds) / n).toFixed(2)} ms/scene wall, ${nw} workers)`);
}

if (isMainThread) {
  main().catch((e: unknown) => { console.error(e); process.exit(1); });
} else {
  workerMain().catch((e: unknown) => { console.error(e); process.exit(1); });
}
