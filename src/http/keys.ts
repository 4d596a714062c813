// API keys from a file (API_KEYS_FILE): one key per line, `key` or `name:key`, `#` comments. Keys are kept
// only as SHA-256 digests and compared in constant time; the file is re-read when it changes — written in
// place, replaced by an atomic rename, or swapped behind a symlink as Kubernetes updates a mounted Secret
// (`..data` → a new timestamped folder) — noticed by a watch on its folder and, as a fallback, by polling.
import { createHash, timingSafeEqual } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';

interface KeyEntry { name: string; digest: Buffer }

/** Keys shorter than this are refused at load (a guessable key is no key). */
export const MIN_KEY_LENGTH = 16;

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Parses the file's text: entries, and the lines refused (by number, with the reason; never the key). */
export function parseKeys(text: string): { keys: KeyEntry[]; problems: string[] } {
  const keys: KeyEntry[] = [];
  const problems: string[] = [];
  const names = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const key = (colon >= 0 ? line.slice(colon + 1) : line).trim();
    let name = colon >= 0 ? line.slice(0, colon).trim() : '';
    if (key.length < MIN_KEY_LENGTH) {
      problems.push(`line ${i + 1}: key shorter than ${MIN_KEY_LENGTH} characters; ignored`);
      return;
    }
    if (colon >= 0 && !/^[\w.@-]{1,64}$/.test(name)) {
      problems.push(`line ${i + 1}: name must be 1-64 letters, digits, _ . @ -; ignored`);
      return;
    }
    const d = digest(key);
    // An unnamed key is named by a prefix of its digest: stable, and says nothing usable about the key.
    if (!name) name = `key-${d.toString('hex').slice(0, 8)}`;
    if (names.has(name)) {
      problems.push(`line ${i + 1}: name "${name}" used twice; ignored`);
      return;
    }
    names.add(name);
    keys.push({ name, digest: d });
  });
  return { keys, problems };
}

export class ApiKeys {
  private keys: KeyEntry[] = [];
  private text: string | undefined;
  private watcher?: FSWatcher;
  private poll?: NodeJS.Timeout;
  private reloading: Promise<void> | undefined;
  private again = false;
  /** reloads done (for tests and logs) */
  generation = 0;

  private constructor(readonly file: string, private readonly logger: Logger) {}

  /** Loads the file (it must be readable now) and watches it. */
  static async open(file: string, logger: Logger, pollMs: number): Promise<ApiKeys> {
    const k = new ApiKeys(file, logger);
    await k.load(true);
    k.watch(pollMs);
    return k;
  }

  /** The name of the key given, or undefined. Every stored digest is compared, in constant time each. */
  verify(key: string): string | undefined {
    const d = digest(key);
    let found: string | undefined;
    for (const k of this.keys) if (timingSafeEqual(k.digest, d) && found === undefined) found = k.name;
    return found;
  }

  get size(): number {
    return this.keys.length;
  }

  /** Re-reads the file; a file that cannot be read now (mid-swap) keeps the keys as they are. */
  reload(): Promise<void> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.again = false;
        await this.load(false);
      } while (this.again);
    })().finally(() => { this.reloading = undefined; });
    return this.reloading;
  }

  private async load(first: boolean): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if (first) throw new Error(`API_KEYS_FILE ${this.file} cannot be read: ${(e as Error).message}`);
      this.logger.warn({ file: this.file, err: { message: (e as Error).message } }, 'API key file cannot be read; keeping the keys loaded before');
      return;
    }
    if (text === this.text) return;
    const { keys, problems } = parseKeys(text);
    for (const p of problems) this.logger.warn({ file: this.file }, `API key file: ${p}`);
    this.keys = keys;
    this.text = text;
    this.generation++;
    if (keys.length === 0) this.logger.warn({ file: this.file }, 'API key file holds no usable key: every protected route answers 401');
    this.logger.info({ file: this.file, keys: keys.map((k) => k.name) }, first ? 'API keys loaded' : 'API keys reloaded');
  }

  private watch(pollMs: number): void {
    // The folder, not the file: a rename or a symlink swap replaces the file the watch would follow.
    try {
      this.watcher = watch(path.dirname(this.file), { persistent: false }, () => { void this.reload(); });
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      // no file-system events here: polling alone
    }
    this.poll = setInterval(() => { void this.reload(); }, pollMs);
    this.poll.unref();
  }

  close(): void {
    this.watcher?.close();
    clearInterval(this.poll);
  }
}
