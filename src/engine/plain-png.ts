// A fast path of decodeImage for the simplest PNGs: small, 8-bit RGB, not interlaced, nothing that would
// change the pixels (no colour profile, gamma, transparency or palette). Such a PNG's pixels are its
// unfiltered scanlines, which zlib and a few lines of JS give in a fraction of the time that sharp's
// pipeline takes to start (a 224×224 PNG: 0.6–1 against 3.2 ms for sharp's metadata and decode, 2 cores).
// Anything else, and anything odd about these (a bad checksum, an unknown chunk, a stream of the wrong
// length), goes to sharp, which stays the authority on every image it would read differently or refuse.
import zlib from 'node:zlib';
import { PNG_SIGNATURE, crc32 } from '../render/index.js';

/**
 * The most scanline bytes decoded on the fast path (about 295×295 pixels). It runs on the calling thread (the
 * HTTP one), so it is kept short: a 224×224 photograph-like PNG in about 0.6–1 ms (sharp: 3.2 ms, on libuv's
 * pool); a 417×417 one took 2.5 ms, too long to hold the HTTP thread for (2 cores, 2026-11-29).
 */
export const PLAIN_PNG_BYTES = 256 * 1024;

/** The largest PNG file the fast path reads: its scanlines stored uncompressed, plus 64 KiB for the rest. */
export const PLAIN_PNG_FILE_BYTES = PLAIN_PNG_BYTES + 64 * 1024;

/**
 * Scanline bytes taken on the fast path in this turn of the event loop: at most {@link PLAIN_PNG_BYTES} per
 * turn, so that a batch of many small PNGs (a POST /cam of up to MAX_BATCH images, decoded side by side) holds
 * the HTTP thread for one such decode and sends the rest to sharp on libuv's pool, as before.
 */
let takenThisTurn = 0;

function take(bytes: number): boolean {
  if (takenThisTurn + bytes > PLAIN_PNG_BYTES) return false;
  if (takenThisTurn === 0) setImmediate(() => { takenThisTurn = 0; });
  takenThisTurn += bytes;
  return true;
}

/** Ancillary chunks that sharp's decode to 8-bit sRGB does not read: text, time and physical pixel size. */
const INERT_CHUNKS = new Set(['tEXt', 'zTXt', 'iTXt', 'tIME', 'pHYs']);

