// Models exported with a fixed batch (an old export's 64×1×28×28 input; a torch.onnx export without
// dynamic_axes, batch 1): the batch dimension made symbolic where the graph allows it, checked by running;
// otherwise, for a batch larger than one, a wrapper that runs the image as row 0 of a zero batch, and for
// batch 1 the model as it is (one image per run). Written once here for every user (explanations,
// batched Score-CAM runs).
import * as ort from 'onnxruntime-node';
import Long from 'long';
import { int64Tensor, ints, makeNode } from './builder.js';
import { attrInt, type OnnxModel } from './model.js';
import { DataType, encodeModel, toInt, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.js';
import { createSession, probeShapes, type SessionOptions } from './session.js';
import { spliceModel } from './splice.js';

export type BatchMode = 'dynamic' | 'one' | 'symbolic' | 'symbolic-one' | 'zero-batch';

export interface BatchHandling {
  mode: BatchMode;
  /** the model's fixed batch (for symbolic, symbolic-one and zero-batch) */
  size?: number;
  /** the rewritten model (symbolic, symbolic-one, zero-batch) */
  bytes?: Uint8Array;
  /** what was changed, or why the batch could not be made symbolic */
  note: string;
  /** the op and node that kept the batch fixed (zero-batch) */
  blockedBy?: { op: string; node: string };
}

/** The batch size a model's input fixes (undefined when symbolic). */
export function fixedBatch(model: OnnxModel): number | undefined {
  const d = model.inputs[0]?.dims?.[0];
  return typeof d === 'number' && d > 0 ? d : undefined;
}

function withBatch(v: ValueInfoProto, batch: number | string): ValueInfoProto {
  const t = v.type?.tensor_type;
  const dim = t?.shape?.dim;
  if (!dim?.length) return v;
  const first = typeof batch === 'string' ? { dim_param: batch } : { dim_value: Long.fromNumber(batch) };
  return { name: v.name, type: { tensor_type: { ...t, shape: { dim: [first, ...dim.slice(1)] } } } };
}

/** Names of the tensors computed from the model's (first) input. */
function fromInput(model: OnnxModel): Set<string> {
  const seen = new Set<string>([model.inputs[0].name]);
  for (const n of model.nodes) if (n.input.some((t) => t && seen.has(t))) for (const o of n.output) if (o) seen.add(o);
  return seen;
}

/**
 * The rewrite: input and outputs get batch `batch` (a symbol or 1), and every Reshape whose constant target
 * shape starts with the fixed batch copies the batch instead (0, or −1 when the shape has no −1). With a
 * fixed batch of 1 only Reshapes of tensors computed from the input count (a leading 1 of a constant's
 * shape, a bias made [1, C, 1, 1], is not the batch).
 */
async function rewrite(model: OnnxModel, size: number, batch: number | string): Promise<{ bytes: Uint8Array; reshapes: number }> {
  const nodes: (number | NodeProto)[] = [];
  const added: TensorProto[] = [];
  const batched = size === 1 ? fromInput(model) : undefined;
  let reshapes = 0;
  for (let i = 0; i < model.nodes.length; i++) {
    const n = model.nodes[i];
    if (n.op_type === 'Reshape' && n.input[1] && model.isConstant(n.input[1]) && (!batched || batched.has(n.input[0]))) {
      const shape = await model.constantNumbers(n.input[1], 'Reshape shape');
      // allowzero = 1: a 0 would be a zero-sized axis, not a copy of the batch.
      if (shape[0] === size && !(shape.includes(-1) && attrInt(n, 'allowzero', 0) === 1)) {
        const fixed = [shape.includes(-1) ? 0 : -1, ...shape.slice(1)];
        const name = `camserve/batch/${n.input[1]}_${i}`;
        added.push(int64Tensor(name, [fixed.length], fixed));
        nodes.push({ ...n, input: [n.input[0], name, ...n.input.slice(2)] });
        reshapes++;
        continue;
      }
    }
    nodes.push(i);
  }
  const inputs = model.graph.input.map((v) => (model.initializers.has(v.name) ? v : withBatch(v, batch)));
  const outputs = model.graph.output.map((v) => {
    const d = v.type?.tensor_type?.shape?.dim?.[0];
    return d && d.dim_value !== undefined && d.dim_value !== null && toInt(d.dim_value) === size ? withBatch(v, batch) : v;
  });
  return { bytes: spliceModel(model.bytes, { nodes, addInitializers: added, inputs, outputs }), reshapes };
}

/** Model bytes with a patch appended (protobuf merges the graphs: see OnnxModel.withPatch). */
function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function randomInput(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  });
}

function close(a: Float32Array, b: Float32Array): boolean {
  let scale = 1e-6;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
  }
  return a.length === b.length && diff <= 1e-4 * scale;
}

