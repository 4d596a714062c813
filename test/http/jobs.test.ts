// Jobs and batches over real HTTP, jobs kept in the process: a Score-CAM job's progress events (one per
// batch, monotone, in order, resumable), its results equal to POST /cam's, cancellation that frees the
// worker, the job queue's limits (MAX_JOBS, a client's share), Idempotency-Key, expiry (410), and
// POST /cam with several images equal to one request per image. Every answer is checked against openapi.yaml.
import assert from 'node:assert/strict';
import { readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { JOB_ROUTES } from '../../src/http/routes/jobs.js';
import type { RunningServer } from '../../src/http/server.js';
import { Contract, client, type Answer } from './contract.js';
import { DYNBATCH, EXAMPLES, form, makeModelsDir, picture, readEvents, startTestServer, until, type SseEvent } from './helpers.js';

const contract = new Contract();
let server: RunningServer;
let cleanup: () => Promise<void>;
const api = client(contract, () => server.url);
let starRing: Buffer;

interface Job {
  id: string; state: string; images: number; model: string; method: string;
  progress: { done: number; total: number; images_done: number; percent: number; eta_s: number | null };
  results?: { index: number; png: string; result: CamJson }[];
  error?: { type: string; status: number; detail: string };
  links: { self: string; events: string };
}
interface CamJson { predictions: unknown[]; explanations: { target: unknown; cam: unknown }[]; layers: string[]; image: unknown }

const post = (fields: Record<string, string>, images: Buffer[] = [starRing], headers: Record<string, string> = {}) => {
  const f = new FormData();
  for (const [i, img] of images.entries()) f.append('image', new Blob([new Uint8Array(img)]), `${i}.png`);
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return api('POST', '/jobs', { body: f, headers });
};

function problem(r: Answer, status: number, slug: string): { detail: string; parameter?: string; limit?: string } {
  assert.equal(r.status, status, r.body.toString());
  const p = r.json<{ type: string; detail: string; parameter?: string; limit?: string }>();
  assert.equal(p.type, `urn:camserve:problem:${slug}`);
  return p;
}

async function waitFor(id: string, states: string[], ms = 20_000): Promise<Job> {
  let job: Job | undefined;
  await until(async () => {
    job = (await api('GET', `/jobs/${id}`)).json<Job>();
    return states.includes(job.state);
  }, ms, `job ${id} to be ${states.join('/')}`);
  return job!;
}

/** Eight different pictures (so that a batch mix-up would show). */
async function pictures(n: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) out.push(await (await picture(48 + 8 * i, 40 + 4 * i)).png().toBuffer());
  return out;
}

before(async () => {
  const models = await makeModelsDir({ fixtures: ['resnet', 'mobilenetv2'], broken: true });
  await symlink(DYNBATCH, path.join(models.dir, 'resnet-dynbatch'));
  cleanup = models.cleanup;
  // BATCH_SIZE 8: Score-CAM on the 64 channels of resnet-dynbatch's default layer is 8 batches.
  server = await startTestServer(models.dir, {
    DEFAULT_MODEL: 'resnet', BATCH_SIZE: '8', JOB_CONCURRENCY: '1', MAX_JOBS: '2', MAX_QUEUE_PER_CLIENT: '8',
    TRUST_PROXY: 'loopback', MAX_UPLOAD_BYTES: String(256 * 1024), MAX_JOB_IMAGES: '8', MAX_BATCH: '8', SSE_HEARTBEAT_S: '1', MAX_REQUEST_BYTES: String(600 * 1024),
  });
  starRing = await readFile(path.join(EXAMPLES, 'star-ring.png'));
});
after(async () => {
  await server?.close();
  await cleanup?.();
});

