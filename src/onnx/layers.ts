// Which tensors can be explained, which one is explained by default, and why: the layer rule.
//
//   1. Feature maps are channels-first 4-D float tensors [1, C, h, w] with h·w > 1 that the logits depend
//      on. Token maps of transformers after the last convolutional map are candidates too: [1, T, C]
//      (ViT, DeiT: a grid of h×w patch tokens after `prefix` class/distillation/register tokens) and
//      channels-last [1, H, W, C] (Swin), offered through a view that reshapes them to [1, C, h, w] as
//      pytorch-grad-cam's reshape_transform does. Only their LayerNorm and residual-sum outputs are offered.
//   2. Default, transformers: the last LayerNorm that feeds a block's linear layers and whose grid tokens
//      reach the logits (ViT's last block's first LayerNorm: after it, only the class token reaches the
//      head; Swin's last block's second LayerNorm: all tokens are pooled).
//   3. Default, CNNs: the last map produced by a feature op (not pooling or moving values) — the last map
//      before global pooling — but the activation before a trailing BatchNormalization, and a 2-D map
//      before a strip (one spatial side 1, as in text-line models) when there is one.
import { attrInt, attrInts, type OnnxModel } from './model.js';
import type { NodeProto } from './proto.js';
import type { TensorInfo } from './session.js';
import { ancestorsOf, nodesOnPath } from './graph.js';

/** Ops that only pool or move values: a map they produce is not preferred as the default layer. */
export const NOT_A_FEATURE = new Set(['MaxPool', 'AveragePool', 'Pad', 'Reshape', 'Transpose', 'Identity', 'Dropout', 'Slice', 'QuantizeLinear', 'DequantizeLinear']);
const NORMS = new Set(['BatchNormalization', 'InstanceNormalization', 'LayerNormalization', 'GroupNormalization', 'LRN']);
const ACTIVATIONS = new Set(['Relu', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'Celu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Mul', 'Gelu', 'Softplus', 'Mish', 'ThresholdedRelu']);
/** Ops that move values without mixing positions (a LayerNorm output reaches its block's linear layer through them). */
const MOVES = new Set(['Transpose', 'Reshape', 'Identity', 'Dropout', 'Squeeze', 'Unsqueeze', 'Flatten', 'Cast']);

export type ViewKind = 'tokens' | 'channels-last' | 'plain' | 'dequantized';

/** How a candidate's map is made from the model's tensor. */
export interface ViewSpec {
  kind: ViewKind;
  /** the model's tensor */
  source: string;
  /** dims of the source tensor */
  sourceDims: number[];
  /** tokens before the grid (class, distillation, register tokens) */
  prefix?: number;
  /** the token grid [h, w] */
  grid?: [number, number];
  /** the model runs a fixed batch of this many rows; the image is row 0 */
  rows?: number;
  /** a quantized map: its scale and zero point tensors (the view dequantizes it, the inverse quantizes back) */
  quantization?: { scale: string; zeroPoint?: string };
}

export interface CandidateLayer {
  /** the name to explain: the tensor itself, or its view's name */
  name: string;
  /** [1, C, h, w] as explained */
  dims: number[];
  op: string;
  node: string;
  /** the model's tensor (differs from `name` for views) */
  tensor: string;
  /** one line: what the layer is and why it is (not) the default */
  why: string;
  view?: ViewSpec;
}

export interface LayerOptions {
  inputLayout?: 'NCHW' | 'NHWC';
  /** model.json's token grid: prefix tokens and/or [h, w] */
  tokens?: { prefix?: number; grid?: [number, number] };
  /** zero-batch mode: every map is row 0 of a batch of this many */
  rows?: number;
  /** also offer quantized (uint8/int8) maps of a quantized model explained as it is, dequantized */
  quantized?: boolean;
}