/** onnxruntime's message without its source location and function: "Non concat axis dimensions must match: …". */
function reason(message: string): string {
  const line = message.split('\n')[0];
  const m = /Status Message: (?:\S+:\d+ )?(?:\S+\([^)]*\) |\S+ )?(.*)$/.exec(line);
  return m ? m[1] : line;
}

/** op and node from onnxruntime's message ("… running Reshape node. Name:'/Reshape' …"). */
function blockingNode(message: string): { op: string; node: string } | undefined {
  const m = /running (\w+) node\. Name:'([^']*)'/.exec(message) ?? /node (\S+) \(([^)]*)\)/.exec(message);
  return m ? { op: m[1], node: m[2] } : undefined;
}

/**
 * How to run `model`, whose input is [size, ...rest]. With size > 1: its output row 0 for an image in row 0
 * of an otherwise zero batch is the reference; the rewrite must reproduce it with batch 1 (and, to be
 * symbolic, each row of a batch of 2). With size 1: each of two inputs run alone is the reference; the
 * rewrite must reproduce it alone and both as the rows of a batch of 2 (rows independent), else the model
 * stays as it is ('one', the reason in the note). `output` is the tensor compared (the logits).
 */
export async function handleFixedBatch(model: OnnxModel, rest: number[], output: string, opts: SessionOptions = {}): Promise<BatchHandling> {
  const size = fixedBatch(model);
  if (size === undefined) return { mode: 'dynamic', note: 'the input batch is symbolic' };
  const input = model.inputs[0];
  if (input.elemType !== DataType.FLOAT) return { mode: 'one', size, note: size > 1 ? 'not a float input' : 'the input batch is 1 (not a float input)' };
  const per = rest.reduce((a, b) => a * b, 1);
  const x0 = randomInput(per, 1);
  const x1 = randomInput(per, 2);
  // One session per model tried, its runs given rows of the batch.
  // The compared tensor (the logits before a final Softmax, say) fetched as an extra output where it is not one.
  const extra = model.outputs.some((o) => o.name === output) ? undefined : encodeModel({ graph: { output: [{ name: output }] } });
  const open = async (bytes: Uint8Array): Promise<BatchSession> => {
    const { session, release } = await createSession(model, extra ? concat(bytes, extra) : bytes, { ...opts, graphOptimization: 'basic' });
    return {
      release,
      async run(rows, batch) {
        const data = new Float32Array(batch * per);
        rows.forEach((r, k) => data.set(r, k * per));
        // A rewrite that fails is an answer here, not an error to log (4: fatal only).
        const out = await session.run({ [input.name]: new ort.Tensor('float32', data, [batch, ...rest]) }, [output], { logSeverityLevel: 4 });
        const y = out[output];
        if (y.dims[0] !== batch) throw new Error(`output "${output}" has batch ${y.dims[0]}, not ${batch}`);
        const w = y.data.length / batch;
        return rows.map((_, k) => Float32Array.from((y.data as Float32Array).subarray(k * w, (k + 1) * w)));
      },
    };
  };
  const run = async (bytes: Uint8Array, rows: Float32Array[], batch: number): Promise<Float32Array[]> => {
    const s = await open(bytes);
    try {
      return await s.run(rows, batch);
    } finally {
      await s.release();
    }
  };
  if (size === 1) return await symbolicOne(model, output, x0, x1, open);
  const reference = await run(model.bytes, [x0, x1], size);
  let failure = '';
  let blockedBy: { op: string; node: string } | undefined;
  for (const batch of ['N', 1] as const) {
    const r = await rewrite(model, size, batch);
    try {
      const one = await run(r.bytes, [x0], 1);
      if (!close(one[0], reference[0])) throw new Error(`with batch 1 the output "${output}" differs from row 0 of the fixed batch`);
      if (batch === 'N') {
        const two = await run(r.bytes, [x0, x1], 2);
        if (!close(two[0], reference[0]) || !close(two[1], reference[1])) throw new Error(`with batch 2 the rows of "${output}" differ from the fixed batch's`);
      }
      const what = `${r.reshapes} Reshape target shape${r.reshapes === 1 ? '' : 's'} made to copy the batch`;
      return {
        mode: batch === 'N' ? 'symbolic' : 'symbolic-one', size, bytes: r.bytes,
        note: batch === 'N'
          ? `the fixed batch of ${size} was made symbolic (${what})`
          : `the fixed batch of ${size} was made 1 (${what}); batches of several images do not reproduce the fixed batch's rows`,
      };
    } catch (e) {
      const msg = (e as Error).message;
      blockedBy ??= blockingNode(msg);
      failure ||= msg.split('\n')[0];
    }
  }
  blockedBy ??= await batchFolder(model, size, rest, opts);
  return {
    mode: 'zero-batch', size, bytes: zeroBatchWrapper(model, size, rest.length + 1), blockedBy,
    note: `the fixed batch of ${size} cannot be made symbolic (${blockedBy ? `${blockedBy.op} node "${blockedBy.node}": ` : ''}${failure}); the image runs as row 0 of a zero batch`,
  };
}

