// A bounded pool of inference workers: each loads every model; jobs wait in one FIFO queue of fixed size
// (a full queue is refused at once). No job can hold a worker for ever: a caller that gives up or runs
// out of time stops its job at the next checkpoint, a worker that does not stop in time is replaced, and
// a worker that fails or exits is replaced too.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { sharesTrunk, type ExplainRequest, type ExplainResult, type TensorsRequest, type TensorsResult } from '../engine/index.js';
import { CamserveError, cancelled, fromErrorData } from '../errors/index.js';
import type { ModelFacts } from '../inspect/index.js';
import type { ModelEntry, ModelStatus, ReloadChanges, WorkerInit, WorkerReply, WorkerRequest } from './protocol.js';
import { spawnWorker } from './spawn.js';

export type { ModelStatus, ReloadChanges } from './protocol.js';

export interface PoolOptions {
  modelsDir: string;
  /** the id of the model when modelsDir is itself one model's folder (default: the folder's name) */
  modelName?: string;
  /** worker threads */
  workers: number;
  /**
   * onnxruntime intra-op threads: one count for every worker, or a count per worker (as many as `workers`).
   * A job goes to the idle worker with the most threads, so with e.g. [2, 1] a lone request runs on two threads
   * and the one-thread worker takes a second request while the first runs.
   */
  intraOpThreads: number | readonly number[];
  /** jobs allowed to wait (a batch of n inputs counts n) */
  maxQueue: number;
  /** of those, the most one client may have waiting (default: all of them) */
  maxQueuePerClient?: number;
  /** Score-CAM / Ablation-CAM batch size; undefined: the engine's default */
  batchSize?: number;
  /** a cancelled job that has not stopped after this long gets its worker replaced (ms); the old worker exits after its current run */
  cancelGraceMs?: number;
  /** a job still running after this long gets its worker replaced, whatever it is doing (ms) */
  watchdogMs?: number;
  /** look for changed model folders this often and reload them (ms); undefined: only on reload() */
  pollMs?: number;
  /** told about every reload (by reload() or the polling): what changed, or why it failed */
  onReload?(r: { changes?: ReloadChanges; error?: Error; trigger: 'request' | 'poll' }): void;
  /**
   * a version a reload replaced or removed stays loaded at least this long after the swap (ms), and as
   * long as a queued or running job names it: requests planned against it just before the swap (their
   * image still being decoded) run on it. A job naming a version already dropped is `model-changed`.
   */
  keepSupersededMs?: number;
  /**
   * most waiting explanations a free worker takes as one job (default 1: none coalesced): requests of one
   * model whose input takes a batch, with the same parameters, whose method costs one trunk run
   * (engine's sharesTrunk) share that run. Only requests already waiting are taken; none is delayed.
   */
  maxCoalesce?: number;
}

export const POOL_DEFAULTS = { cancelGraceMs: 1000, watchdogMs: 15 * 60_000, keepSupersededMs: 10_000, maxCoalesce: 1 } as const;

/** What a job asks of a worker: an explanation, or one of the inspection jobs. */
type Work =
  | { type: 'explain'; req: ExplainRequest }
  | { type: 'explain-batch'; reqs: ExplainRequest[]; maxBatch?: number }
  | { type: 'tensors'; req: TensorsRequest }
  | { type: 'facts' };

interface Job {
  id: number;
  model: string;
  version?: string;
  work: Work;
  resolve(r: unknown): void;
  reject(e: Error): void;
  signal?: AbortSignal;
  onAbort?: () => void;
  /** the caller has its answer (result, error or cancellation); a late reply is dropped */
  settled: boolean;
  startedAt?: number;
  /** inputs it carries (its share of the queue) */
  weight: number;
  client?: string;
  onProgress?(done: number, total: number): void;
  /** a coalesced job: the explanations it runs as one batch, each answered on its own */
  members?: Job[];
}

interface Slot {
  worker: Worker;
  job?: Job;
  /** terminated or exited: takes no more jobs */
  dead: boolean;
  /** the kill timer of a job told to stop */
  killTimer?: NodeJS.Timeout;
  /** its onnxruntime intra-op threads (a replacement gets the same) */
  threads: number;
}

/**
 * A place in the queue held for a request between its admission (before its body is read) and its job
 * (after decoding): so that many requests arriving at once are refused at the door, not after their uploads.
 */
