// Jobs kept in this process (the default): a FIFO queue of MAX_JOBS, JOB_CONCURRENCY run at once, events
// in memory, results kept JOB_TTL_S after the end and within JOB_MAX_BYTES (oldest dropped first). Lost
// when the process stops (with REDIS_URL they are not: redis.ts).
import type { Logger } from 'pino';
import { CamserveError } from '../../errors/index.js';
import type { AppContext } from '../context.js';
import { problemBody } from '../problem.js';
import { runJob } from './run.js';
import { TERMINAL, viewOf, type Idempotency, type JobBackend, type JobEvent, type JobEventName, type JobRecord, type JobSpec, type JobState } from './types.js';

interface Entry {
  record: JobRecord;
  spec?: JobSpec;
  pngs?: Buffer[];
  events: JobEvent[];
  nextEvent: number;
  listeners: Set<(e: JobEvent) => void>;
  ac?: AbortController;
}

/** Events kept per job (a stream resumed further back starts at the oldest kept). */
const MAX_EVENTS = 10_000;
/** Ids of dropped jobs remembered (answered 410 rather than 404). */
const MAX_TOMBSTONES = 100_000;

export interface JobLimits {
  maxJobs: number;
  /** jobs one client may have waiting */
  perClient: number;
  concurrency: number;
  ttlMs: number;
  maxBytes: number;
}

