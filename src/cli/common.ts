// What the CLI's commands share: usage errors, loading a model for one command, an image file as the
// model's input, and CLI options handed to the API's parameter kit under the API's names.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeImage, ModelRuntime, toModelInput, type DecodedImage } from '../engine/index.js';

/** A command line that cannot be run as given (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Images larger than the service accepts are fine offline; these bound memory only. */
export const CLI_IMAGE_LIMITS = { maxPixels: 100_000_000, maxSide: 4096 } as const;

export function requireModel(model: string | undefined): string {
  if (!model) throw new UsageError('--model is required');
  return model;
}

/** Loads the model, runs `f` with it and releases it. */
export async function withModel<T>(model: string, f: (rt: ModelRuntime) => Promise<T>): Promise<T> {
  const rt = await ModelRuntime.load(model);
  try {
    return await f(rt);
  } finally {
    await rt.release();
  }
}

/** An image file decoded (upright RGB) and as the model's input. */
export async function imageInput(rt: ModelRuntime, file: string): Promise<{ image: DecodedImage; input: Float32Array }> {
  const image = await decodeImage(await readFile(file), CLI_IMAGE_LIMITS);
  return { image, input: await toModelInput(image.rgb, rt.info) };
}

/**
 * CLI option values under the API's parameter names (booleans as "true", absent ones left out), ready for
 * the parameter kit, so that every option means what its HTTP parameter means.
 */
export function asParameters(values: Record<string, string | boolean | undefined>, names: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [option, v] of Object.entries(values)) {
    if (v === undefined || v === false) continue;
    out[names[option] ?? option] = v === true ? 'true' : v;
  }
  return out;
}

/** The picture options of `explain` and `explain-dir`, as parseArgs options (their API names in {@link pictureParameters}). */
export const PICTURE_OPTIONS = {
  'max-side': { type: 'string' }, format: { type: 'string' }, 'png-compression': { type: 'string' }, quality: { type: 'string' },
} as const;

/**
 * The picture options under their API names (max_side, format, png_compression, quality). Without
 * --format, an output file named .webp, .jpg or .jpeg asks for that format.
 */
export function pictureParameters(values: { 'max-side'?: string; format?: string; 'png-compression'?: string; quality?: string }, out?: string): Record<string, string | undefined> {
  const ext = out ? path.extname(out).toLowerCase() : '';
  const implied = ext === '.webp' ? 'webp' : ext === '.jpg' || ext === '.jpeg' ? 'jpeg' : undefined;
  return { max_side: values['max-side'], format: values.format ?? implied, png_compression: values['png-compression'], quality: values.quality };
}

/** The file extension of a picture format. */
export function pictureExtension(format: string): string {
  return format === 'jpeg' ? '.jpg' : `.${format}`;
}

