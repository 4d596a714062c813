// Thread names, so that `top -H`, `ps -L` and /proc/<pid>/task/*/comm tell the service's threads apart (all
// are "node" otherwise). Linux keeps a thread's name in /proc/thread-self/comm (15 bytes), writable by the
// thread itself; threads it starts afterwards (onnxruntime's intra-op threads) inherit it. Elsewhere: nothing.
import { writeFileSync } from 'node:fs';

/** Names of the service's threads: an inference worker and its onnxruntime threads; the render thread. */
export const THREAD_NAMES = { inference: 'camserve-infer', render: 'camserve-render' } as const;

/** Names the calling thread (best effort: false where the platform has no such file). */
export function nameThread(name: string): boolean {
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, 15));
    return true;
  } catch {
    return false;
  }
}
