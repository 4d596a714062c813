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
  logLevel: LogLevel;
  /** inference worker threads; default max(1, cpus / 2), cpus counting the cgroup CPU limit */
  workers: number;
  /** onnxruntime intra-op threads per worker; default max(1, cpus / workers) */
  ortThreads: number;
  /** explanations allowed to wait for a worker; more are refused with 503 */
  maxQueue: number;
  /** Score-CAM / Ablation-CAM batch size; undefined: the runtime's default */
  batchSize?: number;
  /** reload the models folder when it changes, checked this often (ms); undefined: only on POST /admin/reload */
  modelsPollMs?: number;
  /** largest accepted upload (multipart file or raw body), bytes */
  maxUploadBytes: number;
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
  { name: 'MODELS_DIR', default: DEFAULTS.modelsDir, help: 'folder whose sub-folders <id>/model.onnx are served' },
  { name: 'DEFAULT_MODEL', default: 'shapes, else the first ready model', help: 'model id used when a request names none; must exist' },
  { name: 'LOG_LEVEL', default: DEFAULTS.logLevel, help: `pino level: ${LOG_LEVELS.join(', ')}` },
  { name: 'WORKERS', default: 'max(1, cpus / 2)', help: 'inference worker threads (cpus: the cores, capped by the cgroup CPU limit)' },
  { name: 'ORT_THREADS', default: 'cpus / WORKERS', help: 'onnxruntime intra-op threads per worker' },
  { name: 'MAX_QUEUE', default: String(DEFAULTS.maxQueue), help: 'explanations that may wait for a worker; more get 503 + Retry-After' },
  { name: 'MODELS_POLL_MS', default: 'off', help: 'check MODELS_DIR this often (ms) and reload new, changed and removed models without a restart (POST /admin/reload does it on demand)' },
  { name: 'BATCH_SIZE', default: String(ENGINE_DEFAULTS.batchSize), help: 'batch size of Score-CAM / Ablation-CAM forward runs' },
  { name: 'MAX_UPLOAD_BYTES', default: `${DEFAULTS.maxUploadBytes} (${DEFAULTS.maxUploadBytes / 2 ** 20} MiB)`, help: 'largest upload; larger gets 413' },
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

/** Reads the configuration from an environment (default: process.env); throws ConfigError naming a bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const logLevel = (env.LOG_LEVEL?.trim() || DEFAULTS.logLevel) as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(env.LOG_LEVEL)}`);
  const root = packageRoot();
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  const cpus = effectiveCpus().count;
  const workers = integer(env, 'WORKERS', 1, 4 * cores) ?? Math.max(1, Math.floor(cpus / 2));
  return {
    port: integer(env, 'PORT', 0, 65535) ?? DEFAULTS.port,
    host: env.HOST?.trim() || DEFAULTS.host,
    modelsDir: path.resolve(env.MODELS_DIR?.trim() || DEFAULTS.modelsDir),
    logLevel,
    workers,
    ortThreads: integer(env, 'ORT_THREADS', 1, 4 * cores) ?? Math.max(1, Math.floor(cpus / workers)),
    maxQueue: integer(env, 'MAX_QUEUE', 0) ?? DEFAULTS.maxQueue,
    batchSize: integer(env, 'BATCH_SIZE', 1, 4096),
    modelsPollMs: integer(env, 'MODELS_POLL_MS', 100),
    maxUploadBytes: integer(env, 'MAX_UPLOAD_BYTES', 1) ?? DEFAULTS.maxUploadBytes,
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
  };
}

/** The table of variables, for `--help`. */
export function environmentHelp(): string {
  const w = Math.max(...ENVIRONMENT.map((v) => v.name.length));
  return ENVIRONMENT.map((v) => `  ${v.name.padEnd(w)}  ${v.help} (default: ${v.default})`).join('\n');
}
