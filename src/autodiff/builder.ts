// Reverse-mode differentiation of an ONNX graph into extra ONNX nodes: the gradient of
// L = Σ seed·output with respect to chosen tensors, appended to the model as a patch.
import { type AttrValue, DataType, floatTensor, type GraphProto, int64Tensor, makeNode, makeValueInfo, type NodeProto, nodesOnPath, type OnnxModel, type TensorInfo, type TensorProto } from '../onnx/index.js';
import { RULES } from './rules/index.js';
import { GradientError, type VjpContext } from './context.js';

export interface GradientSpec {
  /** Tensors to differentiate with respect to (target layers, or a graph input). */
  targets: readonly string[];
  /** The differentiated output (the logits). */
  output: string;
  /**
   * One seed per run (see VjpContext.perSeed): for paths whose tensors do not keep a batch of 1 in axis 0.
   * The seed input then takes one row, and K classes need K runs.
   */
  perSeed?: boolean;
  /**
   * How Relu nodes pass gradients back: `plain` (dx = dy where x > 0) or `guided` (Springenberg et al.'s
   * guided backpropagation: dx = dy where x > 0 and dy > 0). Guided applies to every Relu node of the path.
   */
  relu?: 'plain' | 'guided';
  /** Prefix of the names the patch adds (default `camserve/`): a second patch on a patched model needs its own. */
  prefix?: string;
}

export interface GradientPatch {
  /** Nodes, initializers, the seed input and the extra outputs, to append to the model. */
  patch: GraphProto;
  /** Name of the seed input, shape [K, ...output dims without batch]. */
  seed: string;
  /** target tensor → name of its gradient output ([K, ...target dims without batch]). */
  gradients: Record<string, string>;
  /** Forward nodes the backward pass goes through (for reports and graph views). */
  pathNodes: number[];
}

const DEFAULT_PREFIX = 'camserve/';
/** Constant inputs at most this large are read eagerly so rules can use their values. */
const SMALL_CONSTANT = 4096;

class Emitter {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private counter = 0;
  constructor(readonly prefix: string) {}

  fresh(hint: string): string {
    return `${this.prefix}${hint}_${this.counter++}`;
  }
}

/**
 * Builds the backward pass of `spec.output` with respect to `spec.targets` as standard ONNX nodes.
 * `shapes` holds the static forward shape of every tensor (see probeShapes).
 */
