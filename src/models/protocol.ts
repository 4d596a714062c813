// Messages between the HTTP thread's pool and its inference workers.
import type { ExplainRequest, ExplainResult, ModelInfo } from './runtime.js';

export type ModelStatus =
  | { id: string; ok: true; info: ModelInfo; warning?: string }
  | { id: string; ok: false; error: string };

export interface WorkerInit {
  models: { id: string; dir: string }[];
  intraOpThreads?: number;
  batchSize?: number;
}

export type WorkerRequest =
  | { type: 'explain'; job: number; model: string; req: ExplainRequest }
  | { type: 'shutdown' };

export type WorkerReply =
  | { type: 'ready'; statuses: ModelStatus[] }
  | { type: 'result'; job: number; result: ExplainResult }
  | { type: 'error'; job: number; error: { name: string; message: string } };
