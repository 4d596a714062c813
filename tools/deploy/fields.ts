// Unknown-field check for Kubernetes objects: kubernetes-models' validators accept fields the API does not
// have (a typo such as `livenesProbe` passes), so this reads the field names from its TypeScript declarations.
//
// The declarations (`export interface IDeploymentSpec { "replicas"?: number; "template": IIoK8s…; }`, nested
// type literals in CRD models) are parsed with a small type parser; a field not declared is a problem.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

type Shape =
  | { t: 'object'; fields: Map<string, Shape>; index?: Shape }
  | { t: 'array'; item: Shape }
  | { t: 'union'; options: Shape[] }
  | { t: 'ref'; name: string; file: string }
  | { t: 'any' };

const ANY: Shape = { t: 'any' };

/** `spec` as found from `fromFile`: relative, or a package under some node_modules above it. */
function resolveDts(fromFile: string, spec: string): string | undefined {
  const candidates = (base: string) => [`${base}.d.ts`, path.join(base, 'index.d.ts')];
  if (spec.startsWith('.')) return candidates(path.resolve(path.dirname(fromFile), spec)).find((f) => existsSync(f));
  for (let dir = path.dirname(fromFile); ; dir = path.dirname(dir)) {
    const found = candidates(path.join(dir, 'node_modules', spec)).find((f) => existsSync(f));
    if (found) return found;
    if (path.dirname(dir) === dir) return undefined;
  }
}

const TOKEN = /\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[A-Za-z_$][\w$.]*|-?\d+(?:\.\d+)?|=>|[{}[\]<>()|&:;?,=])/y;

function tokenize(text: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  let m: RegExpExecArray | null;
  while (TOKEN.lastIndex < text.length && (m = TOKEN.exec(text))) out.push(m[1]);
  if (text.slice(TOKEN.lastIndex).trim()) throw new Error(`cannot read type text near ${JSON.stringify(text.slice(TOKEN.lastIndex, TOKEN.lastIndex + 40))}`);
  return out;
}

/** Parses one declaration file's types; identifiers resolve through its imports. */
class DtsFile {
  readonly imports = new Map<string, string>();
  private tokens: string[] = [];
  private pos = 0;

  constructor(readonly file: string, private readonly text: string) {
    for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)) {
      for (const part of m[1].split(',')) {
        const [name, alias] = part.trim().split(/\s+as\s+/);
        if (name) this.imports.set((alias ?? name).trim(), m[2]);
      }
    }
  }

  /** The shape of the file's first exported interface. */
  firstInterface(): Shape {
    const m = /export\s+interface\s+\w+(?:\s+extends\s+[^{]+)?\s*\{/.exec(this.text);
    if (!m) return ANY; // a type alias (IntOrString, Quantity, …): no fields to check
    const start = m.index + m[0].length - 1;
    let depth = 0;
    let end = start;
    for (; end < this.text.length; end++) {
      if (this.text[end] === '{') depth++;
      else if (this.text[end] === '}' && --depth === 0) break;
    }
    this.tokens = tokenize(this.text.slice(start, end + 1));
    this.pos = 0;
    return this.type();
  }

  private peek(): string | undefined { return this.tokens[this.pos]; }
  private next(): string {
    const t = this.tokens[this.pos++];
    if (t === undefined) throw new Error(`${this.file}: unexpected end of a type`);
    return t;
  }
  private expect(t: string): void {
    const got = this.next();
    if (got !== t) throw new Error(`${this.file}: expected ${t}, got ${got}`);
  }

  private type(): Shape {
    const options = [this.postfix()];
    while (this.peek() === '|') {
      this.next();
      options.push(this.postfix());
    }
    return options.length === 1 ? options[0] : { t: 'union', options };
  }

  private postfix(): Shape {
    let s = this.primary();
    while (this.peek() === '[' && this.tokens[this.pos + 1] === ']') {
      this.pos += 2;
      s = { t: 'array', item: s };
    }
    return s;
  }

  private primary(): Shape {
    const t = this.next();
    if (t === '{') return this.members();
    if (t === '(') {
      const s = this.type();
      this.expect(')');
      return s;
    }
    if (/^[A-Za-z_$]/.test(t)) {
      let args: Shape[] = [];
      if (this.peek() === '<') {
        this.next();
        args = [this.type()];
        while (this.peek() === ',') { this.next(); args.push(this.type()); }
        this.expect('>');
      }
      if (t === 'Array' || t === 'ReadonlyArray') return { t: 'array', item: args[0] ?? ANY };
      const spec = this.imports.get(t);
      if (spec) {
        const file = resolveDts(this.file, spec);
        if (!file) throw new Error(`${this.file}: cannot find the declarations of ${t} (${spec})`);
        return { t: 'ref', name: t, file };
      }
      return ANY; // string, number, boolean, any, null, …
    }
    return ANY; // a literal
  }

  private members(): Shape {
    const fields = new Map<string, Shape>();
    let index: Shape | undefined;
    while (this.peek() !== '}') {
      if (this.peek() === '[') {
        this.next();
        this.next(); // key
        this.expect(':');
        this.type();
        this.expect(']');
        this.expect(':');
        index = this.type();
      } else {
        const raw = this.next();
        const name = /^["']/.test(raw) ? (JSON.parse(raw.replace(/^'(.*)'$/, '"$1"')) as string) : raw;
        if (this.peek() === '?') this.next();
        this.expect(':');
        fields.set(name, this.type());
      }
      if (this.peek() === ';' || this.peek() === ',') this.next();
    }
    this.expect('}');
    return { t: 'object', fields, index };
  }
}

const cache = new Map<string, Shape>();

/** The shape declared by the first interface of a .d.ts file. */
export function shapeOfFile(file: string): Shape {
  let s = cache.get(file);
  if (!s) {
    s = new DtsFile(file, readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')).firstInterface();
    cache.set(file, s);
  }
  return s;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function check(value: unknown, shape: Shape, where: string, problems: string[]): void {
  if (shape.t === 'ref') return check(value, shapeOfFile(shape.file), where, problems);
  if (shape.t === 'array') {
    if (Array.isArray(value)) value.forEach((v, i) => check(v, shape.item, `${where}[${i}]`, problems));
    return;
  }
  if (shape.t === 'union') {
    const tries = shape.options.map((o) => { const p: string[] = []; check(value, o, where, p); return p; });
    if (!tries.some((p) => p.length === 0)) problems.push(...tries.sort((a, b) => a.length - b.length)[0]);
    return;
  }
  if (shape.t !== 'object' || !isPlainObject(value)) return;
  for (const [k, v] of Object.entries(value)) {
    const field = shape.fields.get(k) ?? shape.index;
    if (!field) problems.push(`${where}.${k}: unknown field (not in the API's schema)`);
    else check(v, field, `${where}.${k}`, problems);
  }
}

/** Fields of `value` that the type declared in `dtsFile` does not have, as "path: unknown field" lines. */
export function unknownFields(value: unknown, dtsFile: string, where = ''): string[] {
  const problems: string[] = [];
  check(value, shapeOfFile(dtsFile), where, problems);
  return problems;
}
