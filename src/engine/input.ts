// Image decoding and model-input preparation with sharp: one decode of an upload to the upright RGB
// original (for rendering), then resizing, channel order, normalisation and layout as the model wants.
import sharp, { type Metadata, type OutputInfo, type Sharp, type SharpOptions } from 'sharp';
import { CamserveError } from '../errors/index.js';
import { inputGeometry, type RgbImage } from '../render/index.js';
import { fitOf, type InputSpec } from './manifest.js';
import { jpegFrameSize } from './jpeg-header.js';
import { decodePlainPng } from './plain-png.js';

/** Formats accepted (sharp's names; AVIF is reported as `heif` with AV1 compression). */
export const IMAGE_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

/** Transparent pixels are composed onto this colour before anything else (white, as most viewers show them). */
export const ALPHA_BACKGROUND = { r: 255, g: 255, b: 255 } as const;

/** Colour of the borders that `resize: "pad"` adds around the image (black, i.e. pixel value 0). */
export const PAD_BACKGROUND = { r: 0, g: 0, b: 0 } as const;

/** What each kind of unusable upload is reported as. */
const IMAGE_ERROR_CODES = { unsupported: 'unsupported-media-type', 'too-large': 'image-too-large', damaged: 'damaged-image' } as const;

/**
 * Why an upload cannot be used: `unsupported` (not an image, or a format not in IMAGE_FORMATS),
 * `too-large` (more pixels than allowed, checked from the header before decoding), `damaged`
 * (a known format that fails to decode).
 */
export class ImageError extends CamserveError {
  override name = 'ImageError';
  constructor(readonly kind: keyof typeof IMAGE_ERROR_CODES, message: string, details: Record<string, unknown> = {}) {
    super(IMAGE_ERROR_CODES[kind], message, details);
  }
}

export interface DecodeLimits {
  /** most pixels (width × height) an image may have */
  maxPixels: number;
  /** the decoded original is scaled down to fit this side (aspect kept) */
  maxSide: number;
}

export interface DecodedImage {
  format: ImageFormat;
  /** size of the upright (EXIF-oriented) image as uploaded */
  width: number;
  height: number;
  /** the upright RGB image, alpha flattened on ALPHA_BACKGROUND, scaled to fit maxSide */
  rgb: RgbImage;
  hadAlpha: boolean;
}

function formatOf(meta: Metadata): ImageFormat | undefined {
  if (meta.format === 'heif') return meta.compression === 'av1' ? 'avif' : undefined;
  return (IMAGE_FORMATS as readonly string[]).includes(meta.format ?? '') ? (meta.format as ImageFormat) : undefined;
}

/**
 * Decodes an upload once: checks format and pixel count from the header, then orients (EXIF), flattens
 * alpha on white, converts to 8-bit sRGB and scales to fit `maxSide`. Animated images give their first frame.
 * Small plain 8-bit RGB PNGs are read without sharp (the same pixels; plain-png.ts), and JPEGs that need no
 * shrinking without sharp's metadata() (jpeg-header.ts).
 */
