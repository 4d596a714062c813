// Finite-difference tests of the Einsum rule (opset 12+): the batched products real models use
// (attention's q·kᵀ and attn·v, bmm, a 1×1 conv as nchw,kc->nkhw), transposes, sums over an index (a
// letter only one operand has), outer and dot products, ellipses and the implicit output. Einsum is
// multilinear: eps 1e-2 leaves only float32 rounding (products of two path operands are exact quadratics).
import { test } from 'node:test';
import { floatTensor, makeNode, str } from '../../src/onnx/builder.js';
import { uniform } from '../helpers/fd.js';
import { assertGradient, count, fd } from './harness.js';

const EPS = 1e-2;
const BOUND = 1e-4;

/** Einsum of path operands (fed inputs) and constant operands (initializers), in the given order. */
async function einsumFd(equation: string, operands: { dims: number[]; constant?: boolean }[], opset = 12) {
  const names = operands.map((_, i) => `o${i}`);
  const inputs = Object.fromEntries(operands.flatMap((o, i) => (o.constant ? [] : [[names[i], [o.dims, uniform(count(o.dims), 10 + i)] as const]])));
  const initializers = operands.flatMap((o, i) => (o.constant ? [floatTensor(names[i], o.dims, uniform(count(o.dims), 20 + i))] : []));
  return fd({ nodes: [makeNode('Einsum', names, ['y'], { equation: str(equation) })], inputs, initializers, opset, eps: EPS });
}

test('Einsum bij,bjk->bik (bmm), both operands on the path (opset 12)', async () => {
  assertGradient(await einsumFd('bij,bjk->bik', [{ dims: [1, 3, 4] }, { dims: [1, 4, 5] }]), BOUND);
});

test('Einsum bhid,bhjd->bhij (attention scores q·kᵀ), both on the path (opset 13)', async () => {
  assertGradient(await einsumFd('bhid,bhjd->bhij', [{ dims: [1, 2, 3, 4] }, { dims: [1, 2, 5, 4] }], 13), BOUND);
});

test('Einsum bhij,bhjd->bhid (attention weights · values), both on the path (opset 17)', async () => {
  assertGradient(await einsumFd('bhij,bhjd->bhid', [{ dims: [1, 2, 3, 5] }, { dims: [1, 2, 5, 4] }], 17), BOUND);
});

test('Einsum nchw,kc->nkhw (1×1 conv) with a constant weight (opset 12)', async () => {
  assertGradient(await einsumFd('nchw,kc->nkhw', [{ dims: [1, 3, 4, 5] }, { dims: [6, 3], constant: true }]), BOUND);
});

test('Einsum with spaces and a constant first operand: kc, nchw -> nkhw (opset 18)', async () => {
  assertGradient(await einsumFd('kc, nchw -> nkhw', [{ dims: [6, 3], constant: true }, { dims: [1, 3, 4, 5] }], 18), BOUND);
});

test('Einsum bij->bji (a transpose)', async () => {
  assertGradient(await einsumFd('bij->bji', [{ dims: [1, 3, 4] }]), BOUND);
});

test('Einsum bij->bi (a sum over j: the letter is broadcast back)', async () => {
  assertGradient(await einsumFd('bij->bi', [{ dims: [1, 3, 4] }]), BOUND);
});

test('Einsum bijk,bk->bk (i and j summed in the first operand only)', async () => {
  assertGradient(await einsumFd('bijk,bk->bk', [{ dims: [1, 2, 3, 4] }, { dims: [1, 4] }], 13), BOUND);
});

test('Einsum bi,bj->bij (outer product)', async () => {
  assertGradient(await einsumFd('bi,bj->bij', [{ dims: [1, 3] }, { dims: [1, 4] }]), BOUND);
});

test('Einsum bi,i->b (dot with a constant vector)', async () => {
  assertGradient(await einsumFd('bi,i->b', [{ dims: [1, 6] }, { dims: [6], constant: true }]), BOUND);
});

test('Einsum bchw,bc->bhw (per-sample channel weighting, both on the path; opset 14)', async () => {
  assertGradient(await einsumFd('bchw,bc->bhw', [{ dims: [1, 3, 4, 5] }, { dims: [1, 3] }], 14), BOUND);
});

test('Einsum b...d,de->b...e (ellipsis over two axes, constant weight; opset 13)', async () => {
  assertGradient(await einsumFd('b...d,de->b...e', [{ dims: [1, 2, 3, 4] }, { dims: [4, 5], constant: true }], 13), BOUND);
});

test('Einsum ...ij,...jk (ellipsis, implicit output ...ik)', async () => {
  assertGradient(await einsumFd('...ij,...jk', [{ dims: [1, 2, 3, 4] }, { dims: [1, 2, 4, 3] }]), BOUND);
});

test('Einsum bij,jk (implicit output bik: letters used once, sorted)', async () => {
  assertGradient(await einsumFd('bij,jk', [{ dims: [1, 3, 4] }, { dims: [4, 5], constant: true }]), BOUND);
});

test('Einsum BIJ,BJK->BIK (upper-case letters; opset 21)', async () => {
  assertGradient(await einsumFd('BIJ,BJK->BIK', [{ dims: [1, 3, 4] }, { dims: [1, 4, 2] }], 21), BOUND);
});

test('Einsum of three operands bi,ij,bj->b (a bilinear form, the middle one constant)', async () => {
  assertGradient(await einsumFd('bi,ij,bj->b', [{ dims: [1, 3] }, { dims: [3, 4], constant: true }, { dims: [1, 4] }]), BOUND);
});
