// What buildGradientPatch refuses, and that its GradientError names the op type and the node, so a
// user can find the culprit in the model: ops without a rule on the path, and rule preconditions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { buildGradientPatch } from '../../src/autodiff/builder.js';
import { GradientError } from '../../src/autodiff/context.js';
import { floatTensor, int, int64Tensor, ints, makeNode, str } from '../../src/onnx/builder.js';
import { OnnxModel } from '../../src/onnx/model.js';
import type { NodeProto, TensorProto } from '../../src/onnx/proto.js';
import { probeShapes } from '../../src/onnx/session.js';
import { uniform } from '../helpers/fd.js';
import { buildModelBytes } from '../helpers/graph.js';
import { boolTensor, count } from './harness.js';

interface ErrorCase {
  nodes: NodeProto[];
  inputs?: Record<string, number[]>;
  initializers?: TensorProto[];
  opset?: number;
  targets?: string[];
  output?: string;
}

/** Builds the model, probes its shapes and asks for the gradient of `output` w.r.t. `targets`. */
async function patch(c: ErrorCase) {
  const inputs = c.inputs ?? { x: [1, 2, 4, 4] };
  const output = c.output ?? 'y';
  const bytes = buildModelBytes({
    nodes: c.nodes,
    inputs: Object.entries(inputs).map(([name, dims]) => ({ name, dims })),
    outputs: [output],
    initializers: c.initializers,
    opset: c.opset ?? 13,
  });
  const model = await OnnxModel.fromBytes(bytes, 'errors.onnx');
  const feeds = Object.fromEntries(Object.entries(inputs).map(([n, d]) => [n, new ort.Tensor('float32', uniform(count(d), 1), d)]));
  const shapes = await probeShapes(model, feeds);
  return buildGradientPatch(model, shapes, { targets: c.targets ?? Object.keys(inputs), output });
}

