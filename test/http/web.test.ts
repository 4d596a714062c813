// The web page end to end in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core):
// load the page, choose an image, see the overlay beside the original, pick another class and a layer.
// Skipped, saying why, when Chromium is not installed (.ci/run installs it).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { RunningServer } from '../../src/http/server.js';
import { METHOD_NAMES } from '../../src/cam/types.js';
import { ROOT } from './contract.js';
import { EXAMPLES, LABELS, makeModelsDir, startTestServer, until } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `Chromium is not installed at ${CHROMIUM} (apt-get install -y chromium; .ci/run does)`;
/** Where the screenshot goes (ignored by git), to look at. */
export const SCREENSHOT = path.join(ROOT, 'tmp', 'web-page.png');
/** The Feature maps tab, to look at. */
export const FEATURES_SCREENSHOT = path.join(ROOT, 'tmp', 'web-features.png');
/** A job's progress bar, to look at. */
export const JOB_SCREENSHOT = path.join(ROOT, 'tmp', 'web-job.png');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let server: RunningServer;
let cleanup: () => Promise<void>;
let browser: Browser;
let page: Page;

before(async () => {
  if (skip) return;
  const models = await makeModelsDir({ fixtures: ['vgg', 'mobilenetv2'], labelled: true, shapes: true });
  cleanup = models.cleanup;
  server = await startTestServer(models.dir);
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  page.on('pageerror', (e) => { throw e; });
});
after(async () => {
  await browser?.close();
  await server?.close();
  await cleanup?.();
});

test('the page lists the models and methods, explains a chosen image and shows it beside the original', { skip }, async () => {
  await page.goto(server.url + '/');
  await page.waitForFunction(() => (document.getElementById('status')?.textContent ?? '').includes('Choose an image'));
  const models = await page.$$eval('#model option', (os) => os.map((o) => (o as HTMLOptionElement).value));
  assert.ok(models.includes('labelled') && models.includes('vgg'));
  const methods = await page.$$eval('#method option', (os) => os.length);
  assert.equal(methods, METHOD_NAMES.length);
  await page.selectOption('#model', 'labelled');
  await page.waitForFunction(() => (document.getElementById('layer') as HTMLSelectElement).options.length > 3);

  await page.setInputFiles('#file', path.join(EXAMPLES, 'scene-512.jpg'));
  await page.waitForFunction(() => !(document.getElementById('overlay') as HTMLImageElement).hidden
    && (document.getElementById('overlay') as HTMLImageElement).complete
    && (document.getElementById('overlay') as HTMLImageElement).naturalWidth > 0);
  const sizes = await page.evaluate(() => ['original', 'overlay'].map((id) => {
    const img = document.getElementById(id) as HTMLImageElement;
    return [img.naturalWidth, img.naturalHeight];
  }));
  assert.deepEqual(sizes, [[512, 512], [512, 512]]);
  const classes = await page.$$eval('#classes .name', (els) => els.map((e) => e.textContent));
  assert.equal(classes.length, 5);
  assert.ok(classes.every((c) => LABELS.includes(c ?? '')), classes.join(','));
  const first = await page.$eval('#explained', (e) => e.textContent ?? '');
  assert.match(first, new RegExp(`^gradcam: ${classes[0]}`));

  // Another class: the third of the list.
  const before3 = await page.$eval('#overlay', (e) => (e as HTMLImageElement).src);
  await page.click('#classes li:nth-child(3) input');
  await page.waitForFunction((c) => (document.getElementById('explained')?.textContent ?? '').includes(c!), classes[2]);
  const after3 = await page.$eval('#overlay', (e) => (e as HTMLImageElement).src);
  assert.notEqual(after3, before3);
  assert.equal(await page.$eval('#classes li:nth-child(3) input', (e) => (e as HTMLInputElement).checked), true);

  // Another method and layer.
  const layer = await page.$eval('#layer', (s) => (s as HTMLSelectElement).options[2].value);
  await page.selectOption('#layer', layer);
  await page.selectOption('#method', 'layercam');
  await page.waitForFunction((l) => (document.getElementById('status')?.textContent ?? '').includes(l!)
    && (document.getElementById('explained')?.textContent ?? '').startsWith('layercam'), layer);

  await mkdir(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT });

  // An input-gradient method with a layer chosen: the page leaves the layer out and the answer is of the input.
  await page.selectOption('#method', 'saliency');
  await page.waitForFunction(() => (document.getElementById('explained')?.textContent ?? '').startsWith('saliency')
    && (document.getElementById('status')?.textContent ?? '').includes('layer input'));
  // DFF: the concepts' picture, each concept named by its classes.
  await page.selectOption('#method', 'dff');
  await page.waitForFunction(() => (document.getElementById('explained')?.textContent ?? '').startsWith('dff: 0:')
    && !(document.getElementById('overlay') as HTMLImageElement).hidden);
  await page.selectOption('#method', 'gradcam');
  await page.waitForFunction(() => (document.getElementById('explained')?.textContent ?? '').startsWith('gradcam'));
});