/** The PNG's pixels as interleaved 8-bit RGB where it is one that {@link PLAIN_PNG_BYTES} and the rules above admit; else undefined. */
export function decodePlainPng(bytes: Uint8Array, maxPixels: number, maxSide: number): { data: Buffer; width: number; height: number } | undefined {
  if (bytes.length < 8 + 25 + 12 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) return undefined;
  // A file larger than any admitted one can be (its scanlines stored uncompressed, and room for text chunks) is
  // not walked and checksummed on this thread at all.
  if (bytes.length > PLAIN_PNG_FILE_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 0;
  let height = 0;
  const idat: Uint8Array[] = [];
  let ended = false;
  for (let p = 8, first = true; p < bytes.length; first = false) {
    if (p + 12 > bytes.length) return undefined;
    const length = view.getUint32(p);
    if (length > bytes.length - p - 12) return undefined;
    const type = String.fromCharCode(bytes[p + 4], bytes[p + 5], bytes[p + 6], bytes[p + 7]);
    if (crc32([bytes.subarray(p + 4, p + 8 + length)]) !== view.getUint32(p + 8 + length)) return undefined;
    const data = bytes.subarray(p + 8, p + 8 + length);
    p += 12 + length;
    if (first !== (type === 'IHDR')) return undefined;
    if (type === 'IHDR') {
      // 8-bit RGB (colour type 2), deflate, adaptive filters, no interlace
      if (length !== 13 || data[8] !== 8 || data[9] !== 2 || data[10] !== 0 || data[11] !== 0 || data[12] !== 0) return undefined;
      width = view.getUint32(data.byteOffset - bytes.byteOffset);
      height = view.getUint32(data.byteOffset - bytes.byteOffset + 4);
      // Too large for this path: left before any image data is checksummed.
      if (width < 1 || height < 1 || width * height > maxPixels || Math.max(width, height) > maxSide || (width * 3 + 1) * height > PLAIN_PNG_BYTES) return undefined;
    } else if (type === 'IDAT') {
      // IDAT chunks must follow one another
      if (idat.length > 0 && idat.at(-1)!.byteOffset + idat.at(-1)!.length + 12 !== data.byteOffset) return undefined;
      idat.push(data);
    } else if (type === 'IEND') {
      ended = p === bytes.length;
      break;
    } else if (!INERT_CHUNKS.has(type)) {
      return undefined;
    }
  }
  if (!ended || idat.length === 0) return undefined;
  const stride = width * 3;
  const size = (stride + 1) * height;
  if (!take(size)) return undefined;
  let raw: Buffer;
  try {
    // A stream that inflates to more than the scanlines fails here (no larger buffer is ever made).
    raw = zlib.inflateSync(idat.length === 1 ? idat[0] : Buffer.concat(idat), { maxOutputLength: size });
  } catch {
    return undefined;
  }
  if (raw.length !== size) return undefined;
  const out = Buffer.allocUnsafe(stride * height);
  for (let y = 0; y < height; y++) {
    if (!unfilterRow(raw, y * (stride + 1), out, y * stride, stride, y > 0)) return undefined;
  }
  return { data: out, width, height };
}

/**
 * Undoes PNG filter `raw[s]` on the row of `stride` bytes at raw[s + 1..] into out[o..]; the row above is
 * out[o − stride..] (`above`: there is one). 3 bytes per pixel. False for an unknown filter type.
 */
function unfilterRow(raw: Uint8Array, s: number, out: Uint8Array, o: number, stride: number, above: boolean): boolean {
  // With no row above (all zeros), Up is None and Paeth is Sub; Average keeps its own first-row case.
  const filter = above ? raw[s] : (FIRST_ROW_FILTER[raw[s]] ?? raw[s]);
  const r = s + 1;
  const u = o - stride;
  switch (filter) {
    case 0:
      out.set(raw.subarray(r, r + stride), o);
      return true;
    case 1:
      for (let x = 0; x < 3; x++) out[o + x] = raw[r + x];
      for (let x = 3; x < stride; x++) out[o + x] = (raw[r + x] + out[o + x - 3]) & 0xff;
      return true;
    case 2:
      for (let x = 0; x < stride; x++) out[o + x] = (raw[r + x] + out[u + x]) & 0xff;
      return true;
    case 3:
      if (!above) {
        for (let x = 0; x < 3; x++) out[o + x] = raw[r + x];
        for (let x = 3; x < stride; x++) out[o + x] = (raw[r + x] + (out[o + x - 3] >> 1)) & 0xff;
      } else {
        for (let x = 0; x < 3; x++) out[o + x] = (raw[r + x] + (out[u + x] >> 1)) & 0xff;
        for (let x = 3; x < stride; x++) out[o + x] = (raw[r + x] + ((out[o + x - 3] + out[u + x]) >> 1)) & 0xff;
      }
      return true;
    case 4:
      // left and upper-left are 0 for the first pixel: the predictor is the byte above
      for (let x = 0; x < 3; x++) out[o + x] = (raw[r + x] + out[u + x]) & 0xff;
      for (let x = 3; x < stride; x++) out[o + x] = (raw[r + x] + paeth(out[o + x - 3], out[u + x], out[u + x - 3])) & 0xff;
      return true;
    default:
      return false;
  }
}

/** The filter that a first row's filter type amounts to (the row above counts as zeros): Up → None, Paeth → Sub. */
const FIRST_ROW_FILTER: Record<number, number> = { 2: 0, 4: 1 };

/** PNG's Paeth predictor of left a, above b, upper-left c. */
function paeth(a: number, b: number, c: number): number {
  const pa = Math.abs(b - c);
  const pb = Math.abs(a - c);
  const pc = Math.abs(a + b - 2 * c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}
