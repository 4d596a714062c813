// What can be checked of the Dockerfile without a Docker engine: pinned base images, build / deps / runtime
// stages, production dependencies pruned to linux/<arch> (the prune script run on a fake tree), a numeric
// non-root user, no VOLUME, OCI labels, the port, a grace period inside `docker stop`'s, a HEALTHCHECK
// that works whatever HOST is (run here against a live server), copied files pass .dockerignore, and the CMD.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { createApp } from '../../src/http/app.js';
import { ENVIRONMENT, loadConfig, SHUTDOWN_MARGIN_MS } from '../../src/http/config.js';
import { probeUrls } from '../../src/http/healthcheck.js';
import { ROOT } from './contract.js';
import { hasShapes, testConfig } from './helpers.js';

const run = promisify(execFile);

interface Instruction { op: string; args: string; stage: number }

/** Instructions of a Dockerfile (continuations joined, comments dropped), with their stage index. */
function instructions(file = 'Dockerfile'): { list: Instruction[]; args: Record<string, string>; stages: string[] } {
  const text = readFileSync(path.join(ROOT, file), 'utf8').replace(/\\\r?\n/g, ' ');
  const list: Instruction[] = [];
  const args: Record<string, string> = {};
  const stages: string[] = [];
  let stage = -1;
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const [, op, rest] = /^(\w+)\s+(.*)$/.exec(t) ?? [];
    if (!op) continue;
    const OP = op.toUpperCase();
    if (OP === 'FROM') {
      stage++;
      stages.push(/\bAS\s+(\S+)\s*$/i.exec(rest)?.[1] ?? String(stage));
    }
    if (OP === 'ARG' && stage === -1) {
      const [k, v] = rest.split('=');
      args[k.trim()] = (v ?? '').trim();
    }
    list.push({ op: OP, args: rest.trim(), stage });
  }
  return { list, args, stages };
}

const { list, args, stages } = instructions();
const runtimeStage = Math.max(...list.map((i) => i.stage));
const stageOf = (name: string) => stages.indexOf(name);
const inStage = (stage: number, op: string) => list.filter((i) => i.op === op && i.stage === stage);
const inRuntime = (op: string) => inStage(runtimeStage, op);
/** ENV / LABEL key=value pairs of the runtime stage (values unquoted). */
function pairs(op: string, from: Instruction[] = inRuntime(op)): Record<string, string> {
  const out: Record<string, string> = {};
  for (const i of from.filter((x) => x.op === op)) {
    for (const m of i.args.matchAll(/([\w.-]+)=("(?:[^"\\]|\\.)*"|\S*)/g)) out[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
  }
  return out;
}

test('base images are pinned to an exact version (no floating tags)', () => {
  const froms = list.filter((i) => i.op === 'FROM');
  assert.ok(froms.length >= 3, 'multi-stage: build, deps, runtime');
  for (const f of froms) {
    const image = f.args.split(/\s+/)[0].replace(/^\$\{(\w+)\}$/, (_, k: string) => args[k] ?? '');
    assert.match(image, /^[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?$/, `FROM ${f.args} → ${image}`);
  }
  assert.deepEqual(stages, ['build', 'deps', 'runtime']);
});

test('build compiles with dev dependencies; deps installs production ones without scripts and prunes them to TARGETARCH', () => {
  const build = inStage(stageOf('build'), 'RUN').map((i) => i.args).join('\n');
  assert.match(build, /npm ci\b/);
  assert.match(build, /tsc -p tsconfig\.json/);
  const deps = inStage(stageOf('deps'), 'RUN').map((i) => i.args).join('\n');
  assert.match(deps, /npm ci --omit=dev --ignore-scripts/);
  assert.match(deps, /prune-node-modules\.sh node_modules "\$\{TARGETARCH:-\$\(uname -m\)\}"/, 'BuildKit arch, else the machine arch');
  assert.ok(inStage(stageOf('deps'), 'ARG').some((a) => a.args === 'TARGETARCH'));
  assert.ok(inRuntime('COPY').some((c) => c.args === '--from=deps /app/node_modules ./node_modules'), 'runtime takes the pruned node_modules');
  assert.equal(inRuntime('RUN').length, 0, 'the runtime stage installs nothing');
  assert.match(readFileSync(path.join(ROOT, '.npmrc'), 'utf8'), /onnxruntime-node-install=skip/);
});

/** A fake node_modules with the binary layout of onnxruntime-node and sharp's @img packages. */
function fakeModules(): string {
  const nm = mkdtempSync(path.join(os.tmpdir(), 'camserve-prune-'));
  const files = ['onnxruntime-node/package.json', 'onnxruntime-node/dist/index.js', 'onnxruntime-node/dist/index.d.ts', 'onnxruntime-node/README.md',
    'sharp/lib/index.js', 'sharp/LICENSE', 'bintrees/test/big.txt', 'bintrees/lib/rbtree.js', 'pino/lib/x.js.map', 'pino/lib/x.js',
    '@img/colour/index.cjs'];
  for (const platform of ['darwin/arm64', 'win32/x64', 'win32/arm64', 'linux/x64', 'linux/arm64']) {
    files.push(`onnxruntime-node/bin/napi-v6/${platform}/onnxruntime_binding.node`, `onnxruntime-node/bin/napi-v6/${platform}/libonnxruntime.so.1`);
  }
  for (const pa of ['darwin-arm64', 'linux-x64', 'linux-arm64', 'linuxmusl-x64', 'wasm32']) {
    files.push(`@img/sharp-${pa}/lib/sharp-${pa}-0.35.5.node`, `@img/sharp-libvips-${pa}/lib/libvips-cpp.so.8.18.7`);
  }
  for (const f of files) {
    mkdirSync(path.dirname(path.join(nm, f)), { recursive: true });
    writeFileSync(path.join(nm, f), 'x');
  }
  return nm;
}

const PRUNE = path.join(ROOT, 'deploy/docker/prune-node-modules.sh');

function listTree(dir: string, rel = ''): string[] {
  return readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const r = path.join(rel, e.name);
    return e.isDirectory() ? listTree(dir, r) : [r];
  }).sort();
}

