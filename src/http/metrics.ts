// Prometheus metrics of one app (its own registry, so several apps in one process do not collide):
// requests and latency by route, CAM method and model; queue depth; inference and queue-wait time.
import client from 'prom-client';

export interface PoolGauge {
  stats(): { workers: number; busy: number; queued: number; replaced?: number; coalesced?: number };
}

export interface Metrics {
  registry: client.Registry;
  requests: client.Counter<'route' | 'http_method' | 'cam_method' | 'model' | 'status'>;
  duration: client.Histogram<'route' | 'http_method' | 'cam_method' | 'model'>;
  inference: client.Histogram<'cam_method' | 'model'>;
  queueWait: client.Histogram<'model'>;
  /** requests refused with 503 (overloaded, shutting down, deadline exceeded, not ready) */
  shed: client.Counter<'reason'>;
  /** requests by API key name (never the key) and status, when keys are on */
  keyRequests: client.Counter<'key' | 'status'>;
  /** answers 429, by limit (general, long, queue-share) and key name */
  rateLimited: client.Counter<'limit' | 'key'>;
  /** finished jobs' time from start to end, by final state */
  jobDuration: client.Histogram<'state'>;
  /** jobs ended, by final state */
  jobsFinished: client.Counter<'state'>;
}

/** What the job gauges read at scrape time. */
export interface JobGauge {
  counts(): Promise<Partial<Record<string, number>>>;
}

/** `pool` is read at scrape time (it may not exist yet while models load). */
export function createMetrics(pool: () => PoolGauge | undefined, jobs: () => JobGauge | undefined = () => undefined): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'camserve_' });
  const requests = new client.Counter({
    name: 'camserve_http_requests_total',
    help: 'HTTP requests answered, by route template, HTTP method, CAM method (POST /cam), model and status',
    labelNames: ['route', 'http_method', 'cam_method', 'model', 'status'] as const,
    registers: [registry],
  });
  const duration = new client.Histogram({
    name: 'camserve_http_request_duration_seconds',
    help: 'Time from request to the end of the answer, by route template, HTTP method, CAM method and model',
    labelNames: ['route', 'http_method', 'cam_method', 'model'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const inference = new client.Histogram({
    name: 'camserve_inference_seconds',
    help: 'Time an explanation spent in an inference worker (forward, backward, CAM), by CAM method and model',
    labelNames: ['cam_method', 'model'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const queueWait = new client.Histogram({
    name: 'camserve_queue_wait_seconds',
    help: 'Time an explanation waited for a worker (and for its result to come back), by model',
    labelNames: ['model'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30],
    registers: [registry],
  });
  const shed = new client.Counter({
    name: 'camserve_shed_total',
    help: 'Requests answered 503 (load shed), by reason: overloaded, shutting-down, deadline-exceeded, not-ready, model-changed',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const gauge = (name: string, help: string, key: 'workers' | 'busy' | 'queued' | 'replaced' | 'coalesced') => new client.Gauge({
    name, help, registers: [registry],
    collect() { this.set(pool()?.stats()[key] ?? 0); },
  });
  const keyRequests = new client.Counter({
    name: 'camserve_key_requests_total',
    help: 'HTTP requests with API keys on, by key name (never the key itself; "" when refused or open) and status',
    labelNames: ['key', 'status'] as const,
    registers: [registry],
  });
  const rateLimited = new client.Counter({
    name: 'camserve_rate_limited_total',
    help: 'Requests answered 429, by limit (general, long, queue-share) and API key name ("" when keys are off)',
    labelNames: ['limit', 'key'] as const,
    registers: [registry],
  });
  const jobDuration = new client.Histogram({
    name: 'camserve_job_duration_seconds',
    help: 'Time from a job\'s start to its end, by final state (done, failed, cancelled), counted by the replica that ran it',
    labelNames: ['state'] as const,
    buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
    registers: [registry],
  });
  const jobsFinished = new client.Counter({
    name: 'camserve_jobs_finished_total',
    help: 'Jobs ended by this replica, by final state',
    labelNames: ['state'] as const,
    registers: [registry],
  });
  new client.Gauge({
    name: 'camserve_jobs',
    help: 'Jobs by state (queued, running, done, failed, cancelled): those kept, in this process or in Redis; queued = the job queue\'s depth',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      let counts: Partial<Record<string, number>> = {};
      try {
        counts = (await jobs()?.counts()) ?? {};
      } catch {
        // Redis away: the gauge keeps its last values
        return;
      }
      for (const s of ['queued', 'running', 'done', 'failed', 'cancelled']) this.set({ state: s }, counts[s] ?? 0);
    },
  });
  gauge('camserve_workers_replaced', 'Inference workers replaced since start (failed, exited, or did not stop a cancelled job in time)', 'replaced');
  gauge('camserve_explanations_coalesced', 'Explanations that shared a batched trunk run with other waiting requests since start (MAX_COALESCE)', 'coalesced');
  gauge('camserve_queue_depth', 'Explanations waiting for a worker', 'queued');
  gauge('camserve_workers_busy', 'Inference workers running an explanation', 'busy');
  gauge('camserve_workers', 'Inference workers alive', 'workers');
  return { registry, requests, duration, inference, queueWait, shed, keyRequests, rateLimited, jobDuration, jobsFinished };
}
