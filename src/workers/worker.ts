// An inference worker thread: loads every model once (its own onnxruntime sessions), warms it up,
// then answers jobs one at a time: explanations, and the inspection jobs (tensors of an input, graph
// facts of a model). The HTTP thread never runs inference.
import { parentPort, workerData } from 'node:worker_threads';
import { modelFacts, type ModelFacts } from '../inspect/facts.js';
import { TensorProbe, tensorTransferables, type TensorsRequest, type TensorsResult } from '../inspect/tensors.js';
import { ModelRuntime, type ExplainRequest, type ExplainResult } from '../engine/runtime.js';
import type { ModelStatus, WorkerInit, WorkerReply, WorkerRequest } from './protocol.js';

const init = workerData as WorkerInit;
const runtimes = new Map<string, ModelRuntime>();

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

function transferables(r: ExplainResult): ArrayBuffer[] {
  const list = new Set<ArrayBuffer>([r.logits.buffer as ArrayBuffer]);
  for (const e of r.explanations) {
    list.add(e.map.data.buffer as ArrayBuffer);
    for (const l of e.layers) list.add(l.map.data.buffer as ArrayBuffer);
  }
  return [...list];
}

async function explain(model: string, req: ExplainRequest): Promise<ExplainResult> {
  const rt = runtimes.get(model);
  if (!rt) throw Object.assign(new Error(`model ${model} is not loaded`), { name: 'ModelError' });
  const r = await rt.explain(req);
  // Results may share buffers with onnxruntime's outputs; copy the logits so they can be transferred.
  return { ...r, logits: Float32Array.from(r.logits) };
}

// Inspection jobs: tensors of one input (activations, gradients), and the graph facts (computed once).
const facts = new Map<string, ModelFacts>();

function runtime(model: string): ModelRuntime {
  const rt = runtimes.get(model);
  if (!rt) throw Object.assign(new Error(`model ${model} is not loaded`), { name: 'ModelError' });
  return rt;
}

function tensors(model: string, req: TensorsRequest): Promise<TensorsResult> {
  return new TensorProbe(runtime(model)).run(req);
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

function replyError(job: number, e: Error): void {
  const reply: WorkerReply = { type: 'error', job, error: { name: e.name, message: e.message } };
  port.postMessage(reply);
}

port.on('message', (msg: WorkerRequest) => {
  if (msg.type === 'explain') {
    explain(msg.model, msg.req).then(
      (result) => {
        const reply: WorkerReply = { type: 'result', job: msg.job, result };
        port.postMessage(reply, transferables(result));
      },
      (e: Error) => {
        const reply: WorkerReply = { type: 'error', job: msg.job, error: { name: e.name, message: e.message } };
        port.postMessage(reply);
      },
    );
  } else if (msg.type === 'tensors') {
    tensors(msg.model, msg.req).then(
      (result) => {
        const reply: WorkerReply = { type: 'tensors', job: msg.job, result };
        port.postMessage(reply, tensorTransferables(result));
      },
      (e: Error) => replyError(msg.job, e),
    );
  } else if (msg.type === 'facts') {
    try {
      const reply: WorkerReply = { type: 'facts', job: msg.job, result: factsOf(msg.model) };
      port.postMessage(reply);
    } catch (e) {
      replyError(msg.job, e as Error);
    }
  } else if (msg.type === 'shutdown') {
    void Promise.all([...runtimes.values()].map((r) => r.release())).finally(() => process.exit(0));
  }
});

void load().then((statuses) => {
  const reply: WorkerReply = { type: 'ready', statuses };
  port.postMessage(reply);
});
