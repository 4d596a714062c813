// The container's HEALTHCHECK: `node dist/src/http/healthcheck.js [path]` asks the running service for
// /healthz (or path) at the address HOST and PORT name (0.0.0.0 / :: → loopback); exit 0 when it answers 2xx.
import { pathToFileURL } from 'node:url';

/** The URL to probe for a service bound to `host`:`port`; wildcard and empty hosts become loopback. */
export function probeUrl(host: string | undefined, port: string | undefined, probePath = '/healthz'): string {
  let h = (host ?? '').trim();
  if (h === '' || h === '0.0.0.0') h = '127.0.0.1';
  else if (h === '::' || h === '[::]') h = '::1';
  h = h.replace(/^\[(.*)\]$/, '$1');
  const p = (port ?? '').trim() || '8080';
  return `http://${h.includes(':') ? `[${h}]` : h}:${p}${probePath.startsWith('/') ? probePath : `/${probePath}`}`;
}

/** 0 when `url` answers 2xx within `timeoutMs`, else 1 (the reason on stderr, which Docker keeps). */
export async function probe(url: string, timeoutMs = 4000): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    if (res.ok) return 0;
    process.stderr.write(`${url}: HTTP ${res.status}\n`);
  } catch (e) {
    process.stderr.write(`${url}: ${(e as Error).cause ?? (e as Error).message}\n`);
  }
  return 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await probe(probeUrl(process.env.HOST, process.env.PORT, process.argv[2]));
}
