// Starting a worker thread from a module beside this one, built (.js) or under the TypeScript loader in
// tests and development (.ts: the thread registers tsx itself before importing the module).
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** A worker running the module `name` (without extension) of this folder. */
export function spawnWorker(name: string, options: WorkerOptions = {}): Worker {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const url = new URL(`./${name}${ext}`, import.meta.url);
  if (ext === '.js') return new Worker(url, options);
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(boot, { ...options, eval: true });
}
