// Entry point of the HTTP service (`npm start`): configuration from the environment, then serve until
// SIGTERM / SIGINT, which shut down gracefully (a second signal exits at once).
import { pino } from 'pino';
import sharp from 'sharp';
import { ConfigError, environmentHelp, loadConfig, SHUTDOWN_MARGIN_MS } from './config.js';
import { effectiveCpus } from './cpu.js';
import { startServer } from './server.js';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(`camserve HTTP service. Configuration by environment:\n${environmentHelp()}\n`);
  process.exit(0);
}

let config;
try {
  config = loadConfig();
} catch (e) {
  pino().fatal({ err: e }, e instanceof ConfigError ? 'bad configuration' : 'cannot start');
  process.exit(2);
}

const logger = pino({ level: config.logLevel });
// Thread pools follow the CPU limit (cgroup quota), not the host's core count; see docs/deploy.md.
const cpus = effectiveCpus();
sharp.concurrency(Math.min(sharp.concurrency(), cpus.count));
logger.info({ cpus: cpus.count, cpuSource: cpus.source, cpuQuota: cpus.quota, hostCpus: cpus.host, workers: config.workers,
  ortThreads: config.ortThreads, sharpConcurrency: sharp.concurrency(), uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE) || 4 }, 'cpus');
let running;
try {
  running = await startServer(config, { logger });
} catch (e) {
  logger.fatal({ err: e }, 'cannot start');
  process.exit(1);
}

const server = running;
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'signal received');
    // The pool waits for running explanations; past the grace period (+ a small margin for the pool) exit anyway.
    const force = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs + SHUTDOWN_MARGIN_MS);
    force.unref();
    server.close().then(() => process.exit(0), (err: unknown) => {
      logger.error({ err }, 'error while shutting down');
      process.exit(1);
    });
  });
}