describe('a Score-CAM job', () => {
  let job: Job;
  let events: SseEvent[];

  test('emits a progress event per batch, monotone and in order, and ends with done = total', async () => {
    const r = await post({ model: 'resnet-dynbatch', method: 'scorecam' });
    assert.equal(r.status, 202);
    job = r.json<Job>();
    assert.equal(r.header('location'), `/jobs/${job.id}`);
    assert.equal(job.links.events, `/jobs/${job.id}/events`);
    const s = await readEvents(server.url + job.links.events);
    assert.equal(s.res.status, 200);
    assert.match(s.res.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(s.res.headers.get('x-accel-buffering'), 'no');
    await contract.check('GET', server.url + job.links.events, s.res, Buffer.from(s.raw));
    events = s.events;
    const ids = events.map((e) => Number(e.id));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'ids increase');
    assert.equal(new Set(ids).size, ids.length);
    assert.equal(events[0].event, 'queued');
    assert.equal(events[1].event, 'running');
    assert.equal(events.at(-1)!.event, 'done');
    const progress = events.filter((e) => e.event === 'progress').map((e) => e.data.progress);
    assert.ok(progress.length >= 8, `${progress.length} progress events for 8 batches`);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i].done >= progress[i - 1].done, 'monotone');
    assert.equal(progress[0].done, 8, 'the first batch: 8 of the 64 channels');
    assert.ok(progress.every((p) => p.total === 64));
    const last = events.at(-1)!.data;
    assert.equal(last.state, 'done');
    assert.equal(last.progress.done, 64);
    assert.equal(last.progress.total, 64);
    assert.equal(last.progress.images_done, 1);
    assert.equal(last.results?.length, 1);
  });

  test('its results are POST /cam\'s answer, and its PNG is POST /cam\'s overlay', async () => {
    const g = await api('GET', `/jobs/${job.id}`);
    assert.equal(g.status, 200);
    const done = g.json<Job>();
    assert.equal(done.state, 'done');
    assert.equal(done.progress.eta_s, 0);
    const cam = await api('POST', '/cam', { body: form(starRing, { model: 'resnet-dynbatch', method: 'scorecam', output: 'json' }) });
    const c = cam.json<CamJson>();
    const res = done.results![0].result;
    assert.deepEqual(res.explanations, c.explanations);
    assert.deepEqual(res.predictions, c.predictions);
    assert.deepEqual(res.layers, c.layers);
    assert.deepEqual(res.image, c.image);
    const png = await api('GET', done.results![0].png);
    assert.equal(png.status, 200);
    assert.equal(png.header('content-type'), 'image/png');
    const overlay = await api('POST', '/cam', { body: form(starRing, { model: 'resnet-dynbatch', method: 'scorecam' }) });
    assert.deepEqual(png.body, overlay.body);
    problem(await api('GET', `/jobs/${job.id}/results/1.png`), 404, 'not-found');
  });

  test('Last-Event-ID resumes after that event', async () => {
    const again = await readEvents(server.url + job.links.events, { 'Last-Event-ID': events[2].id });
    assert.deepEqual(again.events.map((e) => e.id), events.slice(3).map((e) => e.id));
    assert.deepEqual(again.events.at(-1)!.data, events.at(-1)!.data);
    // After the last event there is nothing more: the stream ends at once.
    const none = await readEvents(server.url + job.links.events, { 'Last-Event-ID': events.at(-1)!.id });
    assert.equal(none.res.status, 200);
    assert.deepEqual(none.events, []);
  });

  test('DELETE of a finished job deletes it: 204, then 410', async () => {
    const d = await api('DELETE', `/jobs/${job.id}`);
    assert.equal(d.status, 204);
    problem(await api('GET', `/jobs/${job.id}`), 410, 'gone');
    problem(await api('GET', `/jobs/${job.id}/events`), 410, 'gone');
    problem(await api('GET', `/jobs/${job.id}/results/0.png`), 410, 'gone');
    problem(await api('DELETE', `/jobs/${job.id}`), 410, 'gone');
  });
});

