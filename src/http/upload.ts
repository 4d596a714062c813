// What every image route shares: reading the upload (multipart field `image` or a raw image body) with
// every parser failure mapped to its problem, and decoding it.
import type { Request, Response } from 'express';
import express from 'express';
import multer from 'multer';
import sharp from 'sharp';
import type { UploadHeader } from '../api/index.js';
import { decodeImage, type DecodedImage } from '../engine/index.js';
import { CamserveError, badParameter } from '../errors/index.js';

/** Request content types accepted as a raw image body (besides multipart/form-data). */
export const RAW_BODY_TYPES = ['image/*', 'application/octet-stream'];

export interface UploadLimits {
  /** largest upload (of each image), bytes */
  maxUploadBytes: number;
  /** slowest upload, bytes/s over each window (0: no check) */
  minUploadRate: number;
  uploadRateWindowMs: number;
}

/**
 * Rejects with 408 `request-timeout` when the body arrives slower than `minRate` bytes/s over a window
 * (a slow client would otherwise hold its connection for the whole request timeout). `stop()` ends the watch.
 */
function uploadRateGuard(req: Request, minRate: number, windowMs: number): { tooSlow: Promise<never>; stop(): void } {
  let stop = () => undefined as void;
  const tooSlow = new Promise<never>((_resolve, reject) => {
    if (minRate <= 0 || req.complete) return;
    const socket = req.socket;
    let last = socket.bytesRead;
    const timer = setInterval(() => {
      if (req.complete) return stop();
      const bytes = socket.bytesRead - last;
      last = socket.bytesRead;
      if (bytes >= (minRate * windowMs) / 1000) return;
      stop();
      reject(new CamserveError('request-timeout', `the upload is too slow: ${Math.round((bytes * 1000) / windowMs)} bytes/s, less than ${minRate} bytes/s`));
    }, windowMs);
    timer.unref();
    stop = () => clearInterval(timer);
  });
  tooSlow.catch(() => undefined);
  return { tooSlow, stop: () => stop() };
}

export interface UploadOptions {
  /** reads a JSON body into an upload (default: `image`/`images` of base64 and parameters beside them) */
  jsonBody?: (body: unknown, limit: number, maxFiles: number) => Upload;
  /** most images (multipart `image` parts, or JSON `images`); default 1 */
  maxFiles?: number;
  /** with maxFiles > 1: the largest whole body (Content-Length), bytes */
  maxRequestBytes?: number;
  /** accept an application/json body: `image` (base64) or `images` (base64 list) and the parameters */
  json?: boolean;
}

export interface Upload {
  /** the first image */
  bytes?: Buffer;
  /** every image, in order */
  images: Buffer[];
  fields: Record<string, unknown>;
}

/** Reads the body into { images, fields }, mapping every parser failure to its problem. */
export async function readUpload(req: Request, res: Response, limits: UploadLimits & UploadOptions): Promise<Upload> {
  const limit = limits.maxUploadBytes;
  const maxFiles = Math.max(1, limits.maxFiles ?? 1);
  // Several images are held in memory together: a body announced larger than that is refused unread.
  const declared = Number(req.headers['content-length'] ?? NaN);
  const maxBody = Math.max(limit, limits.maxRequestBytes ?? Infinity);
  if (maxFiles > 1 && Number.isFinite(declared) && declared > maxBody + 64 * 1024) {
    res.setHeader('Connection', 'close');
    throw new CamserveError('payload-too-large', `the request body (${declared} bytes) is larger than ${maxBody} bytes`, { limit_bytes: maxBody });
  }
  const guard = uploadRateGuard(req, limits.minUploadRate, limits.uploadRateWindowMs);
  const run = async (mw: express.RequestHandler) => {
    try {
      await Promise.race([guard.tooSlow, new Promise<void>((resolve, reject) => {
        void mw(req, res, (err?: unknown) => (err ? reject(err) : resolve()));
      })]);
    } catch (e) {
      // Cut off: the answer closes the connection, and the rest of the body is not waited for.
      if (e instanceof CamserveError && e.code === 'request-timeout') res.setHeader('Connection', 'close');
      throw e;
    } finally {
      guard.stop();
    }
  };
  const tooLarge = () => new CamserveError('payload-too-large', `the upload is larger than ${limit} bytes`, { limit_bytes: limit });
  if (req.is('multipart/form-data')) {
    const upload = multer({
      storage: multer.memoryStorage(),
      limits: { fileSize: limit, files: maxFiles, fields: 32, fieldSize: 64 * 1024, parts: 40 + maxFiles, headerPairs: 200 + 2 * maxFiles },
    }).any();
    try {
      await run(upload);
    } catch (e) {
      if (e instanceof CamserveError) throw e;
      if (e instanceof multer.MulterError) {
        if (e.code === 'LIMIT_FILE_SIZE') throw tooLarge();
        if (e.code === 'LIMIT_FILE_COUNT') {
          throw maxFiles === 1
            ? badParameter('image', 'one file', 'several files', 'send one image per request')
            : badParameter('image', `at most ${maxFiles} images`, 'more', `at most ${maxFiles} images in one request`);
        }
        throw new CamserveError('bad-request', `the multipart form is refused: ${e.message}${e.field ? ` (field "${e.field}")` : ''}`);
      }
      throw new CamserveError('bad-request', `the multipart form cannot be read: ${(e as Error).message}`);
    }
    const files = (req.files as Express.Multer.File[] | undefined) ?? [];
    const stray = files.find((f) => f.fieldname !== 'image');
    if (stray) throw badParameter(stray.fieldname, ['image'], stray.originalname, `the file must be in field "image", not "${stray.fieldname}"`);
    const fields = (req.body ?? {}) as Record<string, unknown>;
    const images = files.map((f) => f.buffer);
    return { bytes: images[0], images, fields };
  }
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (!hasBody) return { images: [], fields: {} };
  if (limits.json && req.is('application/json')) {
    // base64 takes 4/3 of the bytes; room for the parameters besides.
    const jsonLimit = Math.min(Math.ceil((maxFiles * limit * 4) / 3), Number.isFinite(maxBody) ? maxBody : Infinity) + 64 * 1024;
    try {
      await run(express.json({ limit: jsonLimit, strict: true, type: () => true }));
    } catch (e) {
      if (e instanceof CamserveError) throw e;
      const err = e as { type?: string; message: string };
      if (err.type === 'entity.too.large') throw new CamserveError('payload-too-large', `the JSON body is larger than ${jsonLimit} bytes`, { limit_bytes: jsonLimit });
      throw new CamserveError('bad-request', `the JSON body cannot be read: ${err.message}`);
    }
    return (limits.jsonBody ?? jsonUpload)(req.body, limit, maxFiles);
  }
  if (!req.is(RAW_BODY_TYPES)) {
    throw new CamserveError('unsupported-media-type',
      `the request body is ${req.headers['content-type'] ?? 'without a content type'}; send multipart/form-data with the file in field "image", or the image itself as image/*`,
      { allowed: ['multipart/form-data', ...RAW_BODY_TYPES], received: req.headers['content-type'] ?? null });
  }
  try {
    await run(express.raw({ type: () => true, limit }));
  } catch (e) {
    if (e instanceof CamserveError) throw e;
    const err = e as { type?: string; status?: number; message: string };
    if (err.type === 'entity.too.large') throw tooLarge();
    if (err.type === 'encoding.unsupported') throw new CamserveError('unsupported-media-type', err.message, { allowed: ['identity', 'gzip', 'deflate', 'br'], received: req.headers['content-encoding'] ?? null });
    throw new CamserveError('bad-request', `the body cannot be read: ${err.message}`);
  }
  const bytes = Buffer.isBuffer(req.body) && req.body.length > 0 ? req.body : undefined;
  return { bytes, images: bytes ? [bytes] : [], fields: {} };
}

