// One seed per run (perSeed): gradients with exactly the forward dims, for paths whose tensors move or
// merge the batch axis (PyTorch's MultiheadAttention goes sequence-first and folds batch × heads into
// axis 0; Swin folds windows into it). Every case against central finite differences; the same graphs
// are refused without perSeed, naming the node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { floatTensor, int, int64Tensor, ints, makeNode } from '../../src/onnx/builder.js';
import { uniform } from '../helpers/fd.js';
import { assertGradient, fd } from './harness.js';

const EPS = 1e-2;

/** Self-attention as torch 1.13 exports nn.MultiheadAttention (batch_first): x [1, T, C], 2 heads. */
function attention(T: number, C: number) {
  const heads = 2;
  const d = C / heads;
  return {
    nodes: [
      makeNode('Transpose', ['x'], ['xt'], { perm: ints([1, 0, 2]) }), // [T, 1, C]
      makeNode('MatMul', ['xt', 'wqkv'], ['qkv']), // [T, 1, 3C]
      makeNode('Split', ['qkv', 'split'], ['q0', 'k0', 'v0'], { axis: int(2) }),
      makeNode('Reshape', ['q0', 'heads'], ['q1']), // [T, 1·heads, d]
      makeNode('Reshape', ['k0', 'heads'], ['k1']),
      makeNode('Reshape', ['v0', 'heads'], ['v1']),
      makeNode('Transpose', ['q1'], ['q'], { perm: ints([1, 0, 2]) }), // [heads, T, d]
      makeNode('Transpose', ['k1'], ['kT'], { perm: ints([1, 2, 0]) }), // [heads, d, T]
      makeNode('Transpose', ['v1'], ['v'], { perm: ints([1, 0, 2]) }),
      makeNode('MatMul', ['q', 'kT'], ['s']), // [heads, T, T]
      makeNode('Add', ['s', 'bias'], ['sb']), // a [T, T] bias broadcast over heads (lower rank)
      makeNode('Softmax', ['sb'], ['p'], { axis: int(-1) }),
      makeNode('MatMul', ['p', 'v'], ['o']), // [heads, T, d]
      makeNode('Transpose', ['o'], ['ot'], { perm: ints([1, 0, 2]) }), // [T, heads, d]
      makeNode('Reshape', ['ot', 'merge'], ['om']), // [T, 1, C]
      makeNode('Transpose', ['om'], ['ob'], { perm: ints([1, 0, 2]) }), // [1, T, C]
      makeNode('Gather', ['ob', 'zero'], ['cls'], { axis: int(1) }), // the class token [1, C]
      makeNode('Gemm', ['cls', 'head'], ['y'], { transB: int(1) }),
    ],
    initializers: [
      floatTensor('wqkv', [C, 3 * C], uniform(3 * C * C, 11)),
      int64Tensor('split', [3], [C, C, C]),
      int64Tensor('heads', [3], [T, heads, d]),
      int64Tensor('merge', [3], [T, 1, C]),
      floatTensor('bias', [T, T], uniform(T * T, 12)),
      int64Tensor('zero', [], [0]),
      floatTensor('head', [3, C], uniform(3 * C, 13)),
    ],
  };
}

test('attention that goes sequence-first and folds batch × heads into axis 0: exact with one seed per run', async () => {
  const g = attention(5, 4);
  const r = await fd({ ...g, inputs: { x: [[1, 5, 4], uniform(20, 1)] }, eps: EPS, perSeed: true });
  assertGradient(r, 2e-3);
});

test('the same graph without perSeed is refused, naming the node whose input has no batch of 1 in axis 0', async () => {
  const g = attention(5, 4);
  await assert.rejects(fd({ ...g, inputs: { x: [[1, 5, 4], uniform(20, 1)] }, eps: EPS }), /Transpose node "ob".*must have batch 1 in axis 0/);
});

test('windows folded into axis 0 (Swin): Reshape/Transpose partition, Slice, Concat and Gather along axis 0, a reduction over it', async () => {
  // x [1, 4, 4, 2] → 4 windows of 2×2 in axis 0 → per-window mean → windows merged back.
  const r = await fd({
    nodes: [
      makeNode('Reshape', ['x', 'split6'], ['x6']), // [1, 2, 2, 2, 2, 2]
      makeNode('Transpose', ['x6'], ['xw'], { perm: ints([0, 1, 3, 2, 4, 5]) }),
      makeNode('Reshape', ['xw', 'windows'], ['w']), // [4, 4, 2]: windows × tokens × C
      makeNode('Mul', ['w', 'w'], ['w2']),
      makeNode('Slice', ['w2', 's0', 's1', 'ax0'], ['first3']), // windows 0..2
      makeNode('Gather', ['w2', 'three'], ['last']), // window 3, [4, 2]
      makeNode('Unsqueeze', ['last', 'ax0'], ['last1']),
      makeNode('Concat', ['last1', 'first3'], ['rolled'], { axis: int(0) }), // windows rolled by one
      makeNode('Add', ['rolled', 'w'], ['mixed']),
      makeNode('ReduceSum', ['mixed', 'ax0'], ['summed'], { keepdims: int(1) }), // over the windows: [1, 4, 2]
      makeNode('Reshape', ['summed', 'flat'], ['y']),
    ],
    initializers: [
      int64Tensor('split6', [6], [1, 2, 2, 2, 2, 2]),
      int64Tensor('windows', [3], [4, 4, 2]),
      int64Tensor('s0', [1], [0]),
      int64Tensor('s1', [1], [3]),
      int64Tensor('ax0', [1], [0]),
      int64Tensor('three', [], [3]),
      int64Tensor('flat', [2], [1, 8]),
    ],
    inputs: { x: [[1, 4, 4, 2], uniform(32, 2)] },
    eps: EPS,
    perSeed: true,
  });
  assertGradient(r, 2e-3);
});
