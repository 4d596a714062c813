// A small PNG encoder for 8-bit RGB, tuned for CAM overlays (photographs under a smooth colour map).
//
// Encoding is the largest cost of a render. libvips (through sharp) writes PNGs unfiltered, so deflate
// must find the redundancy itself, which is slow and not very effective on photographs. Filtering each
// row with PNG's "Sub" predictor (each byte minus the byte of the pixel to its left) turns smooth
// regions into runs of small values that deflate's run-length mode codes well and fast, and photographs
// into small residuals that Huffman codes alone compress as well, faster. Measured on the benchmark's
// 640×480 overlay (bench/, 2-core VM): sharp level 3 about 17 ms for 753 KB; Sub + Z_RLE about 12 ms of
// deflate for 320 KB, Huffman codes alone about 9 ms for 318 KB, in blocks while the rows are made.
import zlib from 'node:zlib';

/** The eight bytes every PNG starts with. */
export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** CRC-32 of the parts in order, as PNG chunks carry it (zlib's where Node has it: 20.15+, 22.2+). */
export function crc32(parts: Uint8Array[]): number {
  const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
  if (native) {
    let c = 0;
    for (const p of parts) c = native(p, c);
    return c >>> 0;
  }
  let c = -1;
  for (const p of parts) for (let i = 0; i < p.length; i++) c = CRC_TABLE[(c ^ p[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer[] {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const tail = Buffer.alloc(4);
  tail.writeUInt32BE(crc32([head.subarray(4), data]), 0);
  return [head, Buffer.from(data.buffer, data.byteOffset, data.byteLength), tail];
}

/**
 * The PNG scanlines of interleaved RGB: each row prefixed by its filter type; level 0 leaves rows
 * unfiltered (type 0), otherwise the Sub filter (type 1) is applied.
 */
export function filterRows(rgb: Uint8Array, width: number, height: number, sub: boolean): Buffer {
  const stride = width * 3;
  const out = Buffer.allocUnsafe((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1);
    const r = y * stride;
    if (!sub) {
      out[o] = 0;
      out.set(rgb.subarray(r, r + stride), o + 1);
      continue;
    }
    out[o] = 1;
    let pr = 0;
    let pg = 0;
    let pb = 0;
    for (let x = 0, i = r, j = o + 1; x < width; x++, i += 3, j += 3) {
      const cr = rgb[i];
      const cg = rgb[i + 1];
      const cb = rgb[i + 2];
      out[j] = (cr - pr) & 0xff;
      out[j + 1] = (cg - pg) & 0xff;
      out[j + 2] = (cb - pb) & 0xff;
      pr = cr;
      pg = cg;
      pb = cb;
    }
  }
  return out;
}

/**
 * Raw deflate on libuv's pool. The output buffer holds the whole result (Node's default of 16 KiB would
 * take a thread hop and a copy per 16 KiB: 24 % more CPU time for a 640×480 picture's blocks).
 */
function deflateRaw(data: Buffer, options: zlib.ZlibOptions): Promise<Buffer> {
  const chunkSize = Math.max(zlib.constants.Z_DEFAULT_CHUNK, data.length + 1024);
  return new Promise((resolve, reject) => zlib.deflateRaw(data, { ...options, chunkSize }, (e, out) => (e ? reject(e) : resolve(out))));
}

/**
 * Adler-32 of `data` (the zlib stream's checksum), continuing from `start` (the checksum of the bytes before;
 * 1 for none). The sums stay below 2³¹ between reductions (3800 bytes: 255·n(n+1)/2 + (n+1)·65520 < 2³¹), so
 * they are kept as 32-bit integers.
 */
export function adler32(data: Uint8Array, start = 1): number {
  let a = start & 0xffff;
  let b = start >>> 16;
  const n = data.length;
  for (let i = 0; i < n;) {
    const end = Math.min(i + 3800, n);
    for (; i < end; i++) {
      a = (a + data[i]) | 0;
      b = (b + a) | 0;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** Rows are deflated in blocks of about this many bytes, each on its own thread of libuv's pool. */
export const BLOCK_BYTES = 128 * 1024;

/**
 * Pictures of at most this many bytes of scanlines (up to about 290×290 pixels) are deflated at the end as
 * one stream on the calling thread instead: handing blocks to libuv's pool costs about 1 ms of thread hops
 * and stream set-up, more than such a picture's blocks gain by overlapping (measured in process on 2 cores:
 * a 224×224 overlay 4.6 against 5.7 ms; at 640×480 the two took the same time, 19.6 against 19.2 ms).
 * Callers run on the render thread, never the HTTP one.
 */
export const INLINE_BYTES = 2 * BLOCK_BYTES;

/** Rows per block for images `width` pixels wide. */
export function blockRows(width: number): number {
  return Math.max(1, Math.floor(BLOCK_BYTES / (width * 3 + 1)));
}

/**
 * Levels 1–3 code each block with Huffman codes alone where its scanlines are mostly non-zero residuals (a
 * photograph under the overlay: run-length matching finds almost nothing there and costs 15–27 % more time
 * for sizes within 1 %), and with deflate's run-length strategy where at least half of a sample of its
 * bytes is zero (flat regions, heat maps alone: a third smaller than Huffman codes alone). Measured on
 * 640×480-class overlays of four photographs (bench/RESULTS.md).
 */
export const RUN_LENGTH_FROM = 0.5;

/** The fraction of zero bytes in every 16th row of `rows` (rows of `rowBytes`). */
function zeroFraction(rows: Uint8Array, rowBytes: number): number {
  let zeros = 0;
  let seen = 0;
  for (let o = 0; o < rows.length; o += 16 * rowBytes) {
    const end = Math.min(rows.length, o + rowBytes);
    for (let i = o; i < end; i++) if (rows[i] === 0) zeros++;
    seen += end - o;
  }
  return seen === 0 ? 0 : zeros / seen;
}

function zlibOptions(level: number, rows: Uint8Array, rowBytes: number): zlib.ZlibOptions {
  if (level === 0) return { level: 0 };
  if (level <= 3) {
    const runs = zeroFraction(rows, rowBytes) >= RUN_LENGTH_FROM;
    return { level: 1, strategy: runs ? zlib.constants.Z_RLE : zlib.constants.Z_HUFFMAN_ONLY };
  }
  return { level };
}

/** An empty final block (fixed Huffman codes): ends a deflate stream whose blocks ended in sync flushes. */
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);

/**
 * A PNG of 8-bit RGB written from its scanlines (each row: a filter-type byte, then width × 3 bytes),
 * handed over in blocks of whole rows, in order. `level` 0..9: 0 stored; 1–3 fast coding, per block
 * Huffman codes alone or deflate's run-length strategy ({@link RUN_LENGTH_FROM}; the same output for the
 * three); 4–9 deflate's default strategy at that level (smaller, slower).
 *
 * At levels 0–3 (pictures above {@link INLINE_BYTES}) each block is raw-deflated on libuv's thread pool as soon as it is handed over, ending
 * in a sync flush so that the blocks join on byte boundaries as one deflate stream (closed by an empty
 * final block): the blocks compress on the other cores while the caller makes the next rows. A block
 * cannot refer to the bytes of the one before; with run-length coding that costs a few bytes per block.
 * Levels 4–9 and small pictures deflate all rows as one stream at the end (small ones on the calling thread).
 */
export class PngWriter {
  private readonly blocks: Promise<Buffer>[] = [];
  private readonly rows: Buffer[] = [];
  private received = 0;
  private checksum = 1;

  /** Deflated in blocks on libuv's pool as they come (levels 0–3, pictures larger than INLINE_BYTES). */
  private readonly streaming: boolean;

  constructor(readonly width: number, readonly height: number, readonly level: number) {
    this.streaming = level <= 3 && height * (width * 3 + 1) > INLINE_BYTES;
  }

  /**
   * The next rows (a multiple of width × 3 + 1 bytes); the writer keeps the buffer. `checksum`: the Adler-32 of
   * every row written so far, these included, where the caller summed it while making them.
   */
  write(rows: Buffer, checksum?: number): void {
    this.received += rows.length;
    this.checksum = checksum ?? adler32(rows, this.checksum);
    if (!this.streaming) this.rows.push(rows);
    else this.blocks.push(deflateRaw(rows, { ...zlibOptions(this.level, rows, this.width * 3 + 1), finishFlush: zlib.constants.Z_SYNC_FLUSH }));
  }

  /** The Adler-32 of the rows written so far (1 before the first). */
  get adler(): number {
    return this.checksum;
  }

  /** The PNG, once every row was written. */
  async end(): Promise<Buffer> {
    const rowBytes = this.width * 3 + 1;
    if (this.received !== rowBytes * this.height) throw new RangeError(`encodePng: ${this.received} bytes of scanlines, expected ${this.height} rows of ${rowBytes}`);
    let body: Buffer[];
    if (this.streaming) {
      body = [...(await Promise.all(this.blocks)), FINAL_BLOCK];
    } else {
      const rows = Buffer.concat(this.rows);
      const options = zlibOptions(this.level, rows, this.width * 3 + 1);
      body = [rows.length <= INLINE_BYTES ? zlib.deflateRawSync(rows, options) : await deflateRaw(rows, options)];
    }
    const check = Buffer.alloc(4);
    check.writeUInt32BE(this.checksum, 0);
    const idat = Buffer.concat([Buffer.from([0x78, 0x01]), ...body, check]);
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(this.width, 0);
    ihdr.writeUInt32BE(this.height, 4);
    ihdr[8] = 8; // bit depth
    ihdr[9] = 2; // colour type: RGB
    ihdr[10] = 0; // deflate
    ihdr[11] = 0; // adaptive filtering (per-row filter byte)
    ihdr[12] = 0; // no interlace
    return Buffer.concat([PNG_SIGNATURE, ...chunk('IHDR', ihdr), ...chunk('IDAT', idat), ...chunk('IEND', new Uint8Array(0))]);
  }
}

/** Encodes 8-bit interleaved RGB as a PNG: Sub-filtered rows (unfiltered at level 0) through a {@link PngWriter}. */
export async function encodePngRgb(rgb: Uint8Array, width: number, height: number, level: number): Promise<Buffer> {
  const rows = filterRows(rgb, width, height, level > 0);
  const writer = new PngWriter(width, height, level);
  const step = blockRows(width) * (width * 3 + 1);
  for (let from = 0; from < rows.length; from += step) writer.write(rows.subarray(from, Math.min(rows.length, from + step)));
  return writer.end();
}