for (const [given, arch] of [['amd64', 'x64'], ['x86_64', 'x64'], ['arm64', 'arm64'], ['aarch64', 'arm64']] as const) {
  test(`the prune script keeps linux/${arch} only (arch given as ${given})`, async () => {
    const nm = fakeModules();
    try {
      await run('sh', [PRUNE, nm, given]);
      assert.deepEqual(listTree(nm), [
        '@img/colour/index.cjs',
        `@img/sharp-libvips-linux-${arch}/lib/libvips-cpp.so.8.18.7`,
        `@img/sharp-linux-${arch}/lib/sharp-linux-${arch}-0.35.5.node`,
        'bintrees/lib/rbtree.js',
        `onnxruntime-node/bin/napi-v6/linux/${arch}/libonnxruntime.so.1`,
        `onnxruntime-node/bin/napi-v6/linux/${arch}/onnxruntime_binding.node`,
        'onnxruntime-node/dist/index.js',
        'onnxruntime-node/package.json',
        'pino/lib/x.js',
        'sharp/LICENSE',
        'sharp/lib/index.js',
      ]);
    } finally {
      rmSync(nm, { recursive: true, force: true });
    }
  });
}

test('the prune script refuses an architecture without binaries, and a tree missing the needed one', async () => {
  const nm = fakeModules();
  try {
    await assert.rejects(run('sh', [PRUNE, nm, 's390x']), /no linux binary for 's390x'/);
    rmSync(path.join(nm, 'onnxruntime-node/bin/napi-v6/linux/arm64'), { recursive: true });
    await assert.rejects(run('sh', [PRUNE, nm, 'arm64']));
  } finally {
    rmSync(nm, { recursive: true, force: true });
  }
});

