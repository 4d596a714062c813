// The HTTP contract over real HTTP on random ports: every route, method, output, class and layer
// selection, every documented error with its problem+json body, overload (503), client disconnects,
// shutdown with a request in flight, and /healthz latency during a long explanation. Every answer is
// checked against openapi.yaml, and the last test demands that every documented status was produced.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp, { type CreateRaw, type Sharp } from 'sharp';
import { parse } from 'yaml';
import { METHOD_NAMES } from '../../src/cam/types.js';
import { CAM_PARAMETERS } from '../../src/api/index.js';
import { createApp, type ServicePool } from '../../src/http/app.js';
import type { RunningServer } from '../../src/http/server.js';
import type { ModelStatus } from '../../src/workers/pool.js';
import { COLORMAP_NAMES } from '../../src/render/index.js';
import { ADMIN_ROUTES } from '../../src/http/routes/admin.js';
import { INSPECT_ROUTES } from '../../src/http/routes/inspect.js';
import { JOB_ROUTES } from '../../src/http/routes/jobs.js';
import { Contract, OPENAPI_FILE, client, type Answer } from './contract.js';
import { floatTensor, int as intAttr, int64Tensor, ints, makeNode } from '../../src/onnx/builder.js';
import { buildModelBytes } from '../helpers/graph.js';
import {
  EXAMPLES, LABELS, bombPng, form, hasShapes, makeModelsDir, picture, standInPool, startTestServer, testConfig, until,
} from './helpers.js';

/**
 * A model whose stem has an op without a gradient rule (CumSum): x [1,3,16,16] → CumSum(axis 3) → Conv 3→4
 * → Relu → GlobalAveragePool → Flatten → Gemm → 3 logits. Layer methods work after it; input gradients do not.
 */
function cumsumModel(): Uint8Array {
  const w = Float32Array.from({ length: 4 * 3 * 9 }, (_, i) => Math.sin(i * 1.7) * 0.3);
  return buildModelBytes({
    inputs: [{ name: 'x', dims: [1, 3, 16, 16] }],
    outputs: ['z'],
    initializers: [int64Tensor('axis', [], [3]), floatTensor('w', [4, 3, 3, 3], w), floatTensor('fc', [3, 4], [1, -1, 0.5, 0.2, -0.3, 0.8, 1, -0.6, 0.4, 0.1, -0.9, 0.7])],
    nodes: [
      makeNode('CumSum', ['x', 'axis'], ['s'], {}, 'stem_cumsum'),
      makeNode('Conv', ['s', 'w'], ['c'], { pads: ints([1, 1, 1, 1]), kernel_shape: ints([3, 3]) }),
      makeNode('Relu', ['c'], ['a']),
      makeNode('GlobalAveragePool', ['a'], ['p']),
      makeNode('Flatten', ['p'], ['f']),
      makeNode('Gemm', ['f', 'fc'], ['z'], { transB: intAttr(1) }),
    ],
  });
}

const contract = new Contract();
let server: RunningServer;
let cleanup: () => Promise<void>;
const api = client(contract, () => server.url);
let starRing: Buffer;
let scene: Buffer;

interface CamJson {
  model: string; method: string; layers: string[]; image: { width: number; height: number };
  score_function: string;
  predictions: { index: number; label: string | null; score: number }[];
  target_kind: string;
  explanations: {
    target: { index: number; label: string | null; score: number | null; logit: number | null }; objective: number | null;
    cam: { width: number; height: number; data: number[] }; png?: string; layers?: { layer: string; cam: { width: number; height: number } }[];
    metrics?: Record<string, number | null>;
  }[];
  timings_ms: Record<string, number>;
}
interface DffJson {
  method: string; layers: string[]; png?: string;
  concepts: { index: number; classes: { index: number; label: string | null; probability: number }[]; cam: { width: number; height: number; data: number[] } }[];
}
interface ModelDetailsJson {
  id: string; status: string; default_layer: string; num_classes: number; labels: string[] | null;
  candidate_layers: { name: string; dims: number[] }[]; input: { size: { width: number; height: number } }; error?: string;
}
interface ProblemJson { type: string; title: string; status: number; detail: string; parameter?: string; allowed?: unknown; received?: unknown; request_id?: string }

const post = (fields: Record<string, string>, image: Buffer | undefined = starRing, query = '', headers: Record<string, string> = {}) =>
  api('POST', `/cam${query}`, { body: form(image, fields), headers });
const postJson = async (fields: Record<string, string>, image?: Buffer) => {
  const r = await post({ output: 'json', ...fields }, image ?? starRing);
  assert.equal(r.status, 200, r.body.toString());
  return r.json<CamJson>();
};
function problem(r: Answer, status: number, slug: string, parameter?: string): ProblemJson {
  assert.equal(r.status, status, r.body.toString());
  assert.match(r.header('content-type') ?? '', /^application\/problem\+json/);
  const p = r.json<ProblemJson>();
  assert.equal(p.type, `urn:camserve:problem:${slug}`);
  assert.ok(p.detail.length > 0);
  if (parameter !== undefined) assert.equal(p.parameter, parameter);
  return p;
}
async function pngSize(buf: Buffer) {
  const m = await sharp(buf).metadata();
  return { width: m.width, height: m.height };
}

before(async () => {
  const models = await makeModelsDir({ fixtures: ['resnet', 'vgg', 'densenet'], labelled: true, broken: true, shapes: true });
  cleanup = models.cleanup;
  await mkdir(path.join(models.dir, 'cumsum'));
  await writeFile(path.join(models.dir, 'cumsum', 'model.onnx'), cumsumModel());
  server = await startTestServer(models.dir, { MAX_UPLOAD_BYTES: String(2 * 1024 * 1024), MAX_PIXELS: '4000000', MAX_IMAGE_SIDE: '256', DEFAULT_MODEL: 'resnet', MAX_BATCH: '3' });
  starRing = await readFile(path.join(EXAMPLES, 'star-ring.png'));
  scene = await readFile(path.join(EXAMPLES, 'scene-512.jpg'));
});
after(async () => {
  await server?.close();
  await cleanup?.();
});

