// Jobs kept in Redis (REDIS_URL): BullMQ carries the work, so that any replica's workers take it, a
// replica that stops hands its running jobs back (another replica starts them again) and a replica that
// dies has them taken up once their lock expires; the job's record, its events (a Redis stream, so that
// Last-Event-ID resumes on any replica) and its PNGs are ours, next to it:
//
//   camserve:job:{id}             the record (JSON)             camserve:job:{id}:events   the event stream
//   camserve:job:{id}:png:{n}     a result's PNG                camserve:job:{id}:gone     "it existed" (410)
//   camserve:job:{id}:cancel      cancel asked (a queued job that is taken meanwhile stops at once)
//   camserve:idem:{hash}          an Idempotency-Key's job      camserve:jobs:queued-by    waiting jobs by client
//   camserve:jobs:finished        finished jobs by end time     camserve:jobs:sizes        their bytes and state
//   camserve:jobs:bytes           bytes of results kept         channel camserve:job-events / camserve:job-cancel
//
// Record, event and its publication are written by one script, so every replica sees them in order.
import { createHash } from 'node:crypto';
import { Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { CamserveError } from '../../errors/index.js';
import type { AppContext } from '../context.js';
import { problemBody } from '../problem.js';
import { connectRedis } from '../redis.js';
import { gone, idempotencyReused, type JobLimits } from './memory.js';
import { runJob } from './run.js';
import { TERMINAL, viewOf, type Idempotency, type JobBackend, type JobEvent, type JobEventName, type JobRecord, type JobSpec, type JobState } from './types.js';

const P = 'camserve:';
const QUEUE = 'camserve-jobs';
const EVENTS_CHANNEL = `${P}job-events`;
const CANCEL_CHANNEL = `${P}job-cancel`;
/** How long "this job existed" outlives its results (answers 410 rather than 404), s. */
const TOMBSTONE_S = 7 * 24 * 3600;
/** Events kept per job. */
const MAX_EVENTS = 10_000;
/** Starts of a job (a replica that stops hands its job back: that is an attempt). */
const ATTEMPTS = 5;

const key = {
  record: (id: string) => `${P}job:${id}`,
  events: (id: string) => `${P}job:${id}:events`,
  png: (id: string, n: number) => `${P}job:${id}:png:${n}`,
  gone: (id: string) => `${P}job:${id}:gone`,
  cancel: (id: string) => `${P}job:${id}:cancel`,
  idem: (owner: string | null, k: string) => `${P}idem:${createHash('sha256').update(`${owner ?? ''}\0${k}`).digest('hex')}`,
  queuedBy: `${P}jobs:queued-by`,
  finished: `${P}jobs:finished`,
  sizes: `${P}jobs:sizes`,
  bytes: `${P}jobs:bytes`,
};

/** SET the record, XADD the event, PUBLISH it with its stream id: KEYS record, events; ARGV record json, event name, view json, maxlen, channel, job id. */
const SAVE_AND_EMIT = `
redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
local sid = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'event', ARGV[2], 'data', ARGV[3])
redis.call('PUBLISH', ARGV[5], '{"job":"' .. ARGV[6] .. '","id":"' .. sid .. '","event":"' .. ARGV[2] .. '","data":' .. ARGV[3] .. '}')
return sid`;

interface QueueData { id: string; params: Record<string, string>; model: string; images: string[] }

/** Stream ids ("ms-seq") in order. */
function after(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am > bm || (am === bm && as > bs);
}

export class RedisJobs implements JobBackend {
  readonly kind = 'redis';
  private readonly queue: Queue;
  private worker?: Worker;
  private readonly sub: Redis;
  private readonly listeners = new Map<string, Set<(e: JobEvent) => void>>();
  /** jobs this replica runs, and how to stop each */
  private readonly active = new Map<string, AbortController>();
  /** per job, its writes in order */
  private readonly chains = new Map<string, Promise<unknown>>();
  private closing = false;
  private readonly sweeper: NodeJS.Timeout;
  /** the connections of the queue and the worker (BullMQ leaves connections it is given open) */
  private readonly connections: Redis[] = [];

  constructor(
    private readonly ctx: AppContext, private readonly limits: JobLimits, private readonly logger: Logger,
    private readonly redis: Redis, private readonly url: string,
  ) {
    this.queue = new Queue(QUEUE, { connection: this.connect('queue'), prefix: `${P}bull` });
    this.queue.on('error', (e) => logger.error({ err: { message: e.message } }, 'job queue error'));
    this.sub = connectRedis(url, logger, 'events', true);
    void this.sub.subscribe(EVENTS_CHANNEL, CANCEL_CHANNEL).catch((e: Error) => logger.error({ err: { message: e.message } }, 'cannot subscribe to job events'));
    this.sub.on('message', (channel: string, message: string) => this.onMessage(channel, message));
    this.sweeper = setInterval(() => { void this.sweep().catch(() => undefined); }, Math.max(1000, Math.min(60_000, limits.ttlMs / 4)));
    this.sweeper.unref();
  }

  /** Starts taking jobs (once the models are loaded). */
  start(): void {
    if (this.closing || this.worker) return;
    this.worker = new Worker(QUEUE, (job, _token, signal) => this.process(job as Job<QueueData>, signal), {
      connection: this.connect('worker', true), prefix: `${P}bull`,
      concurrency: this.limits.concurrency, removeOnComplete: { count: 0 }, removeOnFail: { count: 0 },
      // A replica that dies holds its jobs until their lock expires; then another takes them up.
      lockDuration: 30_000, stalledInterval: 15_000, maxStalledCount: ATTEMPTS,
    });
    this.worker.on('error', (e) => this.logger.error({ err: { message: e.message } }, 'job worker error'));
    // A job BullMQ gives up on (handed back or stalled ATTEMPTS times) ends as failed, not queued for ever.
    this.worker.on('failed', (job, err) => {
      if (!job || job.attemptsMade < ATTEMPTS) return;
      void (async () => {
        const r = await this.load(job.id!);
        if (r && !TERMINAL.has(r.state)) {
          if (r.state === 'queued') await this.redis.hincrby(key.queuedBy, r.client, -1);
          await this.finish(r, 'failed', new CamserveError('internal', `the job was started ${job.attemptsMade} times without finishing: ${err.message}`));
        }
      })().catch((e: Error) => this.logger.error({ err: { message: e.message }, job: job.id }, 'cannot record the failed job'));
    });
  }

  private connect(name: string, blocking = false): Redis {
    const c = connectRedis(this.url, this.logger, name, blocking);
    this.connections.push(c);
    return c;
  }

  private onMessage(channel: string, message: string): void {
    try {
      if (channel === CANCEL_CHANNEL) {
        const { id } = JSON.parse(message) as { id: string };
        this.active.get(id)?.abort();
        return;
      }
      const m = JSON.parse(message) as { job: string; id: string; event: JobEventName; data: JobEvent['data'] };
      const set = this.listeners.get(m.job);
      if (!set) return;
      const ev: JobEvent = { id: m.id, event: m.event, data: m.data };
      for (const l of [...set]) l(ev);
    } catch (e) {
      this.logger.warn({ err: { message: (e as Error).message }, channel }, 'unreadable job message');
    }
  }

  private async load(id: string): Promise<JobRecord | undefined> {
    const text = await this.redis.get(key.record(id));
    return text ? JSON.parse(text) as JobRecord : undefined;
  }

  /** Writes the record and its event (in order with the job's other writes). */
  private save(r: JobRecord, event: JobEventName): Promise<unknown> {
    const view = JSON.stringify(viewOf(r, TERMINAL.has(r.state)));
    const record = JSON.stringify(r);
    const prev = this.chains.get(r.id) ?? Promise.resolve();
    const next = prev.then(() => this.redis.eval(SAVE_AND_EMIT, 2, key.record(r.id), key.events(r.id), record, event, view, String(MAX_EVENTS), EVENTS_CHANNEL, r.id))
      .catch((e: Error) => this.logger.error({ err: { message: e.message }, job: r.id }, 'cannot save the job'));
    this.chains.set(r.id, next);
    void next.finally(() => { if (this.chains.get(r.id) === next) this.chains.delete(r.id); });
    return next;
  }

  async submit(record: JobRecord, spec: JobSpec, idem?: Idempotency): Promise<{ record: JobRecord; created: boolean }> {
    const ttlS = Math.ceil(this.limits.ttlMs / 1000);
    if (idem) {
      const k = key.idem(record.owner, idem.key);
      const set = await this.redis.set(k, JSON.stringify({ id: record.id, fingerprint: idem.fingerprint }), 'EX', ttlS, 'NX');
      if (set === null) {
        const seen = JSON.parse((await this.redis.get(k)) ?? '{}') as { id?: string; fingerprint?: string };
        if (seen.fingerprint !== idem.fingerprint) throw idempotencyReused();
        return { record: await this.get(seen.id!, record.owner), created: false };
      }
    }
    const release = () => (idem ? this.redis.del(key.idem(record.owner, idem.key)) : Promise.resolve(0));
    if (this.closing) {
      await release();
      throw new CamserveError('shutting-down', 'the server is shutting down');
    }
    const waiting = await this.queue.getWaitingCount();
    if (waiting >= this.limits.maxJobs) {
      await release();
      throw new CamserveError('overloaded', `too many jobs are waiting (${waiting}, at most ${this.limits.maxJobs})`);
    }
    const mine = Number(await this.redis.hget(key.queuedBy, record.client) ?? 0);
    if (mine >= this.limits.perClient) {
      await release();
      throw new CamserveError('rate-limited', `this client has ${mine} jobs waiting; one client may have at most ${this.limits.perClient} of the ${this.limits.maxJobs} places`, { limit: 'queue-share', queued: mine, allowed: this.limits.perClient });
    }
    // A job that never finishes (lost with its queue) must not stay for ever.
    await this.redis.set(key.record(record.id), JSON.stringify(record), 'EX', TOMBSTONE_S);
    await this.redis.expire(key.events(record.id), TOMBSTONE_S);
    await this.redis.hincrby(key.queuedBy, record.client, 1);
    await this.save(record, 'queued');
    await this.redis.expire(key.events(record.id), TOMBSTONE_S);
    const data: QueueData = { id: record.id, params: spec.params, model: spec.model, images: spec.images.map((b) => b.toString('base64')) };
    await this.queue.add('explain', data, { jobId: record.id, attempts: ATTEMPTS, removeOnComplete: true, removeOnFail: true });
    return { record, created: true };
  }

  async get(id: string, owner: string | null): Promise<JobRecord> {
    const r = await this.load(id);
    if (r && (owner === null || r.owner === owner)) return r;
    if (!r && (await this.redis.exists(key.gone(id)))) throw gone(id);
    throw new CamserveError('not-found', `no job ${id}`);
  }

  async png(id: string, owner: string | null, index: number): Promise<Buffer> {
    const r = await this.get(id, owner);
    const png = await this.redis.getBuffer(key.png(id, index));
    if (!png) throw new CamserveError('not-found', r.state === 'done' ? `job ${id} has no result ${index} (results 0..${r.images - 1})` : `job ${id} is ${r.state}: no results`);
    return png;
  }

  async cancel(id: string, owner: string | null): Promise<{ record: JobRecord; deleted: boolean }> {
    const r = await this.get(id, owner);
    if (TERMINAL.has(r.state)) {
      await this.drop(id);
      return { record: r, deleted: true };
    }
    await this.redis.set(key.cancel(id), '1', 'EX', TOMBSTONE_S);
    if (r.state === 'queued') {
      // Out of the queue unless a worker has taken it meanwhile (then the flag stops it as it starts).
      const removed = await this.queue.remove(id).catch(() => 0);
      if (removed) {
        await this.redis.hincrby(key.queuedBy, r.client, -1);
        await this.finish(r, 'cancelled');
        return { record: (await this.load(id)) ?? r, deleted: false };
      }
    }
    await this.redis.publish(CANCEL_CHANNEL, JSON.stringify({ id }));
    return { record: (await this.load(id)) ?? r, deleted: false };
  }

  async subscribe(id: string, owner: string | null, from: string | undefined, listener: (e: JobEvent) => void): Promise<{ unsubscribe(): void }> {
    await this.get(id, owner);
    let last = from !== undefined && /^\d+-\d+$/.test(from) ? from : '0-0';
    const buffered: JobEvent[] = [];
    let live = false;
    const deliver = (e: JobEvent) => {
      if (!after(e.id, last)) return;
      last = e.id;
      listener(e);
    };
    const onEvent = (e: JobEvent) => (live ? deliver(e) : buffered.push(e));
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, set = new Set());
    set.add(onEvent);
    const unsubscribe = () => {
      set!.delete(onEvent);
      if (set!.size === 0) this.listeners.delete(id);
    };
    try {
      const entries = await this.redis.xrange(key.events(id), `(${last}`, '+');
      for (const [sid, fields] of entries) {
        const f: Record<string, string> = {};
        for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
        deliver({ id: sid, event: f.event as JobEventName, data: JSON.parse(f.data) as JobEvent['data'] });
      }
    } catch (e) {
      unsubscribe();
      throw e;
    }
    live = true;
    for (const e of buffered.splice(0)) deliver(e);
    return { unsubscribe };
  }

  async counts(): Promise<Partial<Record<JobState, number>>> {
    const c = await this.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    const kept = await this.redis.hvals(key.sizes);
    const out: Partial<Record<JobState, number>> = {
      queued: (c.waiting ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0), running: c.active ?? 0, done: 0, failed: 0, cancelled: 0,
    };
    for (const v of kept) {
      const state = v.split(':')[1] as JobState;
      if (state in out) out[state] = (out[state] ?? 0) + 1;
    }
    return out;
  }

  /** One job, taken by this replica's worker. */
  private async process(job: Job<QueueData>, signal?: AbortSignal): Promise<void> {
    const { id } = job.data;
    const r = await this.load(id);
    if (!r || TERMINAL.has(r.state)) return;
    if (r.state === 'queued') await this.redis.hincrby(key.queuedBy, r.client, -1);
    if (await this.redis.exists(key.cancel(id))) {
      await this.finish(r, 'cancelled');
      return;
    }
    const ac = new AbortController();
    this.active.set(id, ac);
    signal?.addEventListener('abort', () => ac.abort(), { once: true });
    r.state = 'running';
    r.started_at = Date.now();
    r.attempts = (r.attempts ?? 0) + 1;
    r.progress = { done: 0, total: 0, images_done: 0 };
    await this.save(r, 'running');
    try {
      const out = await runJob(this.ctx, { params: job.data.params, model: job.data.model, images: job.data.images.map((s) => Buffer.from(s, 'base64')) }, {
        signal: ac.signal,
        progress: (done, total, imagesDone) => {
          r.progress = { done, total, images_done: imagesDone };
          void this.save(r, 'progress');
        },
      });
      if (ac.signal.aborted) throw new CamserveError('cancelled', 'the job was cancelled');
      const ttlS = Math.ceil(this.limits.ttlMs / 1000);
      const m = this.redis.multi();
      out.pngs.forEach((png, n) => m.set(key.png(id, n), png, 'EX', ttlS));
      await m.exec();
      r.results = out.results;
      r.bytes = out.pngs.reduce((a, p) => a + p.length, 0) + Buffer.byteLength(JSON.stringify(out.results));
      await this.finish(r, 'done');
    } catch (err) {
      if (this.closing && ac.signal.aborted) {
        // This replica stops: the job goes back to the queue, and another replica (or this one, restarted) runs it again.
        r.state = 'queued';
        r.progress = { done: 0, total: 0, images_done: 0 };
        await this.redis.hincrby(key.queuedBy, r.client, 1);
        await this.save(r, 'queued');
        throw new Error('the replica running the job is shutting down; the job is queued again');
      }
      if (ac.signal.aborted) await this.finish(r, 'cancelled');
      else await this.finish(r, 'failed', err);
    } finally {
      this.active.delete(id);
    }
  }

  private async finish(r: JobRecord, state: 'done' | 'failed' | 'cancelled', err?: unknown): Promise<void> {
    const now = Date.now();
    if (r.started_at !== undefined && r.state === 'running') this.ctx.metrics.jobDuration.observe({ state }, (now - r.started_at) / 1000);
    this.ctx.metrics.jobsFinished.inc({ state });
    r.state = state;
    r.finished_at = now;
    r.expires_at = now + this.limits.ttlMs;
    if (state === 'done') r.progress = { done: r.progress.total || r.progress.done, total: r.progress.total || r.progress.done, images_done: r.images };
    if (state === 'failed') {
      const ce = err instanceof CamserveError ? err : new CamserveError('internal', 'the job failed unexpectedly');
      if (!(err instanceof CamserveError)) this.logger.error({ err, job: r.id }, 'job failed');
      r.error = problemBody(ce.code, ce.code === 'internal' ? `an internal error occurred; it is logged under job ${r.id}` : ce.message, ce.details);
    }
    const ttlS = Math.ceil(this.limits.ttlMs / 1000);
    await this.save(r, state);
    const bytes = r.bytes ?? 0;
    await this.redis.multi()
      .expire(key.record(r.id), ttlS).expire(key.events(r.id), ttlS).set(key.gone(r.id), '1', 'EX', ttlS + TOMBSTONE_S)
      .zadd(key.finished, now, r.id).hset(key.sizes, r.id, `${bytes}:${state}`).incrby(key.bytes, bytes)
      .exec();
    await this.sweep();
  }

  /** Drops finished jobs past their time (their keys expire by themselves) and, past JOB_MAX_BYTES, the oldest. */
  private async sweep(): Promise<void> {
    const expired = await this.redis.zrangebyscore(key.finished, '-inf', Date.now() - this.limits.ttlMs);
    for (const id of expired) await this.forget(id);
    for (let guard = 0; guard < 10_000; guard++) {
      const total = Number(await this.redis.get(key.bytes) ?? 0);
      if (total <= this.limits.maxBytes) break;
      const [id] = await this.redis.zpopmin(key.finished);
      if (!id) break;
      await this.drop(id, true);
    }
  }

  /** Its size no longer counts (it is gone, or going). Only the replica that removes it from the set counts it. */
  private async forget(id: string, popped = false): Promise<void> {
    if (!popped && !(await this.redis.zrem(key.finished, id))) return;
    const size = await this.redis.hget(key.sizes, id);
    await this.redis.multi().hdel(key.sizes, id).decrby(key.bytes, Number(size?.split(':')[0] ?? 0)).exec();
  }

  /** Deletes a finished job's keys; it stays known as gone (410). */
  private async drop(id: string, popped = false): Promise<void> {
    await this.forget(id, popped);
    const r = await this.load(id);
    const m = this.redis.multi().del(key.record(id), key.events(id), key.cancel(id)).set(key.gone(id), '1', 'EX', TOMBSTONE_S);
    for (let n = 0; n < (r?.images ?? 0); n++) m.del(key.png(id, n));
    await m.exec();
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    const closing = this.worker?.close();
    // Running jobs stop at their next batch and go back to the queue.
    for (const ac of this.active.values()) ac.abort();
    await closing?.catch(() => undefined);
    await Promise.all([...this.chains.values()]);
    await this.queue.close().catch(() => undefined);
    for (const c of [this.sub, ...this.connections]) await c.quit().catch(() => c.disconnect());
  }
}