test('the installed packages have the layout the prune script expects (a version bump that moves binaries fails here)', () => {
  const arch = process.arch;
  const ort = path.join(ROOT, 'node_modules/onnxruntime-node');
  assert.match(readFileSync(path.join(ort, 'dist/binding.js'), 'utf8'), /bin\/napi-v\d+\/\$\{process\.platform\}\/\$\{process\.arch\}\/onnxruntime_binding\.node/);
  const napi = readdirSync(path.join(ort, 'bin'));
  assert.ok(napi.some((d) => existsSync(path.join(ort, 'bin', d, `linux/${arch}/onnxruntime_binding.node`))), `onnxruntime-node ships linux/${arch}`);
  const sharpLib = path.join(ROOT, `node_modules/@img/sharp-linux-${arch}/lib`);
  assert.ok(readdirSync(sharpLib).some((f) => /^sharp-linux-.*\.node$/.test(f)));
  assert.ok(readdirSync(path.join(ROOT, `node_modules/@img/sharp-libvips-linux-${arch}/lib`)).some((f) => f.startsWith('libvips-cpp.so')));
});

test('the runtime runs as numeric uid:gid 1000:1000, declares no VOLUME, serves /models on port 8080', () => {
  const users = inRuntime('USER');
  assert.ok(users.length > 0, 'USER in the runtime stage');
  assert.equal(users.at(-1)!.args, '1000:1000', 'numeric, so that runAsNonRoot can check it');
  assert.equal(list.filter((i) => i.op === 'VOLUME').length, 0, 'no anonymous volumes');
  const env = pairs('ENV');
  assert.equal(env.MODELS_DIR, '/models');
  assert.equal(env.PORT, '8080');
  assert.equal(env.HOST, '0.0.0.0');
  assert.equal(env.ORT_DISABLE_TELEMETRY, '1');
  assert.equal(ENVIRONMENT.find((v) => v.name === 'PORT')!.default, env.PORT, 'the service default');
  assert.match(inRuntime('EXPOSE').map((i) => i.args).join(' '), /\b8080\b/);
});

test('OCI labels, with version and revision from build arguments', () => {
  const labels = pairs('LABEL');
  for (const k of ['title', 'description', 'version', 'revision', 'created', 'source', 'licenses', 'base.name']) {
    assert.ok(`org.opencontainers.image.${k}` in labels, `label org.opencontainers.image.${k}`);
  }
  const declared = new Set(inRuntime('ARG').map((a) => a.args.split('=')[0]));
  for (const [k, v] of Object.entries(labels)) {
    for (const [, name] of v.matchAll(/\$\{(\w+)\}/g)) assert.ok(declared.has(name), `${k} uses \${${name}}, not declared by an ARG of the runtime stage`);
  }
  assert.equal(labels['org.opencontainers.image.version'], '${VERSION}');
  assert.equal(labels['org.opencontainers.image.revision'], '${REVISION}');
  const argv = Object.fromEntries(inRuntime('ARG').map((a) => a.args.split('=')));
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string; license: string };
  assert.equal(argv.VERSION, pkg.version, 'the default version is package.json\'s');
  assert.equal(labels['org.opencontainers.image.licenses'], pkg.license);
});

test('the grace period fits `docker stop` (10 s): SHUTDOWN_TIMEOUT_MS + the exit margin < 10 s, SIGTERM stops it', () => {
  const timeout = loadConfig({}).shutdownTimeoutMs;
  assert.ok(timeout + SHUTDOWN_MARGIN_MS < 10_000, `${timeout} + ${SHUTDOWN_MARGIN_MS} ms`);
  assert.equal(String(timeout), ENVIRONMENT.find((v) => v.name === 'SHUTDOWN_TIMEOUT_MS')!.default);
  const stop = inRuntime('STOPSIGNAL').at(-1);
  assert.ok(!stop || stop.args === 'SIGTERM');
});

