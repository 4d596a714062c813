// The HTTP service's configuration: every environment variable it reads, with its default and
// meaning, in one table (printed by `camserve-http --help`), parsed and checked once at start-up.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { effectiveCpus } from './cpu.js';

export interface ServerConfig {
  port: number;
  host: string;
  modelsDir: string;
  logLevel: LogLevel;
  /** inference worker threads; default max(1, cpus / 2), cpus counting the cgroup CPU limit */
  workers?: number;
  /** onnxruntime intra-op threads per worker; default max(1, cpus / workers) */
  ortThreads?: number;
  /** explanations allowed to wait for a worker; more are refused with 503 */
  maxQueue: number;
  /** Score-CAM / Ablation-CAM batch size; undefined: the runtime's default */
  batchSize?: number;
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
  /** on SIGTERM/SIGINT, how long in-flight requests may take before the process exits anyway */
  shutdownTimeoutMs: number;
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

interface EnvVar {
  name: string;
  default: string;
  help: string;
}

/** After SHUTDOWN_TIMEOUT_MS, how long closing the pool may take before the process exits anyway. The
 *  default 7 s + 2 s stays inside `docker stop`'s 10 s; a longer timeout needs a longer stop timeout. */
export const SHUTDOWN_MARGIN_MS = 2000;

/** Every variable the service reads: the one place they are documented. */
export const ENVIRONMENT: readonly EnvVar[] = [
  { name: 'PORT', default: '8080', help: 'TCP port to listen on (0: any free port)' },
  { name: 'HOST', default: '0.0.0.0', help: 'address to bind ("::" for IPv6, "127.0.0.1" for local only)' },
  { name: 'MODELS_DIR', default: './models', help: 'folder whose sub-folders <id>/model.onnx are served' },
  { name: 'DEFAULT_MODEL', default: 'shapes, else the first ready model', help: 'model id used when a request names none; must exist' },
  { name: 'LOG_LEVEL', default: 'info', help: `pino level: ${LOG_LEVELS.join(', ')}` },
  { name: 'WORKERS', default: 'max(1, cpus / 2)', help: 'inference worker threads (cpus: the cores, capped by the cgroup CPU limit)' },
  { name: 'ORT_THREADS', default: 'cpus / WORKERS', help: 'onnxruntime intra-op threads per worker' },
  { name: 'MAX_QUEUE', default: '16', help: 'explanations that may wait for a worker; more get 503 + Retry-After' },
  { name: 'BATCH_SIZE', default: '16', help: 'batch size of Score-CAM / Ablation-CAM forward runs' },
  { name: 'MAX_UPLOAD_BYTES', default: '20971520 (20 MiB)', help: 'largest upload; larger gets 413' },
  { name: 'MAX_PIXELS', default: '40000000', help: 'largest image (width × height, read from its header before decoding); larger gets 413' },
  { name: 'MAX_IMAGE_SIDE', default: '2048', help: 'longest side of the returned PNGs; larger images are scaled down before rendering' },
  { name: 'MAX_TARGETS', default: '10', help: 'most classes one request may explain (target list or topk)' },
  { name: 'SHUTDOWN_TIMEOUT_MS', default: '7000', help: `grace period for in-flight requests on SIGTERM / SIGINT; the process exits at most ${SHUTDOWN_MARGIN_MS / 1000} s later` },
  { name: 'RETRY_AFTER_SECONDS', default: '2', help: 'Retry-After of a 503 answer' },
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
  const logLevel = (env.LOG_LEVEL?.trim() || 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(env.LOG_LEVEL)}`);
  const root = packageRoot();
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  const cpus = effectiveCpus().count;
  const workers = integer(env, 'WORKERS', 1, 4 * cores) ?? Math.max(1, Math.floor(cpus / 2));
  return {
    port: integer(env, 'PORT', 0, 65535) ?? 8080,
    host: env.HOST?.trim() || '0.0.0.0',
    modelsDir: path.resolve(env.MODELS_DIR?.trim() || './models'),
    logLevel,
    workers,
    ortThreads: integer(env, 'ORT_THREADS', 1, 4 * cores) ?? Math.max(1, Math.floor(cpus / workers)),
    maxQueue: integer(env, 'MAX_QUEUE', 0) ?? 16,
    batchSize: integer(env, 'BATCH_SIZE', 1, 4096),
    maxUploadBytes: integer(env, 'MAX_UPLOAD_BYTES', 1) ?? 20 * 1024 * 1024,
    maxPixels: integer(env, 'MAX_PIXELS', 1) ?? 40_000_000,
    maxImageSide: integer(env, 'MAX_IMAGE_SIDE', 16, 16384) ?? 2048,
    defaultModel: env.DEFAULT_MODEL?.trim() || undefined,
    maxTargets: integer(env, 'MAX_TARGETS', 1, 1000) ?? 10,
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 0) ?? 7_000,
    retryAfterSeconds: integer(env, 'RETRY_AFTER_SECONDS', 1, 3600) ?? 2,
    publicDir: path.join(root, 'public'),
    openapiFile: path.join(root, 'openapi.yaml'),
  };
}

/** The table of variables, for `--help`. */
export function environmentHelp(): string {
  const w = Math.max(...ENVIRONMENT.map((v) => v.name.length));
  return ENVIRONMENT.map((v) => `  ${v.name.padEnd(w)}  ${v.help} (default: ${v.default})`).join('\n');
}
