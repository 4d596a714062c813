// Where the image lies in the model input, and the way back (src/render/geometry.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inputGeometry, mapToImage } from '../../src/render/index.js';

test('mapToImage undoes crop (zero outside the window) and pad (borders dropped)', () => {
  const ones = { width: 2, height: 2, data: new Float32Array([1, 1, 1, 1]) };
  const crop = mapToImage(ones, inputGeometry({ width: 12, height: 4 }, { width: 4, height: 4 }, 'crop'), 12, 4);
  assert.equal(crop.data[0], 0, 'left of the crop');
  assert.equal(crop.data[6], 1, 'inside the crop');
  assert.equal(crop.data[11], 0, 'right of the crop');
  const ramp = { width: 1, height: 6, data: new Float32Array([9, 9, 0.25, 0.75, 9, 9]) };
  const pad = mapToImage(ramp, inputGeometry({ width: 12, height: 4 }, { width: 6, height: 6 }, 'pad'), 12, 4);
  assert.ok(pad.data.every((v) => v >= 0.25 && v <= 0.75), 'only the rows the image occupies');
});