test('CMD runs the built entry point, the one npm start runs', () => {
  const cmd = inRuntime('CMD').at(-1)!;
  assert.deepEqual(JSON.parse(cmd.args), ['node', 'dist/src/http/main.js']);
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  // exec: the shell npm runs the script in becomes node, so the SIGTERM npm forwards reaches the server.
  assert.equal(pkg.scripts.start, 'exec node dist/src/http/main.js');
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

test('the health probe turns HOST and PORT into the addresses to ask', () => {
  assert.deepEqual(probeUrls(undefined, undefined), ['http://127.0.0.1:8080/healthz']);
  assert.deepEqual(probeUrls('0.0.0.0', '9000'), ['http://127.0.0.1:9000/healthz']);
  assert.deepEqual(probeUrls('::', '80'), ['http://[::1]:80/healthz', 'http://127.0.0.1:80/healthz'], 'IPv6 loopback, then IPv4 (no IPv6 in the container)');
  assert.deepEqual(probeUrls('[::]', '80'), ['http://[::1]:80/healthz', 'http://127.0.0.1:80/healthz']);
  assert.deepEqual(probeUrls('10.1.2.3', '8080', 'readyz'), ['http://10.1.2.3:8080/readyz']);
  assert.deepEqual(probeUrls('fd00::5', '8080'), ['http://[fd00::5]:8080/healthz']);
  assert.deepEqual(probeUrls('camserve.local', ' '), ['http://camserve.local:8080/healthz']);
});

test('the HEALTHCHECK command succeeds against a live server whatever HOST is, and fails without one', async () => {
  const hc = list.find((i) => i.op === 'HEALTHCHECK');
  assert.ok(hc, 'HEALTHCHECK present');
  const argv = JSON.parse(hc.args.slice(hc.args.indexOf('CMD') + 3).trim()) as string[];
  assert.equal(argv[0], 'node', 'uses node (no curl in slim images)');
  assert.deepEqual(argv.slice(1), ['/app/dist/src/http/healthcheck.js'], 'the compiled src/http/healthcheck.ts');
  assert.ok(inRuntime('WORKDIR').some((w) => w.args === '/app'));
  // Run the source of the script the image runs (dist/ is its compiled copy).
  const probe = (env: Record<string, string>, ...more: string[]) =>
    run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/http/healthcheck.ts'), ...more], { cwd: ROOT, env: { PATH: process.env.PATH, ...env } });

  // A pool that never finishes loading: /healthz answers 200, /readyz 503.
  const app = createApp(new Promise<never>(() => undefined), testConfig('/nonexistent'));
  const servers: http.Server[] = [];
  const listen = async (host: string) => {
    const s = http.createServer(app);
    await new Promise<void>((r, j) => { s.once('error', j); s.listen(0, host, r); });
    servers.push(s);
    return (s.address() as AddressInfo).port;
  };
  const closeAll = async () => {
    for (const s of servers.splice(0)) { s.closeAllConnections(); await new Promise((r) => s.close(r)); }
  };
  try {
    const port = await listen('127.0.0.1');
    for (const host of ['0.0.0.0', '127.0.0.1', '']) await probe({ HOST: host, PORT: String(port) });
    await assert.rejects(probe({ HOST: '0.0.0.0', PORT: String(port) }, '/readyz'), 'a non-2xx answer (not ready) fails');
    await probe({ HOST: '::', PORT: String(port) }); // ::1 refused (nothing there), 127.0.0.1 answers
    const v6 = await listen('::1').catch(() => undefined); // where the machine has IPv6 loopback
    if (v6) await probe({ HOST: '::', PORT: String(v6) });
    await closeAll();
    await assert.rejects(probe({ HOST: '0.0.0.0', PORT: String(port) }), 'fails when nothing listens');
  } finally {
    await closeAll();
    await app.camserve.close();
  }
});

test('the slim variant (deploy/docker/Dockerfile.slim) is FROM scratch and restates the runtime\'s environment, user, port, health check, command and labels', () => {
  const slim = instructions('deploy/docker/Dockerfile.slim');
  const last = Math.max(...slim.list.map((i) => i.stage));
  assert.equal(slim.list.find((i) => i.op === 'FROM' && i.stage === last)?.args, 'scratch');
  const mine = slim.list.filter((i) => i.stage === last);
  const all = (from: Instruction[], op: string) => from.filter((i) => i.op === op).map((i) => i.args);
  const runtime = list.filter((i) => i.stage === runtimeStage);
  // The node image's PATH comes with the main image's base; the slim one restates it.
  const { PATH, ...env } = pairs('ENV', mine);
  assert.equal(PATH, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  assert.deepEqual(env, pairs('ENV'));
  assert.deepEqual(Object.keys(pairs('LABEL', mine)).sort(), Object.keys(pairs('LABEL')).sort());
  for (const op of ['USER', 'EXPOSE', 'WORKDIR', 'HEALTHCHECK', 'STOPSIGNAL', 'CMD']) assert.deepEqual(all(mine, op), all(runtime, op), op);
});