interface BatchSession {
  run(rows: Float32Array[], batch: number): Promise<Float32Array[]>;
  release(): Promise<void>;
}

/**
 * A fixed batch of 1 (a torch.onnx export without dynamic_axes) made symbolic when the rewrite gives, for
 * each of two inputs, the model's own output alone and as a row of a batch of 2; else the model as it is,
 * run one image at a time ('one'), the reason in the note.
 */
async function symbolicOne(model: OnnxModel, output: string, x0: Float32Array, x1: Float32Array, open: (bytes: Uint8Array) => Promise<BatchSession>): Promise<BatchHandling> {
  const original = await open(model.bytes);
  let ref0: Float32Array, ref1: Float32Array;
  try {
    [ref0] = await original.run([x0], 1);
    [ref1] = await original.run([x1], 1);
  } finally {
    await original.release();
  }
  const r = await rewrite(model, 1, 'N');
  try {
    const s = await open(r.bytes);
    try {
      const [one] = await s.run([x0], 1);
      if (!close(one, ref0)) throw new Error(`with batch 1 the output "${output}" differs from the model's`);
      const two = await s.run([x0, x1], 2);
      if (!close(two[0], ref0) || !close(two[1], ref1)) throw new Error(`with batch 2 the rows of "${output}" differ from each input run alone`);
    } finally {
      await s.release();
    }
  } catch (e) {
    const msg = (e as Error).message;
    const at = blockingNode(msg);
    return {
      mode: 'one', size: 1, ...(at ? { blockedBy: at } : {}),
      note: `the input batch is 1 and cannot be made symbolic (${at ? `${at.op} node "${at.node}": ` : ''}${reason(msg)}); runs go one image at a time`,
    };
  }
  const what = r.reshapes ? `; ${r.reshapes} Reshape target shape${r.reshapes === 1 ? '' : 's'} made to copy the batch` : '';
  return { mode: 'symbolic', size: 1, bytes: r.bytes, note: `the fixed batch of 1 was made symbolic (batched runs checked row by row${what})` };
}

/**
 * The first node that folds the batch into another axis or spreads it (an input with the fixed batch in
 * axis 0, an output without it), found by a probe run at the fixed batch.
 */
async function batchFolder(model: OnnxModel, size: number, rest: number[], opts: SessionOptions): Promise<{ op: string; node: string } | undefined> {
  const input = model.inputs[0];
  const shapes = await probeShapes(model, { [input.name]: new ort.Tensor('float32', new Float32Array(size * rest.reduce((a, b) => a * b, 1)), [size, ...rest]) }, opts);
  for (const n of model.nodes) {
    const batched = n.input.some((t) => t && !model.isConstant(t) && shapes.get(t)?.dims[0] === size && /float/.test(shapes.get(t)?.type ?? ''));
    if (!batched) continue;
    const out = n.output.map((o) => shapes.get(o)).filter((s) => s && /float/.test(s.type));
    if (out.some((s) => s!.dims.length > 0 && s!.dims[0] !== size)) return { op: n.op_type, node: n.name || n.output[0] };
  }
  return undefined;
}

/** The wrapper: a batch-1 input padded with zero rows to the model's fixed batch. */
function zeroBatchWrapper(model: OnnxModel, size: number, rank: number): Uint8Array {
  const input = model.inputs[0];
  const outer = `camserve/batch1/${input.name}`;
  const pads = Array<number>(2 * rank).fill(0);
  pads[rank] = size - 1;
  const init: TensorProto[] = [];
  let pad: NodeProto;
  if (model.opset >= 11) {
    init.push(int64Tensor('camserve/batch1/pads', [pads.length], pads));
    pad = makeNode('Pad', [outer, 'camserve/batch1/pads'], [input.name], {}, 'camserve/batch1/pad');
  } else {
    pad = makeNode('Pad', [outer], [input.name], { pads: ints(pads) }, 'camserve/batch1/pad');
  }
  const v = model.graph.input.find((i) => i.name === input.name)!;
  const inputs = model.graph.input.map((i) => (i === v ? { ...withBatch(v, 1), name: outer } : i));
  return spliceModel(model.bytes, { nodes: [pad, ...model.nodes.map((_, i) => i)], addInitializers: init, inputs });
}
