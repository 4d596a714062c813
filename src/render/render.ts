// Rendering of class activation maps: normalisation, OpenCV-compatible bilinear resizing,
// colour mapping, blending onto the input image (pytorch-grad-cam's show_cam_on_image) and PNG
// encoding (src/render/png.ts).
//
// Arithmetic that pytorch-grad-cam / OpenCV do in float32 is mirrored with Math.fround so that
// byte outputs (colour indices, blended pixels) agree exactly with the Python reference.

import sharp from 'sharp';
import { COLORMAPS, type ColormapName } from './colormaps.js';
import { PngWriter, blockRows, encodePngRgb } from './png.js';

const f32 = Math.fround;

/** A single-channel map: `data[y * width + x]`, row-major, one float per pixel. */
export interface CamMap {
  width: number;
  height: number;
  data: Float32Array;
}

/** An interleaved 8-bit RGB image: `data[3 * (y * width + x) + c]`. */
export interface RgbImage {
  data: Buffer;
  width: number;
  height: number;
  channels: 3;
}

/**
 * PNG compression level of the renderers (0..9; see PngWriter in png.ts for what each level does).
 * Level 3: Sub-filtered rows, each block coded with Huffman codes alone or deflate's run-length strategy
 * (png.ts). Measured on the benchmark's 640×480 photograph-like overlay (2-core VM): 318 KB for about 9 ms
 * of deflate work, in blocks while the rows are made, against 753 KB in 17 ms for the unfiltered libvips
 * level 3 that the renderers used before.
 */
export const DEFAULT_COMPRESSION_LEVEL = 3;

/** Formats of the rendered pictures: PNG (this package's encoder), WebP and JPEG (sharp's). */
export const PICTURE_FORMATS = ['png', 'webp', 'jpeg'] as const;
export type PictureFormat = (typeof PICTURE_FORMATS)[number];

/** Quality of WebP and JPEG pictures unless one is given (sharp's default for both). */
export const DEFAULT_QUALITY = 80;

/**
 * libwebp's effort (0..6) for WebP pictures: 0, the fastest. Measured on the benchmark's 640×480 image
 * (bench:render): about 15 ms for 9.9 KiB at effort 0 against 60 ms for 8.6 KiB at sharp's default 4.
 */
export const WEBP_EFFORT = 0;

/** The media type of a picture format. */
export function pictureType(format: PictureFormat): string {
  return `image/${format}`;
}

/** How a picture is encoded: the format, PNG's zlib level (0..9), WebP's and JPEG's quality (1..100). */
export interface PictureEncoding {
  format?: PictureFormat;
  /** PNG zlib level 0..9; default {@link DEFAULT_COMPRESSION_LEVEL} */
  compressionLevel?: number;
  /** WebP / JPEG quality 1..100; default {@link DEFAULT_QUALITY} */
  quality?: number;
}

function checkQuality(quality: number | undefined): number {
  const q = quality ?? DEFAULT_QUALITY;
  if (!Number.isInteger(q) || q < 1 || q > 100) throw new RangeError(`quality must be an integer in 1..100, got ${q}`);
  return q;
}

/**
 * Interleaved 8-bit RGB as a picture: PNG through {@link encodePngRgb} (Sub-filtered rows; level 0, stored,
 * through sharp, which writes the same rows faster), WebP (lossy) and JPEG through sharp at the encoding's quality.
 */
export async function encodeRgb(rgb: Uint8Array, width: number, height: number, encoding: PictureEncoding = {}): Promise<Buffer> {
  checkDims(width, height, 'encodeRgb');
  checkRgb(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), width, height, 'encodeRgb');
  const format = encoding.format ?? 'png';
  const img = sharp(rgb, { raw: { width, height, channels: 3 } });
  if (format === 'png') {
    // Level 0 (stored): the same bytes from sharp's encoder, several times faster (bench/RESULTS.md, bench:render).
    const level = checkLevel(encoding.compressionLevel);
    return level === 0 ? img.png({ compressionLevel: 0 }).toBuffer() : encodePngRgb(rgb, width, height, level);
  }
  const quality = checkQuality(encoding.quality);
  if (format === 'webp') return img.webp({ quality, effort: WEBP_EFFORT }).toBuffer();
  if (format === 'jpeg') return img.jpeg({ quality }).toBuffer();
  throw new RangeError(`encodeRgb: unknown format ${String(format)}`);
}

