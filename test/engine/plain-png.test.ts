// The PNG fast path of decodeImage (src/engine/plain-png.ts): the same pixels as sharp for every PNG it
// takes, and sharp for every PNG it should not take.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { decodeImage } from '../../src/engine/input.js';
import { PLAIN_PNG_BYTES, PLAIN_PNG_FILE_BYTES, decodePlainPng } from '../../src/engine/plain-png.js';

const MAX_PIXELS = 1_000_000;
const MAX_SIDE = 2048;

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

function ihdr(width: number, height: number, depth = 8, colour = 2, interlace = 0): Buffer {
  const d = Buffer.alloc(13);
  d.writeUInt32BE(width, 0);
  d.writeUInt32BE(height, 4);
  d[8] = depth;
  d[9] = colour;
  d[12] = interlace;
  return chunk('IHDR', d);
}

const SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Scanlines of RGB with the given filter type per row (PNG's five, predicted from the row's own bytes). */
function scanlines(rgb: Uint8Array, width: number, height: number, filterOf: (y: number) => number): Buffer {
  const stride = width * 3;
  const out = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const f = filterOf(y);
    out[y * (stride + 1)] = f;
    for (let x = 0; x < stride; x++) {
      const a = x >= 3 ? rgb[y * stride + x - 3] : 0;
      const b = y > 0 ? rgb[(y - 1) * stride + x] : 0;
      const c = x >= 3 && y > 0 ? rgb[(y - 1) * stride + x - 3] : 0;
      const p = a + b - c;
      const pa = Math.abs(p - a);
      const pb = Math.abs(p - b);
      const pc = Math.abs(p - c);
      const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][f];
      out[y * (stride + 1) + 1 + x] = (rgb[y * stride + x] - pred) & 0xff;
    }
  }
  return out;
}

/** A PNG of 8-bit RGB written here, with `extra` chunks before the image data and the IDAT split in `parts`. */
function png(rgb: Uint8Array, width: number, height: number, o: { filterOf?: (y: number) => number; extra?: Buffer[]; parts?: number; stream?: Buffer; head?: Buffer } = {}): Buffer {
  const z = o.stream ?? zlib.deflateSync(scanlines(rgb, width, height, o.filterOf ?? ((y) => y % 5)));
  const parts = o.parts ?? 1;
  const step = Math.ceil(z.length / parts);
  const idat = [];
  for (let i = 0; i < z.length; i += step) idat.push(chunk('IDAT', z.subarray(i, i + step)));
  return Buffer.concat([SIG, o.head ?? ihdr(width, height), ...(o.extra ?? []), ...idat, chunk('IEND', Buffer.alloc(0))]);
}

/** Smooth ramps plus small noise, and every 4th row of bytes at random: the filters meet runs, residuals and Paeth's ties. */
function noise(width: number, height: number, seed = 1): Buffer {
  const out = Buffer.alloc(width * height * 3);
  let s = seed;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const x = Math.floor(i / 3) % width;
    const y = Math.floor(i / 3 / width);
    out[i] = y % 4 === 3 ? s >>> 24 : (x * 3 + (s >>> 28) + (i % 3) * 40) & 0xff;
  }
  return out;
}

async function viaSharp(bytes: Buffer): Promise<Buffer> {
  return sharp(bytes).raw().toBuffer();
}

test('decodePlainPng: every filter type, first rows included, as the pixels and as sharp reads them', async () => {
  for (const [w, h] of [[1, 1], [2, 3], [7, 5], [33, 17], [224, 224]]) {
    const rgb = noise(w, h, w * 31 + h);
    for (const first of [0, 1, 2, 3, 4]) {
      const bytes = png(rgb, w, h, { filterOf: (y) => (y + first) % 5 });
      const d = decodePlainPng(bytes, MAX_PIXELS, MAX_SIDE);
      assert.ok(d, `${w}×${h} filter ${first} first: taken`);
      assert.deepEqual([d.width, d.height], [w, h]);
      assert.ok(d.data.equals(rgb), `${w}×${h} filter ${first} first: the pixels`);
      assert.ok(d.data.equals(await viaSharp(bytes)), `${w}×${h}: as sharp`);
    }
  }
});

