// The container's HEALTHCHECK: `node dist/src/http/healthcheck.js [path]` asks the running service for
// /healthz (or path) at the address HOST and PORT name (0.0.0.0 / :: → loopback); exit 0 when it answers 2xx.
import { pathToFileURL } from 'node:url';

/**
 * The URLs to probe for a service bound to `host`:`port`, in order: a wildcard or empty host means loopback
 * (`::` → ::1, then 127.0.0.1, since a dual-stack socket also takes IPv4 and a container may lack IPv6).
 */
export function probeUrls(host: string | undefined, port: string | undefined, probePath = '/healthz'): string[] {
  const h = (host ?? '').trim().replace(/^\[(.*)\]$/, '$1');
  const hosts = h === '' || h === '0.0.0.0' ? ['127.0.0.1'] : h === '::' ? ['::1', '127.0.0.1'] : [h];
  const p = (port ?? '').trim() || '8080';
  const route = probePath.startsWith('/') ? probePath : `/${probePath}`;
  return hosts.map((x) => `http://${x.includes(':') ? `[${x}]` : x}:${p}${route}`);
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
  let code = 1;
  for (const url of probeUrls(process.env.HOST, process.env.PORT, process.argv[2])) {
    code = await probe(url);
    if (code === 0) break;
  }
  process.exitCode = code;
}