export class MemoryJobs implements JobBackend {
  readonly kind = 'memory';
  private readonly jobs = new Map<string, Entry>();
  private readonly queue: Entry[] = [];
  private readonly tombstones = new Map<string, number>();
  private readonly idempotency = new Map<string, { id: string; fingerprint: string; until: number }>();
  private running = 0;
  private bytes = 0;
  private closing = false;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly ctx: AppContext, private readonly limits: JobLimits, private readonly logger: Logger) {
    this.sweeper = setInterval(() => this.sweep(), Math.max(250, Math.min(60_000, limits.ttlMs / 4)));
    this.sweeper.unref();
  }

  async submit(record: JobRecord, spec: JobSpec, idem?: Idempotency): Promise<{ record: JobRecord; created: boolean }> {
    this.sweep();
    if (idem) {
      const seen = this.idempotency.get(`${record.owner ?? ''}\0${idem.key}`);
      if (seen) {
        if (seen.fingerprint !== idem.fingerprint) throw idempotencyReused();
        return { record: await this.get(seen.id, record.owner), created: false };
      }
    }
    if (this.closing) throw new CamserveError('shutting-down', 'the server is shutting down');
    if (this.queue.length >= this.limits.maxJobs) {
      throw new CamserveError('overloaded', `too many jobs are waiting (${this.queue.length}, at most ${this.limits.maxJobs})`);
    }
    // The images of waiting jobs are held in memory: within JOB_MAX_BYTES, as results are.
    const waiting = this.queue.reduce((a, e) => a + (e.spec?.images.reduce((b, x) => b + x.length, 0) ?? 0), 0);
    const size = spec.images.reduce((a, x) => a + x.length, 0);
    if (this.queue.length > 0 && waiting + size > this.limits.maxBytes) {
      throw new CamserveError('overloaded', `the images of the waiting jobs take ${waiting} bytes; this job's ${size} more would pass ${this.limits.maxBytes}`);
    }
    const mine = this.queue.filter((e) => e.record.client === record.client).length;
    if (mine >= this.limits.perClient) {
      throw new CamserveError('rate-limited', `this client has ${mine} jobs waiting; one client may have at most ${this.limits.perClient} of the ${this.limits.maxJobs} places`, { limit: 'queue-share', queued: mine, allowed: this.limits.perClient });
    }
    const entry: Entry = { record, spec, events: [], nextEvent: 1, listeners: new Set() };
    this.jobs.set(record.id, entry);
    if (idem) this.idempotency.set(`${record.owner ?? ''}\0${idem.key}`, { id: record.id, fingerprint: idem.fingerprint, until: Date.now() + this.limits.ttlMs });
    this.queue.push(entry);
    this.emit(entry, 'queued');
    queueMicrotask(() => this.dispatch());
    return { record, created: true };
  }

  private find(id: string, owner: string | null): Entry {
    this.sweep();
    const e = this.jobs.get(id);
    if (e && (owner === null || e.record.owner === owner)) return e;
    if (!e && this.tombstones.has(id)) throw gone(id);
    throw new CamserveError('not-found', `no job ${id}`);
  }

  async get(id: string, owner: string | null): Promise<JobRecord> {
    return this.find(id, owner).record;
  }

  async png(id: string, owner: string | null, index: number): Promise<Buffer> {
    const e = this.find(id, owner);
    const png = e.pngs?.[index];
    if (!png) throw new CamserveError('not-found', e.record.state === 'done' ? `job ${id} has no result ${index} (results 0..${e.record.images - 1})` : `job ${id} is ${e.record.state}: no results`);
    return png;
  }

  async cancel(id: string, owner: string | null): Promise<{ record: JobRecord; deleted: boolean }> {
    const e = this.find(id, owner);
    const r = e.record;
    if (TERMINAL.has(r.state)) {
      this.drop(e);
      return { record: r, deleted: true };
    }
    const i = this.queue.indexOf(e);
    if (i >= 0) this.queue.splice(i, 1);
    e.ac?.abort();
    // A queued job ends now; a running one ends when its worker has stopped, within a batch (the pool
    // answers its caller at once, and finish() records it).
    if (r.state === 'queued') this.finish(e, 'cancelled');
    else if (!e.ac) this.finish(e, 'cancelled');
    return { record: e.record, deleted: false };
  }

  async subscribe(id: string, owner: string | null, after: string | undefined, listener: (e: JobEvent) => void): Promise<{ unsubscribe(): void }> {
    const e = this.find(id, owner);
    const from = after !== undefined && /^\d+$/.test(after) ? Number(after) : 0;
    for (const ev of e.events) if (Number(ev.id) > from) listener(ev);
    e.listeners.add(listener);
    return { unsubscribe: () => e.listeners.delete(listener) };
  }

  async counts(): Promise<Partial<Record<JobState, number>>> {
    const c: Partial<Record<JobState, number>> = { queued: 0, running: 0, done: 0, failed: 0, cancelled: 0 };
    for (const e of this.jobs.values()) c[e.record.state] = (c[e.record.state] ?? 0) + 1;
    return c;
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    for (const e of this.queue.splice(0)) this.finish(e, 'cancelled', new CamserveError('shutting-down', 'the server shut down before the job ran'));
    const running = [...this.jobs.values()].filter((e) => e.record.state === 'running');
    for (const e of running) e.ac?.abort(new CamserveError('shutting-down', 'the server shut down while the job ran'));
    const end = Date.now() + 3000;
    while (this.running > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  }

  private dispatch(): void {
    while (!this.closing && this.running < this.limits.concurrency && this.queue.length) {
      const e = this.queue.shift()!;
      void this.run(e);
    }
  }

  private async run(e: Entry): Promise<void> {
    this.running++;
    const r = e.record;
    const ac = new AbortController();
    e.ac = ac;
    r.state = 'running';
    r.started_at = Date.now();
    r.attempts = (r.attempts ?? 0) + 1;
    this.emit(e, 'running');
    try {
      const out = await runJob(this.ctx, e.spec!, {
        signal: ac.signal,
        progress: (done, total, imagesDone) => {
          if (r.state !== 'running') return;
          r.progress = { done, total, images_done: imagesDone };
          this.emit(e, 'progress');
        },
      });
      if (ac.signal.aborted) throw ac.signal.reason ?? new CamserveError('cancelled', 'the job was cancelled');
      r.results = out.results;
      e.pngs = out.pngs;
      r.bytes = out.pngs.reduce((a, p) => a + p.length, 0) + Buffer.byteLength(JSON.stringify(out.results));
      this.finish(e, 'done');
    } catch (err) {
      const why = ac.signal.aborted && ac.signal.reason instanceof CamserveError ? ac.signal.reason : err;
      if (ac.signal.aborted && !(ac.signal.reason instanceof CamserveError)) this.finish(e, 'cancelled');
      else this.finish(e, 'failed', why);
    } finally {
      this.running--;
      e.ac = undefined;
      this.dispatch();
    }
  }

  private finish(e: Entry, state: 'done' | 'failed' | 'cancelled', err?: unknown): void {
    const r = e.record;
    if (TERMINAL.has(r.state)) return;
    const now = Date.now();
    if (r.started_at !== undefined) {
      this.ctx.metrics.jobDuration.observe({ state }, (now - r.started_at) / 1000);
    }
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
    if (state === 'cancelled' && err instanceof CamserveError) r.error = problemBody(err.code, err.message, err.details);
    e.spec = undefined; // the images are no longer needed
    this.emit(e, state);
    this.bytes += r.bytes ?? 0;
    this.evict();
  }

  private emit(e: Entry, event: JobEventName): void {
    const ev: JobEvent = { id: String(e.nextEvent++), event, data: viewOf(e.record, TERMINAL.has(e.record.state)) };
    e.events.push(ev);
    if (e.events.length > MAX_EVENTS) e.events.splice(0, e.events.length - MAX_EVENTS);
    for (const l of [...e.listeners]) {
      try {
        l(ev);
      } catch {
        e.listeners.delete(l);
      }
    }
  }

  /** Finished jobs past their time go; then the oldest finished ones while the results take too much. */
  private sweep(): void {
    const now = Date.now();
    for (const e of this.jobs.values()) if (e.record.expires_at !== undefined && e.record.expires_at <= now) this.drop(e);
    for (const [k, v] of this.idempotency) if (v.until <= now) this.idempotency.delete(k);
  }

  private evict(): void {
    if (this.bytes <= this.limits.maxBytes) return;
    const finished = [...this.jobs.values()].filter((e) => TERMINAL.has(e.record.state)).sort((a, b) => a.record.finished_at! - b.record.finished_at!);
    for (const e of finished) {
      if (this.bytes <= this.limits.maxBytes) break;
      this.drop(e);
    }
  }

  private drop(e: Entry): void {
    if (!this.jobs.delete(e.record.id)) return;
    this.bytes -= e.record.bytes ?? 0;
    e.listeners.clear();
    this.tombstones.set(e.record.id, Date.now());
    if (this.tombstones.size > MAX_TOMBSTONES) this.tombstones.delete(this.tombstones.keys().next().value!);
  }
}

export function gone(id: string): CamserveError {
  return new CamserveError('gone', `job ${id} has ended and its results are no longer kept`);
}

export function idempotencyReused(): CamserveError {
  return new CamserveError('idempotency-key-reused', 'this Idempotency-Key was used for another request; use a new key for a new request');
}
