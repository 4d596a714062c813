// What every model test asserts: the model loads; Eigen-CAM explains it; the other gradient-free methods
// explain it; every gradient method explains it when its path has rules, and otherwise is refused with a
// 422 (`cannot-explain`) naming the op and the node. Whether the path has rules is found here from the
// rule table and the graph, independently of the builder that refuses.
import assert from 'node:assert/strict';
import { METHODS, METHOD_NAMES, type MethodName } from '../../src/cam/index.js';
import { RULES } from '../../src/autodiff/index.js';
import type { ModelRuntime } from '../../src/engine/runtime.js';
import { nodesOnPath } from '../../src/onnx/graph.js';
import { uniform } from './fd.js';

/** The layer methods of gradients (input methods and DFF are tested on their own). */
export const GRADIENT_METHODS: MethodName[] = METHOD_NAMES.filter((m) => {
  const method = METHODS[m];
  return method.kind !== 'input' && method.kind !== 'factorization' && method.needs === 'gradients';
});
export const GRADIENT_FREE: MethodName[] = ['eigencam', 'scorecam', 'ablationcam'];

/**
 * The op and node that keep gradients from `layer` (the builder sweeps back from the logits, so the last
 * node on the path without a rule), or undefined when every node on the path has a rule.
 */
export function gradientBlocker(rt: ModelRuntime, layer: string): { op: string; node: string } | undefined {
  if (rt.info.batch.mode === 'zero-batch') return rt.info.batch.blockedBy ?? { op: '?', node: '?' };
  const floating = (t: string) => /float/.test(rt.tensorInfos().get(t)?.type ?? 'float32');
  const path = nodesOnPath(rt.model, [layer], rt.info.logits, floating);
  for (const i of [...path].reverse()) {
    const n = rt.model.nodes[i];
    const domain = n.domain ?? '';
    if ((domain !== '' && domain !== 'ai.onnx') || !RULES[n.op_type]) return { op: n.op_type, node: n.name || n.output[0] };
  }
  if (path.length === 0) {
    // The float path stops (integer outputs) before the logits.
    for (const i of nodesOnPath(rt.model, [layer], rt.info.logits)) {
      const n = rt.model.nodes[i];
      if (!n.output.some((o) => o && floating(o))) return { op: n.op_type, node: n.name || n.output[0] };
    }
  }
  return undefined;
}

/** A deterministic input of the model's size. */
export function someInput(rt: ModelRuntime, seed = 5): Float32Array {
  return uniform(rt.info.inputDims.reduce((a, b) => a * b, 1), seed);
}

function assertMap(data: Float32Array, what: string): void {
  assert.ok(data.length > 0 && data.every(Number.isFinite), `${what}: the map is empty or not finite`);
}

/**
 * The assertions of every model test, at `layer` (default: the default layer). Returns the blocker found
 * (undefined when gradient methods explained the model).
 */
export async function assertServes(rt: ModelRuntime, layer = rt.info.defaultLayer, input = someInput(rt), opts: { anyBlocker?: boolean } = {}): Promise<{ op: string; node: string } | undefined> {
  const layers = [layer];
  for (const method of GRADIENT_FREE) {
    const r = await rt.explain({ input, method, layers });
    assertMap(r.explanations[0].map.data, `${rt.info.id} ${method}`);
  }
  let blocker = gradientBlocker(rt, layer);
  for (const method of GRADIENT_METHODS) {
    if (opts.anyBlocker) {
      // A rule may refuse a form on the path (a scalar operand of a quantized model's scale product): any
      // refusal naming a node of the model will do.
      await assert.rejects(rt.explain({ input, method, layers }), (e: { code?: string; message: string; details?: Record<string, unknown> }) => {
        assert.equal(e.code, 'cannot-explain', e.message);
        const node = rt.model.nodes.find((n) => (n.name || n.output[0]) === e.details?.node);
        assert.ok(node && node.op_type === e.details?.op, e.message);
        blocker = { op: node.op_type, node: String(e.details?.node) };
        return true;
      });
      continue;
    }
    if (!blocker) {
      const r = await rt.explain({ input, method, layers });
      assertMap(r.explanations[0].map.data, `${rt.info.id} ${method}`);
      continue;
    }
    const b = blocker;
    await assert.rejects(rt.explain({ input, method, layers }), (e: { code?: string; message: string; details?: Record<string, unknown> }) => {
      assert.equal(e.code, 'cannot-explain', e.message);
      assert.equal(e.details?.op, b.op, e.message);
      assert.equal(e.details?.node, b.node, e.message);
      assert.ok(e.message.includes(b.op) && e.message.includes(b.node), e.message);
      return true;
    });
  }
  return blocker;
}
