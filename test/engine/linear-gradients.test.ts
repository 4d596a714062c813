// The GAP → linear shortcut: where the head after a layer is exactly global average pooling → one linear
// layer → the logits, ∂z_j/∂A = α·W[j, :] / (h·w) at every position, and the head's backward run is skipped.
// Checked against the head's backward pass (linearShortcut: false) on the fixture ResNet and MobileNetV2 and
// on small built graphs (Gemm's α, ReduceMean → MatMul + Add); not used where the head is anything else.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { MethodName, TargetKind } from '../../src/cam/index.js';
import { ModelRuntime, type RuntimeOptions } from '../../src/engine/runtime.js';
import { float, floatTensor, int, int64Tensor, ints, makeNode } from '../../src/onnx/builder.js';
import type { NodeProto, TensorProto } from '../../src/onnx/proto.js';
import { FIXTURES, readF32, relError } from '../helpers/fixtures.js';
import { buildModelBytes } from '../helpers/graph.js';
import { uniform } from '../helpers/fd.js';

const METHODS: MethodName[] = ['gradcam', 'gradcam++', 'xgradcam', 'hirescam', 'layercam'];

const runtimes: ModelRuntime[] = [];
after(async () => { for (const rt of runtimes) await rt.release(); });
async function pair(dir: string, opts: RuntimeOptions = {}): Promise<{ on: ModelRuntime; off: ModelRuntime }> {
  const on = await ModelRuntime.load(dir, { intraOpThreads: 1, ...opts });
  const off = await ModelRuntime.load(dir, { intraOpThreads: 1, ...opts, linearShortcut: false });
  runtimes.push(on, off);
  return { on, off };
}

/** Whether explaining `layers` went by the shortcut: the closed form matched and no head session was built. */
async function usedShortcut(rt: ModelRuntime, layers: string[]): Promise<boolean> {
  const set = await rt.layerSet(layers);
  return (await rt.linearGradients(set)) !== undefined && set.head === undefined;
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, what: string, bound = 1e-5): void {
  const e = relError(a, b);
  assert.ok(e <= bound, `${what}: max |Δ| / max |ref| = ${e}`);
}

for (const name of ['resnet', 'mobilenetv2']) {
  describe(`${name}: the shortcut at the last feature map equals the head's backward pass`, () => {
    const dir = path.join(FIXTURES, name);
    const x = readF32(dir, 'input.bin');

    for (const method of METHODS) {
      test(`${method}, top-3 classes: maps to 1e-5 relative; no head session built`, async () => {
        const { on, off } = await pair(dir);
        const layers = [on.info.defaultLayer];
        const a = await on.explain({ input: x, method, topk: 3 });
        const b = await off.explain({ input: x, method, topk: 3 });
        assert.deepEqual(a.explanations.map((e) => e.target.index), b.explanations.map((e) => e.target.index));
        a.explanations.forEach((e, i) => assertClose(e.map.data, b.explanations[i].map.data, `${method} class ${e.target.index}`));
        assert.equal(await usedShortcut(on, layers), true);
        assert.equal(await usedShortcut(off, layers), false);
      });
    }

    for (const targetKind of ['class', 'finer', 'softmax', 'rest'] as TargetKind[]) {
      test(`gradients of target kind ${targetKind} (seed · W / (h·w)) equal the head's to 1e-5 relative`, async () => {
        const { on, off } = await pair(dir);
        for (const method of ['gradcam', 'hirescam'] as MethodName[]) {
          const a = await on.explain({ input: x, method, targets: [3, 7], targetKind });
          const b = await off.explain({ input: x, method, targets: [3, 7], targetKind });
          a.explanations.forEach((e, i) => assertClose(e.map.data, b.explanations[i].map.data, `${method} ${targetKind} class ${e.target.index}`));
        }
        const ta = await on.tensors({ input: x, layers: [on.info.defaultLayer], targets: [0, 5, 9] });
        const tb = await off.tensors({ input: x, layers: [off.info.defaultLayer], targets: [0, 5, 9] });
        assertClose(ta.layers[0].gradients!, tb.layers[0].gradients!, 'gradients of classes 0, 5, 9');
      });
    }

    test('noisy passes (smoothgradcampp) and aug_smooth go by the shortcut too, with the same maps', async () => {
      const { on, off } = await pair(dir);
      for (const req of [{ method: 'smoothgradcampp' as MethodName, seed: 3 }, { method: 'gradcam' as MethodName, augSmooth: true }]) {
        const a = await on.explain({ input: x, ...req });
        const b = await off.explain({ input: x, ...req });
        assertClose(a.explanations[0].map.data, b.explanations[0].map.data, req.method);
      }
      assert.equal(await usedShortcut(on, [on.info.defaultLayer]), true);
    });

    test('not used where the head is more than GAP → linear: an earlier layer, several layers', async () => {
      const { on, off } = await pair(dir);
      const earlier = on.info.candidateLayers.find((c) => c.name !== on.info.defaultLayer && on.tensorDims(c.name)?.[2] !== on.tensorDims(on.info.defaultLayer)?.[2])!.name;
      for (const layers of [[earlier], [on.info.defaultLayer, earlier]]) {
        const a = await on.explain({ input: x, method: 'gradcam', layers });
        const b = await off.explain({ input: x, method: 'gradcam', layers });
        assertClose(a.explanations[0].map.data, b.explanations[0].map.data, layers.join(' + '));
        assert.equal(await usedShortcut(on, layers), false, `${layers.join(' + ')}: the head's backward run`);
      }
    });
  });
}

