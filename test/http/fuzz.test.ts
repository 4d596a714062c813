// The fuzz test (bounded): seeded hostile requests — every parameter openapi.yaml lists with hostile names
// and values, broken images and multipart bodies, bad URIs and methods — against a real server in its
// own process. No 5xx (a 503 only with Retry-After), every error problem+json, no reset; afterwards the
// server is alive and /healthz fast. A failing seed is printed; FUZZ_SEED=<n> replays it.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fuzzRequests } from '../../tools/fuzz/requests.js';
import { runFuzz } from '../../tools/fuzz/run.js';
import { OPENAPI_FILE } from './contract.js';
import { EXAMPLES, makeModelsDir, run, until } from './helpers.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261129);
const COUNT = Number(process.env.FUZZ_COUNT ?? 600);

test(`fuzz: ${COUNT} hostile requests (seed ${SEED}) get no 5xx, only problem+json errors, and leave the server healthy`, { timeout: 120_000 }, async () => {
  const m = await makeModelsDir({ fixtures: ['resnet'], labelled: true, broken: true });
  const server = run({ MODELS_DIR: m.dir, PORT: '0', HOST: '127.0.0.1', WORKERS: '1', ORT_THREADS: '1', MAX_QUEUE: '4', DEFAULT_MODEL: 'resnet', LOG_LEVEL: 'info' });
  try {
    await until(() => server.lines.some((l) => l.msg === 'ready'), 60_000, 'the server to be ready');
    const url = server.lines.find((l) => l.msg === 'ready')!.url as string;
    const png = await readFile(path.join(EXAMPLES, 'star-ring.png'));
    const requests = fuzzRequests(SEED, COUNT, OPENAPI_FILE, png, ['resnet', 'labelled', 'broken']);
    const outcomes = await runFuzz(url, requests, 4, 30_000);
    const faults = outcomes.map((o, i) => ({ ...o, i })).filter((o) => o.fault);
    assert.deepEqual(faults.slice(0, 10).map((f) => `#${f.i} ${f.what}: ${f.fault}`), [], `seed ${SEED}: replay with FUZZ_SEED=${SEED}`);
    // Every kind of request was tried, and some got through to a model.
    const statuses = new Set(outcomes.map((o) => o.status));
    for (const s of [200, 400, 404, 405, 415]) assert.ok(statuses.has(s), `no ${s} among ${[...statuses].join(', ')}`);
    assert.equal(server.child.exitCode, null, 'the server is alive');
    const h: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      const r = await fetch(`${url}/healthz`);
      await r.arrayBuffer();
      assert.equal(r.status, 200);
      h.push(performance.now() - t);
    }
    assert.ok(Math.max(...h) < 50, `/healthz after the fuzz: ${h.map((x) => x.toFixed(1)).join(', ')} ms`);
    const ready = await (await fetch(`${url}/readyz`)).json() as { busy: number; queued: number };
    assert.deepEqual([ready.busy, ready.queued], [0, 0], 'no worker or queue place leaked');
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
    await m.cleanup();
  }
});
