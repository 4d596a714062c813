// Jobs: what a job is (its record, as stored in the process or in Redis), what GET /jobs/{id} shows of
// it, its events, and what a place that keeps jobs (a backend) must do.
import type { ProblemBody } from '../problem.js';

export const JOB_STATES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const TERMINAL: ReadonlySet<JobState> = new Set(['done', 'failed', 'cancelled']);

/** What a job was asked to do: POST /jobs's parameters (as collected, by name) and its images. */
export interface JobSpec {
  params: Record<string, string>;
  images: Buffer[];
  /** the model id, resolved at submission (a default model may change later) */
  model: string;
}

/** One image's result: POST /cam's JSON answer for it, and its PNG's size. */
export interface JobImageResult {
  index: number;
  result: Record<string, unknown>;
  png_bytes: number;
}

/** A job as kept (times in ms since the epoch). JSON-safe: it is stored in Redis as it is. */
export interface JobRecord {
  id: string;
  /** the API key's name that created it (null: keys off); only that key sees it */
  owner: string | null;
  /** who submitted it, for the per-client share of the job queue */
  client: string;
  state: JobState;
  model: string;
  method: string;
  images: number;
  created_at: number;
  started_at?: number;
  finished_at?: number;
  expires_at?: number;
  progress: { done: number; total: number; images_done: number };
  results?: JobImageResult[];
  error?: ProblemBody;
  /** bytes its results take (PNGs + JSON) */
  bytes?: number;
  /** attempts begun (Redis: a job cut off by a replica's shutdown is taken up again) */
  attempts?: number;
}

export type JobEventName = 'queued' | 'running' | 'progress' | 'done' | 'failed' | 'cancelled';

/** One server-sent event of a job: `id` orders them (Last-Event-ID resumes after one). */
export interface JobEvent {
  id: string;
  event: JobEventName;
  data: JobView;
}

/** GET /jobs/{id}. */
export interface JobView {
  id: string;
  state: JobState;
  model: string;
  method: string;
  images: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  expires_at: string | null;
  progress: { done: number; total: number; images_done: number; percent: number; eta_s: number | null };
  results?: { index: number; png: string; result: Record<string, unknown> }[];
  error?: ProblemBody;
  links: { self: string; events: string };
}

/** An Idempotency-Key's request: the same key with another request is refused. */
export interface Idempotency {
  key: string;
  fingerprint: string;
}

/** Where jobs live: in the process, or in Redis (shared by replicas, kept across restarts). */
export interface JobBackend {
  /** 'memory' or 'redis' */
  readonly kind: string;
  /**
   * Queues a job (503 when MAX_JOBS wait; 429 when the client has its share waiting). With an idempotency
   * key seen before (for this owner), the job made then, and `created: false`.
   */
  submit(record: JobRecord, spec: JobSpec, idem?: Idempotency): Promise<{ record: JobRecord; created: boolean }>;
  /** The job (404 not-found for another owner's or an unknown id; 410 gone once its results are dropped). */
  get(id: string, owner: string | null): Promise<JobRecord>;
  /** A result's PNG. */
  png(id: string, owner: string | null, index: number): Promise<Buffer>;
  /** Cancels a queued or running job (running: stopped at its next batch); deletes a finished one. */
  cancel(id: string, owner: string | null): Promise<{ record: JobRecord; deleted: boolean }>;
  /**
   * Events after `after` (all when undefined), then live ones, in order, to `listener`; resolves once the
   * backlog is delivered. 404/410 as for get.
   */
  subscribe(id: string, owner: string | null, after: string | undefined, listener: (e: JobEvent) => void): Promise<{ unsubscribe(): void }>;
  /** Jobs by state (the ones this backend can count) and jobs waiting. */
  counts(): Promise<Partial<Record<JobState, number>>>;
  /** Stops taking jobs; running ones stop (Redis: and are taken up by another replica). */
  close(): Promise<void>;
}

/** The wire view of a record. */
export function viewOf(r: JobRecord, withResults = true): JobView {
  const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
  const { done, total, images_done } = r.progress;
  let eta: number | null = null;
  if (r.state === 'running' && r.started_at !== undefined && done > 0 && total > done) {
    const elapsed = (Date.now() - r.started_at) / 1000;
    eta = Math.round(((elapsed / done) * (total - done)) * 10) / 10;
  } else if (TERMINAL.has(r.state)) {
    eta = 0;
  }
  const self = `/jobs/${r.id}`;
  return {
    id: r.id, state: r.state, model: r.model, method: r.method, images: r.images,
    created_at: iso(r.created_at)!, started_at: iso(r.started_at), finished_at: iso(r.finished_at), expires_at: iso(r.expires_at),
    progress: { done, total, images_done, percent: total > 0 ? Math.round((1000 * done) / total) / 10 : 0, eta_s: eta },
    ...(withResults && r.results ? { results: r.results.map((x) => ({ index: x.index, png: `${self}/results/${x.index}.png`, result: x.result })) } : {}),
    ...(r.error ? { error: r.error } : {}),
    links: { self, events: `${self}/events` },
  };
}