function checkDims(width: number, height: number, what: string): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`${what}: size must be positive integers, got ${width}×${height}`);
  }
}

function checkMap(map: CamMap, what: string): void {
  checkDims(map.width, map.height, what);
  if (map.data.length !== map.width * map.height) {
    throw new RangeError(`${what}: data has ${map.data.length} values, expected ${map.width}×${map.height}`);
  }
}

function checkRgb(buf: Buffer, width: number, height: number, what: string): void {
  if (buf.length !== width * height * 3) {
    throw new RangeError(`${what}: ${buf.length} bytes, expected ${width}×${height}×3`);
  }
}

/**
 * Min–max normalisation, exactly pytorch-grad-cam's `scale_cam_image` without the resize:
 *
 *   x ← x − min(x);   x ← x / (1e-7 + max(x))
 *
 * (in float32, as numpy does). A constant map becomes all zeros. NaNs propagate.
 */
export function normalizeMap(map: CamMap): CamMap {
  checkMap(map, 'normalizeMap');
  const src = map.data;
  const n = src.length;
  let min = Infinity;
  for (let i = 0; i < n; i++) if (src[i] < min) min = src[i];
  const out = new Float32Array(n);
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = f32(src[i] - min);
    out[i] = v;
    if (v > max) max = v;
  }
  const denom = f32(1e-7 + max);
  for (let i = 0; i < n; i++) out[i] = out[i] / denom; // stored (rounded) as float32
  return { width: map.width, height: map.height, data: out };
}

interface AxisTaps {
  /** first source index per destination index */
  i0: Int32Array;
  /** second source index (clamped to the last one) */
  i1: Int32Array;
  /** weight of i0 */
  w0: Float32Array;
  /** weight of i1 */
  w1: Float32Array;
}

/**
 * OpenCV's INTER_LINEAR coefficients along one axis (resize.cpp, `resize()` / `resizeGeneric_`):
 * scale = 1 / (dst / src) in double, f = float((d + 0.5)·scale − 0.5), s = floor(f), f −= s;
 * s < 0 → (s, f) = (0, 0); s ≥ src − 1 → (s, f) = (src − 1, 0); weights (1 − f, f) in float32.
 */
