// Starts the service: listens at once (so /healthz answers while models load), starts the inference
// pool, bounds what a connection may take (header and request timeouts, connection count, parser errors
// answered as problem+json), and shuts down gracefully within one grace period.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pino, type Logger } from 'pino';
import { CamserveError, type ErrorCode } from '../errors/index.js';
import { InferencePool } from '../workers/index.js';
import { createApp, type CamserveApp, type ServicePool } from './app.js';
import type { ServerConfig } from './config.js';
import { PROBLEM_CONTENT_TYPE, problemBody } from './problem.js';

/** A pool the server can close: refuse new jobs, stop every job, then stop the workers. */
export type ClosablePool = ServicePool & { close(): Promise<void>; beginClose?(): void; cancelAll?(): Promise<void> };

export interface RunningServer {
  app: CamserveApp;
  server: http.Server;
  pool: ClosablePool;
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  port: number;
  /** graceful shutdown; resolves when every connection is closed and the pool has stopped */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** a pool to use instead of starting one from config.modelsDir */
  pool?: Promise<ClosablePool>;
}

/** Node's parser errors (malformed request line, headers, chunks; timeouts) and the problem each is. */
function parserProblem(err: NodeJS.ErrnoException): { code: ErrorCode; detail: string } {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { code: 'header-too-large', detail: 'the request headers are too large' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { code: 'request-timeout', detail: 'the request was not received in time' };
    case 'HPE_INVALID_METHOD':
      return { code: 'bad-request', detail: 'the request method is not a valid HTTP method' };
    default:
      return { code: 'bad-request', detail: `the request cannot be parsed (${err.code ?? 'malformed'})` };
  }
}

/** A problem+json answer written straight to a socket (there is no request object to answer through). */
function writeRawProblem(socket: Socket, code: ErrorCode, detail: string): void {
  const id = randomUUID();
  const body = JSON.stringify(problemBody(code, detail, {}, id));
  const status = new CamserveError(code, detail).status;
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`
    + `X-Request-Id: ${id}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Listens on config.host:config.port, starts the pool, resolves once the models are loaded. */
export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? pino({ level: config.logLevel });
  const poolPromise = options.pool ?? InferencePool.start({
    modelsDir: config.modelsDir, modelName: config.modelName, workers: config.workers, intraOpThreads: config.ortThreads,
    maxQueue: config.maxQueue, batchSize: config.batchSize, maxQueuePerClient: config.maxQueuePerClient, pollMs: config.modelsPollMs,
    maxCoalesce: config.maxCoalesce,
    onReload: ({ changes, error, trigger }) => {
      if (error) logger.error({ err: error, trigger }, 'reloading the models failed');
      else logger.info({ trigger, ...changes }, 'models reloaded');
    },
  });
  const app = createApp(poolPromise, config, { logger });
  const server = http.createServer(app);
  server.headersTimeout = config.headersTimeoutMs;
  server.requestTimeout = config.requestTimeoutMs;
  server.maxConnections = config.maxConnections;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const p = parserProblem(err);
    logger.info({ err: { code: err.code, message: err.message }, problem: p.code }, 'malformed request');
    writeRawProblem(socket, p.code, p.detail);
  });
  // `Expect: 100-continue` is answered by Node; any other expectation is refused as problem+json.
  server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const detail = `the expectation "${String(req.headers.expect).slice(0, 64)}" is not supported (only 100-continue)`;
    const body = JSON.stringify(problemBody('expectation-failed', detail, {}, randomUUID()));
    res.writeHead(417, { 'Content-Type': PROBLEM_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
    res.end(body);
  });
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
  logger.info({ url, modelsDir: config.modelsDir, workers: config.workers, ortThreads: config.ortThreads }, 'listening; loading models');

  let pool: ClosablePool;
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
    else logger.warn({ model: m.id, error: m.internal ?? m.error }, 'model failed to load; skipped');
  }

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      logger.info({ graceMs: config.shutdownTimeoutMs }, 'shutting down: no new connections or jobs, finishing in-flight requests');
      app.camserve.beginShutdown();
      pool.beginClose?.();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections become idle once their answer is sent: close them as they do.
      const idle = setInterval(() => server.closeIdleConnections(), 50);
      const within = (ms: number) => Promise.race([closed.then(() => true), new Promise<false>((r) => { setTimeout(() => r(false), ms).unref(); })]);
      if (!(await within(config.shutdownTimeoutMs))) {
        // The grace period is over: stop every job; their requests are answered 503 shutting-down.
        logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'in-flight requests did not finish in time; stopping their jobs');
        await pool.cancelAll?.();
        if (!(await within(1000))) {
          logger.warn('closing the connections that are still open');
          server.closeAllConnections();
          await closed;
        }
      }
      clearInterval(idle);
      await app.camserve.close();
      await pool.close();
      logger.info('stopped');
    })();
    return closing;
  };
  logger.info({ url, models: pool.models().filter((m) => m.ok).length }, 'ready');
  return { app, server, pool, url, port, close };
}
