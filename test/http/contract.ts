// The contract check of the HTTP tests: every answer is validated against openapi.yaml (status listed,
// content type declared, JSON body valid against its schema with ajv, required headers present), and the
// (route, method, status) triples seen are recorded so that a final test can demand that every one the
// document lists was exercised.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const OPENAPI_FILE = path.join(ROOT, 'openapi.yaml');

interface MediaType { schema?: unknown }
interface ResponseObject { $ref?: string; description?: string; headers?: Record<string, unknown>; content?: Record<string, MediaType> }
interface Operation { responses: Record<string, ResponseObject>; parameters?: { $ref?: string; name?: string }[] }
export interface OpenApi {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; responses: Record<string, ResponseObject>; parameters: Record<string, { name: string }> };
}

const SCHEMA_ID = 'https://camserve.invalid/openapi';

export class Contract {
  readonly doc: OpenApi;
  private readonly ajv: Ajv2020;
  private readonly seen = new Set<string>();
  private readonly validators = new Map<string, (v: unknown) => boolean>();

  constructor(file = OPENAPI_FILE) {
    this.doc = parse(readFileSync(file, 'utf8')) as OpenApi;
    this.ajv = new Ajv2020({ allErrors: true, strict: true });
    addFormats.default(this.ajv);
    this.ajv.addVocabulary(['example']);
    // Component schemas become $defs of one schema; refs are rewritten to point there.
    const rewrite = (v: unknown): unknown => JSON.parse(JSON.stringify(v).replaceAll('"#/components/schemas/', `"${SCHEMA_ID}#/$defs/`));
    this.ajv.addSchema({ $id: SCHEMA_ID, $defs: rewrite(this.doc.components.schemas) as object });
    this.rewrite = rewrite;
  }

  private readonly rewrite: (v: unknown) => unknown;

  /** The documented path template for a concrete path, or undefined. */
  template(p: string): string | undefined {
    for (const t of Object.keys(this.doc.paths)) {
      const escape = (s: string) => s.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
      const re = new RegExp('^' + t.split(/\{[^}]+\}/).map(escape).join('[^/]+') + '$');
      if (re.test(p)) return t;
    }
    return undefined;
  }

  response(template: string, method: string, status: number): ResponseObject | undefined {
    const op = this.doc.paths[template]?.[method.toLowerCase()];
    if (!op) return undefined;
    let r = op.responses[String(status)];
    if (r?.$ref) r = this.doc.components.responses[r.$ref.split('/').pop()!];
    return r;
  }

  /** Every (route, method, status) the document lists (not `default`). */
  listed(): string[] {
    const out: string[] = [];
    for (const [p, ops] of Object.entries(this.doc.paths)) {
      for (const [m, op] of Object.entries(ops)) {
        for (const status of Object.keys(op.responses)) if (status !== 'default') out.push(`${m.toUpperCase()} ${p} ${status}`);
      }
    }
    return out.sort();
  }

  /** Triples listed in the document that no test produced. */
  missing(): string[] {
    return this.listed().filter((k) => !this.seen.has(k));
  }

  private validator(key: string, schema: unknown): (v: unknown) => boolean {
    let v = this.validators.get(key);
    if (!v) {
      v = this.ajv.compile(this.rewrite(schema) as object);
      this.validators.set(key, v);
    }
    return v;
  }

  /**
   * Checks one answer against the document and records it. A 405 is recorded under the path whose
   * method was refused (the document lists 405 under each path's GET/POST operation).
   */
  async check(method: string, url: string, res: Response, body: Buffer): Promise<void> {
    const p = new URL(url).pathname;
    const template = this.template(p);
    if (!template) {
      // Paths outside the document: only problem+json 404s (unknown routes) and static page assets.
      if (res.status === 404) assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
      return;
    }
    const ops = this.doc.paths[template];
    const opMethod = res.status === 405 ? Object.keys(ops)[0] : method.toLowerCase() === 'head' ? 'get' : method.toLowerCase();
    const r = this.response(template, opMethod, res.status);
    assert.ok(r, `${method} ${p} answered ${res.status}, which openapi.yaml does not list for ${opMethod.toUpperCase()} ${template}`);
    this.seen.add(`${opMethod.toUpperCase()} ${template} ${res.status}`);
    if (!r.content) {
      // An answer without content (204): the document declares none, and none came.
      assert.equal(body.length, 0, `${method} ${p} ${res.status}: a body where the document declares none`);
      return;
    }
    const type = (res.headers.get('content-type') ?? '').split(';')[0].trim();
    const content = r.content ?? {};
    const declared = Object.keys(content).find((k) => k === type || (k.endsWith('/*') && type.startsWith(k.slice(0, -1))));
    assert.ok(declared, `${method} ${p} ${res.status}: content type "${type}" is not declared (${Object.keys(content).join(', ')})`);
    for (const h of Object.keys(r.headers ?? {})) {
      if (['Retry-After', 'Allow', 'WWW-Authenticate', 'Location', 'X-Accel-Buffering'].includes(h)) assert.ok(res.headers.get(h), `${method} ${p} ${res.status}: header ${h} missing`);
    }
    if (res.status >= 400) assert.ok(!/\n\s+at /.test(body.toString('utf8')), 'an error answer carries a stack trace');
    if (method.toLowerCase() === 'head') return;
    if (type === 'application/json' || type === 'application/problem+json') {
      const schema = content[declared].schema;
      const json = JSON.parse(body.toString('utf8')) as unknown;
      const validate = this.validator(`${template} ${opMethod} ${res.status} ${declared}`, schema) as ((v: unknown) => boolean) & { errors?: unknown };
      assert.ok(validate(json), `${method} ${p} ${res.status}: body does not match its schema: ${JSON.stringify(validate.errors, null, 1)}\n${body.toString('utf8').slice(0, 500)}`);
      if (type === 'application/problem+json') assert.equal((json as { status: number }).status, res.status);
    }
    if (type === 'image/png') assert.deepEqual([...body.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG answer is not a PNG');
  }
}

export interface Answer {
  res: Response;
  status: number;
  body: Buffer;
  json<T = Record<string, unknown>>(): T;
  header(name: string): string | null;
}

/** fetch + read the body + check it against the contract. */
export function client(contract: Contract, base: () => string) {
  return async function call(method: string, p: string, init: RequestInit = {}): Promise<Answer> {
    const url = base() + p;
    const res = await fetch(url, { ...init, method });
    const body = Buffer.from(await res.arrayBuffer());
    await contract.check(method, url, res, body);
    return {
      res, status: res.status, body,
      json: <T>() => JSON.parse(body.toString('utf8')) as T,
      header: (name: string) => res.headers.get(name),
    };
  };
}
