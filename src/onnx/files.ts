// Containment of a model's files: model.onnx, its external weights and its labels are read only if their
// real path (after symlinks) lies inside the real path of the model's folder (itself possibly a symlink).
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { ModelError } from '../errors/index.js';

/** Whether `file` lies strictly inside `dir` (both real, absolute paths). */
export function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && !path.isAbsolute(rel) && rel !== '..' && !rel.startsWith(`..${path.sep}`);
}

/**
 * The real path of `name` in the model folder `dir`, if it exists and its real path lies inside the
 * folder's real path; a ModelError naming `what` and `name` (never a server path) otherwise.
 */
export async function containedFile(dir: string, name: string, what: string): Promise<string> {
  const realDir = await realpath(dir).catch(() => {
    throw new ModelError(`${what} "${name}" is missing (its folder cannot be read)`);
  });
  let real: string;
  try {
    real = await realpath(path.resolve(dir, name));
  } catch {
    throw new ModelError(`${what} "${name}" is missing`);
  }
  if (!isInside(realDir, real)) throw new ModelError(`${what} "${name}" lies outside the model's folder (symbolic links may not lead out of it)`);
  return real;
}