test('an error is shown as the problem detail', { skip }, async () => {
  await page.selectOption('#model', 'vgg');
  await page.waitForFunction(() => (document.getElementById('layer') as HTMLSelectElement).options[0].textContent!.includes('features.14'));
  await page.selectOption('#method', 'cam');
  await page.waitForFunction(() => document.getElementById('status')!.classList.contains('error'));
  const status = await page.$eval('#status', (e) => e.textContent ?? '');
  assert.match(status, /Cannot explain \(422\): the head after .*, not global average pooling then one linear layer/);
});

test('the inspection tabs show feature maps, histograms, the summary and the graph of the chosen image and model', { skip }, async () => {
  await page.goto(server.url + '/');
  await page.waitForFunction(() => (document.getElementById('status')?.textContent ?? '').includes('Choose an image'));
  await page.selectOption('#model', 'labelled');
  await page.waitForFunction(() => (document.getElementById('layer') as HTMLSelectElement).options.length > 3);
  await page.setInputFiles('#file', path.join(EXAMPLES, 'scene-512.jpg'));
  await page.waitForFunction(() => (document.getElementById('overlay') as HTMLImageElement).naturalWidth > 0
    && !(document.getElementById('overlay') as HTMLImageElement).hidden);

  const shows = (id: string) => page.waitForFunction((i) => {
    const img = document.getElementById(i) as HTMLImageElement;
    return !img.hidden && img.complete && img.naturalWidth > 0 && img.src.startsWith('blob:');
  }, id);
  const visible = (id: string) => page.$eval(`#panel-${id}`, (e) => !(e as HTMLElement).hidden && (e as HTMLElement).offsetHeight > 0);

  await page.click('#tab-features');
  await shows('features');
  assert.equal(await visible('features'), true);
  assert.equal(await visible('explain'), false);
  assert.equal(await page.$eval('#tab-features', (e) => e.getAttribute('aria-selected')), 'true');
  const grid = await page.$eval('#features', (e) => [(e as HTMLImageElement).naturalWidth, (e as HTMLImageElement).naturalHeight]);
  assert.ok(grid[0] > 64 && grid[1] > 64, grid.join('×'));
  await page.waitForFunction(() => (document.getElementById('status')?.textContent ?? '').includes('layer'));
  await mkdir(path.dirname(FEATURES_SCREENSHOT), { recursive: true });
  await page.screenshot({ path: FEATURES_SCREENSHOT });

  // Another layer refreshes the shown tab.
  const before = await page.$eval('#features', (e) => (e as HTMLImageElement).src);
  const layer = await page.$eval('#layer', (s) => (s as HTMLSelectElement).options[1].value);
  await page.selectOption('#layer', layer);
  await page.waitForFunction((b) => (document.getElementById('features') as HTMLImageElement).src !== b
    && (document.getElementById('status')?.textContent ?? '').includes('layer'), before);
  await shows('features');

  await page.click('#tab-histograms');
  await shows('histograms');
  assert.equal(await visible('histograms'), true);
  assert.equal(await visible('features'), false);

  await page.click('#tab-summary');
  await page.waitForFunction(() => (document.getElementById('summary')?.textContent ?? '').includes('Total params'));
  assert.equal(await visible('summary'), true);

  // The graph's answer is SVG (read from the response: the page revokes a blob URL once it is replaced).
  const graphAnswer = page.waitForResponse((r) => new URL(r.url()).pathname.endsWith('/graph'));
  await page.click('#tab-graph');
  const type = (await graphAnswer).headers()['content-type'] ?? '';
  await shows('graph');
  assert.equal(await visible('graph'), true);
  assert.match(type, /svg/);

  // Back to Explain: the overlay is there again, explained with the layer chosen meanwhile.
  await page.click('#tab-explain');
  await page.waitForFunction((l) => (document.getElementById('status')?.textContent ?? '').includes(l!)
    && !(document.getElementById('overlay') as HTMLImageElement).hidden, layer);
  assert.equal(await visible('explain'), true);
  assert.equal(await visible('graph'), false);
});

