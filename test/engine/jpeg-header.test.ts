// The JPEG frame header read in JS (src/engine/jpeg-header.ts) and decodeImage's one-call path for JPEGs
// that need no shrinking: the same answer as sharp's metadata and decode.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { ImageError, decodeImage } from '../../src/engine/input.js';
import { jpegFrameSize } from '../../src/engine/jpeg-header.js';

function gradient(width: number, height: number): Buffer {
  const rgb = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    rgb[i * 3] = (i % width) * 5;
    rgb[i * 3 + 1] = Math.floor(i / width) * 7;
    rgb[i * 3 + 2] = (i * 13) & 0xff;
  }
  return rgb;
}

const raw = (w: number, h: number) => sharp(gradient(w, h), { raw: { width: w, height: h, channels: 3 } });

/** JPEGs as cameras and tools write them. */
async function variants(): Promise<Record<string, Buffer>> {
  return {
    baseline: await raw(37, 23).jpeg().toBuffer(),
    progressive: await raw(37, 23).jpeg({ progressive: true }).toBuffer(),
    'EXIF orientation 6': await raw(37, 23).jpeg().withMetadata({ orientation: 6 }).toBuffer(),
    'EXIF orientation 3': await raw(37, 23).jpeg().withMetadata({ orientation: 3 }).toBuffer(),
    grey: await raw(37, 23).toColourspace('b-w').jpeg().toBuffer(),
    CMYK: await raw(37, 23).toColourspace('cmyk').jpeg().toBuffer(),
    'colour profile': await raw(37, 23).jpeg().withIccProfile('p3').toBuffer(),
    '4:4:4, restart markers': await raw(64, 48).jpeg({ chromaSubsampling: '4:4:4', quality: 95 }).toBuffer(),
  };
}

test('jpegFrameSize reads the stored size of every kind of JPEG, as sharp reads it', async () => {
  for (const [what, bytes] of Object.entries(await variants())) {
    const meta = await sharp(bytes).metadata();
    assert.deepEqual(jpegFrameSize(bytes), { width: meta.width, height: meta.height }, what);
  }
});

test('jpegFrameSize: anything odd is left to sharp', async () => {
  const good = await raw(20, 10).jpeg().toBuffer();
  assert.deepEqual(jpegFrameSize(good), { width: 20, height: 10 });
  const sof = good.findIndex((b, i) => b === 0xff && good[i + 1] === 0xc0);
  assert.ok(sof > 0, 'a baseline frame header');
  const dnl = Buffer.from(good);
  dnl[sof + 5] = 0;
  dnl[sof + 6] = 0;
  const filled = Buffer.concat([good.subarray(0, 2), Buffer.from([0xff, 0xff, 0xff]), good.subarray(3)]);
  assert.deepEqual(jpegFrameSize(filled), { width: 20, height: 10 }, 'fill bytes before a marker');
  // Huffman (C4), arithmetic-coding (CC) tables and a restart marker before the frame header are skipped.
  const tablesFirst = Buffer.from([0xff, 0xd8, 0xff, 0xc4, 0, 5, 0, 1, 2, 0xff, 0xcc, 0, 4, 0, 1, 0xff, 0xd0, 0xff, 0xc2, 0, 11, 8, 0, 10, 0, 20, 1, 1, 0x11, 0]);
  assert.deepEqual(jpegFrameSize(tablesFirst), { width: 20, height: 10 }, 'tables before a progressive frame header');
  const cases: Record<string, Uint8Array> = {
    'not a JPEG': await raw(20, 10).png().toBuffer(),
    'empty': Buffer.alloc(0),
    'magic only': Buffer.from([0xff, 0xd8, 0xff]),
    'cut before the frame header': good.subarray(0, sof + 4),
    'height given later (DNL)': dnl,
    'a segment longer than the file': Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x40, 0x00, 0, 0]),
    'image data before any frame header': Buffer.from([0xff, 0xd8, 0xff, 0xda, 0x00, 0x02, 0xff, 0xd9]),
    'garbage between segments': Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x02, 0x12, 0xff, 0xc0, 0, 11, 8, 0, 10, 0, 20, 1, 1, 0x11, 0]),
  };
  for (const [what, bytes] of Object.entries(cases)) assert.equal(jpegFrameSize(bytes), undefined, what);
});

test('decodeImage answers a JPEG in one call as it did with sharp\'s metadata: format, upright size, pixels', async () => {
  const limits = { maxPixels: 1_000_000, maxSide: 2048 };
  for (const [what, bytes] of Object.entries(await variants())) {
    const meta = await sharp(bytes).metadata();
    const swapped = (meta.orientation ?? 1) >= 5;
    const d = await decodeImage(bytes, limits);
    assert.deepEqual([d.format, d.width, d.height, d.hadAlpha], ['jpeg', swapped ? meta.height : meta.width, swapped ? meta.width : meta.height, false], what);
    const expected = await sharp(bytes).rotate().toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([d.rgb.width, d.rgb.height, d.rgb.channels], [expected.info.width, expected.info.height, 3], what);
    assert.ok(d.rgb.data.equals(expected.data), `${what}: pixels`);
  }
});

test('decodeImage: a JPEG larger than maxSide or the pixel limit still takes the full path, and a cut one is refused as damaged', async () => {
  const bytes = await raw(60, 40).jpeg().toBuffer();
  const shrunk = await decodeImage(bytes, { maxPixels: 1_000_000, maxSide: 30 });
  assert.deepEqual([shrunk.width, shrunk.height, shrunk.rgb.width, shrunk.rgb.height], [60, 40, 30, 20]);
  await assert.rejects(decodeImage(bytes, { maxPixels: 1000, maxSide: 2048 }), (e: unknown) => e instanceof ImageError && e.kind === 'too-large');
  // Cut inside the image data: the frame header is whole, the decode fails.
  const sos = bytes.findIndex((b, i) => b === 0xff && bytes[i + 1] === 0xda);
  const cut = bytes.subarray(0, sos + 20);
  assert.deepEqual(jpegFrameSize(cut), { width: 60, height: 40 });
  await assert.rejects(decodeImage(cut, { maxPixels: 1_000_000, maxSide: 2048 }), (e: unknown) => e instanceof ImageError && e.kind === 'damaged');
});
