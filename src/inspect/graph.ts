// The computation graph as Graphviz DOT (TensorBoard's add_graph for any ONNX model), rendered to SVG
// with @viz-js/viz (Graphviz compiled to WebAssembly: no binary, no network). Nodes can be collapsed
// to one box per exporter scope; the default target layer and the path from it to the logits that the
// explain graph differentiates are highlighted.
import { instance, type Viz } from '@viz-js/viz';
import { constantNodes, modulePath, type ModelFacts } from './facts.js';

export interface GraphOptions {
  /** none: one box per ONNX node; scope: one box per scope (nodes without a scope stay single) */
  collapse?: 'none' | 'scope';
  /** scope segments kept: with collapse=scope, the box level (default: all, i.e. one box per module
   *  call); with collapse=none, nested clusters this deep (default 0: no clusters) */
  depth?: number;
  /** layout direction (default TB: top to bottom) */
  rankdir?: 'TB' | 'LR';
}

export const GRAPH_COLLAPSE = ['none', 'scope'] as const;

/** Colours of the highlight (also named in the legend). */
const STYLE = {
  node: '#f1f3f5', nodeLine: '#868e96',
  path: '#ffe8cc', pathLine: '#e8590c',
  target: '#ffc9c9', targetLine: '#c92a2a',
  io: '#d0ebff', ioLine: '#1971c2',
};

