// Shared by the benchmark scripts: `--help` prints the script's own header comment.
import { readFileSync } from 'node:fs';

/** Prints the leading `//` comment lines of the script at `scriptUrl` and exits. */
export function printHeaderHelp(scriptUrl: string): never {
  const lines = readFileSync(new URL(scriptUrl), 'utf8').split('\n').filter((l) => l.startsWith('//'));
  process.stdout.write(lines.map((l) => l.slice(3)).join('\n') + '\n');
  process.exit(0);
}