/** Asserts a GradientError whose message matches every pattern. */
async function rejectsWith(c: ErrorCase, ...patterns: RegExp[]) {
  await assert.rejects(patch(c), (e: unknown) => {
    assert.ok(e instanceof GradientError, `expected a GradientError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('an op with no rule on the path (Hardmax) is rejected, naming the op type and the node', async () => {
  await rejectsWith(
    { nodes: [makeNode('Relu', ['x'], ['r']), makeNode('Hardmax', ['r'], ['s'], {}, 'my_hardmax'), makeNode('Relu', ['s'], ['y'])] },
    /\bHardmax\b/, /"my_hardmax"/, /no gradient rule/,
  );
});

test('TopK on the path (values output used) is rejected, naming the op type and the node', async () => {
  await rejectsWith(
    {
      nodes: [makeNode('Flatten', ['x'], ['f']), makeNode('TopK', ['f', 'k'], ['y', 'idx'], { axis: int(-1) }, 'top5')],
      initializers: [int64Tensor('k', [1], [5])],
    },
    /\bTopK\b/, /"top5"/,
  );
});

test('an op from another domain (com.microsoft) is rejected with its domain', async () => {
  // onnxruntime could not probe this graph (the test helper imports the default domain only), so the
  // builder gets hand-written shapes.
  const node = { ...makeNode('Gelu', ['x'], ['y'], {}, 'ms_gelu'), domain: 'com.microsoft' };
  const model = await OnnxModel.fromBytes(buildModelBytes({ nodes: [node], inputs: [{ name: 'x', dims: [1, 4] }], outputs: ['y'] }), 'ms.onnx');
  const shapes = new Map([['x', { dims: [1, 4], type: 'float32' as const }], ['y', { dims: [1, 4], type: 'float32' as const }]]);
  await assert.rejects(buildGradientPatch(model, shapes, { targets: ['x'], output: 'y' }), (e: unknown) => {
    assert.ok(e instanceof GradientError, `expected a GradientError, got ${String(e)}`);
    assert.match(e.message, /com\.microsoft\.Gelu/);
    assert.match(e.message, /"ms_gelu"/);
    return true;
  });
});

test('Transpose moving the batch axis fails its precondition, naming the op type and the node', async () => {
  await rejectsWith(
    { nodes: [makeNode('Transpose', ['x'], ['y'], { perm: ints([1, 0, 2, 3]) }, 'swap_batch')] },
    /\bTranspose\b/, /"swap_batch"/, /moves the batch axis/,
  );
});

test('a batch axis moved mid-graph is blamed on the node that produced the tensor (Transpose), not only on its consumer', async () => {
  await rejectsWith(
    { nodes: [makeNode('Transpose', ['x'], ['t'], { perm: ints([1, 0, 2, 3]) }, 'swap_batch'), makeNode('Relu', ['t'], ['y'], {}, 'act')] },
    /Transpose node "swap_batch"/, /Relu node "act"/, /batch 1/,
  );
});

test('Transpose without perm (reverses all axes, batch last) fails its precondition', async () => {
  await rejectsWith({ nodes: [makeNode('Transpose', ['x'], ['y'], {}, 'reverse')] }, /\bTranspose\b/, /"reverse"/, /batch axis/);
});

test('Gemm with transA = 1 fails its precondition', async () => {
  await rejectsWith(
    {
      nodes: [makeNode('Gemm', ['x', 'b'], ['y'], { transA: int(1) }, 'fc_t')],
      inputs: { x: [1, 4] },
      initializers: [floatTensor('b', [1, 3], uniform(3, 2))],
    },
    /\bGemm\b/, /"fc_t"/, /transA/,
  );
});

test('Pow with the exponent on the path fails its precondition', async () => {
  await rejectsWith({ nodes: [makeNode('Pow', ['x', 'x'], ['y'], {}, 'x_pow_x')] }, /\bPow\b/, /"x_pow_x"/, /exponent/);
});

test('Clip with a bound on the path is rejected (the bound would silently get no gradient)', async () => {
  await rejectsWith(
    { nodes: [makeNode('Neg', ['x'], ['nx']), makeNode('Clip', ['x', 'nx'], ['y'], {}, 'self_clip')], inputs: { x: [1] } },
    /\bClip\b/, /"self_clip"/, /bound/,
  );
});

test('Conv with its weights on the path is rejected', async () => {
  await rejectsWith(
    {
      nodes: [makeNode('Mul', ['x', 'two'], ['x2']), makeNode('Reshape', ['x2', 'ws'], ['wx']), makeNode('Conv', ['x', 'wx'], ['y'], {}, 'dyn_conv')],
      inputs: { x: [1, 1, 2, 2] },
      initializers: [floatTensor('two', [], [2]), int64Tensor('ws', [4], [1, 1, 2, 2])],
    },
    /\bConv\b/, /"dyn_conv"/, /weights/,
  );
});

test('Slice with computed (not constant) starts is rejected', async () => {
  await rejectsWith(
    {
      nodes: [
        makeNode('Shape', ['x'], ['shape']),
        makeNode('Slice', ['shape', 'one', 'two'], ['start']),
        makeNode('Slice', ['x', 'start', 'e', 'a'], ['y'], {}, 'dyn_slice'),
      ],
      initializers: [int64Tensor('one', [1], [3]), int64Tensor('two', [1], [4]), int64Tensor('e', [1], [4]), int64Tensor('a', [1], [3])],
    },
    /\bSlice\b/, /"dyn_slice"/, /starts/, /constant/,
  );
});

test('Pad in wrap mode wider than the input is rejected (onnxruntime does not wrap periodically there)', async () => {
  await rejectsWith(
    {
      nodes: [makeNode('Pad', ['x', 'p'], ['y'], { mode: str('wrap') }, 'wide_wrap')],
      initializers: [int64Tensor('p', [8], [0, 0, 5, 0, 0, 0, 0, 1])],
      opset: 19,
    },
    /\bPad\b/, /"wide_wrap"/, /wrap padding by 5/,
  );
});

test('Concat along the batch axis is rejected', async () => {
  await rejectsWith({ nodes: [makeNode('Concat', ['x', 'x'], ['y'], { axis: int(0) }, 'stack')] }, /\bConcat\b/, /"stack"/, /batch axis/);
});

test('a target that does not lead to the output is rejected', async () => {
  await assert.rejects(
    patch({ nodes: [makeNode('Relu', ['x'], ['y'])], inputs: { x: [1, 2], z: [1, 2] }, targets: ['z'] }),
    (e: unknown) => e instanceof GradientError && /"z"/.test(e.message) && /does not lead/.test(e.message),
  );
});

test('a model below opset 7 is refused by every rule (legacy broadcasting), naming the node', async () => {
  // Relu-6 runs in onnxruntime, so the probe succeeds; its gradient would need an opset-7 Mul.
  await rejectsWith({ nodes: [makeNode('Relu', ['x'], ['y'], {}, 'old_relu')], opset: 6 }, /\bRelu\b/, /"old_relu"/, /opset 6/, /opset 7/);
});

test('Resize with coordinate_transformation_mode tf_crop_and_resize is refused', async () => {
  await rejectsWith(
    {
      nodes: [makeNode('Resize', ['x', 'roi', 's'], ['y'], { mode: str('linear'), coordinate_transformation_mode: str('tf_crop_and_resize') }, 'crop')],
      initializers: [floatTensor('roi', [8], [0, 0, 0.1, 0.1, 1, 1, 0.9, 0.9]), floatTensor('s', [4], [1, 1, 2, 2])],
    },
    /\bResize\b/, /"crop"/, /tf_crop_and_resize/,
  );
});

test('Resize with antialias 1 (opset 18) is refused', async () => {
  await rejectsWith(
    {
      nodes: [makeNode('Resize', ['x', '', 's'], ['y'], { mode: str('linear'), antialias: int(1) }, 'smooth_down')],
      initializers: [floatTensor('s', [4], [1, 1, 0.5, 0.5])],
      opset: 18,
    },
    /\bResize\b/, /"smooth_down"/, /antialias/,
  );
});

test('Resize with computed (not constant) scales is refused: the coordinate transforms need their exact values', async () => {
  await rejectsWith(
    {
      nodes: [
        makeNode('Abs', ['s'], ['s_abs']),
        makeNode('Add', ['s_abs', 'one'], ['scales']),
        makeNode('Resize', ['x', '', 'scales'], ['y'], {}, 'dyn_scales'),
      ],
      inputs: { x: [1, 2, 4, 4], s: [4] },
      initializers: [floatTensor('one', [], [1])],
      targets: ['x'],
    },
    /\bResize\b/, /"dyn_scales"/, /scales/, /constant/,
  );
});

test('Einsum with a repeated letter in one term (a diagonal) is refused', async () => {
  await rejectsWith(
    { nodes: [makeNode('Einsum', ['x'], ['y'], { equation: str('bcii->bci') }, 'diag')], opset: 12 },
    /\bEinsum\b/, /"diag"/, /repeats/, /diagonal/,
  );
});

test('Einsum that moves the batch letter out of the lead is refused', async () => {
  await rejectsWith(
    { nodes: [makeNode('Einsum', ['x'], ['y'], { equation: str('bchw->cbhw') }, 'swap')], opset: 12 },
    /\bEinsum\b/, /"swap"/, /batch axis/,
  );
});

test('Dropout with a constant training_mode = true (opset 12) is refused: its mask is random', async () => {
  await rejectsWith(
    {
      nodes: [makeNode('Dropout', ['x', 'ratio', 'training'], ['y'], {}, 'live_dropout')],
      initializers: [floatTensor('ratio', [], [0.5]), boolTensor('training', [], [true])],
      opset: 12,
    },
    /\bDropout\b/, /"live_dropout"/, /training_mode/,
  );
});
