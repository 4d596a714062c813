// Entry point of the HTTP service (`npm start`): configuration from the environment, then serve until
// SIGTERM / SIGINT, which shut down gracefully (a second SIGINT, a second Ctrl-C, exits at once).
import { pino } from 'pino';
import sharp from 'sharp';
import { ConfigError, SHUTDOWN_MARGIN_MS, environmentHelp, loadConfig } from './config.js';
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
// libvips' own threads follow the CPU limit too (the cgroup quota, which Node 20 does not see).
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
      // A repeated SIGTERM (a supervisor and npm both forwarding it) must not cut the grace period short.
      if (signal === 'SIGTERM') {
        logger.info({ signal }, 'already shutting down');
        return;
      }
      logger.warn({ signal }, 'second interrupt: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'signal received');
    // After the grace period running jobs are stopped (within a batch, ~1 s); if anything still hangs, exit anyway.
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
