// An inference worker thread: loads every model once (its own onnxruntime sessions), warms it up, then
// answers jobs one at a time — explanations, and the inspection jobs (tensors of an input, graph facts).
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { ModelRuntime, tensorTransferables, type ExplainRequest, type ExplainResult } from '../engine/index.js';
import { CamserveError, toErrorData } from '../errors/index.js';
import { modelFacts, type ModelFacts } from '../inspect/index.js';
import { evaluateMetrics, isMetricName, type MetricName } from '../metrics/index.js';
import { withoutServerPaths } from './paths.js';
import type { ModelEntry, ModelStatus, ReloadChanges, WorkerInit, WorkerReply, WorkerRequest } from './protocol.js';
import { THREAD_NAMES, nameThread } from './thread-name.js';

// Before any session exists: onnxruntime's threads take the name with them.
nameThread(THREAD_NAMES.inference);
const init = workerData as WorkerInit;
/** Loaded models by id: the runtime (absent for a model that failed), the stamp of its files, its status. */
let loaded = new Map<string, { rt?: ModelRuntime; stamp: string; status: ModelStatus }>();
/**
 * Versions a reload replaced or removed, by model id and version: they keep serving the jobs planned
 * against them (the HTTP thread checked those requests against that version's layers, classes and input
 * size) until the pool says no job can name them any more (`drop`).
 */
const superseded = new Map<string, Map<string, ModelRuntime>>();
/** Graph facts of each runtime (a new version is a new runtime). */
const facts = new WeakMap<ModelRuntime, ModelFacts>();
/** The running job's cancel switch (one job at a time). */
const running = new Map<number, AbortController>();
/** Runtimes dropped, released once no job runs. */
const retired: ModelRuntime[] = [];

/** The version of a model's files: a short digest of their stamp (every worker computes the same). */
function versionOf(stamp: string): string {
  return createHash('sha256').update(stamp).digest('hex').slice(0, 16);
}

/**
 * onnxruntime's intra-op threads do not busy-wait here: after every run a spinning pool keeps a core busy
 * for milliseconds, which the render thread, the HTTP thread, the other workers and the other models'
 * sessions need. Measured on 2 cores (bench/RESULTS.md): ResNet-50 overlays took 60 ms end to end
 * without spinning and 66 ms with it (the render slowed from 15 to 20 ms), 17.0 against 18.8 answers/s.
 */
const SPINNING = false;

/** Loads and warms one model; a failure is its status. */
async function loadOne({ id, dir, stamp }: ModelEntry): Promise<{ rt?: ModelRuntime; status: ModelStatus }> {
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
    return { rt, status: { id, ok: true, info: { ...rt.info, version: versionOf(stamp) }, ...(warning ? { warning } : {}) } };
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
  for (const [id, m] of loaded) {
    if (!m.rt || serving.has(m.rt) || !m.status.ok) continue;
    const versions = superseded.get(id) ?? new Map<string, ModelRuntime>();
    versions.set(m.status.info.version!, m.rt);
    superseded.set(id, versions);
  }
  loaded = next;
  return { statuses: [...loaded.values()].map((m) => m.status), changes };
}

/** A superseded version no job names any more: its sessions are released once no job runs. */
function drop(model: string, version: string): void {
  const versions = superseded.get(model);
  const rt = versions?.get(version);
  if (!versions || !rt) return;
  versions.delete(version);
  if (versions.size === 0) superseded.delete(model);
  retired.push(rt);
  releaseRetired();
}

/** Frees replaced runtimes once no job holds one. */
function releaseRetired(): void {
  if (running.size > 0 || retired.length === 0) return;
  for (const rt of retired.splice(0)) void rt.release().catch(() => undefined);
}

/**
 * The runtime of `model` at `version` (the one its job was planned against; none: the current one). A
 * version this worker no longer has — a worker started after the reload, or a plan older than the pool
 * keeps versions — is `model-changed`: the client sends the request again.
 */
function runtime(model: string, version?: string): ModelRuntime {
  const current = loaded.get(model);
  if (version === undefined || (current?.status.ok && current.status.info.version === version)) {
    if (!current?.rt) throw new CamserveError('model-unavailable', `model ${model} is not loaded`, { model });
    return current.rt;
  }
  const old = superseded.get(model)?.get(version);
  if (old) return old;
  throw new CamserveError('model-changed', `model ${model} was replaced while this request was being prepared; send it again`, { model });
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

async function explain(rt: ModelRuntime, req: ExplainRequest, signal: AbortSignal, progress?: (done: number, total: number) => void): Promise<ExplainResult> {
  // Metrics run here, on this worker's sessions: the engine hands src/metrics' evaluator its batched runs.
  const r = await rt.explain(req, {
    signal, progress,
    evaluateMetrics: (spec, subject) => evaluateMetrics({ ...spec, names: spec.names.filter(isMetricName) as MetricName[] }, subject),
  });
  // Results may share buffers with onnxruntime's outputs; copy the logits so they can be transferred.
  return { ...r, logits: Float32Array.from(r.logits) };
}

function factsOf(model: string, version?: string): ModelFacts {
  const rt = runtime(model, version);
  let f = facts.get(rt);
  if (!f) {
    f = modelFacts(rt);
    facts.set(rt, f);
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
        const result = await explain(runtime(msg.model, msg.version), msg.req, ac.signal, progress);
        return { msg: { type: 'result', job: msg.job, result }, transfer: explainTransferables(result) };
      });
      return;
    }
    case 'explain-batch': {
      const ac = new AbortController();
      running.set(msg.job, ac);
      void run(msg.job, async () => {
        const results = (await runtime(msg.model, msg.version).explainBatch(msg.reqs, { signal: ac.signal, maxBatch: msg.maxBatch }))
          .map((r) => ({ ...r, logits: Float32Array.from(r.logits) }));
        return { msg: { type: 'results', job: msg.job, results }, transfer: [...new Set(results.flatMap(explainTransferables))] };
      });
      return;
    }
    case 'tensors':
      running.set(msg.job, new AbortController());
      void run(msg.job, async () => {
        const result = await runtime(msg.model, msg.version).tensors(msg.req);
        return { msg: { type: 'tensors', job: msg.job, result }, transfer: tensorTransferables(result) };
      });
      return;
    case 'facts':
      void run(msg.job, async () => ({ msg: { type: 'facts', job: msg.job, result: factsOf(msg.model, msg.version) } }));
      return;
    case 'cancel':
      running.get(msg.job)?.abort();
      return;
    case 'reload':
      void reload(msg.models).then((r) => reply({ type: 'reloaded', reload: msg.reload, ...r }));
      return;
    case 'drop':
      drop(msg.model, msg.version);
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
  const runtimes = [...loaded.values()].flatMap((m) => (m.rt ? [m.rt] : []))
    .concat([...superseded.values()].flatMap((v) => [...v.values()]), retired);
  await Promise.all(runtimes.map((r) => r.release())).catch(() => undefined);
  process.exit(0);
}

void load().then((statuses) => reply({ type: 'ready', statuses }));