describe('cancelling and queueing', () => {
  test('DELETE stops a running Score-CAM within a batch and frees the worker', async () => {
    const replaced = server.pool.stats().replaced;
    const r = await post({ model: 'mobilenetv2', method: 'scorecam', aug_smooth: 'true' });
    const job = r.json<Job>();
    await until(async () => (await api('GET', `/jobs/${job.id}`)).json<Job>().progress.done > 0, 20_000, 'progress');
    assert.equal(server.pool.stats().busy, 1);
    // While it runs, its event stream carries heartbeats (SSE_HEARTBEAT_S=1) between the events.
    const watch = new AbortController();
    const stream = await fetch(server.url + job.links.events, { signal: watch.signal });
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    const t0 = performance.now();
    while (!text.includes(': heartbeat\n\n') && performance.now() - t0 < 5000) text += (await reader.read()).value ?? '';
    watch.abort();
    assert.match(text, /^retry: \d+\n\n/);
    assert.match(text, /: heartbeat\n\n/);
    assert.match(text, /event: progress\n/);
    const t = performance.now();
    const d = await api('DELETE', `/jobs/${job.id}`);
    assert.equal(d.status, 202);
    await until(() => server.pool.stats().busy === 0, 2000, 'the worker to be free');
    const freedMs = performance.now() - t;
    const end = await waitFor(job.id, ['cancelled'], 2000);
    assert.ok(end.progress.done < end.progress.total, `stopped early: ${end.progress.done}/${end.progress.total}`);
    assert.equal(server.pool.stats().replaced, replaced, 'the worker stopped by itself (not replaced)');
    assert.ok(freedMs < 1000, `worker freed in ${freedMs.toFixed(0)} ms`);
    // The worker takes new work at once.
    assert.equal((await api('POST', '/cam', { body: form(starRing, { output: 'json' }) })).status, 200);
  });

  test('the job queue: a client\'s share (429), MAX_JOBS (503), a queued job cancelled at once', async () => {
    const from = (ip: string) => ({ 'X-Forwarded-For': ip });
    const long = (await post({ model: 'mobilenetv2', method: 'scorecam', aug_smooth: 'true' }, [starRing], from('10.0.0.1'))).json<Job>();
    await waitFor(long.id, ['running']);
    const a = await post({ method: 'gradcam' }, [starRing], from('10.0.0.1'));
    assert.equal(a.status, 202);
    assert.equal(a.json<Job>().state, 'queued');
    const share = problem(await post({ method: 'gradcam' }, [starRing], from('10.0.0.1')), 429, 'rate-limited');
    assert.equal(share.limit, 'queue-share');
    const b = await post({ method: 'gradcam' }, [starRing], from('10.0.0.2'));
    assert.equal(b.status, 202);
    const full = await post({ method: 'gradcam' }, [starRing], from('10.0.0.3'));
    problem(full, 503, 'overloaded');
    assert.ok(full.header('retry-after'));
    // A queued job is cancelled at once.
    const c = await api('DELETE', `/jobs/${a.json<Job>().id}`);
    assert.equal(c.status, 202);
    assert.equal(c.json<Job>().state, 'cancelled');
    await api('DELETE', `/jobs/${long.id}`);
    const bDone = await waitFor(b.json<Job>().id, ['done']);
    assert.equal(bDone.results?.length, 1);
  });
});

