// Messages between the HTTP thread's pool and its inference workers. Errors cross as data (a code from
// the closed union in errors/), never as classes.
import type { ErrorData } from '../errors/index.js';
import type { ExplainRequest, ExplainResult, ModelInfo, TensorsRequest, TensorsResult } from '../engine/index.js';
import type { ModelFacts } from '../inspect/index.js';

export type ModelStatus =
  | { id: string; ok: true; info: ModelInfo; warning?: string }
  /** `error` is served (no server paths in it); `internal` is the full message, for the logs only */
  | { id: string; ok: false; error: string; internal?: string };

/** A model folder and the stamp of its files (names, sizes, modification times): a changed stamp means reload. */
export interface ModelEntry { id: string; dir: string; stamp: string }

export interface WorkerInit {
  models: ModelEntry[];
  intraOpThreads: number;
  batchSize?: number;
}

/** What a reload did, by model id. */
export interface ReloadChanges {
  added: string[];
  removed: string[];
  /** files changed and the new version serves */
  replaced: string[];
  unchanged: string[];
  /** files changed but the new version failed to load: the previous version still serves */
  keptPrevious: string[];
}

export type WorkerRequest =
  /** `progress`: send a progress message after each batch of forward runs */
  /** (every job names its model and, optionally, the version it was planned against: ModelInfo.version) */
  | { type: 'explain'; job: number; model: string; version?: string; req: ExplainRequest; progress?: boolean }
  /** several inputs with the same method and layers (one trunk run where the model takes batches) */
  | { type: 'explain-batch'; job: number; model: string; version?: string; reqs: ExplainRequest[]; maxBatch?: number }
  /** inspection: a layer's activations (and class-score gradients) for one input */
  | { type: 'tensors'; job: number; model: string; version?: string; req: TensorsRequest }
  /** inspection: the model's graph facts (for the summary and graph views) */
  | { type: 'facts'; job: number; model: string; version?: string }
  /** stop a running job at its next checkpoint (between batches of forward runs) */
  | { type: 'cancel'; job: number }
  /** load the models as they are now (new, changed), drop removed ones; answered by `reloaded` */
  | { type: 'reload'; reload: number; models: ModelEntry[] }
  /** a version a reload superseded that no job can name any more: release it */
  | { type: 'drop'; model: string; version: string }
  | { type: 'shutdown' };

export type WorkerReply =
  | { type: 'ready'; statuses: ModelStatus[] }
  | { type: 'reloaded'; reload: number; statuses: ModelStatus[]; changes: ReloadChanges }
  | { type: 'result'; job: number; result: ExplainResult }
  | { type: 'results'; job: number; results: ExplainResult[] }
  /** forward runs done so far out of the total (estimated until every step has begun); the job goes on */
  | { type: 'progress'; job: number; done: number; total: number }
  | { type: 'tensors'; job: number; result: TensorsResult }
  | { type: 'facts'; job: number; result: ModelFacts }
  | { type: 'error'; job: number; error: ErrorData };