function q(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

function dims(d: number[] | undefined): string {
  return d ? `[${d.join(', ')}]` : '?';
}

interface Box {
  id: string;
  label: string[];
  nodes: number[];
  scope: string[];
  kind: 'node' | 'scope' | 'io';
}

/** The graph as DOT. Box ids: the node's name (collapse=none), `scope:<module path>` (collapse=scope), `input:<name>`, `output:<name>`. */
export function graphDot(facts: ModelFacts, opts: GraphOptions = {}): string {
  const collapse = opts.collapse ?? 'none';
  const depth = opts.depth;
  const constant = constantNodes(facts);
  const onPath = new Set(facts.pathNodes);
  const targetProducer = facts.nodes.findIndex((n) => n.outputs.includes(facts.defaultLayer));

  // Boxes.
  const boxOfNode = new Map<number, Box>();
  const boxes: Box[] = [];
  const byScope = new Map<string, Box>();
  facts.nodes.forEach((n, i) => {
    if (constant.has(i)) return;
    if (collapse === 'scope' && n.scope.length) {
      const scope = depth !== undefined && depth > 0 ? n.scope.slice(0, depth) : n.scope;
      const mod = modulePath(scope);
      let box = byScope.get(mod);
      if (!box) {
        box = { id: `scope:${mod}`, label: [], nodes: [], scope, kind: 'scope' };
        byScope.set(mod, box);
        boxes.push(box);
      }
      box.nodes.push(i);
      boxOfNode.set(i, box);
    } else {
      const box: Box = { id: n.name, label: [], nodes: [i], scope: n.scope, kind: 'node' };
      boxes.push(box);
      boxOfNode.set(i, box);
    }
  });
  const producerBox = new Map<string, Box>();
  for (const [i, box] of boxOfNode) for (const o of facts.nodes[i].outputs) if (o) producerBox.set(o, box);
  const inputBox: Box = { id: `input:${facts.input.name}`, label: [facts.input.name, dims(facts.input.dims)], nodes: [], scope: [], kind: 'io' };
  producerBox.set(facts.input.name, inputBox);

  // Labels: op (and module) with output dims for single nodes; module, op counts and the dims of what leaves the box for scopes.
  const consumers = new Map<string, number[]>();
  facts.nodes.forEach((n, i) => {
    if (!constant.has(i)) for (const t of n.inputs) if (t) consumers.set(t, [...(consumers.get(t) ?? []), i]);
  });
  const consumersOutside = (t: string, box: Box) => (consumers.get(t) ?? []).some((i) => boxOfNode.get(i) !== box);
  for (const box of boxes) {
    if (box.kind === 'node') {
      const n = facts.nodes[box.nodes[0]];
      box.label = [n.op, n.scope.length ? modulePath(n.scope) : n.name, ...n.outputs.filter(Boolean).map((o) => dims(facts.tensors[o]?.dims))];
    } else {
      const counts = new Map<string, number>();
      for (const i of box.nodes) counts.set(facts.nodes[i].op, (counts.get(facts.nodes[i].op) ?? 0) + 1);
      const ops = [...counts].map(([op, c]) => (c > 1 ? `${op} ×${c}` : op)).join(', ');
      const outs = box.nodes.flatMap((i) => facts.nodes[i].outputs.filter((o) => o && (facts.outputs.includes(o) || consumersOutside(o, box))));
      box.label = [modulePath(box.scope), ops, ...outs.map((o) => dims(facts.tensors[o]?.dims))];
    }
  }

  const lines: string[] = [];
  lines.push('digraph model {');
  const title = `${facts.id}\ndefault layer (red): ${facts.defaultLayer}\nnodes Grad-CAM differentiates to reach ${facts.logits} (orange): ${facts.pathNodes.length}`;
  lines.push(`  graph [rankdir=${opts.rankdir ?? 'TB'}, fontname="Arial", fontsize=11, nodesep=0.25, ranksep=0.3, label=${q(title)}, labelloc=t];`);
  lines.push(`  node [shape=box, style="rounded,filled", fillcolor="${STYLE.node}", color="${STYLE.nodeLine}", fontname="Arial", fontsize=10, margin="0.16,0.05"];`);
  lines.push(`  edge [color="${STYLE.nodeLine}", arrowsize=0.6];`);

  const boxLine = (box: Box, indent: string) => {
    const isTarget = targetProducer >= 0 && box.nodes.includes(targetProducer);
    const isPath = box.nodes.some((i) => onPath.has(i));
    // SVG classes (Graphviz adds "node" itself): op (one ONNX node), scope (a collapsed scope), io; path, target.
    const classes = [box.kind === 'node' ? 'op' : box.kind, ...(isPath ? ['path'] : []), ...(isTarget ? ['target'] : [])];
    const attrs = [`label=${q(box.label.join('\n') + (isTarget ? '\n(default layer)' : ''))}`, `class=${q(classes.join(' '))}`];
    if (box.kind === 'io') attrs.push('shape=ellipse', `fillcolor="${STYLE.io}"`, `color="${STYLE.ioLine}"`);
    if (isTarget) attrs.push(`fillcolor="${STYLE.target}"`, `color="${STYLE.targetLine}"`, 'penwidth=2');
    else if (isPath) attrs.push(`fillcolor="${STYLE.path}"`, `color="${STYLE.pathLine}"`, 'penwidth=2');
    if (box.kind === 'scope') attrs.push(`tooltip=${q(box.nodes.map((i) => facts.nodes[i].name).join('\n'))}`);
    return `${indent}${q(box.id)} [${attrs.join(', ')}];`;
  };

  lines.push(boxLine(inputBox, '  '));
  const clusterDepth = collapse === 'none' ? depth ?? 0 : 0;
  if (clusterDepth > 0) {
    // Nested clusters by scope prefix.
    interface Tree { children: Map<string, Tree>; boxes: Box[] }
    const root: Tree = { children: new Map(), boxes: [] };
    for (const box of boxes) {
      let t = root;
      for (const seg of box.scope.slice(0, clusterDepth)) {
        let c = t.children.get(seg);
        if (!c) { c = { children: new Map(), boxes: [] }; t.children.set(seg, c); }
        t = c;
      }
      t.boxes.push(box);
    }
    let clusterId = 0;
    const emit = (t: Tree, prefix: string[], indent: string) => {
      for (const box of t.boxes) lines.push(boxLine(box, indent));
      for (const [seg, c] of t.children) {
        const path = [...prefix, seg];
        lines.push(`${indent}subgraph cluster_${clusterId++} {`);
        lines.push(`${indent}  label=${q(modulePath(path))}; style="rounded,dashed"; color="#adb5bd"; fontsize=10;`);
        emit(c, path, `${indent}  `);
        lines.push(`${indent}}`);
      }
    };
    emit(root, [], '  ');
  } else {
    for (const box of boxes) lines.push(boxLine(box, '  '));
  }

  // Edges (one per pair of boxes), highlighted where both ends are on the path (or leave the target layer).
  const edges = new Map<string, { from: Box; to: Box; tensors: string[]; path: boolean }>();
  const pathTensors = new Set<string>([facts.defaultLayer, ...facts.pathNodes.flatMap((i) => facts.nodes[i].outputs)]);
  facts.nodes.forEach((n, i) => {
    const to = boxOfNode.get(i);
    if (!to) return;
    for (const t of n.inputs) {
      const from = t ? producerBox.get(t) : undefined;
      if (!from || from === to) continue;
      const key = `${from.id}\u0000${to.id}`;
      const e = edges.get(key) ?? { from, to, tensors: [], path: false };
      if (!e.tensors.includes(t)) e.tensors.push(t);
      if (onPath.has(i) && pathTensors.has(t)) e.path = true;
      edges.set(key, e);
    }
  });
  for (const e of edges.values()) {
    const tip = e.tensors.map((t) => `${t} ${dims(facts.tensors[t]?.dims)}`).join('\n');
    const attrs = [`tooltip=${q(tip)}`];
    if (e.path) attrs.push(`color="${STYLE.pathLine}"`, 'penwidth=2', 'class="path"');
    lines.push(`  ${q(e.from.id)} -> ${q(e.to.id)} [${attrs.join(', ')}];`);
  }
  for (const o of facts.outputs) {
    const id = `output:${o}`;
    lines.push(`  ${q(id)} [label=${q(`${o}\n${dims(facts.tensors[o]?.dims)}`)}, class="io", shape=ellipse, fillcolor="${STYLE.io}", color="${STYLE.ioLine}"];`);
    const from = producerBox.get(o);
    if (from) lines.push(`  ${q(from.id)} -> ${q(id)};`);
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

let vizInstance: Promise<Viz> | undefined;

/** Renders DOT to SVG (the WebAssembly Graphviz instance is created once per thread). */
export async function renderDot(dot: string): Promise<string> {
  vizInstance ??= instance();
  const viz = await vizInstance;
  const r = viz.render(dot, { format: 'svg', engine: 'dot' });
  if (r.status !== 'success') throw new Error(`graphviz failed: ${r.errors.map((e) => e.message).join('; ')}`);
  return r.output;
}

