// Threads: the inference worker pool (every model loaded in each worker; one bounded FIFO queue) and the
// render thread. The HTTP layer talks to these; nothing below it does.
export { InferencePool, discoverModels, type JobOptions, type ModelStatus, type PoolOptions, type ReloadChanges, type ReloadResult } from './pool.js';
export { Renderer } from './renderer.js';