function axisTaps(src: number, dst: number): AxisTaps {
  const scale = 1 / (dst / src);
  const i0 = new Int32Array(dst);
  const i1 = new Int32Array(dst);
  const w0 = new Float32Array(dst);
  const w1 = new Float32Array(dst);
  for (let d = 0; d < dst; d++) {
    let f = f32((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = f32(f - s);
    if (s < 0) {
      s = 0;
      f = 0;
    }
    if (s >= src - 1) {
      s = src - 1;
      f = 0;
    }
    i0[d] = s;
    i1[d] = Math.min(s + 1, src - 1);
    w0[d] = 1 - f;
    w1[d] = f;
  }
  return { i0, i1, w0, w1 };
}

/**
 * The horizontal pass of the separable bilinear resize: every source row that a destination row reads
 * (per `yt`), resampled to `width` (per `xt`); rows [sh, width], unread rows left at 0.
 */
function horizontalPass(map: CamMap, width: number, xt: AxisTaps, yt: AxisTaps): Float32Array {
  const { width: sw, height: sh, data: src } = map;
  const used = new Uint8Array(sh);
  for (let y = 0; y < yt.i0.length; y++) {
    used[yt.i0[y]] = 1;
    if (yt.w1[y] !== 0) used[yt.i1[y]] = 1;
  }
  const rows = new Float32Array(sh * width);
  const { i0: xi0, i1: xi1, w0: xw0, w1: xw1 } = xt;
  for (let sy = 0; sy < sh; sy++) {
    if (!used[sy]) continue;
    const sOff = sy * sw;
    const rOff = sy * width;
    for (let x = 0; x < width; x++) rows[rOff + x] = src[sOff + xi0[x]] * xw0[x] + src[sOff + xi1[x]] * xw1[x];
  }
  return rows;
}

/** The colour-map index of a value: trunc(clamp(float32(255·v), 0, 255)), as np.uint8(255 · mask); NaN → 0. */
function colorIndex(value: number): number {
  const v = f32(255 * value);
  return v > 0 ? (v >= 255 ? 255 : v | 0) : 0; // `v > 0` is false for NaN
}

/**
 * Bilinear resize matching OpenCV `cv2.resize(img, (width, height))` (INTER_LINEAR) on float32:
 * half-pixel centres, sx = (x + 0.5)·(srcW / width) − 0.5 (likewise y), edge samples clamped,
 *
 *   out(x, y) = (1 − fy)·[(1 − fx)·S(x0, y0) + fx·S(x0+1, y0)] + fy·[(1 − fx)·S(x0, y1) + fx·S(x0+1, y1)]
 *
 * No antialiasing when shrinking (as OpenCV). Separable: each source row used is resampled
 * horizontally once, then rows are blended vertically. Agrees with OpenCV to ~1 ulp.
 */
export function resizeBilinear(map: CamMap, width: number, height: number): CamMap {
  checkMap(map, 'resizeBilinear');
  checkDims(width, height, 'resizeBilinear');
  const sw = map.width;
  const sh = map.height;
  const src = map.data;
  if (sw === width && sh === height) return { width, height, data: Float32Array.from(src) };

  const xt = axisTaps(sw, width);
  const yt = axisTaps(sh, height);
  const rows = horizontalPass(map, width, xt, yt);

  // Vertical pass.
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const a = yt.i0[y] * width;
    const b = yt.i1[y] * width;
    const wa = yt.w0[y];
    const wb = yt.w1[y];
    const o = y * width;
    if (wb === 0) {
      out.set(rows.subarray(a, a + width), o);
    } else {
      for (let x = 0; x < width; x++) out[o + x] = rows[a + x] * wa + rows[b + x] * wb;
    }
  }
  return { width, height, data: out };
}

/**
 * Colour-maps a map with values in [0, 1] to interleaved RGB bytes, like pytorch-grad-cam's
 * `cv2.applyColorMap(np.uint8(255 * mask), colormap)` (converted to RGB):
 *
 *   index = trunc(clamp(float32(255 · v), 0, 255));   rgb = LUT[index]
 *
 * (np.uint8 truncates toward zero; values outside [0, 1] are clamped, NaN maps to index 0.)
 */
export function applyColormap(map01: CamMap, name: ColormapName): Buffer {
  checkMap(map01, 'applyColormap');
  const lut = colormapLut(name);
  const src = map01.data;
  const n = src.length;
  const out = Buffer.allocUnsafe(n * 3);
  for (let i = 0; i < n; i++) {
    const l = colorIndex(src[i]) * 3;
    const o = i * 3;
    out[o] = lut[l];
    out[o + 1] = lut[l + 1];
    out[o + 2] = lut[l + 2];
  }
  return out;
}

/** The two terms of the blend only take 256 values each: (1 − alpha)·(k / 255) and alpha·(k / 255), in float32. */
function blendTables(alpha: number): { th: Float32Array; ti: Float32Array } {
  const wh = f32(1 - alpha);
  const wi = f32(alpha);
  const th = new Float32Array(256);
  const ti = new Float32Array(256);
  for (let k = 0; k < 256; k++) {
    const u = f32(k / 255);
    th[k] = wh * u;
    ti[k] = wi * u;
  }
  return { th, ti };
}

/**
 * Blends a colour-mapped heat map onto an image exactly as pytorch-grad-cam's
 * `show_cam_on_image(img / 255, mask, use_rgb=True, image_weight=alpha)`, in float32:
 *
 *   h = heatmap / 255;  i = image / 255
 *   cam = (1 − alpha)·h + alpha·i
 *   cam = cam / max(cam)            (max over all pixels and channels: the result is stretched
 *                                    so that its brightest channel value is 255)
 *   out = uint8(trunc(255 · cam))
 *
 * `alpha` is the image weight in [0, 1] (0: heat map only, 1: image only). Both buffers are
 * interleaved RGB of the same length. If every value of cam is 0, the output is all zeros.
 */
export function blend(heatmapRgb: Buffer, imageRgb: Buffer, alpha: number): Buffer {
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`blend: alpha must be in [0, 1], got ${alpha}`);
  if (heatmapRgb.length !== imageRgb.length) {
    throw new RangeError(`blend: heat map has ${heatmapRgb.length} bytes, image ${imageRgb.length}`);
  }
  const n = heatmapRgb.length;
  const { th, ti } = blendTables(alpha);
  const out = Buffer.alloc(n);
  if (n < 1 << 16) {
    // Small input: compute per value.
    const cam = new Float32Array(n);
    let max = 0;
    for (let i = 0; i < n; i++) {
      cam[i] = th[heatmapRgb[i]] + ti[imageRgb[i]];
      if (cam[i] > max) max = cam[i];
    }
    if (!(max > 0)) return out;
    for (let i = 0; i < n; i++) out[i] = toByte(cam[i], max);
    return out;
  }
  // Large input: cam depends only on the (heat, image) byte pair, so tabulate all 65536 sums,
  // find the max over the pairs that occur, then map every pair to its output byte.
  const sums = new Float32Array(1 << 16);
  for (let h = 0; h < 256; h++) for (let k = 0; k < 256; k++) sums[(h << 8) | k] = th[h] + ti[k];
  let max = 0;
  for (let i = 0; i < n; i++) {
    const v = sums[(heatmapRgb[i] << 8) | imageRgb[i]];
    if (v > max) max = v;
  }
  if (!(max > 0)) return out;
  const bytes = new Uint8Array(1 << 16);
  for (let j = 0; j < 1 << 16; j++) bytes[j] = toByte(sums[j], max);
  for (let i = 0; i < n; i++) out[i] = bytes[(heatmapRgb[i] << 8) | imageRgb[i]];
  return out;
}

