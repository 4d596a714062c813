// A bounded pool of inference workers: each loads every model; jobs wait in one FIFO queue of fixed
// size (a full queue is refused at once), and a job whose caller gave up is dropped before it runs.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ModelFacts } from '../inspect/facts.js';
import type { TensorsRequest, TensorsResult } from '../inspect/tensors.js';
import type { ModelStatus, WorkerInit, WorkerReply, WorkerRequest } from './protocol.js';
import type { ExplainRequest, ExplainResult } from '../engine/runtime.js';
import { effectiveCpus } from '../http/cpu.js';

export type { ModelStatus } from './protocol.js';

export interface PoolOptions {
  modelsDir: string;
  /** worker threads; default max(1, cores / 2) */
  workers?: number;
  /** onnxruntime intra-op threads per worker; default cores / workers */
  intraOpThreads?: number;
  /** jobs allowed to wait; default 16 */
  maxQueue?: number;
  /** Score-CAM / Ablation-CAM batch size */
  batchSize?: number;
}

/** The queue is full: answer 503 with Retry-After. */
export class PoolBusyError extends Error {
  override name = 'PoolBusyError';
}

/** What a job asks of a worker: an explanation, or one of the inspection jobs. */
type Work =
  | { type: 'explain'; req: ExplainRequest }
  | { type: 'tensors'; req: TensorsRequest }
  | { type: 'facts' };

interface Job {
  id: number;
  model: string;
  work: Work;
  resolve(r: unknown): void;
  reject(e: Error): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface Slot { worker: Worker; job?: Job }

/** Model ids (folder names, sorted) of `dir`'s sub-folders that hold a model.onnx. */
export async function discoverModels(dir: string): Promise<{ id: string; dir: string }[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const found: { id: string; dir: string }[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.name.startsWith('.')) continue;
    const d = path.join(dir, e.name);
    if (!(await stat(d).catch(() => undefined))?.isDirectory()) continue; // follows symlinked folders
    if (await stat(path.join(d, 'model.onnx')).catch(() => undefined)) found.push({ id: e.name, dir: d });
  }
  return found;
}