test('a long method runs as a job: a progress bar that moves, and Cancel stops it', { skip }, async () => {
  await page.goto(server.url + '/');
  await page.waitForFunction(() => (document.getElementById('status')?.textContent ?? '').includes('Choose an image'));
  await page.selectOption('#model', 'mobilenetv2');
  await page.waitForFunction(() => (document.getElementById('layer') as HTMLSelectElement).options.length > 3);
  await page.check('#aug-smooth');
  await page.selectOption('#method', 'scorecam');
  await page.setInputFiles('#file', path.join(EXAMPLES, 'star-ring.png'));
  // Score-CAM × 6 augmentations on MobileNetV2's 1280 channels: seconds of batches, each moving the bar.
  await page.waitForFunction(() => !document.getElementById('job')!.hidden && (document.getElementById('job-progress') as HTMLProgressElement).value > 0, undefined, { timeout: 20_000 });
  const first = await page.$eval('#job-progress', (e) => (e as HTMLProgressElement).value);
  await page.waitForFunction((v) => (document.getElementById('job-progress') as HTMLProgressElement).value > v, first, { timeout: 20_000 });
  assert.match(await page.$eval('#job-text', (e) => e.textContent ?? ''), /^\d+ \/ 7680 runs/);
  await mkdir(path.dirname(JOB_SCREENSHOT), { recursive: true });
  await page.screenshot({ path: JOB_SCREENSHOT });
  await page.click('#cancel');
  await page.waitForFunction(() => document.getElementById('job')!.hidden && (document.getElementById('status')?.textContent ?? '') === 'Cancelled.', undefined, { timeout: 5000 });
  await until(() => server.pool.stats().busy === 0, 2000, 'the worker to be free');

  // A short Score-CAM job runs to its end and shows its overlay.
  await page.uncheck('#aug-smooth');
  await page.selectOption('#model', 'labelled');
  await page.waitForFunction(() => (document.getElementById('explained')?.textContent ?? '').startsWith('scorecam:')
    && !(document.getElementById('overlay') as HTMLImageElement).hidden, undefined, { timeout: 20_000 });
  assert.equal(await page.$eval('#job', (e) => (e as HTMLElement).hidden), true);
});

test('with API keys on, the page asks for a key, keeps it in the tab and works with it', { skip }, async () => {
  const key = 'web-test-key-0123456789abcdef';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-webkeys-'));
  const models = await makeModelsDir({ fixtures: [], labelled: true });
  await writeFile(path.join(dir, 'keys'), `web:${key}\n`);
  const keyed = await startTestServer(models.dir, { API_KEYS_FILE: path.join(dir, 'keys') });
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const p = await context.newPage();
  try {
    await p.goto(keyed.url + '/');
    await p.waitForFunction(() => !document.getElementById('key-form')!.hidden);
    assert.match(await p.$eval('#status', (e) => e.textContent ?? ''), /needs an API key/);
    await p.fill('#api-key', 'wrong-key-wrong-key-wrong');
    await p.click('#key-form button');
    await p.waitForFunction(() => (document.getElementById('status')?.textContent ?? '').includes('refused'));
    await p.fill('#api-key', key);
    await p.click('#key-form button');
    await p.waitForFunction(() => (document.getElementById('status')?.textContent ?? '').includes('Choose an image'));
    assert.equal(await p.$eval('#key-form', (e) => (e as HTMLElement).hidden), true);
    await p.setInputFiles('#file', path.join(EXAMPLES, 'scene-512.jpg'));
    await p.waitForFunction(() => !(document.getElementById('overlay') as HTMLImageElement).hidden
      && (document.getElementById('overlay') as HTMLImageElement).naturalWidth > 0);
    // A long method through a job, with the key.
    await p.selectOption('#method', 'scorecam');
    await p.waitForFunction(() => (document.getElementById('explained')?.textContent ?? '').startsWith('scorecam:'), undefined, { timeout: 20_000 });
    const stored = await p.evaluate(() => [sessionStorage.getItem('camserve.apiKey'), localStorage.length, document.cookie]);
    assert.deepEqual(stored, [key, 0, ''], 'the key is in this tab\'s session storage only');
  } finally {
    await context.close();
    await keyed.close();
    await models.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});
