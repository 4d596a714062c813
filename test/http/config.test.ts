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
  assert.ok(c.workers >= 1 && c.ortThreads >= 1);
});
