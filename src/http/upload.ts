// What every image route shares: reading the upload (multipart field `image` or a raw image body),
// decoding it, finding the model, and mapping pool errors to problems.
import type { Request, Response } from 'express';
import express from 'express';
import multer from 'multer';
import type { ModelStatus } from '../workers/pool.js';
import { IMAGE_FORMATS, ImageError, decodeImage, type DecodedImage } from '../engine/input.js';
import type { ModelInfo } from '../engine/runtime.js';
import { HttpProblem, badParameter } from './problem.js';

/** Request content types accepted as a raw image body (besides multipart/form-data). */
export const RAW_BODY_TYPES = ['image/*', 'application/octet-stream'];

/** Reads the body into { bytes, fields }, mapping every parser failure to its problem. */
export async function readUpload(req: Request, res: Response, limit: number): Promise<{ bytes?: Buffer; fields: Record<string, unknown> }> {
  const run = (mw: express.RequestHandler) => new Promise<void>((resolve, reject) => {
    void mw(req, res, (err?: unknown) => (err ? reject(err) : resolve()));
  });
  const tooLarge = () => new HttpProblem('payload-too-large', `the upload is larger than ${limit} bytes`, { limit_bytes: limit });
  if (req.is('multipart/form-data')) {
    const upload = multer({
      storage: multer.memoryStorage(),
      limits: { fileSize: limit, files: 1, fields: 32, fieldSize: 64 * 1024, parts: 40, headerPairs: 200 },
    }).any();
    try {
      await run(upload);
    } catch (e) {
      if (e instanceof multer.MulterError) {
        if (e.code === 'LIMIT_FILE_SIZE') throw tooLarge();
        if (e.code === 'LIMIT_FILE_COUNT') throw badParameter('image', 'one file', 'several files', 'send one image per request');
        throw new HttpProblem('bad-request', `the multipart form is refused: ${e.message}${e.field ? ` (field "${e.field}")` : ''}`);
      }
      throw new HttpProblem('bad-request', `the multipart form cannot be read: ${(e as Error).message}`);
    }
    const files = (req.files as Express.Multer.File[] | undefined) ?? [];
    const stray = files.find((f) => f.fieldname !== 'image');
    if (stray) throw badParameter(stray.fieldname, ['image'], stray.originalname, `the file must be in field "image", not "${stray.fieldname}"`);
    const fields = (req.body ?? {}) as Record<string, unknown>;
    return { bytes: files[0]?.buffer, fields };
  }
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (!hasBody) return { fields: {} };
  if (!req.is(RAW_BODY_TYPES)) {
    throw new HttpProblem('unsupported-media-type',
      `the request body is ${req.headers['content-type'] ?? 'without a content type'}; send multipart/form-data with the file in field "image", or the image itself as image/*`,
      { allowed: ['multipart/form-data', ...RAW_BODY_TYPES], received: req.headers['content-type'] ?? null });
  }
  try {
    await run(express.raw({ type: () => true, limit }));
  } catch (e) {
    const err = e as { type?: string; status?: number; message: string };
    if (err.type === 'entity.too.large') throw tooLarge();
    if (err.type === 'encoding.unsupported') throw new HttpProblem('unsupported-media-type', err.message, { allowed: ['identity', 'gzip', 'deflate', 'br'], received: req.headers['content-encoding'] ?? null });
    throw new HttpProblem('bad-request', `the body cannot be read: ${err.message}`);
  }
  return { bytes: Buffer.isBuffer(req.body) ? req.body : undefined, fields: {} };
}

/** Decodes the uploaded image; a missing, oversized, damaged or unsupported one is its problem. */
export async function decodeUpload(bytes: Buffer | undefined, limits: { maxPixels: number; maxImageSide: number }): Promise<DecodedImage> {
  if (!bytes || bytes.length === 0) {
    throw new HttpProblem('missing-image', 'no image: send multipart/form-data with the file in field "image", or the image itself as the body with Content-Type image/*', { parameter: 'image' });
  }
  try {
    return await decodeImage(bytes, { maxPixels: limits.maxPixels, maxSide: limits.maxImageSide });
  } catch (e) {
    if (!(e instanceof ImageError)) throw e;
    if (e.kind === 'too-large') throw new HttpProblem('image-too-large', e.message, { limit_pixels: limits.maxPixels });
    if (e.kind === 'damaged') throw new HttpProblem('damaged-image', e.message);
    throw new HttpProblem('unsupported-media-type', e.message, { allowed: [...IMAGE_FORMATS] });
  }
}

/** The model `id` names (a 404 problem if none, 422 if it failed to load). */
export function findModel(models: ModelStatus[], id: string | undefined, parameter = 'model'): ModelInfo {
  const status = models.find((m) => m.id === id);
  if (!id || !status) {
    throw new HttpProblem('unknown-model', id ? `no model "${id}"` : 'no model is loaded, so a request must name one',
      { parameter, allowed: models.map((m) => m.id), received: id ?? null });
  }
  if (!status.ok) throw new HttpProblem('model-unavailable', `model "${id}" failed to load: ${status.error}`, { model: id });
  return status.info;
}

/** Maps an error from the pool to its problem (undefined: the client went away, or an unexpected error). */
export function poolProblem(e: Error, state: { retryAfterSeconds: number; shuttingDown: boolean }, details: Record<string, string>): HttpProblem | undefined {
  const retry = { 'Retry-After': String(state.retryAfterSeconds) };
  switch (e.name) {
    case 'PoolBusyError':
      if (state.shuttingDown) return new HttpProblem('shutting-down', 'the server is shutting down', {}, retry);
      return new HttpProblem('overloaded', `too many requests are waiting: ${e.message}`, {}, retry);
    case 'MethodError':
    case 'GradientError':
      return new HttpProblem('cannot-explain', e.message, details);
    case 'ModelError':
      return new HttpProblem('model-unavailable', e.message, { model: details.model });
    default:
      return undefined;
  }
}