export async function decodeImage(bytes: Buffer, limits: DecodeLimits): Promise<DecodedImage> {
  if (bytes.length === 0) throw new ImageError('unsupported', 'the upload is empty', { allowed: [...IMAGE_FORMATS] });
  // A small plain RGB PNG: its scanlines are its pixels (plain-png.ts); every other upload goes through sharp.
  const plain = decodePlainPng(bytes, limits.maxPixels, limits.maxSide);
  if (plain) return { format: 'png', width: plain.width, height: plain.height, rgb: { ...plain, channels: 3 }, hadAlpha: false };
  const options: SharpOptions = { limitInputPixels: limits.maxPixels, pages: 1, failOn: 'error' };
  // A JPEG that needs no shrinking (its frame header says so): one sharp call. JPEG has no alpha, and the
  // decode gives the upright size (jpeg-header.ts).
  const frame = jpegFrameSize(bytes);
  if (frame && frame.width * frame.height <= limits.maxPixels && Math.max(frame.width, frame.height) <= limits.maxSide) {
    const rgb = await decodeWith(upright(bytes, options, false), 'jpeg', limits);
    return { format: 'jpeg', width: rgb.width, height: rgb.height, rgb, hadAlpha: false };
  }
  let meta: Metadata;
  try {
    meta = await sharp(bytes, options).metadata();
  } catch (e) {
    const msg = (e as Error).message;
    if (/pixel limit/i.test(msg)) throw new ImageError('too-large', `the image has more than ${limits.maxPixels} pixels`, { limit_pixels: limits.maxPixels });
    if (/unsupported image format/i.test(msg)) throw new ImageError('unsupported', 'the upload is not an image in a supported format', { allowed: [...IMAGE_FORMATS] });
    throw new ImageError('damaged', `the image cannot be read: ${msg}`);
  }
  const format = formatOf(meta);
  if (!format) {
    const what = meta.format === 'heif' ? `HEIF (${meta.compression ?? 'unknown'} compression)` : meta.format ?? 'unknown';
    throw new ImageError('unsupported', `images of format ${what} are not accepted`, { allowed: [...IMAGE_FORMATS] });
  }
  const w0 = meta.width ?? 0;
  const h0 = meta.height ?? 0;
  if (!(w0 > 0 && h0 > 0)) throw new ImageError('damaged', 'the image header has no size');
  if (w0 * h0 > limits.maxPixels) throw new ImageError('too-large', `the image is ${w0}×${h0} = ${w0 * h0} pixels, more than ${limits.maxPixels}`, { limit_pixels: limits.maxPixels });
  const swapped = (meta.orientation ?? 1) >= 5;
  const width = swapped ? h0 : w0;
  const height = swapped ? w0 : h0;
  const hadAlpha = meta.hasAlpha ?? false;
  let pipeline = upright(bytes, options, hadAlpha);
  if (Math.max(width, height) > limits.maxSide) {
    pipeline = pipeline.resize({ width: limits.maxSide, height: limits.maxSide, fit: 'inside', withoutEnlargement: true });
  }
  return { format, width, height, rgb: await decodeWith(pipeline, format, limits), hadAlpha };
}

/** The decode of an upload as every path makes it: oriented (EXIF), alpha flattened on white, sRGB without alpha. */
function upright(bytes: Buffer, options: SharpOptions, hadAlpha: boolean): Sharp {
  const pipeline = sharp(bytes, options).rotate();
  return (hadAlpha ? pipeline.flatten({ background: ALPHA_BACKGROUND }) : pipeline).toColourspace('srgb').removeAlpha();
}

/** The pipeline's 8-bit pixels as RGB; its failures as ImageErrors. */
async function decodeWith(pipeline: Sharp, format: ImageFormat, limits: DecodeLimits): Promise<RgbImage> {
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    const msg = (e as Error).message;
    if (/pixel limit/i.test(msg)) throw new ImageError('too-large', `the image has more than ${limits.maxPixels} pixels`, { limit_pixels: limits.maxPixels });
    throw new ImageError('damaged', `the ${format} image cannot be decoded: ${msg}`);
  }
  return toRgb(out.data, out.info.width, out.info.height, out.info.channels);
}

function toRgb(data: Buffer, width: number, height: number, channels: number): RgbImage {
  if (channels === 3) return { data, width, height, channels: 3 };
  const rgb = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) rgb[i * 3 + c] = data[i * channels + (channels >= 3 ? c : 0)];
  }
  return { data: rgb, width, height, channels: 3 };
}

/** The facts of a model that preprocessing needs (a subset of ModelInfo). */
export interface ModelInputSpec {
  /** [1, C, H, W] or [1, H, W, C] */
  inputDims: number[];
  inputSize: { height: number; width: number; channels: number };
  manifest: { input: InputSpec };
}

