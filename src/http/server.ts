// Starts the service: listens at once (so /healthz answers while models load), starts the inference
// pool, and shuts down gracefully: stop accepting, finish in-flight requests, close the pool.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { InferencePool } from '../workers/index.js';
import { createApp, type CamserveApp, type ServicePool } from './app.js';
import type { ServerConfig } from './config.js';

export interface RunningServer {
  app: CamserveApp;
  server: http.Server;
  pool: ServicePool & { close(): Promise<void> };
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  port: number;
  /** graceful shutdown; resolves when every connection is closed and the pool has stopped */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** a pool to use instead of starting one from config.modelsDir */
  pool?: Promise<ServicePool & { close(): Promise<void> }>;
}

/** Listens on config.host:config.port, starts the pool, resolves once the models are loaded. */
export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? pino({ level: config.logLevel });
  const poolPromise = options.pool ?? InferencePool.start({
    modelsDir: config.modelsDir, workers: config.workers, intraOpThreads: config.ortThreads,
    maxQueue: config.maxQueue, batchSize: config.batchSize,
  });
  const app = createApp(poolPromise, config, { logger });
  const server = http.createServer(app);
  // Uploads may be slow; a request must still finish in reasonable time.
  server.requestTimeout = 5 * 60_000;
  server.headersTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ url, modelsDir: config.modelsDir }, 'listening; loading models');

  let pool: ServicePool & { close(): Promise<void> };
  try {
    pool = await poolPromise;
    await app.camserve.ready;
  } catch (e) {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
    await app.camserve.close();
    void poolPromise.then((p) => p.close(), () => undefined);
    throw e;
  }
  for (const m of pool.models()) {
    if (m.ok) logger.info({ model: m.id, ...('warning' in m && m.warning ? { warning: m.warning } : {}) }, 'model ready');
    else logger.warn({ model: m.id, error: m.error }, 'model failed to load; skipped');
  }

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      logger.info('shutting down: no new connections, finishing in-flight requests');
      app.camserve.beginShutdown();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections become idle once their answer is sent: close them as they do.
      const idle = setInterval(() => server.closeIdleConnections(), 50);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), config.shutdownTimeoutMs); });
      const how = await Promise.race([closed.then(() => 'closed' as const), timeout]);
      clearInterval(idle);
      clearTimeout(timer);
      if (how === 'timeout') {
        logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'in-flight requests did not finish in time; closing their connections');
        server.closeAllConnections();
        await closed;
      }
      await app.camserve.close();
      await pool.close();
      logger.info('stopped');
    })();
    return closing;
  };
  logger.info({ url, models: pool.models().filter((m) => m.ok).length }, 'ready');
  return { app, server, pool, url, port, close };
}
