// Sends fuzz requests to a running server and judges each answer: no 5xx but a 503 with Retry-After, every
// error problem+json, no connection reset; shared by the fuzz test and `npm run fuzz`.
import net from 'node:net';
import type { FuzzRequest } from './requests.js';

export interface FuzzOutcome {
  what: string;
  status: number;
  ms: number;
  /** why the answer breaks the rules, if it does */
  fault?: string;
}

function rawRequest(url: string, bytes: string, timeoutMs: number): Promise<{ status: number; head: string; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let out = '';
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('timed out')));
    socket.on('data', (d) => { out += d.toString('latin1'); });
    socket.on('error', (e) => (out ? undefined : reject(e)));
    socket.on('close', () => {
      const [head = '', ...rest] = out.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0), head, body: rest.join('\r\n\r\n') });
    });
    socket.on('connect', () => socket.end(bytes));
  });
}

/** The rule every answer must follow; undefined when it does. */
export function judge(status: number, contentType: string, retryAfter: string | null, body: string): string | undefined {
  if (status === 0) return 'no answer (connection reset or closed)';
  if (status >= 500 && status !== 503) return `status ${status}`;
  if (status === 503 && !retryAfter) return '503 without Retry-After';
  if (status >= 400) {
    if (!/^application\/problem\+json/i.test(contentType)) return `error ${status} as ${contentType || 'no content type'}`;
    let p: { status?: number; type?: string };
    try {
      p = JSON.parse(body) as { status?: number; type?: string };
    } catch {
      return `error ${status} whose body is not JSON`;
    }
    if (p.status !== status || !p.type?.startsWith('urn:camserve:problem:')) return `problem body does not match: ${body.slice(0, 120)}`;
    if (/\n\s+at /.test(body)) return 'a stack trace in the answer';
  }
  return undefined;
}

/** Runs the requests `concurrency` at a time; every outcome, faults named. */
export async function runFuzz(url: string, requests: FuzzRequest[], concurrency: number, timeoutMs = 60_000): Promise<FuzzOutcome[]> {
  const out: FuzzOutcome[] = new Array(requests.length);
  let next = 0;
  const one = async (i: number) => {
    const q = requests[i];
    const t = performance.now();
    try {
      if (q.kind === 'raw') {
        const a = await rawRequest(url, q.bytes, timeoutMs);
        const type = /content-type: *([^\r\n]+)/i.exec(a.head)?.[1] ?? '';
        const retry = /retry-after: *([^\r\n]+)/i.exec(a.head)?.[1] ?? null;
        out[i] = { what: q.what, status: a.status, ms: performance.now() - t, fault: judge(a.status, type, retry, a.body) };
        return;
      }
      const res = await fetch(url + q.path, { method: q.method, headers: q.headers, body: q.body as BodyInit | undefined, signal: AbortSignal.timeout(timeoutMs) });
      const body = await res.text();
      out[i] = { what: q.what, status: res.status, ms: performance.now() - t, fault: judge(res.status, res.headers.get('content-type') ?? '', res.headers.get('retry-after'), body) };
    } catch (e) {
      out[i] = { what: q.what, status: 0, ms: performance.now() - t, fault: `no answer: ${(e as Error).message}${(e as { cause?: Error }).cause ? ` (${(e as { cause: Error }).cause.message})` : ''}` };
    }
  };
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < requests.length) await one(next++);
  }));
  return out;
}