test('decodePlainPng: PNGs written by sharp at every level, with and without adaptive filters, and split IDATs', async () => {
  const rgb = noise(150, 97, 7);
  for (const compressionLevel of [0, 1, 6, 9]) {
    for (const adaptiveFiltering of [false, true]) {
      const bytes = await sharp(rgb, { raw: { width: 150, height: 97, channels: 3 } }).png({ compressionLevel, adaptiveFiltering }).toBuffer();
      const d = decodePlainPng(bytes, MAX_PIXELS, MAX_SIDE);
      assert.ok(d && d.data.equals(rgb), `level ${compressionLevel} adaptive ${adaptiveFiltering}`);
    }
  }
  const split = png(rgb, 150, 97, { parts: 7, extra: [chunk('tEXt', Buffer.from('Comment\0hello')), chunk('pHYs', Buffer.alloc(9))] });
  assert.ok(decodePlainPng(split, MAX_PIXELS, MAX_SIDE)?.data.equals(rgb));
});

test('decodeImage takes the fast path for a plain PNG and answers as through sharp', async () => {
  const rgb = noise(40, 30, 3);
  const bytes = png(rgb, 40, 30);
  const d = await decodeImage(bytes, { maxPixels: MAX_PIXELS, maxSide: MAX_SIDE });
  assert.deepEqual([d.format, d.width, d.height, d.hadAlpha, d.rgb.width, d.rgb.height, d.rgb.channels], ['png', 40, 30, false, 40, 30, 3]);
  assert.ok(d.rgb.data.equals(rgb));
});