function workerUrl(): URL {
  // Under a TypeScript loader (tests, dev) this module is a .ts file; built, it is .js.
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./worker${ext}`, import.meta.url);
}

function rebuildError(e: { name: string; message: string }): Error {
  const err = e.name === 'RangeError' ? new RangeError(e.message) : new Error(e.message);
  err.name = e.name;
  return err;
}

export class InferencePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closing = false;
  private statuses: ModelStatus[] = [];

  private constructor(private readonly maxQueue: number) {}

  static async start(opts: PoolOptions): Promise<InferencePool> {
    const cores = effectiveCpus().count;
    const workers = Math.max(1, opts.workers ?? Math.floor(cores / 2));
    const init: WorkerInit = {
      models: await discoverModels(opts.modelsDir),
      intraOpThreads: opts.intraOpThreads ?? Math.max(1, Math.floor(cores / workers)),
      batchSize: opts.batchSize,
    };
    const pool = new InferencePool(opts.maxQueue ?? 16);
    const ready = Array.from({ length: workers }, () => pool.spawn(init));
    const statuses = await Promise.all(ready);
    pool.statuses = statuses[0];
    return pool;
  }

  private spawn(init: WorkerInit): Promise<ModelStatus[]> {
    return new Promise((resolve, reject) => {
      const url = workerUrl();
      // A .ts worker (tests, dev) registers the TypeScript loader in its own thread first.
      const worker = url.pathname.endsWith('.ts')
        ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`, { eval: true, workerData: init })
        : new Worker(url, { workerData: init });
      const slot: Slot = { worker };
      let ready = false;
      worker.on('message', (msg: WorkerReply) => {
        if (msg.type === 'ready') {
          ready = true;
          this.slots.push(slot);
          resolve(msg.statuses);
          this.dispatch();
          return;
        }
        const job = slot.job;
        slot.job = undefined;
        if (job && job.id === msg.job) {
          if (msg.type === 'error') job.reject(rebuildError(msg.error));
          else job.resolve(msg.result);
        }
        this.dispatch();
      });
      worker.on('error', (e) => {
        if (!ready) reject(e);
        slot.job?.reject(new Error(`inference worker failed: ${e.message}`));
        slot.job = undefined;
      });
      worker.on('exit', () => {
        const i = this.slots.indexOf(slot);
        if (i >= 0) this.slots.splice(i, 1);
        slot.job?.reject(new Error('inference worker exited'));
        if (!ready) reject(new Error('inference worker exited before it was ready'));
      });
    });
  }

  /** Every model found, sorted by id; broken ones carry their error. */
  models(): ModelStatus[] {
    return this.statuses;
  }

  stats(): { workers: number; busy: number; queued: number } {
    return { workers: this.slots.length, busy: this.slots.filter((s) => s.job).length, queued: this.queue.length };
  }

  /** Queues an explanation; rejects at once with PoolBusyError when the queue is full. */
  explain(model: string, req: ExplainRequest, opts: { signal?: AbortSignal } = {}): Promise<ExplainResult> {
    return this.enqueue<ExplainResult>(model, { type: 'explain', req }, opts.signal);
  }

  /**
   * Queues an inspection of one input: the activations of `req.layers` and, with `targets` (or `topk`),
   * the class-score gradients at them. Same queue, limits and abort rules as explain.
   */
  tensors(model: string, req: TensorsRequest, opts: { signal?: AbortSignal } = {}): Promise<TensorsResult> {
    return this.enqueue<TensorsResult>(model, { type: 'tensors', req }, opts.signal);
  }

  /** Queues a request for a model's graph facts (nodes, scopes, probe shapes, initializers); callers cache them. */
  facts(model: string, opts: { signal?: AbortSignal } = {}): Promise<ModelFacts> {
    return this.enqueue<ModelFacts>(model, { type: 'facts' }, opts.signal);
  }

  private enqueue<T>(model: string, work: Work, signal: AbortSignal | undefined): Promise<T> {
    const opts = { signal };
    if (this.closing) return Promise.reject(new PoolBusyError('the server is shutting down'));
    if (opts.signal?.aborted) return Promise.reject(abortError());
    const idle = this.slots.some((s) => !s.job);
    if (!idle && this.queue.length >= this.maxQueue) {
      return Promise.reject(new PoolBusyError(`all ${this.slots.length} workers are busy and ${this.queue.length} requests are waiting`));
    }
    return new Promise<T>((resolve, reject) => {
      const job: Job = { id: this.nextId++, model, work, resolve: resolve as (r: unknown) => void, reject, signal: opts.signal };
      if (opts.signal) {
        job.onAbort = () => {
          const i = this.queue.indexOf(job);
          if (i >= 0) {
            this.queue.splice(i, 1);
            reject(abortError());
          }
        };
        opts.signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.queue.push(job);
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.job) continue;
      const job = this.queue.shift();
      if (!job) return;
      if (job.signal && job.onAbort) job.signal.removeEventListener('abort', job.onAbort);
      slot.job = job;
      try {
        this.post(slot, job);
      } catch (e) {
        // A message that cannot be sent (e.g. a value that cannot be cloned) fails its job, never the
        // process, and leaves the worker free for the next one.
        slot.job = undefined;
        job.reject(new Error(`the job could not be sent to its worker: ${(e as Error).message}`));
        queueMicrotask(() => this.dispatch());
      }
    }
  }

  private post(slot: Slot, job: Job): void {
    const work = job.work;
    if (work.type === 'facts') {
      const msg: WorkerRequest = { type: 'facts', job: job.id, model: job.model };
      slot.worker.postMessage(msg);
      return;
    }
    // The input's buffer moves to the worker (no copy) unless it is a view into a larger one.
    const x = work.req.input;
    if (x.byteOffset !== 0 || x.byteLength !== x.buffer.byteLength) work.req = { ...work.req, input: Float32Array.from(x) };
    const msg: WorkerRequest = work.type === 'explain'
      ? { type: 'explain', job: job.id, model: job.model, req: work.req }
      : { type: 'tensors', job: job.id, model: job.model, req: work.req };
    slot.worker.postMessage(msg, [work.req.input.buffer as ArrayBuffer]);
  }

  /** Refuses new jobs, lets queued and running ones finish, then stops the workers. */
  async close(): Promise<void> {
    this.closing = true;
    while (this.queue.length || this.slots.some((s) => s.job)) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(this.slots.map((s) => new Promise<void>((resolve) => {
      s.worker.once('exit', () => resolve());
      const msg: WorkerRequest = { type: 'shutdown' };
      s.worker.postMessage(msg);
    })));
  }
}

function abortError(): Error {
  const e = new Error('the request was aborted while it waited');
  e.name = 'AbortError';
  return e;
}
