// Load errors as clients may see them: no server paths in what GET /models and /readyz serve.
import { realpathSync } from 'node:fs';
import path from 'node:path';

/**
 * A load error as clients may see it: the model folder's path (as configured and as resolved) is cut from
 * the message, so "/srv/models/x/model.onnx: …" reads "model.onnx: …". The full message goes to the logs.
 */
export function withoutServerPaths(message: string, dir: string): string {
  const paths = new Set([path.resolve(dir)]);
  try {
    paths.add(realpathSync(dir));
  } catch { /* a folder that cannot be resolved adds nothing */ }
  let out = message;
  for (const p of [...paths].sort((a, b) => b.length - a.length)) out = out.split(`${p}${path.sep}`).join('').split(p).join('.');
  return out;
}

