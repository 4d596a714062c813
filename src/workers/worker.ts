// An inference worker thread: loads every model once (its own onnxruntime sessions), warms it up, then
// answers jobs one at a time — explanations, and the inspection jobs (tensors of an input, graph facts).
import { parentPort, workerData } from 'node:worker_threads';
import { ModelRuntime, tensorTransferables, type ExplainRequest, type ExplainResult } from '../engine/index.js';
import { CamserveError, toErrorData } from '../errors/index.js';
import { modelFacts, type ModelFacts } from '../inspect/index.js';
import { evaluateMetrics, isMetricName, type MetricName } from '../metrics/index.js';
import type { ModelStatus, WorkerInit, WorkerReply, WorkerRequest } from './protocol.js';

const init = workerData as WorkerInit;
const runtimes = new Map<string, ModelRuntime>();
const facts = new Map<string, ModelFacts>();
/** The running job's cancel switch (one job at a time). */
const running = new Map<number, AbortController>();

/**
 * onnxruntime's intra-op threads do not busy-wait here: after every run a spinning pool keeps a core busy
 * for milliseconds, which the render thread, the HTTP thread, the other workers and the other models'
 * sessions need. Measured on 2 cores (bench/RESULTS.md): ResNet-50 overlays took 60 ms end to end
 * without spinning and 66 ms with it (the render slowed from 15 to 20 ms), 17.0 against 18.8 answers/s.
 */
const SPINNING = false;

async function load(): Promise<ModelStatus[]> {
  const statuses: ModelStatus[] = [];
  for (const { id, dir } of init.models) {
    try {
      const rt = await ModelRuntime.load(dir, { id, intraOpThreads: init.intraOpThreads, batchSize: init.batchSize, spinning: SPINNING });
      let warning: string | undefined;
      try {
        // Warm-up: builds and caches the default layer's explain sessions.
        const n = rt.info.inputDims.reduce((a, b) => a * b, 1);
        await rt.explain({ input: new Float32Array(n), method: 'gradcam' });
      } catch (e) {
        warning = `gradient methods unavailable at the default layer: ${(e as Error).message}`;
      }
      runtimes.set(id, rt);
      statuses.push({ id, ok: true, info: rt.info, ...(warning ? { warning } : {}) });
    } catch (e) {
      statuses.push({ id, ok: false, error: (e as Error).message });
    }
  }
  return statuses;
}

function runtime(model: string): ModelRuntime {
  const rt = runtimes.get(model);
  if (!rt) throw new CamserveError('model-unavailable', `model ${model} is not loaded`, { model });
  return rt;
}

function explainTransferables(r: ExplainResult): ArrayBuffer[] {
  const list = new Set<ArrayBuffer>([r.logits.buffer as ArrayBuffer]);
  for (const e of r.explanations) {
    list.add(e.map.data.buffer as ArrayBuffer);
    for (const l of e.layers) list.add(l.map.data.buffer as ArrayBuffer);
  }
  for (const c of r.factorization?.concepts ?? []) {
    list.add(c.map.data.buffer as ArrayBuffer);
    list.add(c.logits.buffer as ArrayBuffer);
  }
  return [...list];
}

async function explain(model: string, req: ExplainRequest, signal: AbortSignal): Promise<ExplainResult> {
  // Metrics run here, on this worker's sessions: the engine hands src/metrics' evaluator its batched runs.
  const r = await runtime(model).explain(req, {
    signal,
    evaluateMetrics: (spec, subject) => evaluateMetrics({ ...spec, names: spec.names.filter(isMetricName) as MetricName[] }, subject),
  });
  // Results may share buffers with onnxruntime's outputs; copy the logits so they can be transferred.
  return { ...r, logits: Float32Array.from(r.logits) };
}

function factsOf(model: string): ModelFacts {
  let f = facts.get(model);
  if (!f) {
    f = modelFacts(runtime(model));
    facts.set(model, f);
  }
  return f;
}

const port = parentPort!;

function reply(msg: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

/** Runs one job and answers it: its result, or its error as data. */
async function run(job: number, work: () => Promise<{ msg: WorkerReply; transfer?: ArrayBuffer[] }>): Promise<void> {
  try {
    const { msg, transfer } = await work();
    reply(msg, transfer);
  } catch (e) {
    reply({ type: 'error', job, error: toErrorData(e) });
  } finally {
    running.delete(job);
  }
}

port.on('message', (msg: WorkerRequest) => {
  switch (msg.type) {
    case 'explain': {
      const ac = new AbortController();
      running.set(msg.job, ac);
      void run(msg.job, async () => {
        const result = await explain(msg.model, msg.req, ac.signal);
        return { msg: { type: 'result', job: msg.job, result }, transfer: explainTransferables(result) };
      });
      return;
    }
    case 'tensors':
      void run(msg.job, async () => {
        const result = await runtime(msg.model).tensors(msg.req);
        return { msg: { type: 'tensors', job: msg.job, result }, transfer: tensorTransferables(result) };
      });
      return;
    case 'facts':
      void run(msg.job, async () => ({ msg: { type: 'facts', job: msg.job, result: factsOf(msg.model) } }));
      return;
    case 'cancel':
      running.get(msg.job)?.abort();
      return;
    case 'shutdown':
      void Promise.all([...runtimes.values()].map((r) => r.release())).finally(() => process.exit(0));
  }
});

void load().then((statuses) => reply({ type: 'ready', statuses }));
