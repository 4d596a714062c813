// The HTTP service's configuration: every environment variable it reads, with its default and
// meaning, in one table (printed by `camserve-http --help`), parsed and checked once at start-up.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENGINE_DEFAULTS } from '../engine/index.js';
import { effectiveCpus } from './cpu.js';

export interface ServerConfig {
  port: number;
  host: string;
  modelsDir: string;
  /** the id of the one model when MODELS_DIR is itself a model's folder (KServe's /mnt/models) */
  modelName?: string;
  logLevel: LogLevel;
  /** inference worker threads; default max(1, cpus / 2), cpus counting the cgroup CPU limit */
  workers: number;
  /** onnxruntime intra-op threads of each worker (one count per worker); default max(1, cpus / workers) each */
  ortThreads: number[];
  /** explanations allowed to wait for a worker; more are refused with 503 */
  maxQueue: number;
  /** Score-CAM / Ablation-CAM batch size; undefined: the runtime's default */
  batchSize?: number;
  /** reload the models folder when it changes, checked this often (ms); undefined: only on POST /admin/reload */
  modelsPollMs?: number;
  /** largest accepted upload (multipart file or raw body), bytes */
  maxUploadBytes: number;
  /** largest request body with several images (a batch, a job), bytes; larger (by Content-Length) is refused at once */
  maxRequestBytes: number;
  /** largest accepted image, width × height of the encoded image (decompression-bomb guard) */
  maxPixels: number;
  /** longest side of the decoded original, and so of the PNGs returned; larger images are scaled down */
  maxImageSide: number;
  /** model used when a request names none; undefined: `shapes` if present, else the first ready model */
  defaultModel?: string;
  /** most classes explained by one request (`target` list or `topk`) */
  maxTargets: number;
  /** on SIGTERM/SIGINT, how long in-flight requests may take; then running jobs are stopped and answered 503 */
  shutdownTimeoutMs: number;
  /** the longest deadline a request may ask for with timeout_ms, and the deadline of one that asks for none */
  maxTimeoutMs: number;
  /** time allowed to receive a request's headers, and its whole request (headers and body), ms */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** an upload slower than this (bytes/s, averaged over UPLOAD_RATE_WINDOW_MS) is cut off with 408 */
  minUploadRate: number;
  uploadRateWindowMs: number;
  /** most connections open at once; more are closed at once */
  maxConnections: number;
  /** seconds in the Retry-After header of a 503 */
  retryAfterSeconds: number;
  /** the web page's folder and the API description served at /openapi.yaml */
  publicDir: string;
  openapiFile: string;

  // ---- batches and jobs
  /** most images in one POST /cam */
  maxBatch: number;
  /** most waiting explanations (of one model, same parameters, one-pass methods) one worker run takes together */
  maxCoalesce: number;
  /** most images in one job */
  maxJobImages: number;
  /** jobs that may wait (per replica in process, in all with Redis); more get 503 */
  maxJobs: number;
  /** jobs a replica runs at once */
  jobConcurrency: number;
  /** how long a finished job's results are kept, s */
  jobTtlS: number;
  /** most bytes of results kept (PNGs and JSON); the oldest finished jobs' go first */
  jobMaxBytes: number;
  /** interval of the comment lines that keep an event stream open, s */
  sseHeartbeatS: number;
  /** Redis for jobs and rate-limit counters shared by replicas; undefined: in the process */
  redisUrl?: string;

  // ---- access
  /** file of API keys (`key` or `name:key` per line); undefined: no keys required */
  apiKeysFile?: string;
  /** how often the key file is checked for changes (besides file-system events), ms */
  apiKeysPollMs: number;
  /** with keys on, /metrics and KServe's GET /v1/models/{id} still answer without one */
  metricsPublic: boolean;
  kserveMetadataPublic: boolean;
  /** requests per window and client on every route but the probes (0: no limit) */
  rateLimit: number;
  /** long methods (Score-CAM, Ablation-CAM, aug_smooth) and jobs per window and client (0: no limit) */
  rateLimitLong: number;
  rateLimitWindowS: number;
  /** explanations (and jobs) one client may have waiting */
  maxQueuePerClient: number;
  /** express's `trust proxy`: false, true, a hop count, or addresses/subnets */
  trustProxy: boolean | number | string;
  /** origins allowed to call from a browser (CORS); `*` any */
  corsOrigins: string[];
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Thrown for an environment variable that cannot be used; names the variable and what it expects. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The service's defaults (the engine's own are in ENGINE_DEFAULTS): the one place each is written. */
export const DEFAULTS = {
  port: 8080,
  host: '0.0.0.0',
  modelsDir: './models',
  logLevel: 'info',
  maxQueue: 16,
  maxUploadBytes: 20 * 1024 * 1024,
  maxRequestBytes: 64 * 1024 * 1024,
  maxPixels: 40_000_000,
  maxImageSide: 2048,
  maxTargets: 10,
  shutdownTimeoutMs: 7000,
  retryAfterSeconds: 2,
  maxTimeoutMs: 300_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 120_000,
  minUploadRate: 4096,
  uploadRateWindowMs: 5000,
  maxConnections: 512,
  maxBatch: 16,
  maxCoalesce: 1,
  maxJobImages: 64,
  maxJobs: 64,
  jobTtlS: 3600,
  jobMaxBytes: 256 * 1024 * 1024,
  sseHeartbeatS: 15,
  apiKeysPollMs: 2000,
  rateLimit: 0,
  rateLimitLong: 0,
  rateLimitWindowS: 60,
} as const;