/** Output scale and zero point of a quantized tensor, from the op that produces it. */
export function quantizationOf(model: OnnxModel, t: string): { scale: string; zeroPoint?: string } | undefined {
  const i = model.producer.get(t);
  if (i === undefined) return undefined;
  const n = model.nodes[i];
  const at = (s: number, z: number) => (n.input[s] ? { scale: n.input[s], ...(n.input[z] ? { zeroPoint: n.input[z] } : {}) } : undefined);
  switch (n.op_type) {
    case 'QuantizeLinear': return at(1, 2);
    case 'QLinearConv': return at(6, 7);
    case 'QLinearMatMul': return at(6, 7);
    case 'QLinearAdd': case 'QLinearMul': return at(6, 7);
    case 'QLinearGlobalAveragePool': case 'QLinearAveragePool': case 'QLinearSigmoid': case 'QLinearLeakyRelu': return at(3, 4);
    case 'QLinearConcat': return at(0, 1);
    case 'MaxPool': case 'Relu': case 'Identity': case 'Transpose': case 'Reshape':
      return n.input[0] ? quantizationOf(model, n.input[0]) : undefined;
    default: return undefined;
  }
}

/** The name of a view's map. */
export function viewName(v: ViewSpec): string {
  return v.kind === 'plain' ? `${v.source}#row0` : v.kind === 'dequantized' ? `${v.source}#dequantized` : `${v.source}#map`;
}

/**
 * Whether `t` is a LayerNormalization output: the op, or the end of its decomposition (older opsets):
 * ReduceMean → Sub → … → Div, then × γ and + β where present.
 */
export function isLayerNorm(model: OnnxModel, t: string): boolean {
  const node = (name: string | undefined): NodeProto | undefined => {
    const i = name === undefined ? undefined : model.producer.get(name);
    return i === undefined ? undefined : model.nodes[i];
  };
  const first = node(t);
  if (!first) return false;
  if (first.op_type === 'LayerNormalization') return true;
  const computed = (n: NodeProto) => n.input.find((i) => !isConstLike(model, i));
  const affine = (n: NodeProto | undefined, op: string) => n?.op_type === op && n.input.some((i) => isConstLike(model, i));
  let n: NodeProto | undefined = first;
  if (affine(n, 'Add')) n = node(computed(n!));
  if (affine(n, 'Mul')) n = node(computed(n!));
  if (n?.op_type !== 'Div') return false;
  const sub = node(n.input[0]);
  if (sub?.op_type !== 'Sub' || node(sub.input[1])?.op_type !== 'ReduceMean') return false;
  // Not a step inside the decomposition: nothing extends it by × γ or + β.
  const extended = (model.consumers.get(t) ?? []).some((i) => {
    const c = model.nodes[i];
    return (first.op_type === 'Div' && affine(c, 'Mul')) || (first.op_type !== 'Add' && affine(c, 'Add'));
  });
  return !extended;
}

/** A constant, or a constant passed through Identity (exporters alias deduplicated parameters so). */
function isConstLike(model: OnnxModel, t: string): boolean {
  for (let name = t, depth = 0; depth < 8; depth++) {
    if (model.isConstant(name)) return true;
    const i = model.producer.get(name);
    if (i === undefined || model.nodes[i].op_type !== 'Identity') return false;
    name = model.nodes[i].input[0];
  }
  return false;
}

/** What the prefix tokens usually are, by count. */
const PREFIX_NAMES = ['', ' (the class token)', ' (class and distillation tokens, as DeiT)', ' (class and register tokens)'];

const isSquare = (n: number) => n > 0 && Number.isInteger(Math.sqrt(n));

/**
 * Candidate layers in topological order with the default among them. See the rule at the top of the file.
 */
