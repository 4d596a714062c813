// The service's configuration from the environment (src/http/config.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, DEFAULTS, ENVIRONMENT, loadConfig } from '../../src/http/config.js';

test('loadConfig: defaults, and a bad variable is named', () => {
  const c = loadConfig({});
  assert.equal(c.port, 8080);
  assert.equal(c.maxQueue, 16);
  assert.equal(c.maxImageSide, 2048);
  assert.match(c.modelsDir, /models$/);
  assert.throws(() => loadConfig({ PORT: '70000' }), (e: Error) => e instanceof ConfigError && /PORT/.test(e.message));
  assert.throws(() => loadConfig({ WORKERS: '-1' }), /WORKERS/);
  assert.throws(() => loadConfig({ LOG_LEVEL: 'loud' }), /LOG_LEVEL/);
  assert.equal(loadConfig({ MAX_UPLOAD_BYTES: '1000', DEFAULT_MODEL: 'x' }).maxUploadBytes, 1000);
  assert.ok(ENVIRONMENT.every((v) => v.help.length > 0));
});

test('defaults are written once: the help table shows the values loadConfig uses', () => {
  const c = loadConfig({});
  const help = Object.fromEntries(ENVIRONMENT.map((v) => [v.name, v.default]));
  assert.equal(help.MAX_QUEUE, String(c.maxQueue));
  assert.equal(help.PORT, String(c.port));
  assert.equal(help.RETRY_AFTER_SECONDS, String(DEFAULTS.retryAfterSeconds));
  assert.ok(c.workers >= 1 && c.ortThreads.length === c.workers && c.ortThreads.every((n) => n >= 1));
});

test('jobs, batches and access: defaults, and bad values named', () => {
  const c = loadConfig({});
  assert.equal(c.maxBatch, 16);
  assert.equal(c.jobTtlS, 3600);
  assert.equal(c.jobConcurrency, c.workers);
  assert.equal(c.maxQueuePerClient, 8, 'half of MAX_QUEUE');
  assert.equal(c.rateLimit, 0, 'off');
  assert.equal(c.trustProxy, false);
  assert.deepEqual(c.corsOrigins, []);
  assert.equal(c.apiKeysFile, undefined);
  assert.equal(c.redisUrl, undefined);
  assert.equal(loadConfig({ MAX_QUEUE: '5' }).maxQueuePerClient, 3);
  assert.equal(loadConfig({ TRUST_PROXY: '2' }).trustProxy, 2);
  assert.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, true);
  assert.equal(loadConfig({ TRUST_PROXY: '10.0.0.0/8, loopback' }).trustProxy, '10.0.0.0/8,loopback');
  assert.throws(() => loadConfig({ TRUST_PROXY: 'everyone' }), /TRUST_PROXY/);
  assert.deepEqual(loadConfig({ CORS_ORIGINS: 'https://a.example/, https://b.example' }).corsOrigins, ['https://a.example', 'https://b.example']);
  assert.throws(() => loadConfig({ REDIS_URL: 'http://x' }), /REDIS_URL/);
  assert.equal(loadConfig({ REDIS_URL: 'rediss://:pw@h:6380/0' }).redisUrl, 'rediss://:pw@h:6380/0');
  assert.throws(() => loadConfig({ METRICS_PUBLIC: 'maybe' }), /METRICS_PUBLIC/);
  assert.throws(() => loadConfig({ RATE_LIMIT: '-3' }), /RATE_LIMIT/);
  assert.match(loadConfig({ API_KEYS_FILE: 'keys.txt' }).apiKeysFile ?? '', /\/keys\.txt$/);
});
