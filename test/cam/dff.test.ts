// Deep Feature Factorization against pytorch-grad-cam's (scikit-learn NMF) on two GAP → linear models:
// the same start gives the same factors; concepts through the classifier give the library's classes.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ModelRuntime } from '../../src/engine/runtime.js';
import { attrInt } from '../../src/onnx/model.js';
import { conceptTopClasses, deepFeatureFactorization } from '../../src/cam/dff.js';
import { correlation, listMethodFixtures, readF32, readStored, relError, type StoredRef } from '../helpers/fixtures.js';

interface DffRef {
  case: string; layer: string; nComponents: number; nmfIterations: number; topClasses: number[][];
  init: { W: StoredRef; H: StoredRef }; concepts: StoredRef; explanations: StoredRef; conceptOutputs: StoredRef;
}
const fixtures = listMethodFixtures().filter((f) => f.dff);

test('DFF references exist for densenet and efficientnet', () => {
  assert.deepEqual(fixtures.map((f) => f.name).sort(), ['densenet', 'efficientnet']);
});

/** ‖X − WH‖ / ‖X‖ with X = A minus channel minima, W = concepts minus those minima */
function residual(A: Float32Array, C: number, hw: number, k: number, concepts: Float32Array, maps: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let c = 0; c < C; c++) {
    let min = Infinity;
    for (let i = 0; i < hw; i++) min = Math.min(min, A[c * hw + i]);
    for (let i = 0; i < hw; i++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += (concepts[c * k + t] - min) * maps[t * hw + i];
      const x = A[c * hw + i] - min;
      num += (x - s) ** 2;
      den += x * x;
    }
  }
  return Math.sqrt(num / den);
}

for (const fx of fixtures) {
  const ref = fx.dff as unknown as DffRef;
  describe(`${fx.name}: deep feature factorization at ${ref.case} (k = ${ref.nComponents})`, () => {
    let rt: ModelRuntime;
    const input = readF32(fx.dir, fx.fixture.input.file);
    after(async () => { await rt?.release(); });
    const setup = async () => {
      rt ??= await ModelRuntime.load(fx.dir);
      const A = (await rt.tensors({ input, layers: [ref.layer] })).layers[0].activations;
      const [, C, h, w] = rt.tensorDims(ref.layer)!;
      return { A, C, hw: h * w, k: ref.nComponents };
    };

    test('from the library\'s start, concepts and maps equal scikit-learn\'s (each component r ≥ 0.999, relative error ≤ 1e-2)', async () => {
      const { A, C, hw, k } = await setup();
      const r = deepFeatureFactorization(A, C, hw, k, { init: { W: readStored(fx.dir, ref.init.W), H: readStored(fx.dir, ref.init.H) } });
      const concepts = readStored(fx.dir, ref.concepts);
      const maps = readStored(fx.dir, ref.explanations);
      assert.ok(Math.abs(r.iterations - ref.nmfIterations) <= 2, `${r.iterations} iterations, scikit-learn ${ref.nmfIterations}`);
      for (let t = 0; t < k; t++) {
        const mine = r.maps.subarray(t * hw, (t + 1) * hw);
        const theirs = maps.subarray(t * hw, (t + 1) * hw);
        const rc = correlation(mine, theirs);
        assert.ok(rc >= 0.999, `map ${t}: r = ${rc}`);
      }
      assert.ok(relError(r.maps, maps) <= 1e-2, `maps: relative error ${relError(r.maps, maps)}`);
      assert.ok(relError(r.concepts, concepts) <= 1e-2, `concepts: relative error ${relError(r.concepts, concepts)}`);
    });

    test('concepts through the linear classifier give the library\'s outputs and top-2 classes', async () => {
      const { k } = await setup();
      const concepts = readStored(fx.dir, ref.concepts);
      const gemm = [...rt.model.nodes].reverse().find((n) => n.op_type === 'Gemm')!;
      assert.equal(attrInt(gemm, 'transB', 0), 1);
      const Wt = (await rt.model.constantValue(gemm.input[1]))!.data as Float32Array;
      const b = (await rt.model.constantValue(gemm.input[2]))!.data as Float32Array;
      const classes = b.length;
      const C = Wt.length / classes;
      const outputs = new Float32Array(k * classes);
      for (let t = 0; t < k; t++) for (let j = 0; j < classes; j++) {
        let s = b[j];
        for (let c = 0; c < C; c++) s += Wt[j * C + c] * concepts[c * k + t];
        outputs[t * classes + j] = s;
      }
      assert.ok(relError(outputs, readStored(fx.dir, ref.conceptOutputs)) <= 1e-5);
      assert.deepEqual(conceptTopClasses(outputs, classes), ref.topClasses);
    });

    test('from its own seeded start the factorisation fits about as well as scikit-learn\'s', async () => {
      const { A, C, hw, k } = await setup();
      const mine = deepFeatureFactorization(A, C, hw, k, { seed: 3 });
      const again = deepFeatureFactorization(A, C, hw, k, { seed: 3 });
      assert.deepEqual(mine.maps, again.maps);
      for (const v of mine.maps) assert.ok(v >= 0);
      const ours = residual(A, C, hw, k, mine.concepts, mine.maps);
      const theirs = residual(A, C, hw, k, readStored(fx.dir, ref.concepts), readStored(fx.dir, ref.explanations));
      assert.ok(ours <= theirs + 0.05, `residual ${ours} vs scikit-learn's ${theirs}`);
    });
  });
}

