// Finite-difference tests of Gemm (dA = α·dY·B'ᵀ) and MatMul (dA = dY·Bᵀ, dB = Aᵀ·dY, summed over
// broadcast batch axes). Both are (bi)linear, so eps 1e-2 has no truncation error.
import { test } from 'node:test';
import { float, floatTensor, int, makeNode, type AttrValue } from '../../src/onnx/builder.js';
import { uniform } from '../helpers/fd.js';
import { assertGradient, count, fd } from './harness.js';

const EPS = 1e-2;
const BOUND = 1e-3;

const F = 6;
const N = 4;

async function gemmFd(attrs: Record<string, AttrValue | undefined>, bDims: number[], cDims: number[] | undefined, opset: number) {
  const inputs = ['a', 'b'];
  const initializers = [floatTensor('b', bDims, uniform(count(bDims), 2))];
  if (cDims) {
    inputs.push('c');
    initializers.push(floatTensor('c', cDims, uniform(count(cDims), 3)));
  }
  return fd({
    nodes: [makeNode('Gemm', inputs, ['y'], attrs)],
    inputs: { a: [[1, F], uniform(F, 1)] },
    initializers,
    opset,
    eps: EPS,
  });
}

test('Gemm transB 1 with bias C [N] (Linear layer as exported, opset 11)', async () => {
  assertGradient(await gemmFd({ transB: int(1) }, [N, F], [N], 11), BOUND);
});

test('Gemm transB 0, alpha 0.5, beta 2, bias C [1, N] (opset 13)', async () => {
  assertGradient(await gemmFd({ alpha: float(0.5), beta: float(2) }, [F, N], [1, N], 13), BOUND);
});

test('Gemm transB 1, alpha 1.5, without C (opset 13)', async () => {
  assertGradient(await gemmFd({ transB: int(1), alpha: float(1.5) }, [N, F], undefined, 13), BOUND);
});

test('Gemm transB 1, alpha 2, bias C (opset 9: Gemm needs C, the gradient uses MatMul)', async () => {
  assertGradient(await gemmFd({ transB: int(1), alpha: float(2) }, [N, F], [N], 9), BOUND);
});

test('Gemm transB 0, bias C (opset 10)', async () => {
  assertGradient(await gemmFd({}, [F, N], [1, N], 10), BOUND);
});

test('Gemm transB 0 without C, default alpha (opset 11)', async () => {
  assertGradient(await gemmFd({}, [F, N], undefined, 11), BOUND);
});

async function matMulFd(a: number[], b: number[], opts: { bConstant?: boolean; aConstant?: boolean; opset: number }) {
  const inputs: Record<string, readonly [readonly number[], Float32Array]> = {};
  const initializers = [];
  if (opts.aConstant) initializers.push(floatTensor('a', a, uniform(count(a), 11)));
  else inputs.a = [a, uniform(count(a), 11)];
  if (opts.bConstant) initializers.push(floatTensor('b', b, uniform(count(b), 12)));
  else inputs.b = [b, uniform(count(b), 12)];
  return fd({ nodes: [makeNode('MatMul', ['a', 'b'], ['y'])], inputs, initializers, opset: opts.opset, eps: EPS });
}

test('MatMul [1,H,W,C] @ constant [C,N] (Linear on an NHWC tensor, opset 11)', async () => {
  assertGradient(await matMulFd([1, 3, 4, 5], [5, 6], { bConstant: true, opset: 11 }), BOUND);
});

test('MatMul [1,H,W,C] @ constant [C,N] (opset 13)', async () => {
  assertGradient(await matMulFd([1, 4, 3, 6], [6, 4], { bConstant: true, opset: 13 }), BOUND);
});

test('MatMul [1,M,K] @ [1,K,N], both operands on the path (opset 13)', async () => {
  assertGradient(await matMulFd([1, 4, 5], [1, 5, 3], { opset: 13 }), BOUND);
});

test('MatMul [1,2,M,K] @ [1,1,K,N], both on the path: dB summed over the broadcast axis 1 (opset 13)', async () => {
  assertGradient(await matMulFd([1, 2, 3, 4], [1, 1, 4, 5], { opset: 13 }), BOUND);
});

test('MatMul [1,1,M,K] @ [1,3,K,N], both on the path: dA summed over the broadcast axis 1 (opset 17)', async () => {
  assertGradient(await matMulFd([1, 1, 3, 4], [1, 3, 4, 2], { opset: 17 }), BOUND);
});

test('MatMul [1,2,M,K] @ constant [K,N] of lower rank (opset 11)', async () => {
  assertGradient(await matMulFd([1, 2, 3, 4], [4, 5], { bConstant: true, opset: 11 }), BOUND);
});

test('MatMul constant [M,K] @ [1,K,N] (path operand second, constant of lower rank; opset 13)', async () => {
  assertGradient(await matMulFd([3, 4], [1, 4, 5], { aConstant: true, opset: 13 }), BOUND);
});