describe('operations routes', () => {
  test('GET /healthz answers ok', async () => {
    const r = await api('GET', '/healthz');
    assert.equal(r.status, 200);
    assert.equal(r.json().status, 'ok');
  });

  test('GET /readyz reports the loaded and failed models and the pool', async () => {
    const r = await api('GET', '/readyz');
    assert.equal(r.status, 200);
    const j = r.json<{ models: { ready: number; failed: number }; default_model: string; workers: number; threads: number[] }>();
    assert.equal(j.models.failed, 1);
    assert.equal(j.models.ready, hasShapes ? 6 : 5);
    assert.equal(j.default_model, 'resnet');
    assert.equal(j.workers, 1);
    assert.equal(j.threads.length, 1, 'one thread count per worker');
  });

  test('GET /openapi.yaml serves the document as YAML', async () => {
    const r = await api('GET', '/openapi.yaml');
    assert.equal(r.status, 200);
    assert.match(r.header('content-type') ?? '', /^application\/yaml/);
    assert.deepEqual(parse(r.body.toString()), parse(await readFile(OPENAPI_FILE, 'utf8')));
  });

  test('GET / serves the web page and its script', async () => {
    const r = await api('GET', '/');
    assert.equal(r.status, 200);
    assert.match(r.body.toString(), /<title>camserve/);
    const js = await api('GET', '/app.js');
    assert.equal(js.status, 200);
    assert.match(js.header('content-type') ?? '', /javascript/);
  });

  test('an unknown route answers 404 problem+json', async () => {
    problem(await api('GET', '/nope'), 404, 'not-found');
    problem(await api('POST', '/models/x/y'), 404, 'not-found');
  });

  test('every documented path refuses other HTTP methods with 405 and Allow', async () => {
    for (const [p, ops] of Object.entries(contract.doc.paths)) {
      const allowed = Object.keys(ops).map((m) => m.toUpperCase());
      const wrong = allowed.includes('POST') ? 'GET' : allowed.includes('DELETE') ? 'PUT' : 'DELETE';
      const r = await api(wrong, p.replace('{id}', 'resnet').replace('{n}', '0'));
      const pr = problem(r, 405, 'method-not-allowed');
      assert.equal(pr.received, wrong);
      for (const m of allowed) assert.match(r.header('allow') ?? '', new RegExp(`\\b${m}\\b`));
    }
    const opt = await fetch(`${server.url}/cam`, { method: 'OPTIONS' });
    assert.equal(opt.status, 204);
    assert.match(opt.headers.get('allow') ?? '', /POST/);
  });

  test('HEAD works where GET does', async () => {
    const r = await api('HEAD', '/healthz');
    assert.equal(r.status, 200);
  });

  test('a request id is echoed when valid and made up otherwise', async () => {
    const given = await api('GET', '/healthz', { headers: { 'X-Request-Id': 'abc-123' } });
    assert.equal(given.header('x-request-id'), 'abc-123');
    const made = await api('GET', '/healthz', { headers: { 'X-Request-Id': 'bad id with spaces' } });
    assert.match(made.header('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const p = problem(await api('GET', '/nope', { headers: { 'X-Request-Id': 'req-404' } }), 404, 'not-found');
    assert.equal(p.request_id, 'req-404');
  });
});

describe('GET /models and /models/{id}', () => {
  test('lists every folder sorted, with the default, methods and colour maps; a broken one with its reason', async () => {
    const r = await api('GET', '/models');
    assert.equal(r.status, 200);
    const j = r.json<{ default: string; methods: string[]; colormaps: string[]; models: { id: string; status: string; error?: string; has_labels?: boolean }[] }>();
    const ids = ['broken', 'cumsum', 'densenet', 'labelled', 'resnet', ...(hasShapes ? ['shapes'] : []), 'vgg'];
    assert.deepEqual(j.models.map((m) => m.id), ids);
    assert.equal(j.default, 'resnet');
    assert.deepEqual(j.methods, [...METHOD_NAMES]);
    assert.deepEqual(j.colormaps, [...COLORMAP_NAMES]);
    const broken = j.models.find((m) => m.id === 'broken')!;
    assert.equal(broken.status, 'error');
    assert.match(broken.error ?? '', /not a valid ONNX model/);
    assert.equal(j.models.find((m) => m.id === 'labelled')!.has_labels, true);
  });

  test('a model: input spec, labels, default layer and candidate layers with shapes', async () => {
    const r = await api('GET', '/models/labelled');
    assert.equal(r.status, 200);
    const j = r.json<ModelDetailsJson & { input: { resize: string; dims: number[]; mean: number[] } }>();
    assert.deepEqual(j.labels, LABELS);
    assert.equal(j.input.resize, 'pad');
    assert.deepEqual(j.input.dims, [1, 3, 64, 64]);
    assert.deepEqual(j.input.mean, [0.485, 0.456, 0.406]);
    assert.ok(j.candidate_layers.length > 3);
    const def = j.candidate_layers.find((c) => c.name === j.default_layer);
    assert.ok(def, 'the default layer is a candidate');
    assert.equal(def.dims.length, 4);
    const plain = (await api('GET', '/models/resnet')).json<ModelDetailsJson>();
    assert.equal(plain.labels, null);
  });

  test('a broken model is described with its error; an unknown one is 404', async () => {
    const b = await api('GET', '/models/broken');
    assert.equal(b.status, 200);
    assert.equal(b.json().status, 'error');
    const p = problem(await api('GET', '/models/nope'), 404, 'unknown-model', 'id');
    assert.ok((p.allowed as string[]).includes('resnet'));
  });
});

describe('POST /cam outputs', () => {
  test('default: an overlay PNG of the image size, with the explained class in headers', async () => {
    const r = await post({});
    assert.equal(r.status, 200);
    assert.equal(r.header('content-type'), 'image/png');
    assert.deepEqual(await pngSize(r.body), { width: 128, height: 128 });
    assert.match(r.header('x-camserve-class-index') ?? '', /^\d$/);
    assert.ok(Number(r.header('x-camserve-class-score')) > 0);
    assert.equal(r.header('x-camserve-model'), 'resnet');
    assert.equal(r.header('x-camserve-method'), 'gradcam');
    assert.equal(r.header('x-camserve-class-label'), null, 'no label header without labels');
    assert.match(r.header('server-timing') ?? '', /forward;dur=/);
  });

  test('the explained class of a PNG is the top-1 prediction of the JSON answer', async () => {
    const png = await post({});
    const j = await postJson({});
    assert.equal(Number(png.header('x-camserve-class-index')), j.predictions[0].index);
    assert.equal(Number(png.header('x-camserve-class-score')).toFixed(6), j.predictions[0].score.toFixed(6));
  });

  test('output=heatmap: the colour map alone, of the image size', async () => {
    const r = await post({ output: 'heatmap' });
    assert.equal(r.status, 200);
    assert.equal(r.header('content-type'), 'image/png');
    assert.deepEqual(await pngSize(r.body), { width: 128, height: 128 });
    const overlay = await post({});
    assert.notDeepEqual(r.body, overlay.body);
  });

  test('output=json: predictions (top 5, best first), raw cam at the layer resolution, timings', async () => {
    const j = await postJson({});
    assert.equal(j.model, 'resnet');
    assert.equal(j.method, 'gradcam');
    assert.deepEqual(j.image, { width: 128, height: 128 });
    assert.equal(j.score_function, 'softmax');
    assert.equal(j.predictions.length, 5);
    for (let i = 1; i < 5; i++) assert.ok(j.predictions[i - 1].score >= j.predictions[i].score);
    const details = (await api('GET', '/models/resnet')).json<ModelDetailsJson>();
    assert.deepEqual(j.layers, [details.default_layer]);
    const dims = details.candidate_layers.find((c) => c.name === details.default_layer)!.dims;
    const e = j.explanations[0];
    assert.deepEqual([e.cam.height, e.cam.width], dims.slice(2));
    assert.equal(e.cam.data.length, e.cam.width * e.cam.height);
    assert.ok(e.cam.data.every((v) => Number.isFinite(v) && v >= 0), 'Grad-CAM is ReLU-ed');
    assert.equal(e.target.index, j.predictions[0].index);
    assert.equal(e.png, undefined);
    for (const k of ['decode_ms', 'preprocess_ms', 'forward_ms', 'queue_ms', 'total_ms']) assert.ok(k in j.timings_ms, k);
  });

  test('Accept: application/json selects JSON without output=', async () => {
    const r = await post({}, starRing, '', { Accept: 'application/json' });
    assert.equal(r.status, 200);
    assert.match(r.header('content-type') ?? '', /^application\/json/);
    const wild = await post({}, starRing, '', { Accept: '*/*' });
    assert.equal(wild.header('content-type'), 'image/png');
  });

  test('include_png=true adds a base64 overlay PNG to each explanation', async () => {
    const j = await postJson({ include_png: 'true', topk: '2' });
    assert.equal(j.explanations.length, 2);
    for (const e of j.explanations) {
      const png = Buffer.from(e.png!, 'base64');
      assert.deepEqual(await pngSize(png), { width: 128, height: 128 });
    }
    assert.ok('render_ms' in j.timings_ms);
  });

  test('a raw image body works, with parameters in the query', async () => {
    const r = await api('POST', '/cam?output=json&method=hirescam', { body: new Uint8Array(starRing), headers: { 'Content-Type': 'image/png' } });
    assert.equal(r.status, 200);
    assert.equal(r.json<CamJson>().method, 'hirescam');
    const oct = await api('POST', '/cam', { body: new Uint8Array(starRing), headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(oct.status, 200);
  });

  test('query parameters combine with form fields', async () => {
    const r = await post({ method: 'layercam' }, starRing, '?output=json');
    assert.equal(r.status, 200);
    assert.equal(r.json<CamJson>().method, 'layercam');
  });

  test('an image larger than MAX_IMAGE_SIDE is explained and rendered scaled to fit it', async () => {
    const r = await post({}, scene);
    assert.deepEqual(await pngSize(r.body), { width: 256, height: 256 });
    const j = await postJson({}, scene);
    assert.deepEqual(j.image, { width: 512, height: 512 }, 'the JSON reports the size as uploaded');
  });

  test('max_side: every picture fits it (aspect kept, never enlarged); the JSON still reports the upload\'s size', async () => {
    const wide = await (await picture(200, 100)).png().toBuffer();
    const r = await post({ max_side: '64' }, wide);
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.header('content-type'), 'image/png');
    assert.deepEqual(await pngSize(r.body), { width: 64, height: 32 });
    assert.deepEqual(await pngSize((await post({ max_side: '50', output: 'heatmap' })).body), { width: 50, height: 50 });
    assert.deepEqual(await pngSize((await post({ max_side: '200' })).body), { width: 128, height: 128 }, 'never enlarged');
    assert.deepEqual(await pngSize((await post({ max_side: '256' }, scene)).body), { width: 256, height: 256 }, 'MAX_IMAGE_SIDE is the largest');
    const j = await postJson({ max_side: '40', include_png: 'true' }, wide);
    assert.deepEqual(await pngSize(Buffer.from(j.explanations[0].png!, 'base64')), { width: 40, height: 20 });
    assert.deepEqual(j.image, { width: 200, height: 100 });
    const dff = await post({ method: 'dff', max_side: '32' });
    assert.deepEqual(await pngSize(dff.body), { width: 32, height: 32 });
  });

  test('max_side on a large JPEG: decoded shrunk, the same classes and map size as the full decode', async () => {
    // scene-512.jpg for a model of a small input: max_side 32 lets the server decode it at 1/4 or less.
    const full = await postJson({}, scene);
    const small = await postJson({ max_side: '32', include_png: 'true' }, scene);
    assert.deepEqual(small.image, { width: 512, height: 512 });
    assert.deepEqual(await pngSize(Buffer.from(small.explanations[0].png!, 'base64')), { width: 32, height: 32 });
    assert.equal(small.predictions[0].index, full.predictions[0].index);
    assert.deepEqual([small.explanations[0].cam.width, small.explanations[0].cam.height], [full.explanations[0].cam.width, full.explanations[0].cam.height]);
  });

  test('format: WebP and JPEG answers with their Content-Type and magic bytes; quality changes the bytes', async () => {
    const webp = await post({ format: 'webp' });
    assert.equal(webp.status, 200, webp.body.toString());
    assert.equal(webp.header('content-type'), 'image/webp');
    assert.equal(webp.body.subarray(0, 4).toString('latin1'), 'RIFF');
    assert.equal(webp.body.subarray(8, 12).toString('latin1'), 'WEBP');
    assert.match(webp.header('x-camserve-class-index') ?? '', /^\d$/);
    const jpeg = await post({ format: 'jpeg', output: 'heatmap', max_side: '100' });
    assert.equal(jpeg.header('content-type'), 'image/jpeg');
    assert.deepEqual([...jpeg.body.subarray(0, 3)], [0xff, 0xd8, 0xff]);
    assert.deepEqual(await pngSize(jpeg.body), { width: 100, height: 100 });
    const png = await post({ format: 'png' });
    assert.equal(png.header('content-type'), 'image/png');
    const low = await post({ format: 'jpeg', quality: '5' }, scene);
    const high = await post({ format: 'jpeg', quality: '95' }, scene);
    assert.ok(low.body.length < high.body.length, `${low.body.length} < ${high.body.length}`);
  });

  test('png_compression: level 0 is larger than level 9, the same pixels', async () => {
    const l0 = await post({ png_compression: '0' }, scene);
    const l9 = await post({ png_compression: '9' }, scene);
    assert.equal(l0.status, 200, l0.body.toString());
    assert.ok(l0.body.length > l9.body.length, `${l0.body.length} > ${l9.body.length}`);
    assert.ok((await sharp(l0.body).raw().toBuffer()).equals(await sharp(l9.body).raw().toBuffer()));
    const j = await postJson({ png_compression: '0', include_png: 'true' });
    assert.ok(Buffer.from(j.explanations[0].png!, 'base64').length > 128 * 128 * 3, 'stored');
  });

  test('bad max_side, format, png_compression and quality are 400 naming the parameter', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ max_side: '0' }, 'max_side'], [{ max_side: 'abc' }, 'max_side'], [{ max_side: '1e9' }, 'max_side'],
      [{ max_side: '1000000000' }, 'max_side'], [{ max_side: '257' }, 'max_side'], [{ max_side: '15' }, 'max_side'],
      [{ max_side: '-5' }, 'max_side'], [{ max_side: '64.5' }, 'max_side'], [{ max_side: 'constructor' }, 'max_side'],
      [{ format: 'gif' }, 'format'], [{ format: 'PNG' }, 'format'], [{ format: 'constructor' }, 'format'], [{ format: '__proto__' }, 'format'],
      [{ format: 'webp', output: 'json' }, 'format'], [{ format: 'jpeg', output: 'json', include_png: 'true' }, 'format'],
      [{ png_compression: '10' }, 'png_compression'], [{ png_compression: '-1' }, 'png_compression'], [{ png_compression: 'max' }, 'png_compression'],
      [{ png_compression: 'constructor' }, 'png_compression'], [{ png_compression: '3', format: 'webp' }, 'png_compression'],
      [{ quality: '0', format: 'jpeg' }, 'quality'], [{ quality: '101', format: 'webp' }, 'quality'], [{ quality: '80' }, 'quality'],
      [{ quality: 'constructor', format: 'jpeg' }, 'quality'],
    ];
    for (const [fields, parameter] of cases) {
      const p = problem(await post(fields), 400, 'bad-parameter', parameter);
      assert.equal(p.received, fields[parameter], JSON.stringify(fields));
    }
    problem(await post({}, starRing, '?format=gif'), 400, 'bad-parameter', 'format');
    problem(await post({}, starRing, '?constructor=1'), 400, 'bad-parameter', 'constructor');
  });

  test('alpha and colormap change the picture: alpha=1 is the image alone whatever the colour map', async () => {
    const jet = await post({ colormap: 'jet' });
    const gray = await post({ colormap: 'gray' });
    assert.notDeepEqual(jet.body, gray.body);
    const a = await sharp((await post({ alpha: '1', colormap: 'jet' })).body).raw().toBuffer();
    const b = await sharp((await post({ alpha: '1', colormap: 'viridis' })).body).raw().toBuffer();
    assert.deepEqual(a, b);
    const h = await sharp((await post({ alpha: '0' })).body).raw().toBuffer();
    const hm = await sharp((await post({ output: 'heatmap' })).body).raw().toBuffer();
    let diff = 0;
    for (let i = 0; i < h.length; i++) diff = Math.max(diff, Math.abs(h[i] - hm[i]));
    assert.ok(diff <= 1, `alpha=0 is the heat map alone (max diff ${diff})`);
  });
});