/** Each of `ours` matched to the library component it correlates best with (greedy, best pairs first). */
function matchComponents(ours: Float32Array, theirs: Float32Array, k: number, hw: number): { pairs: [number, number][]; r: number[] } {
  const rs: [number, number, number][] = [];
  for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) rs.push([correlation(ours.subarray(a * hw, (a + 1) * hw), theirs.subarray(b * hw, (b + 1) * hw)), a, b]);
  rs.sort((x, y) => y[0] - x[0]);
  const usedA = new Set<number>();
  const usedB = new Set<number>();
  const pairs: [number, number][] = [];
  const r: number[] = [];
  for (const [v, a, b] of rs) {
    if (usedA.has(a) || usedB.has(b)) continue;
    usedA.add(a); usedB.add(b); pairs.push([a, b]); r.push(v);
  }
  return { pairs, r };
}

for (const fx of fixtures) {
  const ref = fx.dff as unknown as DffRef;
  describe(`${fx.name}: method=dff through ModelRuntime.explain`, () => {
    let rt: ModelRuntime;
    const input = readF32(fx.dir, fx.fixture.input.file);
    after(async () => { await rt?.release(); });

    test('with the library\'s NMF start as draws: its maps (r ≥ 0.999 each), concept logits (1e-4) and top-2 classes', async () => {
      rt ??= await ModelRuntime.load(fx.dir);
      const draws = new Float32Array([...readStored(fx.dir, ref.init.W), ...readStored(fx.dir, ref.init.H)]);
      const r = await rt.explain({ input, method: 'dff', layers: [ref.layer], concepts: ref.nComponents, draws });
      const f = r.factorization!;
      assert.equal(r.explanations.length, 0);
      assert.equal(f.concepts.length, ref.nComponents);
      const maps = readStored(fx.dir, ref.explanations);
      const hw = f.concepts[0].map.width * f.concepts[0].map.height;
      f.concepts.forEach((c, t) => {
        const rc = correlation(c.map.data, maps.subarray(t * hw, (t + 1) * hw));
        assert.ok(rc >= 0.999, `concept ${t}: r = ${rc}`);
      });
      const logits = new Float32Array(f.concepts.flatMap((c) => [...c.logits]));
      const e = relError(logits, readStored(fx.dir, ref.conceptOutputs));
      assert.ok(e <= 1e-4, `concept logits: relative error ${e}`);
      assert.deepEqual(f.concepts.map((c) => c.classes.map((x) => x.index)), ref.topClasses);
      for (const c of f.concepts) {
        assert.ok(c.classes[0].probability >= c.classes[1].probability);
        assert.ok(c.classes.every((x) => x.probability > 0 && x.probability <= 1));
      }
    });

    // NMF has local optima: from seed 0 (the default) both fixtures reach the library's factorisation (every
    // matched pair r > 0.99999, measured); from other seeds they may not (densenet, seed 2: one concept at r = 0.40).
    test('from its own start (seed 0): every concept map matches one of the library\'s (r ≥ 0.9999), reproducibly', async () => {
      rt ??= await ModelRuntime.load(fx.dir);
      const r1 = (await rt.explain({ input, method: 'dff', layers: [ref.layer], concepts: ref.nComponents, seed: 0 })).factorization!;
      const r2 = (await rt.explain({ input, method: 'dff', layers: [ref.layer], concepts: ref.nComponents, seed: 0 })).factorization!;
      assert.deepEqual(r1.concepts.map((c) => [...c.map.data]), r2.concepts.map((c) => [...c.map.data]));
      const hw = r1.concepts[0].map.width * r1.concepts[0].map.height;
      const ours = new Float32Array(r1.concepts.flatMap((c) => [...c.map.data]));
      const { r } = matchComponents(ours, readStored(fx.dir, ref.explanations), ref.nComponents, hw);
      assert.ok(r.every((v) => v >= 0.9999), `matched correlations ${r.map((v) => v.toFixed(5)).join(', ')}`);
    });
  });
}
