// The CLI and the HTTP routes speak one language: the same target string gives the same classes, the
// same parameter error names the same parameter, and every answer has the same prediction shape.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import type { RunningServer } from '../../src/http/server.js';
import { Contract, client } from '../http/contract.js';
import { EXAMPLES, form, hasShapes, makeModelsDir, startTestServer } from '../http/helpers.js';

const run = promisify(execFile);
const CLI = path.resolve('src/cli/main.ts');
const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', CLI, ...args]);
const SHAPES = path.resolve('models/shapes');
const IMAGE = path.join(EXAMPLES, 'star-ring.png');
const skip = !hasShapes && 'models/shapes/model.onnx is not there';

let server: RunningServer;
let cleanup: () => Promise<void>;
const contract = new Contract();
const api = client(contract, () => server.url);

before(async () => {
  if (skip) return;
  const m = await makeModelsDir({ fixtures: [], shapes: true });
  cleanup = m.cleanup;
  server = await startTestServer(m.dir, { DEFAULT_MODEL: 'shapes' });
});
after(async () => {
  await server?.close();
  await cleanup?.();
});

interface Pred { index: number; label: string | null; score: number | null; logit: number | null }

test('the same target string gives the same classes over HTTP and in the CLI (labels in any case, repeats dropped)', { skip }, async () => {
  const image = await readFile(IMAGE);
  for (const target of ['STAR,ring,3,Ring', 'ring', '5,star']) {
    const http = (await api('POST', '/cam', { body: form(image, { target, output: 'json' }) })).json<{ explanations: { target: Pred }[] }>();
    const { stdout } = await cli('explain', IMAGE, '-m', SHAPES, '--target', target, '--json');
    const local = JSON.parse(stdout) as { explanations: { target: Pred }[] };
    assert.deepEqual(local.explanations.map((e) => e.target.index), http.explanations.map((e) => e.target.index), target);
    assert.deepEqual(local.explanations.map((e) => e.target), http.explanations.map((e) => e.target), `${target}: the same prediction objects`);
  }
});

test('a bad parameter is refused in the same words by HTTP (400) and the CLI (exit 2)', { skip }, async () => {
  const image = await readFile(IMAGE);
  for (const [field, value, flag] of [['target', 'zebra', '--target'], ['alpha', '1.5', '--alpha'], ['colormap', 'rainbow', '--colormap']]) {
    const r = await api('POST', '/cam', { body: form(image, { [field]: value }) });
    assert.equal(r.status, 400);
    const detail = r.json<{ detail: string; parameter: string }>();
    assert.equal(detail.parameter, field);
    await assert.rejects(cli('explain', IMAGE, '-m', SHAPES, flag, value), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 2);
      assert.equal(e.stderr.trim(), `camserve: ${detail.detail}`);
      return true;
    });
  }
});

test('/cam, /features and /histograms describe the top class with the same fields and values', { skip }, async () => {
  const image = await readFile(IMAGE);
  const cam = (await api('POST', '/cam', { body: form(image, { output: 'json' }) })).json<{ predictions: Pred[]; score_function: string }>();
  const features = (await api('POST', '/features?output=json', { body: form(image) })).json<{ prediction: Pred; score_function: string }>();
  const hist = (await api('POST', '/histograms', { body: form(image) })).json<{ prediction: Pred; targets: Pred[]; score_function: string }>();
  assert.deepEqual(Object.keys(cam.predictions[0]).sort(), ['index', 'label', 'logit', 'score']);
  assert.deepEqual(features.prediction, cam.predictions[0]);
  assert.deepEqual(hist.prediction, cam.predictions[0]);
  assert.deepEqual(hist.targets[0], cam.predictions[0]);
  assert.equal(features.score_function, cam.score_function);
  assert.equal(hist.score_function, 'sigmoid');
});