describe('POST /cam methods', () => {
  /** Methods of many forward runs: their PNG answer is left to the render tests (JSON is enough here). */
  const SLOW = new Set(['iscam', 'sscam']);
  for (const method of METHOD_NAMES) {
    test(`${method} explains the image`, async () => {
      const r = await post({ method, model: 'resnet', output: 'json' });
      assert.equal(r.status, 200, r.body.toString());
      if (method === 'dff') {
        const d = r.json<DffJson>();
        assert.equal(d.method, 'dff');
        assert.equal(d.concepts.length, 5);
        for (const c of d.concepts) {
          assert.equal(c.cam.data.length, c.cam.width * c.cam.height);
          assert.equal(c.classes.length, 2);
        }
      } else {
        const j = r.json<CamJson>();
        assert.equal(j.method, method);
        const cam = j.explanations[0].cam;
        assert.equal(cam.data.length, cam.width * cam.height);
        assert.ok(cam.data.every((v) => Number.isFinite(v) && v >= 0), `${method}: finite, non-negative`);
        if (['saliency', 'integrated-gradients', 'smoothgrad', 'guided-backprop', 'fullgrad'].includes(method)) {
          assert.deepEqual(j.layers, ['input']);
          assert.deepEqual([cam.width, cam.height], [64, 64]);
        }
      }
      if (SLOW.has(method)) return;
      const png = await post({ method, model: 'resnet' });
      assert.equal(png.status, 200);
      assert.equal(png.header('x-camserve-method'), method);
      assert.equal(png.header('content-type'), 'image/png');
    });
  }

  test('eigen_smooth and aug_smooth are applied', async () => {
    const plain = await postJson({ method: 'gradcam' });
    const eigen = await postJson({ method: 'gradcam', eigen_smooth: 'true' });
    const aug = await postJson({ method: 'gradcam', aug_smooth: '1' });
    assert.notDeepEqual(eigen.explanations[0].cam.data, plain.explanations[0].cam.data);
    assert.notDeepEqual(aug.explanations[0].cam.data, plain.explanations[0].cam.data);
    const off = await postJson({ method: 'gradcam', aug_smooth: 'false', eigen_smooth: '0' });
    assert.deepEqual(off.explanations[0].cam.data, plain.explanations[0].cam.data);
  });

  test('a method that cannot explain the model is 422 saying why (cam on VGG)', async () => {
    const p = problem(await post({ method: 'cam', model: 'vgg' }), 422, 'cannot-explain');
    assert.match(p.detail, /global average pooling/);
  });

  test('an input gradient through an op without a gradient rule is 422 naming the op and the node; layer methods still work', async () => {
    const p = problem(await post({ method: 'saliency', model: 'cumsum' }), 422, 'cannot-explain');
    assert.match(p.detail, /CumSum node "stem_cumsum"/);
    assert.match(p.detail, /no gradient rule for op type CumSum/);
    assert.equal((await post({ method: 'gradcam', model: 'cumsum' })).status, 200);
  });
});

