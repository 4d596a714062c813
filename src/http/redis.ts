// The Redis connections of a replica (REDIS_URL): one for commands, and one per blocking or subscribing
// use (BullMQ's workers, the job-event subscriber) made by duplicate(). Errors are logged, never thrown
// into the process: commands fail (their requests get 503) while Redis is away, and resume when it is back.
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

export function connectRedis(url: string, logger: Logger, name: string): Redis {
  // maxRetriesPerRequest: null is what BullMQ's blocking connections need; commands of ours wait for a
  // reconnect instead of failing at once (bounded by the request's own time limits).
  const redis = new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, connectionName: `camserve-${name}` });
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