/** np.uint8(255 * float32(v / max)) for 0 ≤ v ≤ max, in float32. */
function toByte(v: number, max: number): number {
  const b = f32(255 * f32(v / max));
  return b >= 255 ? 255 : b | 0;
}

/**
 * The colour-map index of every pixel of `resizeBilinear(map, width, height)`, i.e. what
 * {@link applyColormap} looks up, computed row by row without the full-size float image (same
 * arithmetic, so the same indices).
 */
export function colormapIndex(map: CamMap, width: number, height: number): Uint8Array {
  checkMap(map, 'colormapIndex');
  checkDims(width, height, 'colormapIndex');
  const index = new Uint8Array(width * height);
  const sw = map.width;
  const sh = map.height;
  const src = map.data;
  if (sw === width && sh === height) {
    for (let i = 0; i < index.length; i++) index[i] = colorIndex(src[i]);
    return index;
  }
  // As resizeBilinear: the horizontal pass of the source rows used, then the vertical blend per row.
  const yt = axisTaps(sh, height);
  const rows = horizontalPass(map, width, axisTaps(sw, width), yt);
  for (let y = 0; y < height; y++) {
    const a = yt.i0[y] * width;
    const b = yt.i1[y] * width;
    const wa = yt.w0[y];
    const wb = yt.w1[y];
    const o = y * width;
    for (let x = 0; x < width; x++) {
      // wb = 0: the source row itself, as resizeBilinear copies it
      index[o + x] = colorIndex(wb === 0 ? rows[a + x] : f32(rows[a + x] * wa + rows[b + x] * wb));
    }
  }
  return index;
}

/**
 * The output byte of every (heat, image) byte pair of `blend(heat, imageRgb, alpha)` where heat is the colour
 * map `lut` at `index`: `table[(heat << 8) | image]` (all zeros where the blend's maximum is 0).
 *
 * The maximum of cam over all pixels and channels is found per (colour index, channel): the heat value is
 * fixed by them, and cam = th[heat] + ti[image] is non-decreasing in the image byte (float rounding is
 * monotonic), so the largest image byte seen with each pair gives the same maximum as every pixel would.
 */
