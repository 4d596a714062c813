#!/usr/bin/env node
// camserve's command line: explain an image offline (no server), and look inside a model.
// Usage: camserve <command> … (see `camserve --help`); exit codes come from the one error table.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { METHOD_NAMES, TARGET_KINDS } from '../cam/index.js';
import { METRIC_NAMES, METRIC_SCORES } from '../metrics/index.js';
import { CamserveError, ERROR_CODES } from '../errors/index.js';
import { COLORMAP_NAMES } from '../render/index.js';
import { UsageError } from './common.js';
import { explainDirCommand } from './commands/explain-dir.js';
import { explainCommand } from './commands/explain.js';
import { graphCommand, layersCommand, summaryCommand } from './commands/model.js';
import { featuresCommand, histogramsCommand } from './commands/views.js';

const HELP = `camserve — class activation maps for ONNX image models

Usage:
  camserve explain <image> --model <dir|model.onnx> [options]
  camserve explain-dir <folder> --model <dir|model.onnx> --out <folder> [options] [--concurrency N]
  camserve layers --model <dir|model.onnx>
  camserve summary --model <dir|model.onnx> [--json]          torchsummary-style table
  camserve graph --model <dir|model.onnx> [--collapse scope] [--depth N] [--rankdir LR] [--dot] -o graph.svg
  camserve features <image> --model <dir|model.onnx> [--layer L] [--nrow N] [--padding N] [--normalize]
                   [--range lo,hi] [--scale-each] [--pad-value V] [--channels top:16|0,3,5] [--colormap NAME]
                   [--scale N] -o grid.png
  camserve histograms <image> --model <dir|model.onnx> [--layer L] [--target 3,5] [--bins N]
                   [--range lo,hi] [--grad-range lo,hi] (-o hist.png | --json)

Options mean what the HTTP parameters of the same name mean (POST /cam, /features, /histograms).

explain options:
  -m, --model <path>       model folder (model.onnx + optional model.json, labels.txt) or .onnx file
  --method <name>          ${METHOD_NAMES.join(' | ')} (default gradcam)
  -t, --target <list>      class indices or labels (case-insensitive), comma-separated (default: the top class)
  -k, --topk <n>           explain the n best classes
  -l, --layer <list>       target tensor name(s), comma-separated (default: the model's default layer)
  -o, --out <file.png>     write the overlay (several classes: <file>-<index>.png)
  --heatmap                write the colour map alone instead of the overlay
  --alpha <0..1>           image weight in the overlay (default 0.5)
  --colormap <name>        ${COLORMAP_NAMES.join(' | ')} (default jet)
  --max-side <n>           the picture's longer side at most n pixels (default: the image's size)
  --format <f>             png | webp | jpeg (default png; an --out named .webp or .jpg asks for that format)
  --png-compression <0..9> zlib level of PNG pictures (default 3)
  --quality <1..100>       quality of WebP and JPEG pictures
  --eigen-smooth           first principal component instead of the weighted sum
  --aug-smooth             mean over horizontal flip × brightness 0.9/1/1.1
  --json                   print the result (predictions, raw maps) as JSON
  --target-kind <kind>     ${TARGET_KINDS.join(' | ')}: what is differentiated (default class: the logit)
  --finer-comparison <r>   Finer-CAM's comparison ranks (default 1,2,3: the three nearest classes)
  --finer-alpha <a>        Finer-CAM's α (default 1)
  --seed <n>               seed of noisy and random methods (default 0)
  --concepts <k>           dff: the number of concepts (default 5); -o writes them as one picture
  --metrics <list>         ${METRIC_NAMES.join(', ')}
  --road-percentiles <l>   ROAD's percentiles (default 10,20,…,90)
  --metric-score <s>       ${METRIC_SCORES.join(' | ')}: what the metrics compare (default: the model's score)
  -h, --help

explain-dir: every image under <folder> (recursively; images recognised by their content), one overlay each
  as <out>/<path>.png, <out>/results.jsonl (a line per image: predictions, explained class, or its error) and
  <out>/index.html (a contact sheet; --format webp|jpeg: <path>.webp|.jpg). The explain options above (one
  class), and:
  -o, --out <folder>       where the overlays, results.jsonl and index.html go (required)
  -j, --concurrency <n>    images explained at once (default 1)
  --progress / --no-progress   a progress bar (default: when stderr is a terminal; else a line per image)
  A rerun skips images whose content and parameters are unchanged and whose overlay is there. Exits 1
  listing the images that failed (files that are not images are listed and skipped).

Exit codes: 0 done; 2 bad usage or parameter; 3 unusable image; 4 model cannot be loaded;
5 cannot explain (method, layer or op); 1 anything else.
`;

const COMMANDS: Readonly<Record<string, (args: string[]) => Promise<void>>> = {
  explain: explainCommand,
  'explain-dir': explainDirCommand,
  layers: layersCommand,
  summary: summaryCommand,
  graph: graphCommand,
  features: featuresCommand,
  histograms: histogramsCommand,
};

/** The exit code of a failure: the error table's for a CamserveError, 2 for usage, 1 otherwise. */
export function exitCode(e: unknown): number {
  if (e instanceof CamserveError) return ERROR_CODES[e.code].exit;
  if (e instanceof UsageError) return 2;
  // node:util parseArgs: unknown option, missing value, …
  const code = (e as { code?: string }).code;
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) return 2;
  return 1;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === '-h' || command === '--help' || rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(HELP);
      return command ? 0 : 2;
    }
    if (!Object.hasOwn(COMMANDS, command)) throw new UsageError(`unknown command ${command}`);
    await COMMANDS[command](rest);
    return 0;
  } catch (e) {
    process.stderr.write(`camserve: ${(e as Error).message}\n`);
    return exitCode(e);
  }
}

// Run when executed directly (also through npm's bin symlink), not when imported.
const isEntry = !!process.argv[1] && realpathSync(path.resolve(process.argv[1])) === realpathSync(fileURLToPath(import.meta.url));
if (isEntry) {
  // `camserve layers … | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); else throw e; });
  void main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
