// The layering rule of src/, checked over the import graph: each folder imports only the folders below it
// that it is allowed to, other folders only through their index.ts, and the HTTP and thread libraries
// only where they belong. `node --import tsx tools/architecture/check-imports.ts [src]` prints violations.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Each folder of src/ and the folders it may import from (docs/architecture.md draws the same picture). */
export const LAYERS: Readonly<Record<string, readonly string[]>> = {
  errors: [],
  onnx: ['errors'],
  autodiff: ['errors', 'onnx'],
  render: ['errors'],
  cam: ['errors', 'render'],
  metrics: ['errors', 'cam'],
  engine: ['errors', 'onnx', 'autodiff', 'cam', 'render'],
  inspect: ['errors', 'onnx', 'render', 'engine'],
  api: ['errors', 'cam', 'metrics', 'render', 'engine', 'inspect'],
  workers: ['errors', 'metrics', 'render', 'engine', 'inspect'],
  http: ['errors', 'cam', 'metrics', 'render', 'engine', 'inspect', 'api', 'workers'],
  cli: ['errors', 'cam', 'metrics', 'render', 'engine', 'inspect', 'api'],
};

/** Packages (and Node modules) that only some folders may use. */
export const RESTRICTED_PACKAGES: Readonly<Record<string, readonly string[]>> = {
  express: ['http'],
  multer: ['http'],
  'pino-http': ['http'],
  'prom-client': ['http'],
  bullmq: ['http'],
  ioredis: ['http'],
  'express-rate-limit': ['http'],
  'rate-limit-redis': ['http'],
  'cli-progress': ['cli'],
  'node:worker_threads': ['workers'],
  'onnxruntime-node': ['onnx', 'engine'],
};

export interface Violation { file: string; line: number; specifier: string; why: string }

/** Static imports, re-exports, dynamic imports with a literal and `new URL('…', import.meta.url)`. */
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+|new URL\(\s*)(['"])([^'"\n]+)\1/gm;

function* tsFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) yield* tsFiles(p);
    else if (name.endsWith('.ts')) yield p;
  }
}

/** Every import of `srcDir`'s modules that breaks the rules above (none: the layering holds). */
export function checkImports(srcDir: string): Violation[] {
  const out: Violation[] = [];
  for (const file of tsFiles(srcDir)) {
    const rel = path.relative(srcDir, file);
    const folder = rel.split(path.sep)[0];
    if (!rel.includes(path.sep)) {
      out.push({ file: rel, line: 1, specifier: '', why: 'a module outside the layer folders' });
      continue;
    }
    const allowed = LAYERS[folder];
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(SPECIFIER)) {
      const specifier = m[2];
      const line = text.slice(0, m.index).split('\n').length;
      const v = (why: string) => out.push({ file: rel, line, specifier, why });
      if (!allowed) {
        v(`folder "${folder}" is not in the layer table`);
        break;
      }
      if (!specifier.startsWith('.')) {
        const pkg = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
        const only = RESTRICTED_PACKAGES[pkg];
        if (only && !only.includes(folder)) v(`${pkg} may be imported only in ${only.join(', ')}`);
        continue;
      }
      const target = path.relative(srcDir, path.resolve(path.dirname(file), specifier));
      const parts = target.split(path.sep);
      if (parts[0] === '..') {
        v('imports from outside src/');
        continue;
      }
      const to = parts[0];
      if (to === folder) continue;
      if (!allowed.includes(to)) v(`${folder}/ may import only from ${allowed.join(', ') || 'nothing'}; ${to}/ is ${LAYERS[to]?.includes(folder) ? 'above it' : 'not below it'}`);
      else if (parts.length !== 2 || !/^index\.(js|ts)$/.test(parts[1])) v(`${to}/ is entered through ${to}/index.ts only`);
    }
  }
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const src = path.resolve(process.argv[2] ?? 'src');
  const violations = checkImports(src);
  for (const v of violations) process.stdout.write(`${v.file}:${v.line}: ${v.specifier} — ${v.why}\n`);
  process.stdout.write(violations.length ? `${violations.length} violations\n` : 'the layering holds\n');
  process.exitCode = violations.length ? 1 : 0;
}