function blendTable(index: Uint8Array, imageRgb: Uint8Array, alpha: number, lut: Uint8Array): Uint8Array {
  const n = index.length;
  const { th, ti } = blendTables(alpha);
  const top = new Int16Array(768).fill(-1);
  for (let i = 0, o = 0; i < n; i++, o += 3) {
    const t = index[i] * 3;
    const r = imageRgb[o];
    const g = imageRgb[o + 1];
    const b = imageRgb[o + 2];
    if (r > top[t]) top[t] = r;
    if (g > top[t + 1]) top[t + 1] = g;
    if (b > top[t + 2]) top[t + 2] = b;
  }
  let max = 0;
  for (let t = 0; t < 768; t++) {
    if (top[t] < 0) continue;
    const v = f32(th[lut[t]] + ti[top[t]]);
    if (v > max) max = v;
  }
  const bytes = new Uint8Array(1 << 16);
  if (!(max > 0)) return bytes;
  // Only the heat values the colour map can give need their 256 entries.
  const heats = new Uint8Array(256);
  for (let t = 0; t < 768; t++) heats[lut[t]] = 1;
  for (let h = 0; h < 256; h++) {
    if (!heats[h]) continue;
    const a = th[h];
    for (let k = 0; k < 256; k++) bytes[(h << 8) | k] = toByte(f32(a + ti[k]), max);
  }
  return bytes;
}

/** The colour map's entries shifted into the high byte of a {@link blendTable} index. */
function heatKeys(lut: Uint8Array): Int32Array {
  const keys = new Int32Array(768);
  for (let t = 0; t < 768; t++) keys[t] = lut[t] << 8;
  return keys;
}

/** The blended RGB of every pixel through `bytes` (see {@link blendTable}). */
function blendRgb(index: Uint8Array, imageRgb: Uint8Array, keys: Int32Array, bytes: Uint8Array): Buffer {
  const n = index.length;
  const out = Buffer.allocUnsafe(n * 3);
  for (let i = 0, o = 0; i < n; i++, o += 3) {
    const t = index[i] * 3;
    out[o] = bytes[keys[t] | imageRgb[o]];
    out[o + 1] = bytes[keys[t + 1] | imageRgb[o + 1]];
    out[o + 2] = bytes[keys[t + 2] | imageRgb[o + 2]];
  }
  return out;
}

/**
 * Rows y0..y1 of the blended image as PNG scanlines with the Sub filter (type 1) into `out`; returns the
 * Adler-32 of the scanlines continued from `adler`, summed on the way in 32-bit integers, reduced at least
 * every 1200 pixels (3600 bytes: the sums stay below 2³¹).
 */
function blendSubRows(
  index: Uint8Array, imageRgb: Uint8Array, keys: Int32Array, bytes: Uint8Array, width: number, y0: number, y1: number, out: Uint8Array, adler: number,
): number {
  let s1 = adler & 0xffff;
  let s2 = adler >>> 16;
  for (let y = y0, j = 0; y < y1; y++) {
    out[j++] = 1;
    s1 += 1;
    s2 += s1;
    let pr = 0;
    let pg = 0;
    let pb = 0;
    for (let x0 = 0; x0 < width; x0 += 1200) {
      for (let i = y * width + x0, o = i * 3, end = y * width + Math.min(width, x0 + 1200); i < end; i++, o += 3, j += 3) {
        const t = index[i] * 3;
        const r = bytes[keys[t] | imageRgb[o]];
        const g = bytes[keys[t + 1] | imageRgb[o + 1]];
        const b = bytes[keys[t + 2] | imageRgb[o + 2]];
        const fr = (r - pr) & 0xff;
        const fg = (g - pg) & 0xff;
        const fb = (b - pb) & 0xff;
        out[j] = fr;
        out[j + 1] = fg;
        out[j + 2] = fb;
        pr = r;
        pg = g;
        pb = b;
        s1 = (s1 + fr) | 0;
        s2 = (s2 + s1) | 0;
        s1 = (s1 + fg) | 0;
        s2 = (s2 + s1) | 0;
        s1 = (s1 + fb) | 0;
        s2 = (s2 + s1) | 0;
      }
      s1 %= 65521;
      s2 %= 65521;
    }
  }
  return ((s2 << 16) | s1) >>> 0;
}