describe('POST /cam target kinds, seeds, DFF and metrics', () => {
  test('target_kind: what is differentiated changes the map; the answer says which, with the objective', async () => {
    const logit = await postJson({ model: 'resnet', target: '3' });
    const soft = await postJson({ model: 'resnet', target: '3', target_kind: 'softmax' });
    const rest = await postJson({ model: 'resnet', target: '3', target_kind: 'rest' });
    assert.equal(logit.target_kind, 'class');
    assert.equal(soft.target_kind, 'softmax');
    assert.equal(logit.explanations[0].objective, logit.explanations[0].target.logit);
    const p = soft.explanations[0].target.score!;
    assert.ok(Math.abs(soft.explanations[0].objective! - p) < 1e-6, 'softmax objective = the class probability');
    assert.notDeepEqual(soft.explanations[0].cam.data, logit.explanations[0].cam.data);
    assert.notDeepEqual(rest.explanations[0].cam.data, logit.explanations[0].cam.data);
    const png = await post({ model: 'resnet', target: '3', target_kind: 'softmax' });
    assert.equal(png.header('x-camserve-target-kind'), 'softmax');
  });

  test('finercam is gradcam with target_kind=finer; finer_comparison and finer_alpha change it', async () => {
    const finer = await postJson({ model: 'resnet', method: 'finercam' });
    const same = await postJson({ model: 'resnet', method: 'gradcam', target_kind: 'finer', finer_comparison: '1,2,3', finer_alpha: '1' });
    assert.equal(finer.target_kind, 'finer');
    assert.deepEqual(finer.explanations[0].cam.data, same.explanations[0].cam.data);
    const other = await postJson({ model: 'resnet', method: 'finercam', finer_comparison: '1', finer_alpha: '0.6' });
    assert.notDeepEqual(other.explanations[0].cam.data, finer.explanations[0].cam.data);
  });

  test('seed: noisy and random methods are reproducible per seed and differ across seeds', async () => {
    // randomcam at layer2 (16 channels × 8×8): a random combination is rarely negative everywhere there.
    for (const [method, layer] of [['smoothgrad', undefined], ['randomcam', '/layer2/layer2.0/relu_1/Relu_output_0']] as const) {
      const at: Record<string, string> = layer ? { layer } : {};
      const a = await postJson({ model: 'resnet', method, ...at });
      const b = await postJson({ model: 'resnet', method, seed: '0', ...at });
      const c = await postJson({ model: 'resnet', method, seed: '7', ...at });
      assert.ok(a.explanations[0].cam.data.some((v) => v > 0) && c.explanations[0].cam.data.some((v) => v > 0), `${method}: maps not empty`);
      assert.deepEqual(a.explanations[0].cam.data, b.explanations[0].cam.data, method);
      assert.notDeepEqual(a.explanations[0].cam.data, c.explanations[0].cam.data, method);
    }
  });

  test('dff: concepts=k concepts with their classes (labels), one picture as PNG (include_png in JSON)', async () => {
    const r = await post({ model: 'labelled', method: 'dff', concepts: '3', output: 'json', include_png: 'true' });
    assert.equal(r.status, 200, r.body.toString());
    const d = r.json<DffJson>();
    assert.equal(d.concepts.length, 3);
    assert.ok(LABELS.includes(d.concepts[0].classes[0].label!));
    assert.ok(d.png && d.png.length > 100);
    const png = await post({ model: 'labelled', method: 'dff', concepts: '3' });
    assert.equal(png.status, 200);
    assert.equal(png.header('x-camserve-concepts'), '3');
    assert.deepEqual(await pngSize(png.body), await pngSize(starRing));
    const heat = await post({ model: 'labelled', method: 'dff', output: 'heatmap' });
    assert.equal(heat.status, 200);
  });

  test('metrics: values in JSON and as X-Camserve-Metric-<name> headers of the PNG, the same numbers', async () => {
    const names = 'road_combined,confidence_change,drop_in_confidence,increase_in_confidence,deletion,insertion,arcc';
    const j = await postJson({ model: 'resnet', metrics: names, road_percentiles: '20,50,80' });
    const m = j.explanations[0].metrics!;
    assert.deepEqual(Object.keys(m), ['road_combined', 'confidence_change', 'drop_in_confidence', 'increase_in_confidence', 'arcc', 'deletion', 'insertion']);
    assert.ok(Object.values(m).every((v) => Number.isFinite(v)));
    assert.ok(m.arcc! >= 0 && m.arcc! <= 1 && m.deletion! >= 0 && m.insertion! <= 1);
    assert.ok(j.timings_ms.metrics_ms > 0);
    const png = await post({ model: 'resnet', metrics: names, road_percentiles: '20,50,80' });
    for (const [k, v] of Object.entries(m)) assert.equal(Number(png.header(`x-camserve-metric-${k}`)), v, k);
    const logit = await postJson({ model: 'resnet', metrics: 'confidence_change', metric_score: 'logit' });
    assert.notEqual(logit.explanations[0].metrics!.confidence_change, m.confidence_change);
    // An all-zero map (randomcam, seed 7, here): ROAD removes every pixel at every percentile, for both orders alike.
    const empty = await postJson({ model: 'resnet', method: 'randomcam', seed: '7', metrics: 'road_combined' });
    assert.ok(empty.explanations[0].cam.data.every((v) => v === 0));
    assert.equal(empty.explanations[0].metrics!.road_combined, 0);
  });

  test('parameters that do not fit the method or each other are 400 naming them', async () => {
    for (const [fields, parameter] of [
      [{ target_kind: 'likely' }, 'target_kind'],
      [{ model: 'resnet', target_kind: 'binary' }, 'target_kind'],
      [{ method: 'finercam', target_kind: 'softmax' }, 'target_kind'],
      [{ finer_alpha: '0.5' }, 'finer_alpha'],
      [{ target_kind: 'finer', finer_comparison: '0' }, 'finer_comparison'],
      [{ model: 'resnet', target_kind: 'finer', finer_comparison: '10' }, 'finer_comparison'],
      [{ concepts: '3' }, 'concepts'],
      [{ method: 'dff', target: '1' }, 'target'],
      [{ method: 'dff', metrics: 'arcc' }, 'metrics'],
      [{ method: 'saliency', layer: '/layer4/layer4.0/relu_1/Relu_output_0', model: 'resnet' }, 'layer'],
      [{ method: 'integrated-gradients', aug_smooth: 'true' }, 'aug_smooth'],
      [{ metrics: 'pointing' }, 'metrics'],
      [{ metrics: 'arcc', road_percentiles: '50' }, 'road_percentiles'],
      [{ metrics: 'road_morf', road_percentiles: '0,50' }, 'road_percentiles'],
      [{ metric_score: 'logit' }, 'metric_score'],
      [{ seed: '-1' }, 'seed'],
    ] as [Record<string, string>, string][]) {
      problem(await post(fields), 400, 'bad-parameter', parameter);
    }
  });
});