export interface Reservation {
  /** inputs the place is for */
  readonly weight: number;
  /** gives the place back (a request that failed before queueing its job); once, and not after use */
  release(): void;
}

export interface JobOptions {
  /** the place this job's request was admitted with (see reserve) */
  reservation?: Reservation;
  /**
   * Aborting it drops a queued job and stops a running one at its next checkpoint. The abort reason
   * decides the error: a TimeoutError (AbortSignal.timeout) is `deadline-exceeded`, anything else `cancelled`.
   */
  signal?: AbortSignal;
  /** called after each batch of forward runs (Score-CAM, Ablation-CAM, aug_smooth) with the runs done and their total */
  onProgress?(done: number, total: number): void;
  /** who asks (an API key's name or a client address): one client may not fill the whole queue */
  client?: string;
  /**
   * the model's version the request was planned against (ModelInfo.version): the job runs on that
   * version even if a reload has replaced it since; none: the version current when the job starts
   */
  version?: string;
}

export interface PoolStats {
  workers: number;
  busy: number;
  queued: number;
  /** workers replaced since start (failed, exited, or did not stop in time) */
  replaced: number;
  /** explanations that shared a batched trunk run with others (coalesced) since start */
  coalesced: number;
  /** onnxruntime intra-op threads of each worker taking jobs, in the order jobs go to idle ones (most first) */
  threads: number[];
}

/** The onnxruntime intra-op threads of each of `workers` workers: `threads` for all, or its own list (as long as `workers`). */
function workerThreads(workers: number, threads: number | readonly number[]): number[] {
  const list = typeof threads === 'number' ? Array.from({ length: Math.max(1, workers) }, () => threads) : [...threads];
  if (typeof threads !== 'number' && list.length !== workers) throw new RangeError(`${list.length} thread counts for ${workers} workers`);
  if (!list.length || !list.every((n) => Number.isInteger(n) && n >= 1)) throw new RangeError(`thread counts must be positive integers, got ${JSON.stringify(threads)}`);
  return list;
}

/**
 * Model ids (folder names, sorted) of `dir`'s sub-folders that hold a model.onnx, each with the stamp of
 * its files (name, size and modification time of each file in the folder): a changed stamp means reload.
 */
export async function discoverModels(dir: string, modelName?: string): Promise<ModelEntry[]> {
  // A folder that is itself one model (KServe mounts the model at /mnt/models): its id is MODEL_NAME,
  // else the folder's name.
  if (await stat(path.join(dir, 'model.onnx')).catch(() => undefined)) {
    return [{ id: modelName ?? path.basename(path.resolve(dir)), dir, stamp: await folderStamp(dir) }];
  }
  const entries = await readdir(dir, { withFileTypes: true });
  const found: ModelEntry[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.name.startsWith('.')) continue;
    const d = path.join(dir, e.name);
    if (!(await stat(d).catch(() => undefined))?.isDirectory()) continue; // follows symlinked folders
    if (!(await stat(path.join(d, 'model.onnx')).catch(() => undefined))) continue;
    found.push({ id: e.name, dir: d, stamp: await folderStamp(d) });
  }
  return found;
}

async function folderStamp(dir: string): Promise<string> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
  const parts: string[] = [];
  for (const n of names) {
    const s = await stat(path.join(dir, n)).catch(() => undefined);
    if (s?.isFile()) parts.push(`${n}:${s.size}:${s.mtimeMs}`);
  }
  return parts.join('|');
}

/** What a reload answers: what changed and the models now. */
export interface ReloadResult {
  changes: ReloadChanges;
  models: ModelStatus[];
}

/** Batch modes whose input takes a batch of any size (as loaded, or made so at load). */
const BATCHED = new Set<string>(['dynamic', 'symbolic']);

/** What must be equal for two explanations to share a trunk run: everything but the input. */
function coalesceKey(req: ExplainRequest): string {
  return JSON.stringify({ ...req, input: undefined });
}

/** The error of a job whose signal fired. */
function abortError(signal: AbortSignal, when: string): CamserveError {
  const reason = signal.reason as { name?: string } | undefined;
  if (reason instanceof CamserveError) return reason;
  if (reason?.name === 'TimeoutError') return new CamserveError('deadline-exceeded', `the request's deadline passed ${when}`);
  return cancelled(`the request was cancelled ${when}`);
}