/**
 * `blend(heat, imageRgb, alpha)` where heat is the colour map `lut` at `index`, in two passes over the
 * pixels without the heat image: the table of output bytes ({@link blendTable}), then the blended RGB.
 */
function blendIndexed(index: Uint8Array, imageRgb: Uint8Array, alpha: number, lut: Uint8Array): Buffer {
  return blendRgb(index, imageRgb, heatKeys(lut), blendTable(index, imageRgb, alpha, lut));
}

/**
 * {@link blendIndexed}'s picture as Sub-filtered PNG scanlines, handed to `png` in blocks of rows as they are
 * made (the writer deflates large pictures' blocks on libuv's pool meanwhile), with their Adler-32.
 */
function blendIndexedRows(index: Uint8Array, imageRgb: Uint8Array, alpha: number, lut: Uint8Array, png: PngWriter): void {
  const bytes = blendTable(index, imageRgb, alpha, lut);
  const keys = heatKeys(lut);
  const { width, height } = png;
  const block = blockRows(width);
  for (let y0 = 0; y0 < height; y0 += block) {
    const y1 = Math.min(height, y0 + block);
    const out = Buffer.allocUnsafe((y1 - y0) * (width * 3 + 1));
    png.write(out, blendSubRows(index, imageRgb, keys, bytes, width, y0, y1, out, png.adler));
  }
}

function colormapLut(name: ColormapName): Uint8Array {
  const lut = COLORMAPS[name];
  if (lut === undefined) throw new RangeError(`applyColormap: unknown colour map ${String(name)}`);
  return lut;
}

/** `blend(applyColormap(map01, name), imageRgb, alpha)` without the intermediate heat image: the same bytes, faster. */
export function colormapBlend(map01: CamMap, imageRgb: Buffer, alpha: number, name: ColormapName): Buffer {
  checkMap(map01, 'colormapBlend');
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`blend: alpha must be in [0, 1], got ${alpha}`);
  const lut = colormapLut(name);
  const n = map01.data.length;
  if (imageRgb.length !== n * 3) throw new RangeError(`blend: heat map has ${n * 3} bytes, image ${imageRgb.length}`);
  return blendIndexed(colormapIndex(map01, map01.width, map01.height), imageRgb, alpha, lut);
}

function checkLevel(compressionLevel: number | undefined): number {
  const level = compressionLevel ?? DEFAULT_COMPRESSION_LEVEL;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new RangeError(`compressionLevel must be an integer in 0..9, got ${level}`);
  }
  return level;
}

/** Options of {@link renderOverlay}. */
export interface OverlayOptions extends PictureEncoding {
  /** the image the map explains, 8-bit RGB */
  image: RgbImage;
  /** raw map at any resolution (normalised here unless `normalize` is false) */
  map: CamMap;
  /** image weight in [0, 1]; default 0.5 */
  alpha?: number;
  /** default 'jet' */
  colormap?: ColormapName;
  /** min–max normalise the map first (scale_cam_image); default true */
  normalize?: boolean;
}

/**
 * Heat map overlaid on the image, as a picture of the image's size (PNG unless `format` says otherwise):
 *
 *   m = normalize ? normalizeMap(map) : map
 *   m = resizeBilinear(m, image.width, image.height)
 *   png( blend(applyColormap(m, colormap), image, alpha) )
 *
 * i.e. pytorch-grad-cam's `show_cam_on_image(image / 255, cv2.resize(scale_cam_image(map)),
 * use_rgb=True, colormap, image_weight=alpha)`.
 */