export function findLayers(model: OnnxModel, shapes: Map<string, TensorInfo>, logits: string, opts: LayerOptions = {}): { candidates: CandidateLayer[]; defaultLayer: string | undefined } {
  const up = ancestorsOf(model, logits);
  const rows = opts.rows;
  const batchOk = (d: number) => d === 1 || (rows !== undefined && d === rows);
  const layout = new Map<string, 'NCHW' | 'NHWC'>(model.inputs.map((i) => [i.name, opts.inputLayout ?? 'NCHW']));
  const maps: (CandidateLayer & { index: number })[] = [];
  const others: (CandidateLayer & { index: number; layout: 'NCHW' | 'NHWC' })[] = [];
  model.nodes.forEach((n, index) => {
    const from = n.input.find((i) => layout.has(i));
    if (from === undefined) return;
    let out = layout.get(from)!;
    if (n.op_type === 'Transpose') {
      const perm = attrInts(n, 'perm')?.join(',');
      if (perm === '0,2,3,1') out = 'NHWC';
      else if (perm === '0,3,1,2') out = 'NCHW';
    }
    for (const o of n.output) {
      if (!o) continue;
      layout.set(o, out);
      const s = shapes.get(o);
      if (!s || !up.has(o) || !batchOk(s.dims[0])) continue;
      const entry: CandidateLayer & { index: number } = { name: o, dims: s.dims, op: n.op_type, node: n.name || o, index, tensor: o, why: '' };
      if (s.type !== 'float32') {
        const q = opts.quantized && (s.type === 'uint8' || s.type === 'int8') ? quantizationOf(model, o) : undefined;
        if (q && out === 'NCHW' && s.dims.length === 4 && s.dims[0] === 1 && s.dims[2] * s.dims[3] > 1 && rows === undefined) {
          entry.view = { kind: 'dequantized', source: o, sourceDims: s.dims, quantization: q };
          entry.name = viewName(entry.view);
          maps.push(entry);
        }
        continue;
      }
      if (out === 'NCHW' && s.dims.length === 4 && s.dims[2] * s.dims[3] > 1) maps.push(entry);
      else if (s.dims.length === 3 || s.dims.length === 4) others.push({ ...entry, layout: out });
    }
  });

  // Token maps: only after the last convolutional map (ConvNeXt's channels-last LayerNorms, inside
  // blocks that end channels-first, are not transformer tokens).
  const lastFeature = [...maps].reverse().find((c) => !NOT_A_FEATURE.has(c.op));
  const tokenStart = lastFeature?.index ?? -1;
  const patchGrid = lastFeature ? [lastFeature.dims[2], lastFeature.dims[3]] as [number, number] : undefined;
  const tokens: (CandidateLayer & { index: number; norm: boolean })[] = [];
  for (const c of others) {
    if (c.index <= tokenStart) continue;
    const norm = isLayerNorm(model, c.name);
    const residual = c.op === 'Add' && model.nodes[c.index].input.every((i) => !isConstLike(model, i) && shapes.get(i)?.dims.join() === c.dims.join());
    if (!norm && !residual) continue;
    let view: ViewSpec | undefined;
    if (c.dims.length === 3) {
      const [, T, C] = c.dims;
      let prefix = opts.tokens?.prefix;
      let grid = opts.tokens?.grid;
      if (grid && prefix === undefined) prefix = T - grid[0] * grid[1];
      if (!grid && prefix !== undefined && isSquare(T - prefix)) grid = [Math.sqrt(T - prefix), Math.sqrt(T - prefix)];
      if (!grid && patchGrid && T - patchGrid[0] * patchGrid[1] >= 0 && T - patchGrid[0] * patchGrid[1] <= 16) {
        grid = patchGrid;
        prefix = T - patchGrid[0] * patchGrid[1];
      }
      if (!grid) {
        for (let p = 0; p <= 16; p++) if (isSquare(T - p)) { prefix = p; grid = [Math.sqrt(T - p), Math.sqrt(T - p)]; break; }
      }
      if (!grid || prefix === undefined || prefix < 0 || grid[0] * grid[1] + prefix !== T || grid[0] * grid[1] <= 1) continue;
      view = { kind: 'tokens', source: c.name, sourceDims: c.dims, prefix, grid };
      void C;
    } else if (c.layout === 'NHWC' && c.dims[1] * c.dims[2] > 1) {
      view = { kind: 'channels-last', source: c.name, sourceDims: c.dims, grid: [c.dims[1], c.dims[2]] };
    } else {
      continue;
    }
    if (rows !== undefined) view.rows = rows;
    const C = view.kind === 'tokens' ? c.dims[2] : c.dims[3];
    const { layout: _layout, ...rest } = c;
    void _layout;
    tokens.push({ ...rest, name: viewName(view), dims: [1, C, view.grid![0], view.grid![1]], view, norm });
  }
  if (rows !== undefined) {
    for (const m of maps) {
      m.view = { kind: 'plain', source: m.name, sourceDims: m.dims, rows };
      m.name = viewName(m.view);
      m.dims = [1, ...m.dims.slice(1)];
    }
  }

  const all = [...maps, ...tokens].sort((a, b) => a.index - b.index);
  let chosen: CandidateLayer | undefined;
  const reasons = new Map<CandidateLayer, string>();
  if (tokens.length) {
    const gridReaches = (c: CandidateLayer) => tokenGridReachesLogits(model, shapes, c, logits);
    const feedsLinear = (c: CandidateLayer) => feedsLinearLayer(model, c.tensor);
    const blockNorms = tokens.filter((c) => c.norm && feedsLinear(c));
    chosen = [...blockNorms].reverse().find(gridReaches) ?? [...tokens].reverse().find(gridReaches) ?? tokens[tokens.length - 1];
    for (const c of tokens) {
      if (c === chosen) continue;
      if (!gridReaches(c)) reasons.set(c, 'only the prefix tokens reach the logits from here (no attention after it): gradient methods give zero maps');
      else if (c.index > (chosen as typeof c).index) reasons.set(c, c.norm ? 'a LayerNorm that feeds no block (the final norm): the last block\'s norm is preferred' : 'after the default layer');
      else reasons.set(c, 'an earlier block');
    }
    for (const m of maps) {
      reasons.set(m, m.index < tokens[0].index
        ? 'a convolutional map before the transformer blocks (the patch embedding)'
        : `${/^[AEIOU]/.test(m.op) ? 'an' : 'a'} ${m.op} output after the blocks: the token maps are preferred`);
    }
  } else {
    const features = maps.filter((c) => !NOT_A_FEATURE.has(c.op));
    const twoD = features.filter((c) => Math.min(c.dims[2], c.dims[3]) > 1);
    const pool = twoD.length ? twoD : features.length ? features : maps;
    chosen = pool[pool.length - 1];
    if (chosen && NORMS.has(chosen.op)) {
      const same = (c: CandidateLayer) => c.dims[2] === chosen!.dims[2] && c.dims[3] === chosen!.dims[3];
      const act = [...pool].reverse().find((c) => c !== chosen && same(c) && ACTIVATIONS.has(c.op));
      if (act) {
        reasons.set(chosen, `${/^[AEIOU]/.test(chosen.op) ? 'an' : 'a'} ${chosen.op} output after the last activation: the activation before it is preferred (the normalisation only rescales each channel)`);
        chosen = act;
      }
    }
  }
  const d = chosen?.dims;
  for (const c of all) {
    const [, C, h, w] = c.dims;
    const shape = c.view?.kind === 'tokens'
      ? `token map [${c.view.sourceDims.join(', ')}] as a ${h}×${w} grid after ${c.view.prefix} prefix token${c.view.prefix === 1 ? '' : 's'}${PREFIX_NAMES[Math.min(c.view.prefix ?? 0, 3)]}`
      : c.view?.kind === 'channels-last' ? `channels-last map [${c.view.sourceDims.join(', ')}] as [1, ${C}, ${h}, ${w}]`
      : `${C}×${h}×${w} ${c.op} output${c.view?.kind === 'plain' ? ` (row 0 of the fixed batch of ${c.view.rows})` : c.view?.kind === 'dequantized' ? ' (quantized; explained dequantized)' : ''}`;
    let why: string;
    if (c === chosen) {
      why = c.view && (c.view.kind === 'tokens' || c.view.kind === 'channels-last')
        ? (c.view.prefix ? 'default: the last block LayerNorm whose patch tokens reach the class token through attention' : 'default: the last block LayerNorm (every token reaches the pooled head)')
        : Math.min(h, w) === 1
          ? `default, though a ${h}×${w} strip: one spatial side is 1, so the map is one-dimensional and is stretched over the image`
          : `default: the last ${ACTIVATIONS.has(c.op) ? 'activation' : 'feature map'} before the head (the last map before global pooling)`;
    } else if (reasons.has(c)) {
      why = reasons.get(c)!;
    } else if (NOT_A_FEATURE.has(c.op)) {
      why = `${/^[AEIOU]/.test(c.op) ? 'an' : 'a'} ${c.op} output: it only ${c.op.endsWith('Pool') ? 'pools' : 'moves the values of'} the map before it`;
    } else if (Math.min(h, w) === 1) {
      why = `a ${h}×${w} strip: one spatial side is 1, so its map is one-dimensional`;
    } else if (d && (h !== d[2] || w !== d[3])) {
      why = h * w > d[2] * d[3]
        ? `an earlier stage (${h}×${w} against the default's ${d[2]}×${d[3]}): finer, less class-specific (LayerCAM suits it)`
        : `after the default layer (${h}×${w})`;
    } else {
      why = (chosen && all.indexOf(c) < all.indexOf(chosen as (typeof all)[number])) ? 'in the default\'s stage, before its last activation' : 'after the default layer';
    }
    c.why = `${shape}; ${why}`;
  }
  return { candidates: all.map(({ name, dims, op, node, tensor, why, view }) => ({ name, dims, op, node, tensor, why, ...(view ? { view } : {}) })), defaultLayer: chosen?.name };
}