describe('POST /cam classes', () => {
  test('target=index explains that class', async () => {
    const top = await postJson({});
    const other = top.predictions[3].index;
    const j = await postJson({ target: String(other) });
    assert.equal(j.explanations.length, 1);
    assert.equal(j.explanations[0].target.index, other);
    assert.equal(j.explanations[0].target.score, top.predictions[3].score);
    const png = await post({ target: String(other) });
    assert.equal(png.header('x-camserve-class-index'), String(other));
  });

  test('several targets, in the order given, each with its own map', async () => {
    const j = await postJson({ target: '7,2,5' });
    assert.deepEqual(j.explanations.map((e) => e.target.index), [7, 2, 5]);
    assert.notDeepEqual(j.explanations[0].cam.data, j.explanations[1].cam.data);
    const single = await postJson({ target: '2' });
    assert.deepEqual(single.explanations[0].cam.data, j.explanations[1].cam.data, 'a class explained with others equals it alone');
  });

  test('topk explains the k best classes, best first', async () => {
    const j = await postJson({ topk: '3' });
    assert.deepEqual(j.explanations.map((e) => e.target.index), j.predictions.slice(0, 3).map((p) => p.index));
  });

  test('labels name classes in target (exact or case-insensitive), in JSON and in the PNG headers', async () => {
    const j = await postJson({ model: 'labelled', target: 'star,Ring' });
    assert.deepEqual(j.explanations.map((e) => [e.target.index, e.target.label]), [[3, 'star'], [5, 'ring']]);
    assert.ok(j.predictions.every((p) => p.label === LABELS[p.index]));
    const png = await post({ model: 'labelled', target: 'heart' });
    assert.equal(png.status, 200);
    assert.equal(png.header('x-camserve-class-index'), '4');
    assert.equal(png.header('x-camserve-class-label'), 'heart');
  });

  test('the default shapes model explains its classes by name', { skip: !hasShapes && 'models/shapes/model.onnx is not there yet' }, async () => {
    const details = (await api('GET', '/models/shapes')).json<ModelDetailsJson>();
    assert.ok(details.labels && details.labels.includes('star'));
    const j = await postJson({ model: 'shapes', target: 'star,ring' });
    assert.deepEqual(j.explanations.map((e) => e.target.label), ['star', 'ring']);
    assert.equal(j.score_function, 'sigmoid');
  });

  test('bad targets are 400 naming the parameter, what is allowed and what was received', async () => {
    let p = problem(await post({ model: 'labelled', target: 'unicorn' }), 400, 'bad-parameter', 'target');
    assert.deepEqual((p.allowed as { labels: string[] }).labels, LABELS);
    assert.equal(p.received, 'unicorn');
    p = problem(await post({ target: '10' }), 400, 'bad-parameter', 'target');
    assert.deepEqual(p.allowed, { indices: '0..9' });
    problem(await post({ target: 'cat' }), 400, 'bad-parameter', 'target');
    problem(await post({ target: '1,,2', output: 'json' }), 400, 'bad-parameter', 'target');
    problem(await post({ target: '1', topk: '2', output: 'json' }), 400, 'bad-parameter', 'topk');
    problem(await post({ topk: '0', output: 'json' }), 400, 'bad-parameter', 'topk');
    problem(await post({ topk: '11', output: 'json' }), 400, 'bad-parameter', 'topk');
    problem(await post({ topk: 'two', output: 'json' }), 400, 'bad-parameter', 'topk');
  });

  test('several classes with a PNG output are refused: a PNG shows one class', async () => {
    const p = problem(await post({ target: '1,2' }), 400, 'bad-parameter', 'output');
    assert.match(p.detail, /output=json/);
    problem(await post({ topk: '2', output: 'heatmap' }), 400, 'bad-parameter', 'output');
  });
});

