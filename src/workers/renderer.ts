// Runs render jobs on one worker thread (FIFO), off the HTTP thread.
import { Worker } from 'node:worker_threads';
import type { RenderJob } from '../render/job.js';

interface Pending { resolve(pngs: Buffer[]): void; reject(e: Error): void }

export class Renderer {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;

  constructor() {
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    const url = new URL(`./render-worker${ext}`, import.meta.url);
    // A .ts worker (tests, development) registers the TypeScript loader in its own thread first.
    this.worker = ext === '.ts'
      ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`, { eval: true })
      : new Worker(url);
    this.worker.unref();
    this.worker.on('message', (msg: { id: number; pngs?: Uint8Array[]; error?: { name: string; message: string } }) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.pngs) p.resolve(msg.pngs.map((u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength)));
      else p.reject(Object.assign(new Error(msg.error?.message ?? 'render failed'), { name: msg.error?.name ?? 'Error' }));
    });
    const fail = (e: Error) => {
      this.failure = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    this.worker.on('error', (e) => fail(new Error(`render worker failed: ${e.message}`)));
    this.worker.on('exit', () => fail(new Error('render worker exited')));
  }

  render(job: RenderJob): Promise<Buffer[]> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, job });
    });
  }

  async close(): Promise<void> {
    this.failure ??= new Error('renderer closed');
    await this.worker.terminate();
  }
}