const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

/** A JSON body: `image` (one base64 image) or `images` (a list), the other members being parameters. */
function jsonUpload(body: unknown, limit: number, maxFiles: number): Upload {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new CamserveError('bad-request', 'the JSON body must be an object: { "images": ["<base64>", …], "<parameter>": "<value>", … }');
  }
  const fields: Record<string, unknown> = {};
  let encoded: unknown[] = [];
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (k === 'image' || k === 'images') {
      if (encoded.length) throw badParameter(k, 'one of image or images', null, 'give "image" or "images", not both');
      encoded = k === 'image' ? [v] : Array.isArray(v) ? v : [v];
      if (k === 'images' && !Array.isArray(v)) throw badParameter('images', 'a list of base64 strings', typeof v, '"images" must be a list of base64 strings');
    } else if (v === null) {
      continue;
    } else if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') {
      fields[k] = String(v);
    } else {
      fields[k] = v; // refused by collectParameters, naming the parameter
    }
  }
  if (encoded.length > maxFiles) throw badParameter('images', `at most ${maxFiles} images`, encoded.length, `at most ${maxFiles} images in one request, got ${encoded.length}`);
  const images = encoded.map((e, i) => base64Image(e, i, limit, 'images'));
  return { bytes: images[0], images, fields };
}

/** The bytes of a base64 image (a data: URL prefix allowed), checked; errors name `parameter` and the image's index. */
export function base64Image(e: unknown, i: number, limit: number, parameter: string): Buffer {
  if (typeof e !== 'string') throw badParameter(parameter, 'base64 strings', typeof e, `image ${i} is not a base64 string`);
  const data = e.replace(/^data:[\w/+.-]*;base64,/, '');
  if (!BASE64.test(data)) throw badParameter(parameter, 'base64 strings', `${data.slice(0, 16)}…`, `image ${i} is not valid base64`);
  const bytes = Buffer.from(data, 'base64');
  if (bytes.length > limit) throw new CamserveError('payload-too-large', `image ${i} is larger than ${limit} bytes`, { limit_bytes: limit, index: i });
  return bytes;
}

/** Decodes the uploaded image; a missing, oversized, damaged or unsupported one is its problem (ImageError). */
export async function decodeUpload(bytes: Buffer | undefined, limits: { maxPixels: number; maxImageSide: number }, side?: (header: UploadHeader | undefined) => number): Promise<DecodedImage> {
  if (!bytes || bytes.length === 0) {
    throw new CamserveError('missing-image', 'no image: send multipart/form-data with the file in field "image", or the image itself as the body with Content-Type image/*', { parameter: 'image' });
  }
  const maxSide = side ? Math.min(limits.maxImageSide, side(await readHeader(bytes))) : limits.maxImageSide;
  return decodeImage(bytes, { maxPixels: limits.maxPixels, maxSide });
}

/**
 * An upload's format and upright size from its header, without decoding; undefined where the header cannot
 * be read (decodeImage then says why).
 */
export async function readHeader(bytes: Buffer): Promise<UploadHeader | undefined> {
  try {
    const meta = await sharp(bytes, { pages: 1 }).metadata();
    if (!meta.format || !meta.width || !meta.height) return undefined;
    const swapped = (meta.orientation ?? 1) >= 5;
    return { format: meta.format, width: swapped ? meta.height : meta.width, height: swapped ? meta.width : meta.height };
  } catch {
    return undefined;
  }
}
