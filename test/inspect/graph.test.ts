// The graph view: DOT and SVG (well-formed XML), the default layer and the differentiated path highlighted.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { nodesOnPath } from '../../src/onnx/graph.js';
import { modelFacts, modulePath, type ModelFacts } from '../../src/inspect/facts.js';
import { graphDot, renderDot } from '../../src/inspect/graph.js';
import { ModelRuntime } from '../../src/engine/runtime.js';
import { FIXTURES } from '../helpers/fixtures.js';

const facts = new Map<string, ModelFacts>();

before(async () => {
  for (const name of ['resnet', 'convnext']) {
    const rt = await ModelRuntime.load(path.join(FIXTURES, name), { intraOpThreads: 1 });
    facts.set(name, modelFacts(rt));
    // The path is the explain graph's: nodesOnPath from the default layer to the logits.
    assert.deepEqual(facts.get(name)!.pathNodes, nodesOnPath(rt.model, [rt.info.defaultLayer], rt.info.logits));
    await rt.release();
  }
});

interface SvgGroup { id: string; cls: string; title: string }

/** Every <g> of the SVG with its class and <title> (the DOT node / edge id). */
function groups(svg: string): SvgGroup[] {
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (name) => name === 'g' }).parse(svg) as Record<string, unknown>;
  const out: SvgGroup[] = [];
  const walk = (node: unknown) => {
    if (!node || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    for (const g of (o.g as Record<string, unknown>[] | undefined) ?? []) {
      const title = g.title;
      out.push({ id: String(g.id ?? ''), cls: String(g.class ?? ''), title: typeof title === 'object' && title ? String((title as { '#text': unknown })['#text']) : String(title ?? '') });
      walk(g);
    }
  };
  walk(doc.svg);
  return out;
}

const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#45;/g, '-').replace(/&amp;/g, '&');

for (const name of ['resnet', 'convnext']) {
  test(`${name}: the SVG is well-formed XML and names every node on the highlighted path`, async () => {
    const f = facts.get(name)!;
    assert.ok(f.pathNodes.length >= 3);
    const svg = await renderDot(graphDot(f));
    assert.equal(XMLValidator.validate(svg), true);
    const nodes = groups(svg).filter((g) => g.cls.split(' ').includes('node'));
    const titles = new Set(nodes.map((g) => unescape(g.title)));
    const pathNames = f.pathNodes.map((i) => f.nodes[i].name);
    for (const n of pathNames) assert.ok(titles.has(n), `path node ${n} is not in the SVG`);
    // Exactly the path nodes carry the highlight class; the default layer's producer is marked.
    const highlighted = nodes.filter((g) => g.cls.split(' ').includes('path')).map((g) => unescape(g.title));
    assert.deepEqual(highlighted.sort(), [...pathNames].sort());
    const target = nodes.filter((g) => g.cls.split(' ').includes('target')).map((g) => unescape(g.title));
    assert.deepEqual(target, [f.nodes.find((n) => n.outputs.includes(f.defaultLayer))!.name]);
    // One box per non-constant node, plus the input and the outputs.
    const constant = f.nodes.filter((n) => n.op === 'Constant').length;
    assert.ok(nodes.length >= f.nodes.length - constant);
  });
}

test('collapse=scope: one box per module call; depth=N cuts scopes to N segments; path boxes highlighted', async () => {
  const f = facts.get('resnet')!;
  const svg = await renderDot(graphDot(f, { collapse: 'scope' }));
  assert.equal(XMLValidator.validate(svg), true);
  const boxes = groups(svg).filter((g) => g.cls.split(' ').includes('scope') || g.cls.split(' ').includes('node'));
  const titles = new Set(boxes.map((g) => unescape(g.title)));
  for (const i of f.pathNodes) {
    const n = f.nodes[i];
    assert.ok(titles.has(n.scope.length ? `scope:${modulePath(n.scope)}` : n.name), `box of path node ${n.name}`);
  }
  const shallow = graphDot(f, { collapse: 'scope', depth: 1 });
  const ids = [...shallow.matchAll(/^ {2}"(scope:[^"]+)" \[/gm)].map((m) => m[1]);
  assert.deepEqual(ids, ['scope:conv1', 'scope:relu', 'scope:maxpool', 'scope:layer1', 'scope:layer2', 'scope:layer3', 'scope:layer4', 'scope:avgpool', 'scope:fc']);
  assert.match(shallow, /^ {2}"scope:layer4" \[.*class="scope target"/m); // holds the default layer; the path starts after it
  assert.match(shallow, /^ {2}"scope:avgpool" \[.*class="scope path"/m);
});

test('DOT: a digraph with the path edges highlighted; clusters with collapse=none and depth', () => {
  const f = facts.get('resnet')!;
  const dot = graphDot(f);
  assert.match(dot, /^digraph model \{/);
  const pathEdges = [...dot.matchAll(/-> .*class="path"/g)].length;
  assert.equal(pathEdges, f.pathNodes.length); // a chain: target → GAP → Flatten → Gemm
  const clustered = graphDot(f, { depth: 2 });
  assert.match(clustered, /subgraph cluster_\d+ \{\n\s+label="layer4";/);
  assert.match(clustered, /label="layer4\.0";/);
});
