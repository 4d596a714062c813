// Runs render jobs (colour map, blend, PNG encode) on one worker thread, FIFO, off the HTTP thread.
import type { Worker } from 'node:worker_threads';
import { CamserveError, fromErrorData, type ErrorData } from '../errors/index.js';
import type { RenderJob } from '../render/index.js';
import { spawnWorker } from './spawn.js';

interface Pending { resolve(pngs: Buffer[]): void; reject(e: Error): void }

export class Renderer {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;

  constructor() {
    this.worker = spawnWorker('render-worker');
    this.worker.unref();
    this.worker.on('message', (msg: { id: number; pngs?: Uint8Array[]; error?: ErrorData }) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.pngs) p.resolve(msg.pngs.map((u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength)));
      else p.reject(fromErrorData(msg.error ?? { code: 'internal', message: 'render failed' }));
    });
    const fail = (e: Error) => {
      this.failure = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    this.worker.on('error', (e) => fail(new CamserveError('internal', `render worker failed: ${e.message}`)));
    this.worker.on('exit', () => fail(new CamserveError('internal', 'render worker exited')));
  }

  render(job: RenderJob): Promise<Buffer[]> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      try {
        this.worker.postMessage({ id, job });
      } catch (e) {
        this.pending.delete(id);
        reject(new CamserveError('internal', `the render job could not be sent: ${(e as Error).message}`));
      }
    });
  }

  async close(): Promise<void> {
    const closed = new CamserveError('shutting-down', 'the server is shutting down');
    this.failure ??= closed;
    for (const p of this.pending.values()) p.reject(closed);
    this.pending.clear();
    await this.worker.terminate();
  }
}
