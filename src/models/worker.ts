// An inference worker thread: loads every model once (its own onnxruntime sessions), warms it up,
// then answers explain jobs one at a time. The HTTP thread never runs inference.
import { parentPort, workerData } from 'node:worker_threads';
import { ModelRuntime, type ExplainRequest, type ExplainResult } from './runtime.js';
import type { ModelStatus, WorkerInit, WorkerReply, WorkerRequest } from './protocol.js';

const init = workerData as WorkerInit;
const runtimes = new Map<string, ModelRuntime>();

async function load(): Promise<ModelStatus[]> {
  const statuses: ModelStatus[] = [];
  for (const { id, dir } of init.models) {
    try {
      const rt = await ModelRuntime.load(dir, { id, intraOpThreads: init.intraOpThreads, batchSize: init.batchSize });
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

const port = parentPort!;
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
  } else if (msg.type === 'shutdown') {
    void Promise.all([...runtimes.values()].map((r) => r.release())).finally(() => process.exit(0));
  }
});

void load().then((statuses) => {
  const reply: WorkerReply = { type: 'ready', statuses };
  port.postMessage(reply);
});
