// An inference worker thread: loads every model once (its own onnxruntime sessions), warms it up, then
// answers jobs one at a time — explanations, and the inspection jobs (tensors of an input, graph facts).
import { parentPort, workerData } from 'node:worker_threads';
import { ModelRuntime, tensorTransferables, type ExplainRequest, type ExplainResult } from '../engine/index.js';
import { CamserveError, toErrorData } from '../errors/index.js';
import { modelFacts, type ModelFacts } from '../inspect/index.js';
import { evaluateMetrics, isMetricName, type MetricName } from '../metrics/index.js';
import { withoutServerPaths } from './paths.js';
import type { ModelEntry, ModelStatus, ReloadChanges, WorkerInit, WorkerReply, WorkerRequest } from './protocol.js';

const init = workerData as WorkerInit;
/** Loaded models by id: the runtime (absent for a model that failed), the stamp of its files, its status. */
let loaded = new Map<string, { rt?: ModelRuntime; stamp: string; status: ModelStatus }>();
const facts = new Map<string, ModelFacts>();
/** The running job's cancel switch (one job at a time). */
const running = new Map<number, AbortController>();
/** Runtimes replaced by a reload, released once no job runs. */
const retired: ModelRuntime[] = [];

/**
 * onnxruntime's intra-op threads do not busy-wait here: after every run a spinning pool keeps a core busy
 * for milliseconds, which the render thread, the HTTP thread, the other workers and the other models'
 * sessions need. Measured on 2 cores (bench/RESULTS.md): ResNet-50 overlays took 60 ms end to end
 * without spinning and 66 ms with it (the render slowed from 15 to 20 ms), 17.0 against 18.8 answers/s.
 */
const SPINNING = false;

/** Loads and warms one model; a failure is its status. */
async function loadOne({ id, dir }: ModelEntry): Promise<{ rt?: ModelRuntime; status: ModelStatus }> {
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
    return { rt, status: { id, ok: true, info: rt.info, ...(warning ? { warning } : {}) } };
  } catch (e) {
    const message = (e as Error).message;
    return { status: { id, ok: false, error: withoutServerPaths(message, dir), internal: message } };
  }
}

async function load(): Promise<ModelStatus[]> {
  for (const entry of init.models) {
    const r = await loadOne(entry);
    loaded.set(entry.id, { ...r, stamp: entry.stamp });
  }
  return [...loaded.values()].map((m) => m.status);
}

/**
 * Loads what changed while the old runtimes keep serving, then swaps: new and changed models in, removed
 * ones out. A changed model whose new version fails keeps its previous version (with a warning).
 */
async function reload(models: ModelEntry[]): Promise<{ statuses: ModelStatus[]; changes: ReloadChanges }> {
  const changes: ReloadChanges = { added: [], removed: [], replaced: [], unchanged: [], keptPrevious: [] };
  const next = new Map<string, { rt?: ModelRuntime; stamp: string; status: ModelStatus }>();
  for (const entry of models) {
    const current = loaded.get(entry.id);
    if (current && current.stamp === entry.stamp) {
      next.set(entry.id, current);
      changes.unchanged.push(entry.id);
      continue;
    }
    const r = await loadOne(entry);
    if (!r.rt && current?.rt && current.status.ok) {
      const why = r.status.ok ? '' : r.status.error;
      const status: ModelStatus = { ...current.status, warning: `its files changed but the new version failed to load (${why}); the previous version still serves` };
      next.set(entry.id, { rt: current.rt, stamp: entry.stamp, status });
      changes.keptPrevious.push(entry.id);
      continue;
    }
    next.set(entry.id, { ...r, stamp: entry.stamp });
    (current ? changes.replaced : changes.added).push(entry.id);
  }
  for (const id of loaded.keys()) if (!next.has(id)) changes.removed.push(id);
  const serving = new Set([...next.values()].map((m) => m.rt));
  for (const m of loaded.values()) if (m.rt && !serving.has(m.rt)) retired.push(m.rt);
  for (const id of [...changes.replaced, ...changes.removed]) facts.delete(id);
  loaded = next;
  releaseRetired();
  return { statuses: [...loaded.values()].map((m) => m.status), changes };
}

/** Frees replaced runtimes once no job holds one. */
function releaseRetired(): void {
  if (running.size > 0 || retired.length === 0) return;
  for (const rt of retired.splice(0)) void rt.release().catch(() => undefined);
}

function runtime(model: string): ModelRuntime {
  const rt = loaded.get(model)?.rt;
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

async function explain(model: string, req: ExplainRequest, signal: AbortSignal, progress?: (done: number, total: number) => void): Promise<ExplainResult> {
  // Metrics run here, on this worker's sessions: the engine hands src/metrics' evaluator its batched runs.
  const r = await runtime(model).explain(req, {
    signal, progress,
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
    releaseRetired();
  }
}

port.on('message', (msg: WorkerRequest) => {
  switch (msg.type) {
    case 'explain': {
      const ac = new AbortController();
      running.set(msg.job, ac);
      void run(msg.job, async () => {
        const progress = msg.progress ? (done: number, total: number) => reply({ type: 'progress', job: msg.job, done, total }) : undefined;
        const result = await explain(msg.model, msg.req, ac.signal, progress);
        return { msg: { type: 'result', job: msg.job, result }, transfer: explainTransferables(result) };
      });
      return;
    }
    case 'explain-batch': {
      const ac = new AbortController();
      running.set(msg.job, ac);
      void run(msg.job, async () => {
        const results = (await runtime(msg.model).explainBatch(msg.reqs, { signal: ac.signal, maxBatch: msg.maxBatch }))
          .map((r) => ({ ...r, logits: Float32Array.from(r.logits) }));
        return { msg: { type: 'results', job: msg.job, results }, transfer: [...new Set(results.flatMap(explainTransferables))] };
      });
      return;
    }
    case 'tensors':
      running.set(msg.job, new AbortController());
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
    case 'reload':
      void reload(msg.models).then((r) => reply({ type: 'reloaded', reload: msg.reload, ...r }));
      return;
    case 'shutdown':
      void shutdown();
  }
});

/**
 * Stops the running jobs at their next checkpoint, waits for them, releases every session and exits: no
 * onnxruntime run is in progress when the thread ends (ending it during one aborts the process).
 */
async function shutdown(): Promise<void> {
  for (const ac of running.values()) ac.abort();
  while (running.size) await new Promise((r) => setTimeout(r, 10));
  const runtimes = [...loaded.values()].flatMap((m) => (m.rt ? [m.rt] : [])).concat(retired);
  await Promise.all(runtimes.map((r) => r.release())).catch(() => undefined);
  process.exit(0);
}

void load().then((statuses) => reply({ type: 'ready', statuses }));