test('not used on fixtures whose head is not GAP → linear (MobileNetV3: linear → Hardswish → linear; ConvNeXt: LayerNorm; VGG: an MLP)', async () => {
  for (const name of ['mobilenetv3', 'convnext', 'vgg']) {
    const rt = await ModelRuntime.load(path.join(FIXTURES, name), { intraOpThreads: 1 });
    runtimes.push(rt);
    await rt.explain({ input: uniform(rt.info.inputDims.reduce((a, b) => a * b, 1), 2), method: 'gradcam' });
    assert.equal(await usedShortcut(rt, [rt.info.defaultLayer]), false, name);
  }
});

/** input [1, 3, 8, 8] → Conv 3→4 → Relu ("feat") → `head` nodes reading "feat" → "logits" [1, 5]. */
function builtModel(head: NodeProto[], inits: TensorProto[]): string {
  const w = uniform(4 * 3 * 3 * 3, 11);
  const bytes = buildModelBytes({
    nodes: [makeNode('Conv', ['input', 'cw'], ['conv'], { pads: ints([1, 1, 1, 1]) }), makeNode('Relu', ['conv'], ['feat']), ...head],
    inputs: [{ name: 'input', dims: [1, 3, 8, 8] }],
    outputs: ['logits'],
    initializers: [floatTensor('cw', [4, 3, 3, 3], w), ...inits],
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'camserve-linear-'));
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'model.onnx'), bytes);
  return dir;
}

describe('built heads', () => {
  const W = floatTensor('W', [5, 4], uniform(20, 12));
  const Wt = floatTensor('Wt', [4, 5], uniform(20, 13));
  const b = floatTensor('b', [5], uniform(5, 14));
  const cases: { what: string; head: NodeProto[]; inits: TensorProto[]; shortcut: boolean }[] = [
    {
      what: 'GlobalAveragePool → Flatten → Gemm (transB, α = 0.5)', shortcut: true, inits: [W, b],
      head: [makeNode('GlobalAveragePool', ['feat'], ['p']), makeNode('Flatten', ['p'], ['f'], { axis: int(1) }), makeNode('Gemm', ['f', 'W', 'b'], ['logits'], { transB: int(1), alpha: float(0.5) })],
    },
    {
      what: 'ReduceMean (axes 2, 3, no keepdims) → MatMul → Add', shortcut: true, inits: [Wt, b],
      head: [makeNode('ReduceMean', ['feat'], ['p'], { axes: ints([2, 3]), keepdims: int(0) }), makeNode('MatMul', ['p', 'Wt'], ['m']), makeNode('Add', ['b', 'm'], ['logits'])],
    },
    {
      what: 'GlobalAveragePool → Flatten → Relu → Gemm (not linear)', shortcut: false, inits: [W, b],
      head: [makeNode('GlobalAveragePool', ['feat'], ['p']), makeNode('Flatten', ['p'], ['f']), makeNode('Relu', ['f'], ['r']), makeNode('Gemm', ['r', 'W', 'b'], ['logits'], { transB: int(1) })],
    },
    {
      what: 'GlobalMaxPool → Flatten → Gemm (not an average)', shortcut: false, inits: [W, b],
      head: [makeNode('GlobalMaxPool', ['feat'], ['p']), makeNode('Flatten', ['p'], ['f']), makeNode('Gemm', ['f', 'W', 'b'], ['logits'], { transB: int(1) })],
    },
    {
      what: 'GAP → Gemm, plus a second path from the layer into the logits', shortcut: false, inits: [W, b, int64Tensor('shape', [2], [1, -1])],
      head: [
        makeNode('GlobalAveragePool', ['feat'], ['p']), makeNode('Flatten', ['p'], ['f']), makeNode('Gemm', ['f', 'W', 'b'], ['g'], { transB: int(1) }),
        makeNode('GlobalMaxPool', ['feat'], ['q']), makeNode('Reshape', ['q', 'shape'], ['qf']), makeNode('Gemm', ['qf', 'W'], ['h'], { transB: int(1) }),
        makeNode('Add', ['g', 'h'], ['logits']),
      ],
    },
  ];
  for (const c of cases) {
    test(`${c.what}: shortcut ${c.shortcut ? 'used' : 'not used'}; gradients equal the head's backward pass`, async () => {
      const { on, off } = await pair(builtModel(c.head, c.inits));
      const x = uniform(3 * 8 * 8, 21);
      const ta = await on.tensors({ input: x, layers: ['feat'], targets: [0, 2, 4] });
      const tb = await off.tensors({ input: x, layers: ['feat'], targets: [0, 2, 4] });
      assertClose(ta.layers[0].gradients!, tb.layers[0].gradients!, c.what);
      assert.equal(await usedShortcut(on, ['feat']), c.shortcut);
    });
  }
});

test('model.json "linearShortcut": false makes one model differentiate its head; the maps are the same', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'camserve-no-shortcut-'));
  writeFileSync(path.join(dir, 'model.onnx'), readFileSync(path.join(FIXTURES, 'resnet', 'model.onnx')));
  writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ linearShortcut: false }));
  const rt = await ModelRuntime.load(dir, { intraOpThreads: 1 });
  const plain = await ModelRuntime.load(path.join(FIXTURES, 'resnet'), { intraOpThreads: 1 });
  runtimes.push(rt, plain);
  assert.equal(await usedShortcut(rt, [rt.info.defaultLayer]), false);
  assert.equal(await usedShortcut(plain, [plain.info.defaultLayer]), true);
  const x = readF32(path.join(FIXTURES, 'resnet'), 'input.bin');
  const a = await rt.explain({ input: x, method: 'gradcam' });
  const b = await plain.explain({ input: x, method: 'gradcam' });
  assertClose(a.explanations[0].map.data, b.explanations[0].map.data, 'gradcam map');
  writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ linearShortcut: 0 }));
  await assert.rejects(ModelRuntime.load(dir, { intraOpThreads: 1 }), /"linearShortcut" .*true or false/);
});