describe('POST /cam layers', () => {
  let details: ModelDetailsJson;
  before(async () => {
    details = (await api('GET', '/models/resnet')).json<ModelDetailsJson>();
  });

  test('another candidate layer gives a map at its resolution', async () => {
    const layer = details.candidate_layers.find((c) => c.dims[2] === 8)!;
    const j = await postJson({ layer: layer.name });
    assert.deepEqual(j.layers, [layer.name]);
    assert.deepEqual([j.explanations[0].cam.height, j.explanations[0].cam.width], [8, 8]);
  });

  test('several layers: a combined map at the input size, and each layer\'s own map', async () => {
    const a = details.candidate_layers.find((c) => c.dims[2] === 8)!;
    const b = details.candidate_layers.find((c) => c.dims[2] === 16)!;
    const j = await postJson({ layer: `${a.name},${details.default_layer},${b.name}` });
    assert.equal(j.layers.length, 3);
    const e = j.explanations[0];
    assert.deepEqual([e.cam.width, e.cam.height], [64, 64]);
    assert.deepEqual(e.layers!.map((l) => l.layer), j.layers);
    assert.deepEqual(e.layers!.map((l) => l.cam.width), [8, details.candidate_layers.find((c) => c.name === details.default_layer)!.dims[3], 16]);
    const png = await post({ layer: `${a.name},${b.name}` });
    assert.equal(png.status, 200);
  });

  test('an unknown layer is 400 listing the candidates', async () => {
    const p = problem(await post({ layer: 'no/such/tensor' }), 400, 'bad-parameter', 'layer');
    assert.deepEqual(p.allowed, details.candidate_layers.map((c) => c.name));
  });
});

describe('POST /cam parameters', () => {
  test('bad values are 400 naming the parameter, the allowed values and what was received', async () => {
    const cases: [Record<string, string>, string, unknown][] = [
      [{ method: 'gradcam+++' }, 'method', [...METHOD_NAMES]],
      [{ output: 'gif' }, 'output', ['overlay', 'heatmap', 'json']],
      [{ colormap: 'rainbow' }, 'colormap', [...COLORMAP_NAMES]],
      [{ alpha: '1.5' }, 'alpha', undefined],
      [{ alpha: 'half' }, 'alpha', undefined],
      [{ eigen_smooth: 'yes please' }, 'eigen_smooth', ['true', 'false', '1', '0']],
      [{ include_png: 'true' }, 'include_png', undefined],
    ];
    for (const [fields, parameter, allowed] of cases) {
      const p = problem(await post(fields), 400, 'bad-parameter', parameter);
      assert.equal(p.received, Object.values(fields)[0]);
      if (allowed) assert.deepEqual(p.allowed, allowed);
    }
  });

  test('inherited property names are not booleans: 400, and the worker stays free (form and query, any case)', async () => {
    const hostile = ['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty', 'Constructor', '__PROTO__'];
    for (const name of ['eigen_smooth', 'aug_smooth', 'include_png']) {
      for (const value of hostile) {
        const fields = name === 'include_png' ? { output: 'json', [name]: value } : { [name]: value };
        const p = problem(await post(fields), 400, 'bad-parameter', name);
        assert.equal(p.received, value);
        problem(await post({}, starRing, `?${name}=${encodeURIComponent(value)}`), 400, 'bad-parameter', name);
      }
    }
    const ok = await post({});
    assert.equal(ok.status, 200);
    const ready = (await api('GET', '/readyz')).json<{ busy: number }>();
    assert.equal(ready.busy, 0);
  });

  test('unknown parameters are refused, in the form and in the query', async () => {
    let p = problem(await post({ colour: 'jet' }), 400, 'bad-parameter', 'colour');
    assert.deepEqual(p.allowed, [...CAM_PARAMETERS]);
    p = problem(await post({}, starRing, '?methd=gradcam'), 400, 'bad-parameter', 'methd');
  });

  test('a parameter given twice (query and form) is refused', async () => {
    problem(await post({ method: 'gradcam' }, starRing, '?method=hirescam'), 400, 'bad-parameter', 'method');
  });

  test('an empty value is the same as leaving the parameter out', async () => {
    const r = await post({ method: '', layer: '', target: '' });
    assert.equal(r.status, 200);
    assert.equal(r.header('x-camserve-method'), 'gradcam');
  });

  test('openapi.yaml documents exactly the parameters the server accepts', () => {
    const op = contract.doc.paths['/cam'].post;
    const names = (op.parameters ?? []).map((p) => contract.doc.components.parameters[p.$ref!.split('/').pop()!].name);
    assert.deepEqual([...names].sort(), [...CAM_PARAMETERS].sort());
  });
});