test('decodePlainPng leaves to sharp what sharp reads differently or refuses, and anything odd', async () => {
  const rgb = noise(20, 10, 5);
  const good = png(rgb, 20, 10);
  assert.ok(decodePlainPng(good, MAX_PIXELS, MAX_SIDE));
  const z = zlib.deflateSync(scanlines(rgb, 20, 10, () => 1));
  const refused: Record<string, Buffer> = {
    'not a PNG': Buffer.from('GIF89a........................................................'),
    'RGBA': await sharp(Buffer.alloc(20 * 10 * 4, 128), { raw: { width: 20, height: 10, channels: 4 } }).png().toBuffer(),
    'grey': png(rgb, 20, 10, { head: ihdr(20, 10, 8, 0) }),
    'palette': await sharp(rgb, { raw: { width: 20, height: 10, channels: 3 } }).png({ palette: true }).toBuffer(),
    '16-bit': await sharp(rgb, { raw: { width: 20, height: 10, channels: 3 } }).toColourspace('rgb16').png().toBuffer(),
    'interlaced': await sharp(rgb, { raw: { width: 20, height: 10, channels: 3 } }).png({ progressive: true }).toBuffer(),
    'colour profile': await sharp(rgb, { raw: { width: 20, height: 10, channels: 3 } }).png().withIccProfile('p3').toBuffer(),
    'gamma': png(rgb, 20, 10, { extra: [chunk('gAMA', Buffer.from([0, 0, 0xb1, 0x8f]))] }),
    'transparency': png(rgb, 20, 10, { extra: [chunk('tRNS', Buffer.from([0, 1, 0, 2, 0, 3]))] }),
    'EXIF': png(rgb, 20, 10, { extra: [chunk('eXIf', Buffer.from('MM\0*\0\0\0\x08\0\0'))] }),
    'bad CRC': (() => { const b = Buffer.from(good); b[b.length - 20] ^= 1; return b; })(),
    'truncated': good.subarray(0, good.length - 5),
    'bytes after IEND': Buffer.concat([good, Buffer.from([0])]),
    'no IEND': good.subarray(0, good.length - 12),
    'chunk before IHDR': Buffer.concat([SIG, chunk('tEXt', Buffer.from('a\0b')), good.subarray(8)]),
    'IDATs apart': (() => {
      const half = Math.ceil(z.length / 2);
      return Buffer.concat([SIG, ihdr(20, 10), chunk('IDAT', z.subarray(0, half)), chunk('tEXt', Buffer.from('a\0b')), chunk('IDAT', z.subarray(half)), chunk('IEND', Buffer.alloc(0))]);
    })(),
    'stream too long': png(rgb, 20, 10, { stream: zlib.deflateSync(Buffer.alloc(11 * 61)) }),
    'stream too short': png(rgb, 20, 10, { stream: zlib.deflateSync(Buffer.alloc(9 * 61)) }),
    'damaged stream': png(rgb, 20, 10, { stream: Buffer.concat([z.subarray(0, z.length - 4), Buffer.from([1, 2, 3, 4])]) }),
    'filter type 5': png(rgb, 20, 10, { stream: zlib.deflateSync(Buffer.alloc(10 * 61, 5)) }),
    'zero width': png(Buffer.alloc(0), 0, 10, { stream: zlib.deflateSync(Buffer.alloc(10)) }),
  };
  for (const [what, bytes] of Object.entries(refused)) assert.equal(decodePlainPng(bytes, MAX_PIXELS, MAX_SIDE), undefined, what);
  // Limits: sharp reports them (too many pixels) or shrinks the image (longer than maxSide).
  assert.equal(decodePlainPng(good, 199, MAX_SIDE), undefined, 'more pixels than allowed');
  assert.equal(decodePlainPng(good, MAX_PIXELS, 19), undefined, 'longer than maxSide');
  const text = png(rgb, 20, 10, { extra: [chunk('tEXt', Buffer.concat([Buffer.from('Comment\0'), Buffer.alloc(PLAIN_PNG_FILE_BYTES, 0x61)]))] });
  assert.equal(decodePlainPng(text, MAX_PIXELS, MAX_SIDE), undefined, 'a file larger than PLAIN_PNG_FILE_BYTES (a huge text chunk)');
  const stored = png(rgb, 20, 10, { stream: zlib.deflateSync(scanlines(rgb, 20, 10, () => 1), { level: 0 }) });
  assert.ok(decodePlainPng(stored, MAX_PIXELS, MAX_SIDE)?.data.equals(rgb), 'stored (uncompressed) image data');
  const side = Math.ceil(Math.sqrt(PLAIN_PNG_BYTES / 3)) + 1;
  const big = png(noise(side, side), side, side);
  assert.equal(decodePlainPng(big, MAX_PIXELS, MAX_SIDE), undefined, 'more scanline bytes than PLAIN_PNG_BYTES');
  // Every one of them still decodes (or is refused) exactly as before: through sharp.
  const d = await decodeImage(big, { maxPixels: MAX_PIXELS, maxSide: MAX_SIDE });
  assert.ok(d.rgb.data.equals(noise(side, side)));
  await assert.rejects(decodeImage(refused['damaged stream'], { maxPixels: MAX_PIXELS, maxSide: MAX_SIDE }), { name: 'ImageError' });
});

test('decodePlainPng takes at most PLAIN_PNG_BYTES of scanlines per turn of the event loop; the rest goes to sharp', async () => {
  const side = 200; // 120 600 bytes of scanlines: two fit in one turn, a third does not
  const rgb = noise(side, side, 9);
  const bytes = png(rgb, side, side);
  await new Promise((r) => setImmediate(r));
  const turn = [0, 1, 2].map(() => decodePlainPng(bytes, MAX_PIXELS, MAX_SIDE));
  assert.deepEqual(turn.map((d) => d !== undefined), [true, true, false]);
  await new Promise((r) => setImmediate(r));
  assert.ok(decodePlainPng(bytes, MAX_PIXELS, MAX_SIDE)?.data.equals(rgb), 'taken again in the next turn');
  // A batch decoded side by side: every image decodes (the third through sharp), with the same pixels.
  const all = await Promise.all([0, 1, 2, 3].map(() => decodeImage(bytes, { maxPixels: MAX_PIXELS, maxSide: MAX_SIDE })));
  for (const d of all) assert.ok(d.rgb.data.equals(rgb));
});
