// Backward passes down to the input run in batches where the model's batch axis is dynamic: each row of
// the batch is its own input with its own seed, and the rules keep the rows apart (axis 0 of every
// gradient is the batch). Checked against one-at-a-time runs of the same model with a fixed batch of 1.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ModelRuntime } from '../../src/engine/runtime.js';
import { decodeModel, encodeModel } from '../../src/onnx/proto.js';
import { gaussian } from '../../src/cam/random.js';
import { listFixtures, readF32, relError } from '../helpers/fixtures.js';

/** A copy of a fixture model whose input's batch axis is symbolic ("N"). */
function dynamicBatchCopy(dir: string): string {
  const m = decodeModel(readFileSync(path.join(dir, 'model.onnx')));
  const dim = m.graph!.input![0].type!.tensor_type!.shape!.dim!;
  dim[0] = { dim_param: 'N' };
  const out = mkdtempSync(path.join(tmpdir(), 'camserve-dynamic-'));
  writeFileSync(path.join(out, 'model.onnx'), encodeModel(m));
  return out;
}

/** Residual adds, Hardswish and squeeze-excitation, LayerNorm behind transposes (all families batch: checked by hand). */
const FAMILIES = ['resnet', 'mobilenetv3', 'convnext'];

for (const fx of listFixtures().filter((f) => FAMILIES.includes(f.name))) {
  describe(`${fx.name}: input gradients in batches`, () => {
    let fixed: ModelRuntime;
    let dynamic: ModelRuntime;
    after(async () => { await fixed?.release(); await dynamic?.release(); });
    const x = readF32(fx.dir, fx.input.file);
    const draws = gaussian(1, 3)(5 * x.length);

    for (const [method, targetKind, extra] of [['integrated-gradients', 'class', {}], ['smoothgrad', 'softmax', { draws }]] as const) {
      test(`${method} (target_kind=${targetKind}): batched runs (batch ≤ 8) equal one-at-a-time runs to 1e-5 relative`, async () => {
        // symbolicBatch: false keeps the fixed batch of 1 (else it is made symbolic at load).
        fixed ??= await ModelRuntime.load(fx.dir, { symbolicBatch: false });
        dynamic ??= await ModelRuntime.load(dynamicBatchCopy(fx.dir), { batchSize: 8, batchMs: 1e9 });
        assert.equal(fixed.dynamicBatch, false);
        assert.equal(dynamic.dynamicBatch, true);
        const a = await fixed.explain({ input: x, method, targetKind, ...extra });
        const b = await dynamic.explain({ input: x, method, targetKind, ...extra });
        const e = relError(b.explanations[0].map.data, a.explanations[0].map.data);
        assert.ok(e <= 1e-5, `relative difference ${e}`);
        assert.equal((await dynamic.inputBackward('plain')).batched, true, 'the runs were batched');
      });
    }
  });
}
