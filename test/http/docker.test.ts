// What can be checked of the Dockerfile without a Docker engine: pinned base images, a build stage and
// a runtime stage, production-only dependencies without install scripts, a non-root user, the models
// volume, the port, a HEALTHCHECK that works (run here against a live server), the files it copies
// exist and pass .dockerignore, and the CMD runs the built entry point.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { createApp } from '../../src/http/app.js';
import { ROOT } from './contract.js';
import { hasShapes, standInPool, testConfig } from './helpers.js';

const run = promisify(execFile);

interface Instruction { op: string; args: string; stage: number }

/** Instructions of the Dockerfile (continuations joined, comments dropped), with their stage index. */
function instructions(): { list: Instruction[]; args: Record<string, string> } {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\r?\n/g, ' ');
  const list: Instruction[] = [];
  const args: Record<string, string> = {};
  let stage = -1;
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const [, op, rest] = /^(\w+)\s+(.*)$/.exec(t) ?? [];
    if (!op) continue;
    const OP = op.toUpperCase();
    if (OP === 'FROM') stage++;
    if (OP === 'ARG' && stage === -1) {
      const [k, v] = rest.split('=');
      args[k.trim()] = (v ?? '').trim();
    }
    list.push({ op: OP, args: rest.trim(), stage });
  }
  return { list, args };
}

const { list, args } = instructions();
const runtimeStage = Math.max(...list.map((i) => i.stage));
const inRuntime = (op: string) => list.filter((i) => i.op === op && i.stage === runtimeStage);

test('base images are pinned to an exact version (no floating tags)', () => {
  const froms = list.filter((i) => i.op === 'FROM');
  assert.ok(froms.length >= 2, 'multi-stage');
  for (const f of froms) {
    const image = f.args.split(/\s+/)[0].replace(/^\$\{(\w+)\}$/, (_, k: string) => args[k] ?? '');
    assert.match(image, /^[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?$/, `FROM ${f.args} → ${image}`);
  }
  assert.match(froms[0].args, /\bAS build$/i);
});

test('the build stage compiles with dev dependencies; the runtime installs production ones without scripts', () => {
  const build = list.filter((i) => i.stage === 0 && i.op === 'RUN').map((i) => i.args).join('\n');
  assert.match(build, /npm ci\b/);
  assert.match(build, /tsc -p tsconfig\.json/);
  const runtime = inRuntime('RUN').map((i) => i.args).join('\n');
  assert.match(runtime, /npm ci --omit=dev --ignore-scripts/);
  assert.match(readFileSync(path.join(ROOT, '.npmrc'), 'utf8'), /onnxruntime-node-install=skip/);
  const binaries = path.join(ROOT, 'node_modules/onnxruntime-node/bin');
  const napi = readdirSync(binaries);
  assert.ok(napi.some((d) => existsSync(path.join(binaries, d, 'linux/x64/onnxruntime_binding.node'))), 'onnxruntime-node ships its linux x64 binary');
});

test('the runtime runs as a non-root user, with /models as a volume and port 8080', () => {
  const users = inRuntime('USER');
  assert.ok(users.length > 0, 'USER in the runtime stage');
  assert.doesNotMatch(users.at(-1)!.args, /^(root|0)(:|$)/);
  assert.match(inRuntime('ENV').map((i) => i.args).join(' '), /MODELS_DIR=\/models\b/);
  assert.match(inRuntime('VOLUME').map((i) => i.args).join(' '), /\/models/);
  assert.match(inRuntime('EXPOSE').map((i) => i.args).join(' '), /\b8080\b/);
});

test('CMD runs the built entry point, the one npm start runs', () => {
  const cmd = inRuntime('CMD').at(-1)!;
  assert.deepEqual(JSON.parse(cmd.args), ['node', 'dist/src/http/main.js']);
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts.start, 'node dist/src/http/main.js');
  const tsconfig = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8')) as { compilerOptions: { outDir: string; rootDir: string } };
  assert.equal(path.join(tsconfig.compilerOptions.outDir, path.relative(tsconfig.compilerOptions.rootDir, 'src/http/main.js')), 'dist/src/http/main.js');
  assert.ok(existsSync(path.join(ROOT, 'src/http/main.ts')));
});

test('every file the Dockerfile copies from the context exists and passes .dockerignore', () => {
  const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  assert.equal(ignore[0], '*', '.dockerignore is an allow-list');
  const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
  for (const c of list.filter((i) => i.op === 'COPY' && !/--from=/.test(i.args))) {
    const parts = c.args.split(/\s+/).filter((p) => !p.startsWith('--'));
    for (const src of parts.slice(0, -1)) {
      if (src === 'models/shapes' && !hasShapes) continue; // the default model is still being trained
      assert.ok(existsSync(path.join(ROOT, src)), `COPY ${src}: missing from the repository`);
      assert.ok(allowed.some((a) => src === a || src.startsWith(a + '/')), `COPY ${src}: excluded by .dockerignore`);
    }
  }
});

test('the default model is copied in', { skip: !hasShapes && 'models/shapes/model.onnx is not there yet' }, () => {
  assert.ok(inRuntime('COPY').some((c) => /^models\/shapes\s+\/models\/shapes$/.test(c.args)));
  assert.ok(existsSync(path.join(ROOT, 'models/shapes/model.onnx')));
});

test('the HEALTHCHECK command succeeds against a live server and fails without one', async () => {
  const hc = list.find((i) => i.op === 'HEALTHCHECK');
  assert.ok(hc, 'HEALTHCHECK present');
  const json = hc.args.slice(hc.args.indexOf('CMD') + 3).trim();
  const argv = JSON.parse(json) as string[];
  assert.equal(argv[0], 'node', 'uses node (no curl in slim images)');
  const app = createApp(standInPool({ models: () => [] }), testConfig('/nonexistent'));
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    await run(process.execPath, argv.slice(1), { env: { PORT: String(port) } });
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await app.camserve.close();
  }
  await assert.rejects(run(process.execPath, argv.slice(1), { env: { PORT: String(port) } }), 'fails when nothing listens');
});