describe('POST /cam images', () => {
  const formats: [string, (s: Sharp) => Sharp][] = [
    ['jpeg', (s) => s.jpeg()], ['png', (s) => s.png()], ['webp', (s) => s.webp()],
    ['tiff', (s) => s.tiff()], ['avif', (s) => s.avif()], ['gif', (s) => s.gif()],
  ];
  for (const [name, encode] of formats) {
    test(`${name} is accepted`, async () => {
      const img = await encode(await picture(96, 80)).toBuffer();
      const j = await postJson({}, img);
      assert.deepEqual(j.image, { width: 96, height: 80 });
    });
  }

  test('an animated GIF gives its first frame', async () => {
    const frames = await Promise.all([picture(40, 30), picture(40, 30)].map(async (p) => (await p).raw().toBuffer()));
    frames[1].fill(0);
    const gif = await sharp(Buffer.concat(frames), { raw: { width: 40, height: 60, channels: 3, pageHeight: 30 } as CreateRaw })
      .gif({ loop: 0 }).toBuffer();
    assert.equal((await sharp(gif).metadata()).pages, 2);
    const j = await postJson({}, gif);
    assert.deepEqual(j.image, { width: 40, height: 30 });
    const first = await postJson({}, await (await picture(40, 30)).gif().toBuffer());
    assert.deepEqual(j.predictions, first.predictions);
  });

  test('EXIF orientation is honoured: the explanation is of the upright image', async () => {
    const base = await picture(120, 60);
    const upright = await base.clone().jpeg().toBuffer();
    // Stored rotated by −90°, with orientation 6 (display: rotate 90° clockwise) it shows as `upright`.
    const stored = await sharp(await base.clone().rotate(-90).jpeg().toBuffer()).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    assert.equal((await sharp(stored).metadata()).orientation, 6);
    const a = await postJson({}, upright);
    const b = await postJson({}, stored);
    assert.deepEqual(b.image, { width: 120, height: 60 });
    assert.equal(b.predictions[0].index, a.predictions[0].index);
    assert.ok(Math.abs(b.predictions[0].score - a.predictions[0].score) < 0.02);
    assert.deepEqual(await pngSize((await post({}, stored)).body), { width: 120, height: 60 });
  });

  test('grey, grey+alpha, RGBA and 16-bit images are accepted', async () => {
    const grey = await (await picture(64, 64)).toColourspace('b-w').png().toBuffer();
    const greyAlpha = await (await picture(64, 64)).toColourspace('b-w').ensureAlpha(0.5).png().toBuffer();
    const rgba = await (await picture(64, 64)).ensureAlpha(0.3).png().toBuffer();
    const deep = await (await picture(64, 64)).toColourspace('rgb16').png().toBuffer();
    const meta = await Promise.all([grey, greyAlpha, rgba, deep].map((b) => sharp(b).metadata()));
    assert.deepEqual(meta.map((m) => [m.channels, m.depth]), [[1, 'uchar'], [2, 'uchar'], [4, 'uchar'], [3, 'ushort']]);
    for (const img of [grey, greyAlpha, rgba, deep]) {
      const r = await post({}, img);
      assert.equal(r.status, 200, r.body.toString());
      assert.deepEqual(await pngSize(r.body), { width: 64, height: 64 });
    }
  });

  test('not an image is 415; an SVG is 415; a non-image request body is 415', async () => {
    problem(await post({}, Buffer.from('plain text, not an image')), 415, 'unsupported-media-type');
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    const p = problem(await post({}, svg), 415, 'unsupported-media-type');
    assert.match(p.detail, /svg/);
    const text = await api('POST', '/cam', { body: 'an image, honestly', headers: { 'Content-Type': 'text/plain' } });
    const pj = problem(text, 415, 'unsupported-media-type');
    assert.equal(pj.received, 'text/plain');
    // JSON carries base64 images: one that is not an image is 415 like any other.
    problem(await api('POST', '/cam', { body: JSON.stringify({ image: Buffer.from('not an image').toString('base64') }), headers: { 'Content-Type': 'application/json' } }), 415, 'unsupported-media-type');
  });

  test('a truncated image is 400 damaged-image', async () => {
    const big = await (await picture(300, 300)).png({ compressionLevel: 0 }).toBuffer();
    problem(await post({}, big.subarray(0, 5000)), 400, 'damaged-image');
  });

  test('no image, or a file in another field, or more files than MAX_BATCH, is 400', async () => {
    problem(await api('POST', '/cam', { body: form(undefined, { method: 'gradcam' }) }), 400, 'missing-image', 'image');
    problem(await api('POST', '/cam'), 400, 'missing-image');
    const wrong = new FormData();
    wrong.append('picture', new Blob([new Uint8Array(starRing)]), 'a.png');
    problem(await api('POST', '/cam', { body: wrong }), 400, 'bad-parameter', 'picture');
    const four = form(starRing);
    for (let i = 0; i < 3; i++) four.append('image', new Blob([new Uint8Array(starRing)]), `${i}.png`);
    const p = problem(await api('POST', '/cam', { body: four }), 400, 'bad-parameter', 'image');
    assert.match(p.detail, /at most 3 images/);
  });

  test('a decompression bomb is refused with 413 from its header', async () => {
    const bomb = bombPng(100_000, 100_000);
    assert.ok(bomb.length < 100);
    const p = problem(await post({}, bomb), 413, 'image-too-large');
    assert.equal((p as unknown as { limit_pixels: number }).limit_pixels, 4_000_000);
    const real = await (await picture(2100, 2000)).png().toBuffer();
    problem(await post({}, real), 413, 'image-too-large');
  });

  test('an upload over MAX_UPLOAD_BYTES is 413, as a form and as a raw body', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    problem(await post({}, big), 413, 'payload-too-large');
    problem(await api('POST', '/cam', { body: new Uint8Array(big), headers: { 'Content-Type': 'image/png' } }), 413, 'payload-too-large');
  });
});

describe('POST /cam models', () => {
  test('without model= the default model answers', async () => {
    const r = await post({});
    assert.equal(r.header('x-camserve-model'), 'resnet');
  });

  test('an unknown model is 404 listing the models', async () => {
    const p = problem(await post({ model: 'resnet50' }), 404, 'unknown-model', 'model');
    assert.ok((p.allowed as string[]).includes('vgg'));
  });

  test('a model that failed to load is 422 with its reason', async () => {
    const p = problem(await post({ model: 'broken' }), 422, 'model-unavailable');
    assert.match(p.detail, /not a valid ONNX model/);
  });

  test('a model whose resize is pad is explained over the image without the borders', async () => {
    const wide = await (await picture(128, 64)).png().toBuffer();
    const r = await post({ model: 'labelled' }, wide);
    assert.equal(r.status, 200);
    assert.deepEqual(await pngSize(r.body), { width: 128, height: 64 });
  });
});