/**
 * Beyond the grace period: stopping the jobs (the pool's cancel grace, 1 s), flushing their 503s and
 * closing the workers; past it the process exits anyway.
 */
export const SHUTDOWN_MARGIN_MS = 2500;

interface EnvVar {
  name: string;
  default: string;
  help: string;
}

/** Every variable the service reads: the one place they are documented. */
export const ENVIRONMENT: readonly EnvVar[] = [
  { name: 'PORT', default: String(DEFAULTS.port), help: 'TCP port to listen on (0: any free port)' },
  { name: 'HOST', default: DEFAULTS.host, help: 'address to bind ("::" for IPv6, "127.0.0.1" for local only)' },
  { name: 'MODELS_DIR', default: DEFAULTS.modelsDir, help: 'folder whose sub-folders <id>/model.onnx are served, or one model\'s folder (model.onnx in it, as KServe mounts /mnt/models)' },
  { name: 'MODEL_NAME', default: 'the folder\'s name', help: 'the model\'s id when MODELS_DIR is one model\'s folder' },
  { name: 'DEFAULT_MODEL', default: 'shapes, else the first ready model', help: 'model id used when a request names none; must exist' },
  { name: 'LOG_LEVEL', default: DEFAULTS.logLevel, help: `pino level: ${LOG_LEVELS.join(', ')}` },
  { name: 'WORKERS', default: 'max(1, cpus / 2)', help: 'inference worker threads (cpus: the cores, capped by the cgroup CPU limit)' },
  { name: 'ORT_THREADS', default: 'cpus / WORKERS', help: 'onnxruntime intra-op threads per worker, or a comma-separated count per worker (e.g. "2,1": WORKERS is then the list\'s length; jobs go to the idle worker with the most threads)' },
  { name: 'MAX_QUEUE', default: String(DEFAULTS.maxQueue), help: 'explanations that may wait for a worker; more get 503 + Retry-After' },
  { name: 'MODELS_POLL_MS', default: 'off', help: 'check MODELS_DIR this often (ms) and reload new, changed and removed models without a restart (POST /admin/reload does it on demand)' },
  { name: 'BATCH_SIZE', default: String(ENGINE_DEFAULTS.batchSize), help: 'batch size of Score-CAM / Ablation-CAM forward runs' },
  { name: 'MAX_UPLOAD_BYTES', default: `${DEFAULTS.maxUploadBytes} (${DEFAULTS.maxUploadBytes / 2 ** 20} MiB)`, help: 'largest upload (of each image); larger gets 413' },
  { name: 'MAX_REQUEST_BYTES', default: `${DEFAULTS.maxRequestBytes} (${DEFAULTS.maxRequestBytes / 2 ** 20} MiB)`, help: 'largest body of a request with several images (a batch, a job); larger gets 413 before it is read' },
  { name: 'MAX_PIXELS', default: String(DEFAULTS.maxPixels), help: 'largest image (width × height, read from its header before decoding); larger gets 413' },
  { name: 'MAX_IMAGE_SIDE', default: String(DEFAULTS.maxImageSide), help: 'longest side of the returned PNGs; larger images are scaled down before rendering' },
  { name: 'MAX_TARGETS', default: String(DEFAULTS.maxTargets), help: 'most classes one request may explain (target list or topk)' },
  { name: 'SHUTDOWN_TIMEOUT_MS', default: String(DEFAULTS.shutdownTimeoutMs), help: `grace period for in-flight requests on SIGTERM / SIGINT; then running jobs are stopped (within ~1 s) and answered 503; the process exits at most ${SHUTDOWN_MARGIN_MS / 1000} s after the grace period (7 + 2.5 s fits docker stop\'s 10 s)` },
  { name: 'MAX_TIMEOUT_MS', default: String(DEFAULTS.maxTimeoutMs), help: 'longest deadline a request may ask for (timeout_ms), and the deadline of one that asks for none; past it the job is stopped and answered 503 deadline-exceeded' },
  { name: 'HEADERS_TIMEOUT_MS', default: String(DEFAULTS.headersTimeoutMs), help: 'time to receive a request\'s headers' },
  { name: 'REQUEST_TIMEOUT_MS', default: String(DEFAULTS.requestTimeoutMs), help: 'time to receive a whole request (headers and upload)' },
  { name: 'MIN_UPLOAD_RATE', default: String(DEFAULTS.minUploadRate), help: 'bytes/s an upload must keep up (averaged over UPLOAD_RATE_WINDOW_MS); slower gets 408 (0: off)' },
  { name: 'UPLOAD_RATE_WINDOW_MS', default: String(DEFAULTS.uploadRateWindowMs), help: 'window of the upload rate check' },
  { name: 'MAX_CONNECTIONS', default: String(DEFAULTS.maxConnections), help: 'most connections open at once; more are closed' },
  { name: 'RETRY_AFTER_SECONDS', default: String(DEFAULTS.retryAfterSeconds), help: 'Retry-After of a 503 answer' },
  { name: 'MAX_BATCH', default: String(DEFAULTS.maxBatch), help: 'most images in one POST /cam (several `image` parts or a JSON body); each counts as a request for the queue and the rate limits' },
  { name: 'MAX_COALESCE', default: String(DEFAULTS.maxCoalesce), help: 'most waiting explanations one worker run takes together: requests of one model whose input takes a batch, with the same parameters and a one-pass method, share one batched trunk run (none is delayed to wait for others); 1: off (on 2 cores it gained nothing measurable: npm run bench:coalesce)' },
  { name: 'MAX_JOB_IMAGES', default: String(DEFAULTS.maxJobImages), help: 'most images in one POST /jobs' },
  { name: 'MAX_JOBS', default: String(DEFAULTS.maxJobs), help: 'jobs that may wait (per replica; with REDIS_URL, in all); more get 503 + Retry-After' },
  { name: 'JOB_CONCURRENCY', default: 'WORKERS', help: 'jobs one replica runs at once (each sends its images to the inference queue one at a time)' },
  { name: 'JOB_TTL_S', default: String(DEFAULTS.jobTtlS), help: 'how long a finished job and its results are kept; then GET /jobs/{id} answers 410' },
  { name: 'JOB_MAX_BYTES', default: `${DEFAULTS.jobMaxBytes} (${DEFAULTS.jobMaxBytes / 2 ** 20} MiB)`, help: 'most bytes of job results kept (PNGs + JSON); past it the oldest finished jobs are dropped (410)' },
  { name: 'SSE_HEARTBEAT_S', default: String(DEFAULTS.sseHeartbeatS), help: 'interval of the heartbeat comments on GET /jobs/{id}/events' },
  { name: 'REDIS_URL', default: 'none (jobs and rate-limit counters in the process)', help: 'redis:// or rediss:// URL: jobs (BullMQ) and rate-limit counters shared by every replica, kept across restarts' },
  { name: 'API_KEYS_FILE', default: 'none (no keys required)', help: 'file of API keys, one per line as `key` or `name:key` (# comments); turns on Authorization: Bearer / X-API-Key on every route but /healthz, /readyz and the web page; reloaded on change' },
  { name: 'API_KEYS_POLL_MS', default: String(DEFAULTS.apiKeysPollMs), help: 'how often the key file is re-read to catch changes file-system events miss' },
  { name: 'METRICS_PUBLIC', default: 'false', help: 'with API keys on, /metrics answers without a key' },
  { name: 'KSERVE_METADATA_PUBLIC', default: 'false', help: 'with API keys on, KServe\'s GET /v1/models/{id} answers without a key' },
  { name: 'RATE_LIMIT', default: `${DEFAULTS.rateLimit} (off)`, help: 'requests per RATE_LIMIT_WINDOW_S and client (API key, else address) on every route but the probes; over it: 429 + Retry-After' },
  { name: 'RATE_LIMIT_LONG', default: `${DEFAULTS.rateLimitLong} (off)`, help: 'long explanations (Score-CAM and its kin, ablationcam, integrated-gradients, aug_smooth) and jobs per window and client; an image of a batch counts one' },
  { name: 'RATE_LIMIT_WINDOW_S', default: String(DEFAULTS.rateLimitWindowS), help: 'window of both rate limits' },
  { name: 'MAX_QUEUE_PER_CLIENT', default: 'ceil(MAX_QUEUE / 2)', help: 'explanations one client may have waiting (and jobs: ceil(MAX_JOBS × this / MAX_QUEUE)); more get 429' },
  { name: 'TRUST_PROXY', default: 'false', help: 'proxies in front whose X-Forwarded-For is believed: true, a hop count, or addresses/subnets (comma-separated)' },
  { name: 'CORS_ORIGINS', default: 'none', help: 'origins allowed to call from browsers, comma-separated (`*`: any)' },
];

