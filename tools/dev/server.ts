// The built server (dist/) as a child process for the long-running scripts (fuzz, soak, cancellation
// bench): started with an environment, resolved with its URL once it logs "ready", and its RSS on demand.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export interface ChildServer {
  child: ChildProcess;
  url: string;
  /** the server process's resident memory, MiB */
  rss(): Promise<number>;
  stop(): Promise<void>;
}

export async function startBuiltServer(env: Record<string, string>): Promise<ChildServer> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/src/http/main.js')], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (c: Buffer) => {
      out += c.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('"msg":"ready"')) continue;
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve((JSON.parse(line) as { url: string }).url);
        return;
      }
      out = out.slice(out.lastIndexOf('\n') + 1);
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the server exited (${code}); is dist/ built? (npm run build)`)));
  });
  return {
    child, url,
    async rss() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
      return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}