export class InferencePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closing = false;
  private statuses: ModelStatus[] = [];
  private replaced = 0;
  private coalesced = 0;
  /** places held by admitted requests whose jobs are not queued yet, in all and by client */
  private reserved = 0;
  private readonly reservedBy = new Map<string, number>();
  private watchdog?: NodeJS.Timeout;
  private readonly cancelGraceMs: number;
  private readonly watchdogMs: number;
  private reloading?: Promise<ReloadResult>;
  private nextReload = 1;
  private readonly reloadReplies = new Map<number, { waiting: Set<Worker>; first?: { statuses: ModelStatus[]; changes: ReloadChanges }; done(): void }>();
  private poller?: NodeJS.Timeout;
  /** versions a reload superseded, with when, until every worker is told to drop them */
  private superseded: { model: string; version: string; since: number }[] = [];
  private sweeper?: NodeJS.Timeout;
  private readonly keepSupersededMs: number;

  private constructor(private init: Omit<WorkerInit, 'intraOpThreads'>, private readonly opts: PoolOptions) {
    this.cancelGraceMs = opts.cancelGraceMs ?? POOL_DEFAULTS.cancelGraceMs;
    this.watchdogMs = opts.watchdogMs ?? POOL_DEFAULTS.watchdogMs;
    this.keepSupersededMs = opts.keepSupersededMs ?? POOL_DEFAULTS.keepSupersededMs;
  }

  /**
   * `job` and the waiting explanations that can share its trunk run, as one job, or undefined when none
   * can. Members are taken in queue order; each keeps its caller, its signal and its answer.
   */
  private coalesce(job: Job): Job | undefined {
    const max = this.opts.maxCoalesce ?? POOL_DEFAULTS.maxCoalesce;
    if (max < 2 || job.work.type !== 'explain' || job.onProgress || !sharesTrunk(job.work.req)) return undefined;
    const status = this.statuses.find((m) => m.id === job.model);
    // The model's current version must take batches (a superseded one is not coalesced).
    if (!status?.ok || !BATCHED.has(status.info.batch.mode) || (job.version !== undefined && job.version !== status.info.version)) return undefined;
    const key = coalesceKey(job.work.req);
    const members = [job];
    for (let i = 0; i < this.queue.length && members.length < max; i++) {
      const other = this.queue[i];
      if (other.model !== job.model || other.version !== job.version || other.work.type !== 'explain' || other.onProgress) continue;
      if (coalesceKey(other.work.req) !== key) continue;
      members.push(other);
      this.queue.splice(i--, 1);
    }
    if (members.length === 1) return undefined;
    this.coalesced += members.length;
    const group: Job = {
      id: this.nextId++, model: job.model, version: job.version, settled: false,
      weight: members.reduce((a, m) => a + m.weight, 0), members,
      work: { type: 'explain-batch', reqs: members.map((m) => (m.work as { req: ExplainRequest }).req), maxBatch: members.length },
      resolve: (results) => members.forEach((m, i) => this.settle(m, undefined, (results as ExplainResult[])[i])),
      reject: (e) => members.forEach((m) => this.settle(m, e)),
    };
    return group;
  }

  static async start(opts: PoolOptions): Promise<InferencePool> {
    const threads = workerThreads(opts.workers, opts.intraOpThreads);
    // What every worker is told; each gets its own thread count when it is started (spawn).
    const init = { models: await discoverModels(opts.modelsDir, opts.modelName), batchSize: opts.batchSize };
    const pool = new InferencePool(init, opts);
    const statuses = await Promise.all(threads.map((n) => pool.spawn(n)));
    pool.statuses = statuses[0];
    pool.watchdog = setInterval(() => pool.checkWatchdog(), Math.min(1000, pool.watchdogMs));
    pool.watchdog.unref();
    if (opts.pollMs) pool.startPolling(opts.pollMs);
    return pool;
  }

  /** Starts a worker with `threads` onnxruntime intra-op threads; it joins the pool once its models are loaded. */
  private spawn(threads: number): Promise<ModelStatus[]> {
    return new Promise((resolve, reject) => {
      const init: WorkerInit = { ...this.init, intraOpThreads: threads };
      const worker = spawnWorker('worker', { workerData: init });
      const slot: Slot = { worker, dead: false, threads };
      let ready = false;
      worker.on('message', (msg: WorkerReply) => {
        if (msg.type === 'ready') {
          ready = true;
          if (this.closing) {
            const bye: WorkerRequest = { type: 'shutdown' };
            worker.postMessage(bye);
          } else {
            // Idle workers take jobs in this order: the most threads first (a lone request runs fastest there).
            const at = this.slots.findIndex((s) => s.threads < threads);
            this.slots.splice(at < 0 ? this.slots.length : at, 0, slot);
            this.dispatch();
          }
          resolve(msg.statuses);
          return;
        }
        if (msg.type === 'reloaded') {
          this.reloadAnswered(worker, msg);
          return;
        }
        const job = slot.job;
        if (!job || job.id !== msg.job) return;
        if (msg.type === 'progress') {
          if (!job.settled) {
            try {
              job.onProgress?.(msg.done, msg.total);
            } catch {
              // a listener's failure is not the job's
            }
          }
          return;
        }
        this.free(slot);
        if (msg.type === 'error') this.settle(job, fromErrorData(msg.error));
        else this.settle(job, undefined, msg.type === 'results' ? msg.results : msg.result);
        this.dispatch();
      });
      worker.on('error', (e) => {
        if (!ready) reject(e);
        else this.retire(slot, new CamserveError('internal', `inference worker failed: ${e.message}`));
      });
      worker.on('exit', () => {
        if (!ready) reject(new Error('inference worker exited before it was ready'));
        else this.retire(slot, new CamserveError('internal', 'inference worker exited'));
      });
    });
  }

  /**
   * Takes a slot out of the pool: its job (if any) fails with `why`, a new worker is started, and the old
   * one is told to exit. It does so when it next gets control — after the onnxruntime run in progress,
   * which JavaScript cannot interrupt; terminating the thread during a native run aborts the whole
   * process (measured: "terminate called after throwing an instance of 'Napi::Error'"), so it never is.
   */
  private retire(slot: Slot, why: CamserveError): void {
    if (slot.dead) return;
    slot.dead = true;
    clearTimeout(slot.killTimer);
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    const job = slot.job;
    slot.job = undefined;
    if (job) this.settle(job, why);
    // A reload does not wait for a worker that is gone (its replacement loads the models as they are now).
    for (const r of this.reloadReplies.values()) if (r.waiting.delete(slot.worker) && r.waiting.size === 0) r.done();
    try {
      const msg: WorkerRequest = { type: 'shutdown' };
      slot.worker.postMessage(msg);
    } catch {
      // an exited worker takes no message; nothing to stop
    }
    if (this.closing) return;
    this.replaced++;
    // The replacement loads and warms every model before it takes jobs; meanwhile the others serve.
    this.spawn(slot.threads).catch(() => undefined);
  }

  /**
   * Loads the models folder as it is now: new and changed models load in every worker while the old
   * versions keep serving, then each worker swaps; removed models go. A call while a reload runs joins it.
   */
  reload(trigger: 'request' | 'poll' = 'request'): Promise<ReloadResult> {
    if (this.closing) return Promise.reject(new CamserveError('shutting-down', 'the server is shutting down'));
    this.reloading ??= this.runReload().then(
      (r) => { this.opts.onReload?.({ changes: r.changes, trigger }); return r; },
      (e: Error) => { this.opts.onReload?.({ error: e, trigger }); throw e; },
    ).finally(() => { this.reloading = undefined; });
    return this.reloading;
  }

  private async runReload(): Promise<ReloadResult> {
    const models = await discoverModels(this.opts.modelsDir, this.opts.modelName);
    // Workers started from now on load the new set.
    this.init = { ...this.init, models };
    const live = this.slots.filter((s) => !s.dead);
    const id = this.nextReload++;
    const answered = await new Promise<{ statuses: ModelStatus[]; changes: ReloadChanges } | undefined>((resolve) => {
      const entry = {
        waiting: new Set(live.map((s) => s.worker)),
        first: undefined as { statuses: ModelStatus[]; changes: ReloadChanges } | undefined,
        done: () => { this.reloadReplies.delete(id); resolve(entry.first); },
      };
      this.reloadReplies.set(id, entry);
      if (live.length === 0) {
        entry.done();
        return;
      }
      for (const s of live) {
        const msg: WorkerRequest = { type: 'reload', reload: id, models };
        s.worker.postMessage(msg);
      }
    });
    const previous = new Set(this.statuses.map((m) => m.id));
    const changes: ReloadChanges = answered?.changes ?? {
      added: models.filter((m) => !previous.has(m.id)).map((m) => m.id), removed: [...previous].filter((i) => !models.some((m) => m.id === i)),
      replaced: [], unchanged: [], keptPrevious: [],
    };
    if (answered) {
      const now = new Map(answered.statuses.map((m) => [m.id, m.ok ? m.info.version : undefined]));
      for (const m of this.statuses) {
        if (m.ok && m.info.version !== undefined && now.get(m.id) !== m.info.version) {
          this.superseded.push({ model: m.id, version: m.info.version, since: Date.now() });
        }
      }
      this.statuses = answered.statuses;
      this.sweepSuperseded();
    }
    return { changes, models: this.statuses };
  }

  /**
   * Tells the workers to drop each superseded version that is old enough and that no queued or running
   * job names; looks again later while some remain.
   */
  private sweepSuperseded(): void {
    clearTimeout(this.sweeper);
    this.sweeper = undefined;
    if (this.superseded.length === 0) return;
    const named = new Set([...this.queue, ...this.slots.map((s) => s.job)].flatMap((j) => (j?.version ? [`${j.model}@${j.version}`] : [])));
    const now = Date.now();
    this.superseded = this.superseded.filter((v) => {
      if (now - v.since < this.keepSupersededMs || named.has(`${v.model}@${v.version}`)) return true;
      for (const slot of this.slots) {
        try {
          const msg: WorkerRequest = { type: 'drop', model: v.model, version: v.version };
          slot.worker.postMessage(msg);
        } catch {
          // an exited worker holds nothing
        }
      }
      return false;
    });
    if (this.superseded.length === 0 || this.closing) return;
    const next = Math.max(250, Math.min(...this.superseded.map((v) => v.since + this.keepSupersededMs - now)));
    this.sweeper = setTimeout(() => this.sweepSuperseded(), next);
    this.sweeper.unref();
  }

  private reloadAnswered(worker: Worker, msg: { reload: number; statuses: ModelStatus[]; changes: ReloadChanges }): void {
    const r = this.reloadReplies.get(msg.reload);
    if (!r || !r.waiting.delete(worker)) return;
    r.first ??= { statuses: msg.statuses, changes: msg.changes };
    if (r.waiting.size === 0) r.done();
  }

  /** Reloads whenever the models folder changes (checked every `ms`). */
  startPolling(ms: number): void {
    clearInterval(this.poller);
    const key = (ms: ModelEntry[]) => ms.map((m) => `${m.id}=${m.stamp}`).join('\n');
    this.poller = setInterval(() => {
      if (this.reloading || this.closing) return;
      void discoverModels(this.opts.modelsDir, this.opts.modelName).then((now) => {
        if (key(now) !== key(this.init.models)) return this.reload('poll');
        return undefined;
      }).catch(() => undefined);
    }, ms);
    this.poller.unref();
  }

  /** Every model found, sorted by id; broken ones carry their error. */
  models(): ModelStatus[] {
    return this.statuses;
  }

  stats(): PoolStats {
    return {
      workers: this.slots.length, busy: this.slots.filter((s) => s.job).length, queued: this.queued(), replaced: this.replaced, coalesced: this.coalesced,
      threads: this.slots.map((s) => s.threads),
    };
  }

  /** Inputs waiting (of one client, or of all). */
  queued(client?: string): number {
    let n = client === undefined ? this.reserved : this.reservedBy.get(client) ?? 0;
    for (const j of this.queue) if (client === undefined || j.client === client) n += j.weight;
    return n;
  }

  /**
   * Holds a place of `weight` inputs for a job to come (admission before the request's body is read), or
   * says why there is none: the request is then refused at once.
   */
  reserve(weight = 1, client?: string): Reservation | CamserveError {
    const refused = this.full(weight, client);
    if (refused) return refused;
    this.hold(weight, client);
    let held = true;
    return { weight, release: () => { if (held) { held = false; this.hold(-weight, client); } } };
  }

  private hold(weight: number, client: string | undefined): void {
    this.reserved += weight;
    if (client === undefined) return;
    const n = (this.reservedBy.get(client) ?? 0) + weight;
    if (n > 0) this.reservedBy.set(client, n);
    else this.reservedBy.delete(client);
  }

  /** Queues an explanation; rejects at once with `overloaded` when the queue is full. */
  explain(model: string, req: ExplainRequest, opts: JobOptions = {}): Promise<ExplainResult> {
    return this.enqueue<ExplainResult>(model, { type: 'explain', req }, opts);
  }

  /**
   * Queues several inputs with the same method and layers as one job (one trunk run for up to `maxBatch`
   * of them where the model takes batches); it counts as that many explanations in the queue.
   */
  explainBatch(model: string, reqs: ExplainRequest[], opts: JobOptions & { maxBatch?: number } = {}): Promise<ExplainResult[]> {
    return this.enqueue<ExplainResult[]>(model, { type: 'explain-batch', reqs, maxBatch: opts.maxBatch }, opts, reqs.length);
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

  /**
   * The refusal a new job of `weight` inputs would get now, if any: shutting down; more waiting than the
   * queue holds (an idle worker takes one at once); or, for `client`, more of its own waiting than its
   * share (`maxQueuePerClient`, answered 429).
   */
  full(weight = 1, client?: string): CamserveError | undefined {
    if (this.closing) return new CamserveError('shutting-down', 'the server is shutting down');
    const idle = this.slots.filter((s) => !s.job && !s.dead).length;
    const queued = this.queued();
    if (queued + weight > this.opts.maxQueue + idle) {
      return new CamserveError('overloaded', `too many requests are waiting: ${this.slots.length - idle} of ${this.slots.length} workers are busy and ${queued} explanations are waiting (at most ${this.opts.maxQueue})`);
    }
    const share = this.opts.maxQueuePerClient;
    if (client !== undefined && share !== undefined && idle === 0) {
      const mine = this.queued(client);
      if (mine + weight > share) {
        return new CamserveError('rate-limited', `this client has ${mine} explanations waiting; one client may have at most ${share} of the queue's ${this.opts.maxQueue} waiting`, { limit: 'queue-share', queued: mine, allowed: share });
      }
    }
    return undefined;
  }

  private enqueue<T>(model: string, work: Work, opts: JobOptions, weight = 1): Promise<T> {
    // A job admitted with a reservation has that many places already (the reservation ends here, whatever
    // happens next); only inputs beyond them (a batch larger than known at admission) are checked again.
    const held = opts.reservation?.weight ?? 0;
    opts.reservation?.release();
    const extra = weight - held;
    const refused = this.closing ? this.full() : extra > 0 ? this.full(extra, opts.client) : undefined;
    if (refused) return Promise.reject(refused);
    if (opts.signal?.aborted) return Promise.reject(abortError(opts.signal, 'before it was queued'));
    return new Promise<T>((resolve, reject) => {
      const job: Job = {
        id: this.nextId++, model, version: opts.version, work, resolve: resolve as (r: unknown) => void, reject, signal: opts.signal, settled: false,
        weight, client: opts.client, onProgress: opts.onProgress,
      };
      if (opts.signal) {
        job.onAbort = () => this.abort(job);
        opts.signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.queue.push(job);
      this.dispatch();
    });
  }

  /** Gives the caller its answer, once. */
  private settle(job: Job, error: Error | undefined, result?: unknown): void {
    if (job.settled) return;
    job.settled = true;
    if (job.signal && job.onAbort) job.signal.removeEventListener('abort', job.onAbort);
    if (error) job.reject(error);
    else job.resolve(result);
  }

  /**
   * The caller gave up or ran out of time: a queued job leaves the queue; a running one is told to stop at
   * its next checkpoint, and its worker is replaced if it has not stopped within the grace period. The
   * caller gets its answer at once either way.
   */
  private abort(job: Job): void {
    const i = this.queue.indexOf(job);
    if (i >= 0) {
      this.queue.splice(i, 1);
      this.settle(job, abortError(job.signal!, 'while it waited'));
      return;
    }
    const slot = this.slots.find((s) => s.job === job || s.job?.members?.includes(job));
    const why = abortError(job.signal!, 'while it ran');
    this.settle(job, why);
    if (!slot?.job) return;
    // A coalesced job stops once every one of its callers has left.
    const running = slot.job;
    if (running !== job && !running.members!.every((m) => m.settled)) return;
    this.settle(running, why);
    this.stop(slot, running);
  }

  /** Tells a running job to stop; replaces its worker if it is still running after the grace period. */
  private stop(slot: Slot, job: Job): void {
    try {
      const msg: WorkerRequest = { type: 'cancel', job: job.id };
      slot.worker.postMessage(msg);
    } catch {
      // a worker that cannot take a message is replaced below
    }
    clearTimeout(slot.killTimer);
    slot.killTimer = setTimeout(() => {
      if (slot.job === job) this.retire(slot, cancelled('the job did not stop in time'));
    }, this.cancelGraceMs);
    slot.killTimer.unref();
  }

  /** A slot's job is done (answered by its worker): the slot takes the next one. */
  private free(slot: Slot): void {
    slot.job = undefined;
    clearTimeout(slot.killTimer);
  }

  /** Replaces a worker whose job has run past the watchdog's limit, whatever it is doing. */
  private checkWatchdog(): void {
    const now = Date.now();
    for (const slot of [...this.slots]) {
      const job = slot.job;
      if (job?.startedAt !== undefined && now - job.startedAt > this.watchdogMs) {
        this.retire(slot, new CamserveError('internal', `the job ran longer than ${this.watchdogMs} ms; its worker was replaced`));
      }
    }
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.job || slot.dead) continue;
      const next = this.queue.shift();
      if (!next) return;
      const job = this.coalesce(next) ?? next;
      slot.job = job;
      job.startedAt = Date.now();
      try {
        this.post(slot, job);
      } catch (e) {
        // A message that cannot be sent (e.g. a value that cannot be cloned) fails its job, never the
        // process, and leaves the worker free for the next one.
        this.free(slot);
        this.settle(job, new CamserveError('internal', `the job could not be sent to its worker: ${(e as Error).message}`));
        queueMicrotask(() => this.dispatch());
      }
    }
  }

  private post(slot: Slot, job: Job): void {
    const work = job.work;
    if (work.type === 'facts') {
      const msg: WorkerRequest = { type: 'facts', job: job.id, model: job.model, version: job.version };
      slot.worker.postMessage(msg);
      return;
    }
    if (work.type === 'explain-batch') {
      // Each input's buffer moves to the worker (no copy) unless it is shared or a view into a larger one.
      const seen = new Set<ArrayBufferLike>();
      work.reqs = work.reqs.map((r) => {
        const x = r.input;
        const own = x.byteOffset === 0 && x.byteLength === x.buffer.byteLength && !seen.has(x.buffer);
        seen.add(x.buffer);
        return own ? r : { ...r, input: Float32Array.from(x) };
      });
      const msg: WorkerRequest = { type: 'explain-batch', job: job.id, model: job.model, version: job.version, reqs: work.reqs, maxBatch: work.maxBatch };
      slot.worker.postMessage(msg, work.reqs.map((r) => r.input.buffer as ArrayBuffer));
      return;
    }
    // The input's buffer moves to the worker (no copy) unless it is a view into a larger one.
    const x = work.req.input;
    if (x.byteOffset !== 0 || x.byteLength !== x.buffer.byteLength) work.req = { ...work.req, input: Float32Array.from(x) };
    const msg: WorkerRequest = work.type === 'explain'
      ? { type: 'explain', job: job.id, model: job.model, version: job.version, req: work.req, progress: job.onProgress !== undefined }
      : { type: 'tensors', job: job.id, model: job.model, version: job.version, req: work.req };
    slot.worker.postMessage(msg, [work.req.input.buffer as ArrayBuffer]);
  }

  /** From now on new jobs are refused with `shutting-down`; queued and running ones go on. */
  beginClose(): void {
    this.closing = true;
  }

  /**
   * Stops every job: queued ones fail at once, running ones are told to stop (their callers get
   * `shutting-down` at once); resolves when every worker is free again or replaced.
   */
  async cancelAll(): Promise<void> {
    this.closing = true;
    const stopping = new CamserveError('shutting-down', 'the server is shutting down; the job was stopped');
    for (const job of this.queue.splice(0)) this.settle(job, stopping);
    for (const slot of this.slots) {
      const job = slot.job;
      if (!job) continue;
      this.settle(job, stopping);
      this.stop(slot, job);
    }
    while (this.slots.some((s) => s.job)) await new Promise((r) => setTimeout(r, 20));
  }

  /** Refuses new jobs, lets queued and running ones finish, then stops the workers. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.poller);
    clearTimeout(this.sweeper);
    while (this.queue.length || this.slots.some((s) => s.job)) await new Promise((r) => setTimeout(r, 20));
    clearInterval(this.watchdog);
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => new Promise<void>((resolve) => {
      s.dead = true;
      s.worker.once('exit', () => resolve());
      const msg: WorkerRequest = { type: 'shutdown' };
      s.worker.postMessage(msg);
    })));
  }
}