describe('submission', () => {
  test('several images in one job: a result and a PNG per image, in order', async () => {
    const imgs = await pictures(3);
    const r = await post({ method: 'gradcam', target: '2,5' }, imgs);
    assert.equal(r.status, 202);
    const job = await waitFor(r.json<Job>().id, ['done']);
    assert.equal(job.images, 3);
    assert.deepEqual(job.results!.map((x) => x.index), [0, 1, 2]);
    assert.equal(job.progress.images_done, 3);
    for (const [i, x] of job.results!.entries()) {
      assert.deepEqual(x.result.explanations.map((e) => (e.target as { index: number }).index), [2, 5]);
      const png = await api('GET', x.png);
      const meta = await sharp(png.body).metadata();
      assert.deepEqual([meta.width, meta.height], [48 + 8 * i, 40 + 4 * i]);
    }
  });

  test('max_side and png_compression apply to a job\'s PNGs; another format is refused (a job\'s pictures are PNG)', async () => {
    const wide = await (await picture(96, 48)).png().toBuffer();
    const r = await post({ method: 'gradcam', max_side: '32', png_compression: '0' }, [wide]);
    assert.equal(r.status, 202, r.body.toString());
    const job = await waitFor(r.json<Job>().id, ['done']);
    const png = await api('GET', job.results![0].png);
    const meta = await sharp(png.body).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 32, 16]);
    assert.ok(png.body.length > 32 * 16 * 3, 'level 0: stored');
    assert.deepEqual(job.results![0].result.image, { width: 96, height: 48 });
    const p = problem(await post({ format: 'webp' }), 400, 'bad-parameter');
    assert.equal(p.parameter, 'format');
    assert.equal(problem(await post({ max_side: '0' }), 400, 'bad-parameter').parameter, 'max_side');
    assert.equal(problem(await post({ png_compression: '10' }), 400, 'bad-parameter').parameter, 'png_compression');
  });

  test('a JSON body of base64 images', async () => {
    const r = await api('POST', '/jobs', { body: JSON.stringify({ images: [starRing.toString('base64')], method: 'hirescam' }), headers: { 'Content-Type': 'application/json' } });
    assert.equal(r.status, 202);
    const job = await waitFor(r.json<Job>().id, ['done']);
    assert.equal(job.method, 'hirescam');
  });

  test('Idempotency-Key: a retried request gets the same job; the key with another request is 422', async () => {
    const key = `test-${Date.now()}`;
    const a = await post({ method: 'gradcam' }, [starRing], { 'Idempotency-Key': key });
    const b = await post({ method: 'gradcam' }, [starRing], { 'Idempotency-Key': key });
    assert.equal(a.status, 202);
    assert.equal(b.status, 202);
    assert.equal(b.json<Job>().id, a.json<Job>().id);
    assert.equal(b.header('idempotent-replayed'), 'true');
    assert.equal(a.header('idempotent-replayed'), null);
    problem(await post({ method: 'layercam' }, [starRing], { 'Idempotency-Key': key }), 422, 'idempotency-key-reused');
    problem(await post({ method: 'gradcam' }, [starRing], { 'Idempotency-Key': 'bad key with spaces' }), 400, 'bad-parameter');
    await waitFor(a.json<Job>().id, ['done']);
  });

  test('refused at once: no image, bad parameters, unknown or broken model, too large, not an image', async () => {
    problem(await api('POST', '/jobs', { body: form(undefined, { method: 'gradcam' }) }), 400, 'missing-image');
    problem(await post({ method: 'nope' }), 400, 'bad-parameter');
    problem(await post({ timeout_ms: '100' }), 400, 'bad-parameter');
    problem(await post({ model: 'nope' }), 404, 'unknown-model');
    problem(await post({ model: 'broken' }), 422, 'model-unavailable');
    problem(await post({}, [Buffer.alloc(300 * 1024, 1)]), 413, 'payload-too-large');
    // Each image within MAX_UPLOAD_BYTES, all of them over MAX_REQUEST_BYTES: refused before they are read.
    const big = await sharp({ create: { width: 280, height: 280, channels: 3, background: '#888' } }).png({ compressionLevel: 0 }).toBuffer();
    assert.ok(big.length < 256 * 1024 && 3 * big.length > 600 * 1024);
    const p413 = problem(await post({}, [big, big, big]), 413, 'payload-too-large');
    assert.match(p413.detail, /request body/);
    const p = problem(await post({}, [starRing, Buffer.from('not an image at all')]), 415, 'unsupported-media-type');
    assert.match(p.detail, /^image 1:/);
    problem(await api('GET', '/jobs/00000000-0000-0000-0000-000000000000'), 404, 'not-found');
    problem(await api('GET', '/jobs/not-a-job'), 404, 'not-found');
    problem(await api('DELETE', '/jobs/00000000-0000-0000-0000-000000000000'), 404, 'not-found');
    problem(await api('GET', '/jobs/00000000-0000-0000-0000-000000000000/events'), 404, 'not-found');
  });

  test('other HTTP methods are 405 with Allow', async () => {
    for (const [p, m] of [['/jobs', 'GET'], ['/jobs/x', 'PUT'], ['/jobs/x/events', 'POST'], ['/jobs/x/results/0.png', 'DELETE']] as const) {
      const r = await api(m, p);
      problem(r, 405, 'method-not-allowed');
      assert.ok(r.header('allow'));
    }
  });

  test('jobs by state and their duration are in /metrics', async () => {
    const text = (await api('GET', '/metrics')).body.toString();
    assert.match(text, /camserve_jobs\{state="done"\} [1-9]/);
    assert.match(text, /camserve_jobs_finished_total\{state="cancelled"\} [1-9]/);
    assert.match(text, /camserve_job_duration_seconds_count\{state="done"\} [1-9]/);
    assert.match(text, /camserve_jobs\{state="queued"\} 0/);
  });
});

