// A bounded pool of inference workers: each loads every model; jobs wait in one FIFO queue of fixed size
// (a full queue is refused at once); a caller that gives up frees its job, queued or running.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { ExplainRequest, ExplainResult, TensorsRequest, TensorsResult } from '../engine/index.js';
import { CamserveError, cancelled, fromErrorData } from '../errors/index.js';
import type { ModelFacts } from '../inspect/index.js';
import type { ModelStatus, WorkerInit, WorkerReply, WorkerRequest } from './protocol.js';
import { spawnWorker } from './spawn.js';

export type { ModelStatus } from './protocol.js';

export interface PoolOptions {
  modelsDir: string;
  /** worker threads */
  workers: number;
  /** onnxruntime intra-op threads per worker */
  intraOpThreads: number;
  /** jobs allowed to wait */
  maxQueue: number;
  /** Score-CAM / Ablation-CAM batch size; undefined: the engine's default */
  batchSize?: number;
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

export interface JobOptions {
  /** aborting it drops a queued job and stops a running one at its next checkpoint */
  signal?: AbortSignal;
}

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

export class InferencePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closing = false;
  private statuses: ModelStatus[] = [];

  private constructor(private readonly maxQueue: number) {}

  static async start(opts: PoolOptions): Promise<InferencePool> {
    const init: WorkerInit = {
      models: await discoverModels(opts.modelsDir),
      intraOpThreads: opts.intraOpThreads,
      batchSize: opts.batchSize,
    };
    const pool = new InferencePool(opts.maxQueue);
    const statuses = await Promise.all(Array.from({ length: Math.max(1, opts.workers) }, () => pool.spawn(init)));
    pool.statuses = statuses[0];
    return pool;
  }

  private spawn(init: WorkerInit): Promise<ModelStatus[]> {
    return new Promise((resolve, reject) => {
      const worker = spawnWorker('worker', { workerData: init });
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
        if (!job || job.id !== msg.job) return; // the answer of a job already settled (cancelled)
        this.finish(slot, job);
        if (msg.type === 'error') job.reject(fromErrorData(msg.error));
        else job.resolve(msg.result);
        this.dispatch();
      });
      worker.on('error', (e) => {
        if (!ready) reject(e);
        const job = slot.job;
        if (job) {
          this.finish(slot, job);
          job.reject(new CamserveError('internal', `inference worker failed: ${e.message}`));
        }
      });
      worker.on('exit', () => {
        const i = this.slots.indexOf(slot);
        if (i >= 0) this.slots.splice(i, 1);
        const job = slot.job;
        if (job) {
          this.finish(slot, job);
          job.reject(new CamserveError('internal', 'inference worker exited'));
        }
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

  /** Queues an explanation; rejects at once with `overloaded` when the queue is full. */
  explain(model: string, req: ExplainRequest, opts: JobOptions = {}): Promise<ExplainResult> {
    return this.enqueue<ExplainResult>(model, { type: 'explain', req }, opts);
  }

  /**
   * Queues an inspection of one input: the activations of `req.layers` and, with `targets` (or `topk`),
   * the class-score gradients at them. Same queue, limits and abort rules as explain.
   */
  tensors(model: string, req: TensorsRequest, opts: JobOptions = {}): Promise<TensorsResult> {
    return this.enqueue<TensorsResult>(model, { type: 'tensors', req }, opts);
  }

  /** Queues a request for a model's graph facts (nodes, scopes, probe shapes, initializers); callers cache them. */
  facts(model: string, opts: JobOptions = {}): Promise<ModelFacts> {
    return this.enqueue<ModelFacts>(model, { type: 'facts' }, opts);
  }

  /** Whether a job would be refused now (shutting down, or every worker busy and the queue full). */
  full(): CamserveError | undefined {
    if (this.closing) return new CamserveError('shutting-down', 'the server is shutting down');
    const idle = this.slots.some((s) => !s.job);
    if (!idle && this.queue.length >= this.maxQueue) {
      return new CamserveError('overloaded', `too many requests are waiting: all ${this.slots.length} workers are busy and ${this.queue.length} requests are waiting`);
    }
    return undefined;
  }

  private enqueue<T>(model: string, work: Work, opts: JobOptions): Promise<T> {
    const refused = this.full();
    if (refused) return Promise.reject(refused);
    if (opts.signal?.aborted) return Promise.reject(cancelled('the request was cancelled before it was queued'));
    return new Promise<T>((resolve, reject) => {
      const job: Job = { id: this.nextId++, model, work, resolve: resolve as (r: unknown) => void, reject, signal: opts.signal };
      if (opts.signal) {
        job.onAbort = () => this.abort(job);
        opts.signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.queue.push(job);
      this.dispatch();
    });
  }

  /** A caller gave up: a queued job leaves the queue; a running one is told to stop and its caller freed. */
  private abort(job: Job): void {
    const i = this.queue.indexOf(job);
    if (i >= 0) {
      this.queue.splice(i, 1);
      job.reject(cancelled('the request was cancelled while it waited'));
      return;
    }
    const slot = this.slots.find((s) => s.job === job);
    if (!slot) return;
    const msg: WorkerRequest = { type: 'cancel', job: job.id };
    slot.worker.postMessage(msg);
  }

  /** A job is settled: its slot is free again and its abort listener gone. */
  private finish(slot: Slot, job: Job): void {
    if (slot.job === job) slot.job = undefined;
    if (job.signal && job.onAbort) job.signal.removeEventListener('abort', job.onAbort);
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.job) continue;
      const job = this.queue.shift();
      if (!job) return;
      slot.job = job;
      try {
        this.post(slot, job);
      } catch (e) {
        // A message that cannot be sent (e.g. a value that cannot be cloned) fails its job, never the
        // process, and leaves the worker free for the next one.
        this.finish(slot, job);
        job.reject(new CamserveError('internal', `the job could not be sent to its worker: ${(e as Error).message}`));
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
