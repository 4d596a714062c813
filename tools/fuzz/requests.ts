// Hostile HTTP requests for the fuzz test and the long fuzz run, seeded and replayable: every parameter
// openapi.yaml lists (so parameters added later are fuzzed too) with hostile names and values, broken
// images, broken multipart bodies, bad URIs and bad methods (the last two as raw bytes on a socket).
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { mulberry32 } from '../../src/cam/index.js';

/** A seeded generator (mulberry32): the same seed gives the same requests. */
export const prng = mulberry32;

/** A request as fetch sends it, or raw bytes for what fetch refuses to send. */
export type FuzzRequest =
  | { kind: 'fetch'; what: string; method: string; path: string; headers?: Record<string, string>; body?: FormData | Uint8Array | string }
  | { kind: 'raw'; what: string; bytes: string };

/** Names JavaScript objects inherit: a lookup in a plain object finds them. */
export const INHERITED = ['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', '__defineGetter__', 'prototype'];

const HOSTILE_VALUES = [
  ...INHERITED, ...INHERITED.map((s) => s.toUpperCase()),
  '', ' ', '0', '-1', '1e309', '-1e309', 'NaN', 'Infinity', '-Infinity', '1e-400', '9999999999999999999999', '-0', '0x10', '1_000',
  '3.', '.5', '+', 'true ', 'TRUE', 'yes', 'null', 'undefined', '[]', '{}', '[object Object]',
  '\u0000', 'a\u0000b', '\u202Egnp', '💥', 'ﬁ', 'e\u0301', '\uFFFF', '\uD800', '%00', '%', '%ZZ', '../../etc/passwd', '/etc/passwd',
  'x'.repeat(10_000), ',', ',,', 'a,,b', '0,0,0,0,0,0,0,0,0,0,0', Array.from({ length: 200 }, (_, i) => i).join(','),
  'top:0', 'top:-1', 'top:99999999999', '1,2', '2,1', '-1,1', 'NaN,1', '0,Infinity',
];

/** Some valid values, so that fuzzed requests also get past the parameter checks and run. */
const VALID_VALUES: Readonly<Record<string, readonly string[]>> = {
  method: ['gradcam', 'eigencam', 'layercam', 'gradcam++'],
  output: ['json', 'overlay', 'heatmap', 'png'],
  topk: ['1', '2', '3'],
  target: ['0', '1', '9'],
  alpha: ['0', '0.3', '1'],
  colormap: ['jet', 'viridis'],
  include_png: ['true', 'false'],
  timeout_ms: ['1', '50', '5000'],
  channels: ['top:4', '0,1', 'all'],
  nrow: ['1', '4'],
  bins: ['1', '10'],
  normalize: ['true'],
  collapse: ['none', 'scope'],
  depth: ['1', '2'],
  format: ['svg', 'dot'],
};

const HOSTILE_NAMES = [...INHERITED, 'image', 'Image', 'model ', 'méthod', '💥', 'a'.repeat(300), 'target[]', 'target[0]', 'x.y'];

interface OpenApi {
  paths: Record<string, Record<string, { parameters?: { $ref?: string; name?: string; in?: string }[] }>>;
  components: { parameters: Record<string, { name: string; in: string }> };
}

/** (path template, HTTP method, parameter names) of every operation in openapi.yaml. */
export function operations(file: string): { path: string; method: string; params: string[] }[] {
  const doc = parse(readFileSync(file, 'utf8')) as OpenApi;
  const out: { path: string; method: string; params: string[] }[] = [];
  for (const [p, ops] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(ops)) {
      if (!['get', 'post', 'put', 'delete', 'patch'].includes(m)) continue;
      const params = (op.parameters ?? []).map((x) => (x.$ref ? doc.components.parameters[x.$ref.split('/').pop()!] : x))
        .filter((x): x is { name: string; in: string } => !!x?.name && x.in === 'query').map((x) => x.name);
      out.push({ path: p, method: m.toUpperCase(), params });
    }
  }
  return out;
}

/** Broken and odd image bytes, derived from one real image. */
function images(png: Buffer, r: () => number): { name: string; bytes: Buffer; type: string }[] {
  const bomb = Buffer.from(png);
  bomb.writeUInt32BE(60000, 16);
  bomb.writeUInt32BE(60000, 20);
  const flipped = Buffer.from(png);
  for (let i = 0; i < 20; i++) flipped[33 + Math.floor(r() * (flipped.length - 33))] ^= 0xff;
  return [
    { name: 'png', bytes: png, type: 'image/png' },
    { name: 'truncated png', bytes: png.subarray(0, Math.floor(png.length / 3)), type: 'image/png' },
    { name: 'flipped bytes', bytes: flipped, type: 'image/png' },
    { name: 'bomb header', bytes: bomb, type: 'image/png' },
    { name: 'empty', bytes: Buffer.alloc(0), type: 'image/png' },
    { name: 'random', bytes: Buffer.from(Array.from({ length: 512 }, () => Math.floor(r() * 256))), type: 'application/octet-stream' },
    { name: 'svg', bytes: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'), type: 'image/svg+xml' },
    { name: 'text', bytes: Buffer.from('hello'), type: 'text/plain' },
    { name: 'jpeg magic only', bytes: Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]), type: 'image/jpeg' },
    { name: 'gif magic only', bytes: Buffer.from('GIF89a'), type: 'image/gif' },
  ];
}

/** Percent-encoding that also sends what encodeURIComponent refuses (a lone surrogate becomes CESU-8 bytes). */
function encode(v: string): string {
  try {
    return encodeURIComponent(v);
  } catch {
    return [...v].map((c) => (/[\uD800-\uDFFF]/.test(c) ? '%ED%A0%80' : encodeURIComponent(c))).join('');
  }
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)];
}