describe('POST /cam with several images', () => {
  for (const model of ['resnet-dynbatch', 'resnet']) {
    test(`a batch of 8 equals 8 single requests (${model}${model === 'resnet' ? ', one after another' : ', one forward pass'})`, async () => {
      const imgs = await pictures(8);
      const f = new FormData();
      for (const [i, img] of imgs.entries()) f.append('image', new Blob([new Uint8Array(img)]), `${i}.png`);
      f.append('model', model);
      f.append('method', 'gradcam');
      f.append('topk', '2');
      const r = await api('POST', '/cam', { body: f });
      assert.equal(r.status, 200, r.body.toString());
      const batch = r.json<{ count: number; results: CamJson[] }>();
      assert.equal(batch.count, 8);
      for (const [i, img] of imgs.entries()) {
        const one = (await api('POST', '/cam', { body: form(img, { model, method: 'gradcam', topk: '2', output: 'json' }) })).json<CamJson>();
        assert.deepEqual(batch.results[i].explanations, one.explanations, `image ${i}`);
        assert.deepEqual(batch.results[i].predictions, one.predictions, `image ${i}`);
        assert.deepEqual(batch.results[i].image, one.image);
      }
    });
  }

  test('a JSON body of base64 images; a PNG output is refused for a batch; a bad image is named', async () => {
    const body = JSON.stringify({ images: [starRing.toString('base64'), `data:image/png;base64,${starRing.toString('base64')}`], method: 'gradcam', include_png: true });
    const r = await api('POST', '/cam', { body, headers: { 'Content-Type': 'application/json' } });
    assert.equal(r.status, 200, r.body.toString());
    const j = r.json<{ results: { explanations: { png?: string }[] }[] }>();
    assert.equal(j.results.length, 2);
    assert.ok(j.results.every((x) => x.explanations[0].png));
    const f = form(starRing, { output: 'overlay' });
    f.append('image', new Blob([new Uint8Array(starRing)]), 'b.png');
    const p = problem(await api('POST', '/cam', { body: f }), 400, 'bad-parameter');
    assert.equal(p.parameter, 'output');
    const bad = problem(await api('POST', '/cam', { body: JSON.stringify({ images: [starRing.toString('base64'), 'bm90IGFuIGltYWdl'] }), headers: { 'Content-Type': 'application/json' } }), 415, 'unsupported-media-type');
    assert.match(bad.detail, /^image 1:/);
    problem(await api('POST', '/cam', { body: JSON.stringify({ images: ['%%%'] }), headers: { 'Content-Type': 'application/json' } }), 400, 'bad-parameter');
    problem(await api('POST', '/cam', { body: '{"images": [', headers: { 'Content-Type': 'application/json' } }), 400, 'bad-request');
  });
});

describe('expiry', () => {
  let short: RunningServer;
  let shortCleanup: () => Promise<void>;
  const sapi = client(contract, () => short.url);
  before(async () => {
    const m = await makeModelsDir({ fixtures: ['resnet'] });
    shortCleanup = m.cleanup;
    short = await startTestServer(m.dir, { JOB_TTL_S: '1', JOB_MAX_BYTES: '60000' });
  });
  after(async () => {
    await short?.close();
    await shortCleanup?.();
  });

  test('a finished job answers 410 once JOB_TTL_S has passed', async () => {
    const r = await sapi('POST', '/jobs', { body: form(starRing, { method: 'gradcam' }) });
    const id = r.json<Job>().id;
    await until(async () => (await sapi('GET', `/jobs/${id}`)).json<Job>().state === 'done', 10_000, 'done');
    const done = (await sapi('GET', `/jobs/${id}`)).json<Job & { expires_at: string }>();
    assert.ok(Date.parse(done.expires_at) - Date.now() <= 1000);
    await new Promise((res) => setTimeout(res, 1300));
    problem(await sapi('GET', `/jobs/${id}`), 410, 'gone');
    problem(await sapi('GET', `/jobs/${id}/results/0.png`), 410, 'gone');
  });

  test('past JOB_MAX_BYTES the oldest finished job goes first (410)', async () => {
    // Each result is a ~26 KB PNG plus its JSON: the budget holds two.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const id = (await sapi('POST', '/jobs', { body: form(starRing, { method: 'gradcam' }) })).json<Job>().id;
      await until(async () => (await sapi('GET', `/jobs/${id}`)).status !== 200 || (await sapi('GET', `/jobs/${id}`)).json<Job>().state === 'done', 10_000, 'done');
      ids.push(id);
    }
    problem(await sapi('GET', `/jobs/${ids[0]}`), 410, 'gone');
    assert.equal((await sapi('GET', `/jobs/${ids[2]}`)).status, 200);
  });
});

test('every status openapi.yaml lists for the job routes was produced and matched its schema', () => {
  // 401 and 429 are produced on every route by test/http/access.test.ts.
  const ours = Object.keys(JOB_ROUTES);
  assert.deepEqual(contract.missing().filter((k) => ours.includes(k.split(' ')[1]) && !/ (401|429)$/.test(k)), []);
});
