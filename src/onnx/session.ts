// onnxruntime-node sessions over (patched) model bytes, with external weight files resolved beside them,
// and the probe run that learns every intermediate tensor's shape.
import * as ort from 'onnxruntime-node';
import { ModelError } from '../errors/index.js';
import type { OnnxModel } from './model.js';
import { DataType, toInt } from './proto.js';

export interface SessionOptions {
  intraOpThreads?: number;
  graphOptimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** let idle intra-op threads busy-wait for the next parallel section (onnxruntime's default: true) */
  spinning?: boolean;
}

/**
 * onnxruntime options of every camserve session (exported so that benchmarks can create a bare session
 * with the same). Intra-op threads spin (busy-wait for the next parallel section, onnxruntime's default)
 * unless `spinning` is false: spinning is fastest for back-to-back runs of one session, but a spinning
 * pool takes a core from whatever runs next on the machine for milliseconds; measured on 2 cores, a
 * ResNet-50 forward right after another spinning session's run took 60 ms instead of 30.
 */
export function ortSessionOptions(o: SessionOptions = {}): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: o.graphOptimization ?? 'all',
    intraOpNumThreads: o.intraOpThreads ?? 0,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    enableCpuMemArena: true,
    logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: o.spinning === false ? '0' : '1' }, inter_op: { allow_spinning: '0' } } },
  };
}

/** A session plus a disposer for the temporary folder it may have needed. */
export interface OwnedSession {
  session: ort.InferenceSession;
  release(): Promise<void>;
}

/**
 * Creates a session for `bytes` (the model's own bytes, or a patched copy). External weight files are
 * read once per model and handed to onnxruntime in memory (onnxruntime would otherwise resolve them
 * relative to a model file, which patched bytes do not have).
 */
export async function createSession(model: OnnxModel, bytes: Uint8Array, opts: SessionOptions = {}): Promise<OwnedSession> {
  try {
    const options = ortSessionOptions(opts);
    if (model.externalFiles.length > 0) options.externalData = await model.externalData();
    const session = await ort.InferenceSession.create(bytes, options);
    return { session, release: async () => { await session.release(); } };
  } catch (e) {
    if (e instanceof ModelError) throw e;
    throw new ModelError(`onnxruntime cannot load ${model.file}: ${(e as Error).message}`);
  }
}

export interface TensorInfo { dims: number[]; type: ort.Tensor.Type }

/** Integer tensors up to this many elements keep their probed values (shape arithmetic). */
const SMALL_INTEGERS = 4096;

/**
 * Runs the model once on zeros with every node output listed as a graph output, and returns the
 * static shape and element type of each tensor for that input shape (a probe run). With `values`, the
 * values of small integer tensors are kept there too (what shape arithmetic computes for this input size).
 */
export async function probeShapes(model: OnnxModel, feeds: Record<string, ort.Tensor>, opts: SessionOptions = {}, values?: Map<string, number[]>): Promise<Map<string, TensorInfo>> {
  const existing = new Set(model.graph.output.map((o) => o.name));
  const names: string[] = [];
  for (const n of model.nodes) for (const o of n.output) if (o && !existing.has(o)) names.push(o);
  const patched = model.withPatch({ output: names.map((name) => ({ name })) });
  const { session, release } = await createSession(model, patched, { ...opts, graphOptimization: 'disabled' });
  try {
    const out = await session.run(feeds);
    const shapes = new Map<string, TensorInfo>();
    for (const [k, v] of Object.entries(out)) {
      shapes.set(k, { dims: [...v.dims], type: v.type });
      if (values && (v.type === 'int64' || v.type === 'int32') && v.size <= SMALL_INTEGERS) values.set(k, Array.from(v.data as ArrayLike<number | bigint>, Number));
    }
    for (const [k, v] of Object.entries(feeds)) shapes.set(k, { dims: [...v.dims], type: v.type });
    for (const [k, t] of model.initializers) {
      shapes.set(k, { dims: (t.dims ?? []).map(toInt), type: t.data_type === DataType.INT64 ? 'int64' : 'float32' });
    }
    return shapes;
  } finally {
    await release();
  }
}