export async function renderOverlay(opts: OverlayOptions): Promise<Buffer> {
  const { image, map } = opts;
  const alpha = opts.alpha ?? 0.5;
  checkDims(image.width, image.height, 'renderOverlay image');
  if (image.channels !== 3) throw new RangeError(`renderOverlay: image must have 3 channels, got ${String(image.channels)}`);
  checkRgb(image.data, image.width, image.height, 'renderOverlay image');
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`renderOverlay: alpha must be in [0, 1], got ${alpha}`);
  const level = checkLevel(opts.compressionLevel);
  const lut = colormapLut(opts.colormap ?? 'jet');
  const m0 = opts.normalize === false ? map : normalizeMap(map);
  // resize → colour map → blend → PNG rows in two passes over the pixels (see colormapIndex, blendIndexed, blendIndexedRows)
  const index = colormapIndex(m0, image.width, image.height);
  if ((opts.format ?? 'png') !== 'png' || level === 0) {
    const rgb = blendIndexed(index, image.data, alpha, lut);
    return encodeRgb(rgb, image.width, image.height, opts);
  }
  const png = new PngWriter(image.width, image.height, level);
  blendIndexedRows(index, image.data, alpha, lut, png);
  return png.end();
}

/** Options of {@link renderHeatmap}. */
export interface HeatmapOptions extends PictureEncoding {
  map: CamMap;
  /** output size */
  width: number;
  height: number;
  /** default 'jet' */
  colormap?: ColormapName;
  /** min–max normalise the map first (scale_cam_image); default true */
  normalize?: boolean;
}

/**
 * The colour-mapped heat map alone, as a width×height RGB picture (PNG unless `format` says otherwise):
 *
 *   png( applyColormap(resizeBilinear(normalize ? normalizeMap(map) : map, width, height), colormap) )
 */
export async function renderHeatmap(opts: HeatmapOptions): Promise<Buffer> {
  checkDims(opts.width, opts.height, 'renderHeatmap');
  checkLevel(opts.compressionLevel);
  const lut = colormapLut(opts.colormap ?? 'jet');
  const m0 = opts.normalize === false ? opts.map : normalizeMap(opts.map);
  const index = colormapIndex(m0, opts.width, opts.height);
  const heat = Buffer.allocUnsafe(index.length * 3);
  for (let i = 0, o = 0; i < index.length; i++, o += 3) {
    const l = index[i] * 3;
    heat[o] = lut[l];
    heat[o + 1] = lut[l + 1];
    heat[o + 2] = lut[l + 2];
  }
  return encodeRgb(heat, opts.width, opts.height, opts);
}

/**
 * Combines maps of several layers as pytorch-grad-cam does (`compute_cam_per_layer` followed by
 * `aggregate_multi_layers`):
 *
 *   per layer:  c = resize(scale(max(map, 0)), width, height)     (scale_cam_image(cam, target_size):
 *                                                                  normalise first, then resize)
 *   result   =  scale( mean_layers( max(c, 0) ) )
 *
 * where scale is {@link normalizeMap} and resize is {@link resizeBilinear}. The result is
 * width×height with values in [0, 1).
 */
export function averageMaps(maps: CamMap[], width: number, height: number): CamMap {
  if (maps.length === 0) throw new RangeError('averageMaps: no maps');
  checkDims(width, height, 'averageMaps');
  const n = width * height;
  const sum = new Float64Array(n);
  for (const map of maps) {
    checkMap(map, 'averageMaps');
    const relu = new Float32Array(map.data.length);
    for (let i = 0; i < relu.length; i++) {
      const v = map.data[i];
      relu[i] = v > 0 ? v : 0; // np.maximum(cam, 0); a NaN becomes 0 here
    }
    const c = resizeBilinear(normalizeMap({ width: map.width, height: map.height, data: relu }), width, height).data;
    for (let i = 0; i < n; i++) {
      const v = c[i];
      if (v > 0) sum[i] += v;
    }
  }
  const mean = new Float32Array(n);
  const k = maps.length;
  for (let i = 0; i < n; i++) mean[i] = sum[i] / k;
  return normalizeMap({ width, height, data: mean });
}
