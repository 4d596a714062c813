// deploy/docker/Dockerfile.slim restates the main image's configuration after its FROM scratch (nothing is
// inherited from the image it trims): the same environment, user, port, working folder, health check, stop
// signal, command and labels as ./Dockerfile's runtime stage, so that the two run and are run alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../http/contract.js';

/** The instructions of a Dockerfile's last stage, continuation lines joined and comments dropped. */
function lastStage(file: string): string[] {
  const lines = readFileSync(path.join(ROOT, file), 'utf8').replace(/\\\n/g, ' ').split('\n')
    .map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const froms = lines.flatMap((l, i) => (/^FROM\s/i.test(l) ? [i] : []));
  return lines.slice(froms[froms.length - 1] + 1);
}

function config(file: string) {
  const stage = lastStage(file);
  const all = (op: string) => stage.filter((l) => l.toUpperCase().startsWith(`${op} `)).map((l) => l.slice(op.length + 1).trim());
  const pairs = (op: string) => Object.fromEntries(all(op).flatMap((l) => [...l.matchAll(/([\w.]+)=("[^"]*"|\S+)/g)].map((m) => [m[1], m[2]])));
  return {
    env: pairs('ENV'), labels: Object.keys(pairs('LABEL')).sort(),
    user: all('USER'), expose: all('EXPOSE'), workdir: all('WORKDIR'), healthcheck: all('HEALTHCHECK'),
    stopsignal: all('STOPSIGNAL'), cmd: all('CMD'), entrypoint: all('ENTRYPOINT'),
  };
}

test('Dockerfile.slim restates the main image\'s configuration: environment, user, port, health check, command, labels', () => {
  const main = config('Dockerfile');
  const slim = config('deploy/docker/Dockerfile.slim');
  assert.match(readFileSync(path.join(ROOT, 'deploy/docker/Dockerfile.slim'), 'utf8'), /^FROM scratch$/m);
  // The node image's PATH is inherited by the main image and restated by the slim one.
  const { PATH, ...slimEnv } = slim.env;
  assert.equal(PATH, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  assert.deepEqual(slimEnv, main.env);
  for (const k of ['labels', 'user', 'expose', 'workdir', 'healthcheck', 'stopsignal', 'cmd', 'entrypoint'] as const) {
    assert.deepEqual(slim[k], main[k], k);
  }
  assert.deepEqual(main.user, ['1000:1000']);
});