/**
 * The model input for an image: resized per `input.resize` (bilinear, antialiased when shrinking, like
 * PIL/torchvision), channels in `input.channels` order (gray = ITU-R 601 luma), x = (pixel·scale − mean[c]) / std[c]
 * with mean/std in that channel order, laid out as `inputDims` (NCHW or NHWC).
 */
export async function toModelInput(image: RgbImage, model: ModelInputSpec): Promise<Float32Array> {
  const spec = model.manifest.input;
  const { width: W, height: H, channels: C } = model.inputSize;
  const nhwc = spec.layout === 'NHWC';
  const g = inputGeometry(image, { width: W, height: H }, spec.resize, fitOf(spec));
  // An image of the model's own size needs no resampling, cropping or padding: its bytes are the input's.
  const asIs = image.width === W && image.height === H && g.scaled.width === W && g.scaled.height === H && g.offset.x === 0 && g.offset.y === 0;
  return normalise(asIs ? image.data : await resample(image, spec, g, W, H), spec, W, H, C, nhwc);
}

/** The image resized (and cropped or padded) to the model's W×H by sharp, as 8-bit RGB. */
async function resample(image: RgbImage, spec: InputSpec, g: ReturnType<typeof inputGeometry>, W: number, H: number): Promise<Buffer> {
  let p = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize({ width: g.scaled.width, height: g.scaled.height, fit: 'fill', kernel: 'linear' });
  if (spec.resize === 'crop') {
    // An extract chained after resize crops the resized image (sharp's documented order).
    p = p.extract({ left: g.offset.x, top: g.offset.y, width: W, height: H });
  } else if (spec.resize === 'pad') {
    p = p.extend({
      left: g.offset.x, top: g.offset.y,
      right: W - g.scaled.width - g.offset.x, bottom: H - g.scaled.height - g.offset.y,
      background: spec.padValue ? { r: spec.padValue, g: spec.padValue, b: spec.padValue } : PAD_BACKGROUND,
    });
  }
  const { data, info } = await p.raw().toBuffer({ resolveWithObject: true });
  if (info.width !== W || info.height !== H || info.channels !== 3) {
    throw new RangeError(`preprocessing produced ${info.width}×${info.height}×${info.channels}, expected ${W}×${H}×3`);
  }
  return data;
}

/** x = pixel · a[c] + b[c] per channel, in the model's channel order and layout. */
function normalise(data: Uint8Array, spec: InputSpec, W: number, H: number, C: number, nhwc: boolean): Float32Array {
  const out = new Float32Array(W * H * C);
  // x = pixel · a[c] + b[c]: (pixel · scale − mean) / std, or model.json's explicit affine.
  const a = spec.affine ? spec.affine.scale : spec.mean.map((_, c) => spec.scale / spec.std[c]);
  const b = spec.affine ? spec.affine.offset : spec.mean.map((m, c) => -m / spec.std[c]);
  const value = (px: number, c: number) => (spec.affine ? px * a[c] + b[c] : (px * spec.scale - spec.mean[c]) / spec.std[c]);
  if (spec.channels === 'gray') {
    for (let i = 0; i < W * H; i++) {
      const px = 0.299 * data[i * 3] + 0.587 * data[i * 3 + 1] + 0.114 * data[i * 3 + 2];
      for (let c = 0; c < C; c++) out[nhwc ? i * C + c : c * W * H + i] = value(px, c);
    }
    return out;
  }
  // RGB / BGR: a byte takes 256 values, so each channel's (px · scale − mean) / std is a table lookup
  // (the same float32 values as computing it per pixel).
  const order = spec.channels === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  const n = W * H;
  for (let c = 0; c < C; c++) {
    const table = new Float32Array(256);
    for (let k = 0; k < 256; k++) table[k] = value(k, c);
    const src = order[c];
    if (nhwc) for (let i = 0; i < n; i++) out[i * C + c] = table[data[i * 3 + src]];
    else for (let i = 0, o = c * n; i < n; i++) out[o + i] = table[data[i * 3 + src]];
  }
  return out;
}