/** `count` requests from `seed` against the operations of `openapiFile`, uploads built from `png`. */
export function fuzzRequests(seed: number, count: number, openapiFile: string, png: Buffer, modelIds: string[]): FuzzRequest[] {
  const r = prng(seed);
  const ops = operations(openapiFile);
  const imgs = images(png, r);
  const out: FuzzRequest[] = [];
  const concrete = (p: string) => p.replace(/\{[^}]+\}/g, () => encode(r() < 0.6 ? pick(r, modelIds) : pick(r, HOSTILE_VALUES)));
  for (let i = 0; i < count; i++) {
    const roll = r();
    if (roll < 0.55) {
      // An operation with hostile parameters (listed names with hostile values; hostile names; repeats).
      const op = pick(r, ops);
      const fields: [string, string][] = [];
      const query: [string, string][] = [];
      const n = 1 + Math.floor(r() * 4);
      for (let k = 0; k < n; k++) {
        const name = r() < 0.85 && op.params.length ? pick(r, op.params) : pick(r, HOSTILE_NAMES);
        const valid = name === 'model' ? modelIds : Object.hasOwn(VALID_VALUES, name) ? VALID_VALUES[name] : undefined;
        const value = valid && r() < 0.4 ? pick(r, valid) : pick(r, HOSTILE_VALUES);
        (op.method === 'POST' && r() < 0.5 ? fields : query).push([name, value]);
      }
      const path = concrete(op.path) + (query.length ? `?${query.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&')}` : '');
      if (op.method === 'POST') {
        const form = new FormData();
        const img = r() < 0.7 ? imgs[0] : pick(r, imgs);
        if (r() < 0.9) form.append(r() < 0.9 ? 'image' : pick(r, HOSTILE_NAMES), new Blob([new Uint8Array(img.bytes)], { type: img.type }), 'x.png');
        for (const [k, v] of fields) form.append(k, v);
        out.push({ kind: 'fetch', what: `${op.method} ${op.path} params`, method: op.method, path, body: form });
      } else {
        out.push({ kind: 'fetch', what: `${op.method} ${op.path} params`, method: op.method, path });
      }
    } else if (roll < 0.7) {
      // A broken or odd image, as a form or as the raw body, on an image route.
      const img = pick(r, imgs);
      const path = pick(r, ['/cam', '/features', '/histograms']);
      if (r() < 0.5) {
        const form = new FormData();
        form.append('image', new Blob([new Uint8Array(img.bytes)], { type: img.type }), 'x');
        out.push({ kind: 'fetch', what: `${path} image ${img.name}`, method: 'POST', path, body: form });
      } else {
        out.push({ kind: 'fetch', what: `${path} raw ${img.name}`, method: 'POST', path, headers: { 'content-type': img.type }, body: new Uint8Array(img.bytes) });
      }
    } else if (roll < 0.82) {
      // Broken multipart.
      const boundary = 'XyZ';
      const bodies: [string, string][] = [
        ['no boundary', `--${boundary}\r\nContent-Disposition: form-data; name="image"\r\n\r\nabc\r\n--${boundary}--\r\n`],
        ['truncated', `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\nContent-Type: image/png\r\n\r\n${png.subarray(0, 50).toString('latin1')}`],
        ['no disposition', `--${boundary}\r\n\r\nabc\r\n--${boundary}--\r\n`],
        ['many parts', Array.from({ length: 60 }, (_, k) => `--${boundary}\r\nContent-Disposition: form-data; name="f${k}"\r\n\r\nv\r\n`).join('') + `--${boundary}--\r\n`],
        ['two files', [0, 1].map(() => `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\nContent-Type: image/png\r\n\r\nabc\r\n`).join('') + `--${boundary}--\r\n`],
        ['huge field name', `--${boundary}\r\nContent-Disposition: form-data; name="${'n'.repeat(5000)}"\r\n\r\nv\r\n--${boundary}--\r\n`],
        ['garbage', 'not multipart at all'],
      ];
      const [what, body] = pick(r, bodies);
      const type = what === 'no boundary' ? 'multipart/form-data' : `multipart/form-data; boundary=${boundary}`;
      out.push({ kind: 'fetch', what: `multipart ${what}`, method: 'POST', path: pick(r, ['/cam', '/features', '/histograms']), headers: { 'content-type': type }, body: Buffer.from(body, 'latin1') });
    } else if (roll < 0.92) {
      // Bad URIs.
      const paths = ['/models/%ZZ', '/models/%00', '/%', `/${'a'.repeat(4000)}`, '/models/../openapi.yaml', '//cam', '/cam?%ZZ=1', '/cam?model=%E0%A4%A', '/models/💥/summary',
        '/models/%2e%2e%2fetc', '/models/x/graph?depth=%ZZ', `/cam?${'a=1&'.repeat(2000)}`, '/healthz/..', '/public/../package.json', '/.git/config'];
      const path = pick(r, paths);
      out.push({ kind: 'fetch', what: `uri ${path.slice(0, 40)}`, method: pick(r, ['GET', 'POST']), path });
    } else {
      // Bad methods and request lines, as raw bytes.
      const lines = ['GE T / HTTP/1.1', 'get /healthz HTTP/1.1', 'PROPFIND /cam HTTP/1.1', 'BREW /cam HTTP/1.1', 'GET /cam HTTP/9.9', 'GET  HTTP/1.1', 'DELETE /models/resnet HTTP/1.1', 'TRACE / HTTP/1.1', 'OPTIONS * HTTP/1.1'];
      const line = pick(r, lines);
      out.push({ kind: 'raw', what: `raw ${line}`, bytes: `${line}\r\nHost: x\r\nContent-Length: 0\r\n\r\n` });
    }
  }
  return out;
}
