// compose.yaml, read without Docker: ./models mounted read-only, the production hardening (read-only root,
// tmpfs /tmp, uid 1000, no capabilities, no-new-privileges), the image's health probe, a stop grace that
// covers the shutdown, the service's port, and Redis only behind a profile.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { ENVIRONMENT, SHUTDOWN_MARGIN_MS } from '../../src/http/config.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const compose = parse(readFileSync(path.join(ROOT, 'compose.yaml'), 'utf8')) as { services: Record<string, Record<string, unknown>> };
const camserve = compose.services.camserve;
const seconds = (d: string) => Number(/^(\d+)s$/.exec(d)?.[1] ?? NaN);

test('compose: camserve builds this Dockerfile and serves ./models read-only on the service\'s port', () => {
  assert.deepEqual(camserve.build, { context: '.', args: { VERSION: JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version } });
  assert.deepEqual(camserve.volumes, ['./models:/models:ro']);
  const port = ENVIRONMENT.find((v) => v.name === 'PORT')!.default;
  assert.deepEqual(camserve.ports, [`127.0.0.1:${port}:${port}`]);
});

test('compose: the same hardening as in production', () => {
  assert.equal(camserve.read_only, true);
  assert.deepEqual(camserve.tmpfs, ['/tmp:size=64m']);
  assert.equal(camserve.user, '1000:1000');
  assert.deepEqual(camserve.cap_drop, ['ALL']);
  assert.deepEqual(camserve.security_opt, ['no-new-privileges:true']);
  assert.ok(typeof camserve.cpus === 'number' && camserve.mem_limit, 'CPU and memory limits');
});

test('compose: the healthcheck runs the image\'s probe; the stop grace covers SHUTDOWN_TIMEOUT_MS + margin', () => {
  const hc = camserve.healthcheck as { test: string[] };
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const cmd = JSON.parse(/^HEALTHCHECK .*?CMD (\[.*\])$/m.exec(dockerfile)![1]) as string[];
  assert.deepEqual(hc.test, ['CMD', ...cmd]);
  const timeout = Number(ENVIRONMENT.find((v) => v.name === 'SHUTDOWN_TIMEOUT_MS')!.default);
  assert.ok(seconds(camserve.stop_grace_period as string) * 1000 >= timeout + SHUTDOWN_MARGIN_MS);
});

test('compose: Redis only with --profile redis, hardened too; camserve gets REDIS_URL from the environment', () => {
  const redis = compose.services.redis;
  assert.deepEqual(redis.profiles, ['redis']);
  assert.equal(redis.read_only, true);
  assert.deepEqual(redis.cap_drop, ['ALL']);
  assert.equal((camserve.environment as Record<string, string>).REDIS_URL, '${REDIS_URL:-}');
  assert.equal(camserve.profiles, undefined, 'camserve runs without a profile');
});