/** Where the package's own files are: the repository root (src/http/ → ../..; dist/src/http/ → ../../..). */
export function packageRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const up = here.split(path.sep).includes('dist') ? '../../..' : '../..';
  return path.resolve(here, up);
}

function integer(env: NodeJS.ProcessEnv, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const v = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new ConfigError(`${name} must be an integer in ${min}..${max === Number.MAX_SAFE_INTEGER ? '∞' : max}, got ${JSON.stringify(raw)}`);
  }
  return v;
}

/** ORT_THREADS: one count (every worker) or a comma-separated count per worker, each in 1..max; undefined when unset. */
function ortThreadList(env: NodeJS.ProcessEnv, max: number): number[] | undefined {
  const raw = env.ORT_THREADS;
  if (raw === undefined || raw.trim() === '') return undefined;
  const parts = raw.split(',').map((p) => p.trim());
  const list = parts.map(Number);
  if (parts.length > max || !parts.every((p, i) => /^\d+$/.test(p) && list[i] >= 1 && list[i] <= max)) {
    throw new ConfigError(`ORT_THREADS must be an integer in 1..${max}, or such integers separated by commas (one per worker), got ${JSON.stringify(raw)}`);
  }
  return list;
}

/** Reads the configuration from an environment (default: process.env); throws ConfigError naming a bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const logLevel = (env.LOG_LEVEL?.trim() || DEFAULTS.logLevel) as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(env.LOG_LEVEL)}`);
  const root = packageRoot();
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  const cpus = effectiveCpus().count;
  const threadList = ortThreadList(env, 4 * cores);
  const perWorker = threadList && threadList.length > 1 ? threadList : undefined;
  const workers = integer(env, 'WORKERS', 1, 4 * cores) ?? perWorker?.length ?? Math.max(1, Math.floor(cpus / 2));
  if (perWorker && perWorker.length !== workers) {
    throw new ConfigError(`ORT_THREADS lists ${perWorker.length} thread counts but WORKERS is ${workers}: give one count per worker, or one count for all`);
  }
  const ortThreads = perWorker ?? Array.from({ length: workers }, () => threadList?.[0] ?? Math.max(1, Math.floor(cpus / workers)));
  const maxQueue = integer(env, 'MAX_QUEUE', 0) ?? DEFAULTS.maxQueue;
  return {
    port: integer(env, 'PORT', 0, 65535) ?? DEFAULTS.port,
    host: env.HOST?.trim() || DEFAULTS.host,
    modelsDir: path.resolve(env.MODELS_DIR?.trim() || DEFAULTS.modelsDir),
    modelName: env.MODEL_NAME?.trim() || undefined,
    logLevel,
    workers,
    ortThreads,
    maxQueue,
    batchSize: integer(env, 'BATCH_SIZE', 1, 4096),
    modelsPollMs: integer(env, 'MODELS_POLL_MS', 100),
    maxUploadBytes: integer(env, 'MAX_UPLOAD_BYTES', 1) ?? DEFAULTS.maxUploadBytes,
    maxRequestBytes: integer(env, 'MAX_REQUEST_BYTES', 1) ?? DEFAULTS.maxRequestBytes,
    maxPixels: integer(env, 'MAX_PIXELS', 1) ?? DEFAULTS.maxPixels,
    maxImageSide: integer(env, 'MAX_IMAGE_SIDE', 16, 16384) ?? DEFAULTS.maxImageSide,
    defaultModel: env.DEFAULT_MODEL?.trim() || undefined,
    maxTargets: integer(env, 'MAX_TARGETS', 1, 1000) ?? DEFAULTS.maxTargets,
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 0) ?? DEFAULTS.shutdownTimeoutMs,
    maxTimeoutMs: integer(env, 'MAX_TIMEOUT_MS', 1) ?? DEFAULTS.maxTimeoutMs,
    headersTimeoutMs: integer(env, 'HEADERS_TIMEOUT_MS', 100) ?? DEFAULTS.headersTimeoutMs,
    requestTimeoutMs: integer(env, 'REQUEST_TIMEOUT_MS', 100) ?? DEFAULTS.requestTimeoutMs,
    minUploadRate: integer(env, 'MIN_UPLOAD_RATE', 0) ?? DEFAULTS.minUploadRate,
    uploadRateWindowMs: integer(env, 'UPLOAD_RATE_WINDOW_MS', 100) ?? DEFAULTS.uploadRateWindowMs,
    maxConnections: integer(env, 'MAX_CONNECTIONS', 1) ?? DEFAULTS.maxConnections,
    retryAfterSeconds: integer(env, 'RETRY_AFTER_SECONDS', 1, 3600) ?? DEFAULTS.retryAfterSeconds,
    publicDir: path.join(root, 'public'),
    openapiFile: path.join(root, 'openapi.yaml'),
    maxBatch: integer(env, 'MAX_BATCH', 1, 1024) ?? DEFAULTS.maxBatch,
    maxCoalesce: integer(env, 'MAX_COALESCE', 1, 64) ?? DEFAULTS.maxCoalesce,
    maxJobImages: integer(env, 'MAX_JOB_IMAGES', 1, 10_000) ?? DEFAULTS.maxJobImages,
    maxJobs: integer(env, 'MAX_JOBS', 1) ?? DEFAULTS.maxJobs,
    jobConcurrency: integer(env, 'JOB_CONCURRENCY', 1, 256) ?? workers,
    jobTtlS: integer(env, 'JOB_TTL_S', 1) ?? DEFAULTS.jobTtlS,
    jobMaxBytes: integer(env, 'JOB_MAX_BYTES', 1) ?? DEFAULTS.jobMaxBytes,
    sseHeartbeatS: integer(env, 'SSE_HEARTBEAT_S', 1, 3600) ?? DEFAULTS.sseHeartbeatS,
    redisUrl: redisUrl(env),
    apiKeysFile: env.API_KEYS_FILE?.trim() ? path.resolve(env.API_KEYS_FILE.trim()) : undefined,
    apiKeysPollMs: integer(env, 'API_KEYS_POLL_MS', 100) ?? DEFAULTS.apiKeysPollMs,
    metricsPublic: flag(env, 'METRICS_PUBLIC'),
    kserveMetadataPublic: flag(env, 'KSERVE_METADATA_PUBLIC'),
    rateLimit: integer(env, 'RATE_LIMIT', 0) ?? DEFAULTS.rateLimit,
    rateLimitLong: integer(env, 'RATE_LIMIT_LONG', 0) ?? DEFAULTS.rateLimitLong,
    rateLimitWindowS: integer(env, 'RATE_LIMIT_WINDOW_S', 1, 86_400) ?? DEFAULTS.rateLimitWindowS,
    maxQueuePerClient: integer(env, 'MAX_QUEUE_PER_CLIENT', 1) ?? Math.max(1, Math.ceil(maxQueue / 2)),
    trustProxy: trustProxy(env),
    corsOrigins: (env.CORS_ORIGINS ?? '').split(',').map((s) => s.trim().replace(/\/+$/, '')).filter(Boolean),
  };
}

function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return false;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(env[name])}`);
}

function redisUrl(env: NodeJS.ProcessEnv): string | undefined {
  const raw = env.REDIS_URL?.trim();
  if (!raw) return undefined;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError('REDIS_URL must be a redis:// or rediss:// URL');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new ConfigError(`REDIS_URL must be a redis:// or rediss:// URL, got ${u.protocol}//…`);
  return raw;
}

/** TRUST_PROXY as express's `trust proxy` setting. */
function trustProxy(env: NodeJS.ProcessEnv): boolean | number | string {
  const raw = env.TRUST_PROXY?.trim();
  if (!raw || raw === 'false') return false;
  if (raw === 'true') return true;
  if (/^\d+$/.test(raw)) return Number(raw);
  const items = raw.split(',').map((s) => s.trim());
  if (items.some((s) => !/^[0-9a-fA-F:.\/]+$/.test(s) && !['loopback', 'linklocal', 'uniquelocal'].includes(s))) {
    throw new ConfigError(`TRUST_PROXY must be true, false, a hop count, or addresses/subnets (or loopback, linklocal, uniquelocal), got ${JSON.stringify(raw)}`);
  }
  return items.join(',');
}

/** The table of variables, for `--help`. */
export function environmentHelp(): string {
  const w = Math.max(...ENVIRONMENT.map((v) => v.name.length));
  return ENVIRONMENT.map((v) => `  ${v.name.padEnd(w)}  ${v.help} (default: ${v.default})`).join('\n');
}