describe('metrics', () => {
  test('GET /metrics counts requests and latency by route, CAM method and model, and shows the queue', async () => {
    await post({ method: 'xgradcam', model: 'densenet' });
    const r = await api('GET', '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.header('content-type') ?? '', /^text\/plain/);
    const text = r.body.toString();
    assert.match(text, /camserve_http_requests_total\{route="\/cam",http_method="POST",cam_method="xgradcam",model="densenet",status="200"\} 1/);
    assert.match(text, /camserve_http_request_duration_seconds_bucket\{le="[^"]+",route="\/cam",http_method="POST",cam_method="xgradcam",model="densenet"\}/);
    assert.match(text, /camserve_inference_seconds_count\{cam_method="xgradcam",model="densenet"\} 1/);
    assert.match(text, /camserve_queue_depth 0/);
    assert.match(text, /camserve_workers 1/);
    assert.match(text, /camserve_http_requests_total\{route="unmatched",http_method="GET",cam_method="",model="",status="404"\}/);
  });
});

/** A server around a stand-in pool, for states the real one reaches only by accident. */
async function standIn(pool: ServicePool | Promise<ServicePool>) {
  const app = createApp(pool, testConfig('/nonexistent'), {});
  const s = http.createServer(app);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  return {
    api: client(contract, () => url),
    close: async () => {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
      await app.camserve.close();
    },
  };
}

describe('states of the pool', () => {
  test('while models load: /healthz answers, /readyz, the model routes and /cam are 503 with Retry-After', async () => {
    const s = await standIn(new Promise<ServicePool>(() => undefined));
    try {
      assert.equal((await s.api('GET', '/healthz')).status, 200);
      for (const [m, p] of [['GET', '/readyz'], ['GET', '/models'], ['GET', '/models/resnet']] as const) {
        const r = await s.api(m, p);
        problem(r, 503, 'not-ready');
        assert.equal(r.header('retry-after'), '2');
      }
      problem(await s.api('POST', '/cam', { body: form(starRing) }), 503, 'not-ready');
    } finally {
      await s.close();
    }
  });

  test('no usable model: /readyz is 503 naming the failures', async () => {
    const broken: ModelStatus[] = [{ id: 'broken', ok: false, error: 'not a valid ONNX model' }];
    const s = await standIn(standInPool({ models: () => broken }));
    try {
      const p = problem(await s.api('GET', '/readyz'), 503, 'not-ready');
      assert.match(p.detail, /broken: not a valid ONNX model/);
    } finally {
      await s.close();
    }
  });

  test('during shutdown /readyz is 503 and answers close their connection', async () => {
    const models = server.pool.models();
    const app = createApp(standInPool({ models: () => models }), testConfig('/nonexistent'));
    const s = http.createServer(app);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    try {
      await app.camserve.ready;
      const sapi = client(contract, () => url);
      assert.equal((await sapi('GET', '/readyz')).status, 200);
      app.camserve.beginShutdown();
      const r = await sapi('GET', '/readyz');
      problem(r, 503, 'shutting-down');
      assert.equal(r.header('connection'), 'close');
      assert.equal((await sapi('GET', '/healthz')).status, 200, 'still alive');
    } finally {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
      await app.camserve.close();
    }
  });

  test('an unexpected error is 500 without its message or stack, under a request id', async () => {
    const models = server.pool.models();
    const failing = standInPool({
      models: () => models,
      explain: () => Promise.reject(new Error('secret internals\n    at somewhere (/app/x.js:1:1)')),
    });
    const s = await standIn(failing);
    try {
      const r = await s.api('POST', '/cam', { body: form(starRing, { model: 'resnet' }) });
      const p = problem(r, 500, 'internal');
      assert.doesNotMatch(r.body.toString(), /secret|somewhere|\.js:/);
      assert.ok(p.request_id && p.detail.includes(p.request_id));
    } finally {
      await s.close();
    }
  });
});

describe('overload, disconnects, latency and shutdown', () => {
  let busy: RunningServer;
  let busyCleanup: () => Promise<void>;
  const bapi = client(contract, () => busy.url);
  before(async () => {
    const m = await makeModelsDir({ fixtures: ['mobilenetv2', 'resnet'] });
    busyCleanup = m.cleanup;
    busy = await startTestServer(m.dir, { WORKERS: '1', MAX_QUEUE: '1', ORT_THREADS: '1', RETRY_AFTER_SECONDS: '3', DEFAULT_MODEL: 'mobilenetv2', SHUTDOWN_TIMEOUT_MS: '60000' });
  });
  after(async () => {
    await busy?.close();
    await busyCleanup?.();
  });

  test('a full queue is 503 with Retry-After; a client that leaves is dropped from the queue; /healthz stays fast', async () => {
    // Score-CAM with test-time augmentation on the largest fixture: seconds of work in the worker.
    const long = bapi('POST', '/cam', { body: form(starRing, { method: 'scorecam', aug_smooth: 'true', output: 'json' }) });
    await until(() => busy.pool.stats().busy === 1, 5000, 'the worker to start');
    const leaver = new AbortController();
    const queued = fetch(`${busy.url}/cam`, { method: 'POST', body: form(starRing, { method: 'gradcam' }), signal: leaver.signal });
    queued.catch(() => undefined);
    await until(() => busy.pool.stats().queued === 1, 5000, 'the second request to queue');

    const refused = await bapi('POST', '/cam?method=gradcam&model=mobilenetv2', { body: form(starRing) });
    problem(refused, 503, 'overloaded');
    assert.equal(refused.header('retry-after'), '3');

    // The explanation is in a worker; this thread answers health checks at once.
    const latencies: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      const h = await fetch(`${busy.url}/healthz`);
      await h.arrayBuffer();
      latencies.push(performance.now() - t);
      assert.equal(h.status, 200);
    }
    assert.equal(busy.pool.stats().busy, 1, 'the long explanation was still running');
    assert.ok(Math.max(...latencies) < 50, `/healthz latencies ${latencies.map((l) => l.toFixed(1)).join(', ')} ms`);

    leaver.abort();
    await assert.rejects(queued, { name: 'AbortError' });
    await until(() => busy.pool.stats().queued === 0, 5000, 'the queued request to be dropped');
    assert.equal(busy.pool.stats().busy, 1);

    const r = await long;
    assert.equal(r.status, 200);
    assert.equal(r.json<CamJson>().method, 'scorecam');
    const metrics = await (await fetch(`${busy.url}/metrics`)).text();
    assert.match(metrics, /camserve_http_requests_total\{route="\/cam",http_method="POST",cam_method="gradcam",model="mobilenetv2",status="aborted"\} 1/);
    assert.match(metrics, /camserve_http_requests_total\{route="\/cam",http_method="POST",cam_method="gradcam",model="mobilenetv2",status="503"\} 1/);
    assert.doesNotMatch(metrics, /cam_method="gradcam",model="mobilenetv2",status="200"/, 'the dropped request never ran');
  });

  test('shutdown finishes the request in flight, then refuses connections', async () => {
    const order: string[] = [];
    const inflight = bapi('POST', '/cam', { body: form(starRing, { method: 'scorecam', output: 'json' }) })
      .then((r) => { order.push('answered'); return r; });
    await until(() => busy.pool.stats().busy === 1, 5000, 'the worker to start');
    await busy.close().then(() => order.push('closed'));
    const r = await inflight;
    assert.equal(r.status, 200, 'the in-flight request completed');
    assert.equal(r.json<CamJson>().explanations.length, 1);
    assert.deepEqual(order, ['answered', 'closed'], 'close waited for the answer');
    assert.equal(busy.pool.stats().workers, 0, 'the pool is closed');
    await assert.rejects(fetch(`${busy.url}/healthz`), 'no new connections after shutdown');
  });
});

test('every route and status that openapi.yaml lists was exercised', () => {
  // The inspection, job, admin and KServe routes have their own suites and the same check (test/http/inspect-routes.test.ts,
  // test/http/jobs.test.ts, test/http/admin.test.ts, test/http/kserve.test.ts); 401 and 429 are produced on every route by
  // test/http/access.test.ts.
  const elsewhere = [...Object.keys(INSPECT_ROUTES), ...Object.keys(JOB_ROUTES), ...Object.keys(ADMIN_ROUTES)];
  const ours = (k: string) => { const path = k.split(' ')[1]; return !elsewhere.includes(path) && !path.startsWith('/v1/'); };
  assert.deepEqual(contract.missing().filter((k) => ours(k) && !/ (401|429)$/.test(k)), []);
});