export async function buildGradientPatch(model: OnnxModel, shapes: ReadonlyMap<string, TensorInfo>, spec: GradientSpec): Promise<GradientPatch> {
  const opset = model.opset;
  const floating = (t: string) => /float/.test(shapes.get(t)?.type ?? 'float32');
  const pathNodes = nodesOnPath(model, spec.targets, spec.output, floating);
  const outShape = shapes.get(spec.output)?.dims;
  if (!outShape) throw new GradientError(`output tensor "${spec.output}" is not in the model`);
  for (const t of spec.targets) {
    if (!shapes.has(t)) throw new GradientError(`tensor "${t}" is not in the model`);
  }

  // Tensors that carry a gradient: the targets and every floating-point output of a path node.
  const active = new Set<string>(spec.targets);
  for (const i of pathNodes) for (const o of model.nodes[i].output) if (o && floating(o)) active.add(o);

  // Small constant inputs of path nodes, read once so that rules stay synchronous and pure.
  const constants = new Map<string, number[]>();
  for (const i of pathNodes) {
    for (const t of model.nodes[i].input) {
      if (!t || constants.has(t) || !model.isConstant(t)) continue;
      const dims = shapes.get(t)?.dims ?? [];
      if (dims.reduce((a, b) => a * b, 1) > SMALL_CONSTANT) continue;
      const v = await model.constantValue(t);
      if (v) constants.set(t, Array.from(v.data as ArrayLike<number | bigint>, (x) => Number(x)));
    }
  }

  const prefix = spec.prefix ?? DEFAULT_PREFIX;
  const em = new Emitter(prefix);
  const contributions = new Map<string, string[]>();
  const addGrad = (tensor: string, g: string) => {
    const list = contributions.get(tensor);
    if (list) list.push(g); else contributions.set(tensor, [g]);
  };
  const gradOf = (tensor: string): string | undefined => {
    const list = contributions.get(tensor);
    if (!list || list.length === 0) return undefined;
    if (list.length === 1) return list[0];
    const sum = em.fresh('sum');
    em.nodes.push(makeNode('Sum', list, [sum]));
    contributions.set(tensor, [sum]);
    return sum;
  };

  const seed = `${prefix}seed`;
  addGrad(spec.output, seed);

  for (let p = pathNodes.length - 1; p >= 0; p--) {
    const node = model.nodes[pathNodes[p]];
    const label = model.nodeLabel(node);
    const dOut = node.output.map((o) => (o && active.has(o) ? gradOf(o) : undefined));
    if (dOut.every((g) => g === undefined)) continue;
    const domain = node.domain ?? '';
    const rule = domain === '' || domain === 'ai.onnx' ? RULES[node.op_type] : undefined;
    if (!rule) {
      throw new GradientError(`cannot differentiate ${label}: no gradient rule for op type ${domain ? `${domain}.` : ''}${node.op_type} (on the path from the target layer to the logits)`, { op: node.op_type, node: node.name || node.output[0] });
    }
    const ctx: VjpContext = {
      node,
      opset,
      perSeed: spec.perSeed === true,
      relu: spec.relu ?? 'plain',
      shape(name) {
        const s = shapes.get(name);
        if (!s) throw new GradientError(`${label}: shape of tensor "${name}" is unknown`);
        return s.dims;
      },
      needs: (i) => !!node.input[i] && active.has(node.input[i]) && !model.isConstant(node.input[i]),
      constant: (name) => constants.get(name),
      requireConstant(name, what) {
        const v = constants.get(name);
        if (!v) throw new GradientError(`cannot differentiate ${label}: its ${what} ("${name}") must be a constant`);
        return v;
      },
      emit(opType, inputs, attrs: Record<string, AttrValue | undefined> = {}, outputs: number | readonly string[] = 1) {
        const names = typeof outputs === 'number' ? Array.from({ length: outputs }, () => em.fresh(opType)) : [...outputs];
        em.nodes.push(makeNode(opType, inputs, names, attrs));
        return names;
      },
      op(opType, inputs, attrs = {}) {
        return this.emit(opType, inputs, attrs, 1)[0];
      },
      constF(values, dims) {
        const name = em.fresh('c');
        em.initializers.push(floatTensor(name, dims ?? [values.length], values));
        return name;
      },
      constI(values, dims) {
        const name = em.fresh('c');
        em.initializers.push(int64Tensor(name, dims ?? [values.length], values));
        return name;
      },
      fail(why) {
        throw new GradientError(`cannot differentiate ${label}: ${why}`, { op: node.op_type, node: node.name || node.output[0] });
      },
    };
    for (const t of spec.perSeed ? [] : node.input) {
      if (t && active.has(t)) {
        const d = shapes.get(t)?.dims;
        if (d && d[0] !== 1) {
          // Name the producer too: it is usually the node that moved or merged the batch axis.
          const p = model.producer.get(t);
          const from = p !== undefined ? `, the output of ${model.nodeLabel(model.nodes[p])},` : '';
          ctx.fail(`tensor "${t}"${from} on the path must have batch 1 in axis 0 (dims [${d.join(', ')}])`);
        }
      }
    }
    const dIn = rule(ctx, dOut);
    node.input.forEach((t, i) => {
      const g = dIn[i];
      if (g !== undefined && t && ctx.needs(i)) addGrad(t, g);
    });
  }

  const gradients: Record<string, string> = {};
  const outputs = [];
  for (const t of spec.targets) {
    const g = gradOf(t);
    if (!g) {
      // The path may leave floating point (a quantized model run as it is): name the node where it does.
      const stop = nodesOnPath(model, [t], spec.output).map((i) => model.nodes[i])
        .find((n) => n.input.some((i) => i && active.has(i)) && !n.output.some((o) => o && floating(o)));
      if (stop) {
        throw new GradientError(`cannot differentiate ${model.nodeLabel(stop)}: its outputs are not floating point (integer arithmetic has no gradient), and the path from "${t}" to "${spec.output}" goes through it`, { op: stop.op_type, node: stop.name || stop.output[0] });
      }
      throw new GradientError(`tensor "${t}" does not lead to the output "${spec.output}": no gradient flows to it`);
    }
    const name = `${prefix}grad/${t}`;
    em.nodes.push(makeNode('Identity', [g], [name]));
    gradients[t] = name;
    outputs.push({ name });
  }
  const seedDims: (number | string)[] = ['K', ...outShape.slice(1)];
  return {
    patch: {
      node: em.nodes,
      initializer: em.initializers,
      input: [makeValueInfo(seed, DataType.FLOAT, seedDims)],
      output: outputs,
    },
    seed,
    gradients,
    pathNodes,
  };
}
