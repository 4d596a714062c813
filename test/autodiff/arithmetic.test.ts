// Finite-difference tests of the broadcasting arithmetic rules (Add, Sub, Mul, Div): both operands on
// the path with one shape; a [1, C, 1, 1] path operand against [1, C, H, W] (squeeze-excite: its gradient
// is summed over H and W); a constant operand of lower rank off the path; Div with the divisor on the path.
import { test } from 'node:test';
import { floatTensor, makeNode } from '../../src/onnx/builder.js';
import { uniform } from '../helpers/fd.js';
import { assertGradient, awayFromZero, count, fd } from './harness.js';

const C = 3;
const H = 4;
const W = 5;
const XD = [1, C, H, W];
const SD = [1, C, 1, 1];

/** Add/Sub/Mul are at most bilinear: central differences are exact up to rounding. */
const EPS = 1e-2;
const BOUND = 1e-3;
/** 1/b has |d³/db³| = 6/b⁴ ≤ 96 for |b| ≥ 0.5: eps 3e-3 keeps the truncation error ~eps²·16 ≈ 1.5e-4 at worst. */
const DIV_EPS = 3e-3;

/** Divisors in ±[0.5, 1.5]: 1/b stays smooth over ±eps. */
const divisor = (n: number, seed: number) => awayFromZero(n, seed, 0.5, 1.5);

async function binaryFd(op: string, a: [number[], Float32Array], b: [number[], Float32Array], opset: number) {
  return fd({ nodes: [makeNode(op, ['a', 'b'], ['y'])], inputs: { a, b }, opset, eps: op === 'Div' ? DIV_EPS : EPS });
}

async function constantFd(op: string, x: Float32Array, cDims: number[], c: Float32Array, constantFirst: boolean, opset: number) {
  return fd({
    nodes: [makeNode(op, constantFirst ? ['c', 'x'] : ['x', 'c'], ['y'])],
    inputs: { x: [XD, x] },
    initializers: [floatTensor('c', cDims, c)],
    opset,
    eps: op === 'Div' ? DIV_EPS : EPS,
  });
}

const full = (seed: number): [number[], Float32Array] => [XD, uniform(count(XD), seed)];
const perChannel = (seed: number): [number[], Float32Array] => [SD, uniform(C, seed)];

// Both operands on the path, same shape.

test('Add: both operands on the path, same shape (opset 11)', async () => {
  assertGradient(await binaryFd('Add', full(1), full(2), 11), BOUND);
});

test('Sub: both operands on the path, same shape (dB = −dY, opset 13)', async () => {
  assertGradient(await binaryFd('Sub', full(3), full(4), 13), BOUND);
});

test('Mul: both operands on the path, same shape (opset 14)', async () => {
  assertGradient(await binaryFd('Mul', full(5), full(6), 14), BOUND);
});

test('Div: both operands on the path, same shape, divisor away from 0 (opset 11)', async () => {
  assertGradient(await binaryFd('Div', full(7), [XD, divisor(count(XD), 8)], 11), BOUND);
});

// A [1, C, 1, 1] operand on the path broadcast against [1, C, H, W] (squeeze-excite gating).

test('Mul: [1,C,H,W] ⊙ [1,C,1,1], both on the path (SE gate gradient summed over H, W; opset 13)', async () => {
  assertGradient(await binaryFd('Mul', full(9), perChannel(10), 13), BOUND);
});

test('Mul: [1,C,1,1] ⊙ [1,C,H,W], broadcast operand first (opset 11)', async () => {
  assertGradient(await binaryFd('Mul', perChannel(11), full(12), 11), BOUND);
});

test('Add: [1,C,H,W] + [1,C,1,1], both on the path (opset 14)', async () => {
  assertGradient(await binaryFd('Add', full(13), perChannel(14), 14), BOUND);
});

test('Sub: [1,C,1,1] − [1,C,H,W], both on the path (opset 13)', async () => {
  assertGradient(await binaryFd('Sub', perChannel(15), full(16), 13), BOUND);
});

test('Div: [1,C,H,W] / [1,C,1,1], both on the path (opset 13)', async () => {
  assertGradient(await binaryFd('Div', full(17), [SD, divisor(C, 18)], 13), BOUND);
});

test('Div: [1,C,1,1] / [1,C,H,W], both on the path (opset 11)', async () => {
  assertGradient(await binaryFd('Div', perChannel(19), [XD, divisor(count(XD), 20)], 11), BOUND);
});

test('Mul: [1,1,H,W] spatial map ⊙ [1,C,1,1], both on the path (both operands broadcast; opset 13)', async () => {
  assertGradient(await binaryFd('Mul', [[1, 1, H, W], uniform(H * W, 21)], perChannel(22), 13), BOUND);
});

// A constant operand of lower rank, off the path.

test('Add: x + constant [C,1,1] (bias of lower rank, opset 11)', async () => {
  assertGradient(await constantFd('Add', uniform(count(XD), 23), [C, 1, 1], uniform(C, 24), false, 11), BOUND);
});

test('Sub: constant [W] − x (opset 13)', async () => {
  assertGradient(await constantFd('Sub', uniform(count(XD), 25), [W], uniform(W, 26), true, 13), BOUND);
});

test('Sub: x − constant [C,1,1] (opset 14)', async () => {
  assertGradient(await constantFd('Sub', uniform(count(XD), 27), [C, 1, 1], uniform(C, 28), false, 14), BOUND);
});

test('Mul: x ⊙ constant [C,1,1] (layer scale, opset 13)', async () => {
  assertGradient(await constantFd('Mul', uniform(count(XD), 29), [C, 1, 1], uniform(C, 30), false, 13), BOUND);
});

test('Mul: constant [W] ⊙ x (opset 11)', async () => {
  assertGradient(await constantFd('Mul', uniform(count(XD), 31), [W], uniform(W, 32), true, 11), BOUND);
});

test('Div: x / constant [C,1,1] (normalisation by a std, opset 13)', async () => {
  assertGradient(await constantFd('Div', uniform(count(XD), 33), [C, 1, 1], divisor(C, 34), false, 13), BOUND);
});

test('Div: constant [W] / x, divisor on the path and away from 0 (opset 14)', async () => {
  assertGradient(await constantFd('Div', divisor(count(XD), 35), [W], uniform(W, 36), true, 14), BOUND);
});

test('Add: x + scalar constant (opset 13)', async () => {
  assertGradient(await constantFd('Add', uniform(count(XD), 37), [], Float32Array.of(0.5), false, 13), BOUND);
});
