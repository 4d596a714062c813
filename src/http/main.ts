// Entry point of the HTTP service (`npm start`): configuration from the environment, then serve until
// SIGTERM / SIGINT, which shut down gracefully (a second signal exits at once).
import { pino } from 'pino';
import { ConfigError, environmentHelp, loadConfig } from './config.js';
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
let running;
try {
  running = await startServer(config, { logger });
} catch (e) {
  logger.fatal({ err: e }, 'cannot start');
  process.exit(1);
}

const server = running;
/** Beyond the grace period: stopping jobs (≤ POOL cancel grace, 1 s), flushing their 503s, closing the workers. */
const FORCE_EXIT_MARGIN_MS = 2500;
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'signal received');
    // After the grace period running jobs are stopped (within a batch, ~1 s); if anything still hangs, exit anyway.
    const force = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs + FORCE_EXIT_MARGIN_MS);
    force.unref();
    server.close().then(() => process.exit(0), (err: unknown) => {
      logger.error({ err }, 'error while shutting down');
      process.exit(1);
    });
  });
}
