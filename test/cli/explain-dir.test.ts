// camserve explain-dir on a folder with a corrupt image, a non-image, an image under a misleading name and a
// sub-folder: the rest is explained (overlays, results.jsonl, index.html), the bad ones are reported and the
// exit status is non-zero; a rerun skips what is done, and redoes what changed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { sniffImage, type ResultLine } from '../../src/cli/commands/explain-dir.js';
import { FIXTURES } from '../helpers/fixtures.js';

const run = promisify(execFile);
const CLI = path.resolve('src/cli/main.ts');
const MODEL = path.join(FIXTURES, 'resnet');
let dir: string;
let src: string;
let out: string;

interface Run { code: number; stdout: string; stderr: string }
async function cli(...args: string[]): Promise<Run> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', CLI, ...args]);
    return { code: 0, ...r };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}
const lines = async () => (await readFile(path.join(out, 'results.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as ResultLine);

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-dir-'));
  src = path.join(dir, 'photos');
  out = path.join(dir, 'out');
  await mkdir(path.join(src, 'sub', 'deeper'), { recursive: true });
  await copyFile('examples/star-ring.png', path.join(src, 'a.png'));
  await copyFile('examples/scene-512.jpg', path.join(src, 'sub', 'b.jpg'));
  // An image under a name that says otherwise, and a text file under an image's name.
  await copyFile('examples/heart-star.jpg', path.join(src, 'sub', 'deeper', 'scan.dat'));
  await writeFile(path.join(src, 'README.png'), 'not a picture, whatever the name says\n');
  await writeFile(path.join(src, 'notes.txt'), 'hello\n');
  // A JPEG cut short.
  await writeFile(path.join(src, 'corrupt.jpg'), (await readFile('examples/scene-512.jpg')).subarray(0, 3000));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('image types are known by their content', async () => {
  const png = await sharp({ create: { width: 2, height: 2, channels: 3, background: '#fff' } }).png().toBuffer();
  const webp = await sharp(png).webp().toBuffer();
  const tiff = await sharp(png).tiff().toBuffer();
  const gif = await sharp(png).gif().toBuffer();
  const avif = await sharp(png).avif().toBuffer();
  const jpeg = await sharp(png).jpeg().toBuffer();
  assert.deepEqual([png, webp, tiff, gif, avif, jpeg].map((b) => sniffImage(b.subarray(0, 32))), ['png', 'webp', 'tiff', 'gif', 'avif', 'jpeg']);
  assert.equal(sniffImage(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')), undefined);
});

test('explains the images of a folder and its sub-folders, reports the bad ones and exits non-zero', async () => {
  const r = await cli('explain-dir', src, '-m', MODEL, '--out', out, '--concurrency', '2', '--no-progress');
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /1 of 4 images failed:\n {2}corrupt\.jpg: .*cannot be decoded/);
  assert.match(r.stdout, /not an image \(skipped\): README\.png/);
  assert.match(r.stdout, /not an image \(skipped\): notes\.txt/);
  assert.match(r.stdout, /explained 3, done before 0, failed 1, not images 2/);
  assert.match(r.stderr, /^\[\d\/4\] sub\/b\.jpg ok \(\d+\.\d img\/s, ETA \d+ s\)$/m, 'a progress line per image without a terminal');
  const results = await lines();
  assert.deepEqual(results.map((x) => [x.file, x.status]), [
    ['a.png', 'ok'], ['corrupt.jpg', 'failed'], ['sub/b.jpg', 'ok'], ['sub/deeper/scan.dat', 'ok'],
  ]);
  for (const x of results.filter((y) => y.status === 'ok')) {
    const meta = await sharp(await readFile(path.join(out, x.output!))).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', x.image!.width, x.image!.height]);
    assert.equal(x.predictions!.length, 5);
    assert.equal(x.explained![0].index, x.predictions![0].index, 'the top class');
  }
  assert.equal(results[1].error!.code, 'damaged-image');
  // The overlay is the one `camserve explain` writes for the image.
  const single = path.join(dir, 'single.png');
  await cli('explain', path.join(src, 'a.png'), '-m', MODEL, '--out', single);
  assert.deepEqual(await readFile(path.join(out, 'a.png.png')), await readFile(single));
  const html = await readFile(path.join(out, 'index.html'), 'utf8');
  for (const f of ['a.png.png', 'sub/b.jpg.png', 'sub/deeper/scan.dat.png']) assert.match(html, new RegExp(`<img src="${f.replaceAll('.', '\\.')}"`));
  assert.match(html, /Failed<\/h2><ul><li>corrupt\.jpg: /);
});

test('a rerun skips what is done; a changed image or other parameters are explained again', async () => {
  const before = (await stat(path.join(out, 'sub/b.jpg.png'))).mtimeMs;
  const again = await cli('explain-dir', src, '-m', MODEL, '--out', out, '--no-progress');
  assert.equal(again.code, 1, 'the corrupt image still fails');
  assert.match(again.stdout, /4 images under .*: 1 to explain, 3 done before, 2 not images/);
  assert.equal((await stat(path.join(out, 'sub/b.jpg.png'))).mtimeMs, before, 'not written again');
  assert.equal((await lines()).length, 4, 'one line per image');

  // A new picture under an old name, and the corrupt one mended.
  await copyFile('examples/heart-star.jpg', path.join(src, 'a.png'));
  await copyFile('examples/scene-512.jpg', path.join(src, 'corrupt.jpg'));
  const changed = await cli('explain-dir', src, '-m', MODEL, '--out', out, '--no-progress');
  assert.equal(changed.code, 0, changed.stderr);
  assert.match(changed.stdout, /2 to explain, 2 done before/);
  assert.equal((await lines()).every((x) => x.status === 'ok'), true);

  const other = await cli('explain-dir', src, '-m', MODEL, '--out', out, '--method', 'layercam', '--no-progress');
  assert.equal(other.code, 0);
  assert.match(other.stdout, /4 to explain, 0 done before/);
  assert.ok((await lines()).every((x) => x.method === 'layercam'));
});

test('usage errors exit 2', async () => {
  assert.equal((await cli('explain-dir', src, '-m', MODEL)).code, 2, 'no --out');
  assert.equal((await cli('explain-dir', path.join(src, 'a.png'), '-m', MODEL, '--out', out)).code, 2, 'not a folder');
  assert.equal((await cli('explain-dir', src, '-m', MODEL, '--out', out, '--topk', '2')).code, 2, 'one class per overlay');
  assert.equal((await cli('explain-dir', src, '-m', MODEL, '--out', out, '--concurrency', '0')).code, 2);
});
