// The Redis connections of a replica (REDIS_URL): one for commands, and one per blocking or subscribing
// use (BullMQ's queue and worker, the job-event subscriber). Errors are logged, never thrown into the
// process: commands fail (their requests get 503) while Redis is away, and resume when it is back.

/** Whether an error is Redis being unreachable (answered 503, not 500). */
export function isRedisDown(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  return e.name === 'MaxRetriesPerRequestError' || /Connection is closed|ECONNREFUSED|ECONNRESET|Stream isn't writeable|enableOfflineQueue/.test(e.message);
}
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * `blocking`: a connection BullMQ's worker blocks on (it must retry for ever); the others give up on a
 * command after a few reconnection attempts, so that a request fails (503) rather than hangs while Redis
 * is away.
 */
export function connectRedis(url: string, logger: Logger, name: string, blocking = false): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: blocking ? null : 2, enableReadyCheck: true, connectionName: `camserve-${name}` });
  let down = false;
  redis.on('error', (err: Error) => {
    if (!down) logger.error({ err: { message: err.message }, redis: name }, 'Redis connection error');
    down = true;
  });
  redis.on('ready', () => {
    if (down) logger.info({ redis: name }, 'Redis connection back');
    down = false;
  });
  return redis;
}