/** Whether `t` reaches a linear layer (MatMul/Gemm with a constant weight) through value-moving ops only. */
function feedsLinearLayer(model: OnnxModel, t: string): boolean {
  const stack = [t];
  const seen = new Set<string>();
  while (stack.length) {
    const x = stack.pop()!;
    if (seen.has(x)) continue;
    seen.add(x);
    for (const i of model.consumers.get(x) ?? []) {
      const n = model.nodes[i];
      if ((n.op_type === 'MatMul' || n.op_type === 'Gemm') && n.input.some((k) => isConstLike(model, k))) return true;
      if (MOVES.has(n.op_type)) stack.push(...n.output.filter(Boolean));
    }
  }
  return false;
}

/**
 * Whether the grid tokens of a token map influence the logits: yes if the path mixes tokens (a MatMul of
 * two computed tensors: attention) before it selects tokens, or never selects them (pooling); no if it
 * first selects prefix tokens (a Gather of constant indices along the token axis: x[:, 0]).
 */
function tokenGridReachesLogits(model: OnnxModel, shapes: Map<string, TensorInfo>, c: CandidateLayer, logits: string): boolean {
  const tokenDims = c.view?.sourceDims ?? c.dims;
  const path = nodesOnPath(model, [c.tensor], logits).map((i) => model.nodes[i]);
  for (const n of path) {
    if ((n.op_type === 'MatMul' || n.op_type === 'Einsum') && n.input.filter((i) => i && !isConstLike(model, i)).length >= 2) return true;
    if (n.op_type === 'Gather' && isConstLike(model, n.input[1])) {
      const d = shapes.get(n.input[0])?.dims ?? [];
      const axis = (attrInt(n, 'axis', 0) + d.length) % Math.max(d.length, 1);
      // Selecting along the token axis of a [1, T, C] token tensor (not a split of stacked q, k, v).
      if (c.view?.kind === 'tokens' && d.length === 3 && axis === 1 && d[1] === tokenDims[1]) return false;
      if (c.view?.kind === 'channels-last' && d.length === 4 && (axis === 1 || axis === 2) && d[1] === tokenDims[1] && d[2] === tokenDims[2]) return false;
    }
  }
  return true;
}
