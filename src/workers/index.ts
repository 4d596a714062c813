// Threads: the inference worker pool (every model loaded in each worker; one bounded FIFO queue) and the
// render thread. The HTTP layer talks to these; nothing below it does.
export { InferencePool, POOL_DEFAULTS, discoverModels, type JobOptions, type ModelStatus, type PoolOptions, type PoolStats, type ReloadChanges, type ReloadResult, type Reservation } from './pool.js';
export { Renderer } from './renderer.js';
export { THREAD_NAMES } from './thread-name.js';
