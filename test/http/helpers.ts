// Shared set-up of the HTTP tests: a temporary MODELS_DIR made of fixture models (plus a labelled copy,
// a broken folder and the default `shapes` model when it exists), a server on a random port, test images.
import { existsSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { pino } from 'pino';
import { loadConfig, type ServerConfig } from '../../src/http/config.js';
import type { ServicePool } from '../../src/http/app.js';
import { startServer, type RunningServer } from '../../src/http/server.js';
import { ROOT } from './contract.js';

export const FIXTURES = path.join(ROOT, 'test/fixtures/models');
export const EXAMPLES = path.join(ROOT, 'examples');
export const SHAPES = path.join(ROOT, 'models/shapes');
export const hasShapes = existsSync(path.join(SHAPES, 'model.onnx'));

/** Ten class names for the labelled copy of a fixture (the fixtures have 10 classes and no labels). */
export const LABELS = ['circle', 'square', 'triangle', 'star', 'heart', 'ring', 'cross', 'crescent', 'diamond', 'arrow'];

export interface ModelsDirOptions {
  /** fixture names linked as they are */
  fixtures: string[];
  /** `labelled`: resnet with labels.txt and model.json (resize `pad`) */
  labelled?: boolean;
  /** `broken`: a folder whose model.onnx is not a model */
  broken?: boolean;
  /** `shapes`: models/shapes when it exists */
  shapes?: boolean;
}

/** A temporary models folder; `cleanup` removes it. */
export async function makeModelsDir(opts: ModelsDirOptions): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'camserve-http-'));
  for (const f of opts.fixtures) await symlink(path.join(FIXTURES, f), path.join(dir, f));
  if (opts.labelled) {
    const d = path.join(dir, 'labelled');
    await mkdir(d);
    // A copy: a model.onnx that is a link out of its folder is refused (containment).
    await copyFile(path.join(FIXTURES, 'resnet', 'model.onnx'), path.join(d, 'model.onnx'));
    await writeFile(path.join(d, 'labels.txt'), LABELS.join('\n') + '\n');
    await writeFile(path.join(d, 'model.json'), JSON.stringify({ input: { resize: 'pad' }, description: 'resnet fixture with shape labels' }));
  }
  if (opts.broken) {
    await mkdir(path.join(dir, 'broken'));
    await writeFile(path.join(dir, 'broken', 'model.onnx'), 'this is not an ONNX model');
  }
  if (opts.shapes && hasShapes) await symlink(SHAPES, path.join(dir, 'shapes'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A configuration for tests: random port on loopback, silent logs, and `overrides`. */
export function testConfig(modelsDir: string, env: Record<string, string> = {}): ServerConfig {
  return loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', MODELS_DIR: modelsDir, WORKERS: '1', ...env });
}

export async function startTestServer(modelsDir: string, env: Record<string, string> = {}): Promise<RunningServer> {
  const config = testConfig(modelsDir, env);
  return startServer(config, { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }) });
}

/** A multipart form with the image in field `image` and the other fields as strings. */
export function form(image: Buffer | undefined, fields: Record<string, string> = {}, filename = 'image.png'): FormData {
  const f = new FormData();
  if (image) f.append('image', new Blob([new Uint8Array(image)]), filename);
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
}

/** A test picture: a bright square on a dark background, right half tinted (so orientation shows). */
export async function picture(width: number, height: number): Promise<Sharp> {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const i = (y * width + x) * 3;
    const inSquare = x > width / 4 && x < width / 2 && y > height / 4 && y < (3 * height) / 4;
    data[i] = inSquare ? 250 : x > width / 2 ? 200 : 20;
    data[i + 1] = inSquare ? 250 : 30;
    data[i + 2] = inSquare ? 250 : 40;
  }
  return sharp(data, { raw: { width, height, channels: 3 } });
}

/**
 * A PNG whose header claims `width`×`height` pixels but which carries almost no data (a decompression
 * bomb's header): it must be refused from its header alone.
 */
export function bombPng(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf: Buffer) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Resolves when `cond()` holds (polled), rejects after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A pool stand-in for app tests: what it is given, and for the rest a refusal that fails the test if reached. */
export function standInPool(parts: Partial<ServicePool>): ServicePool {
  const unused = () => Promise.reject(new Error('unused by this test'));
  return { models: () => [], stats: () => ({ workers: 1, busy: 0, queued: 0 }), explain: unused, tensors: unused, facts: unused, ...parts };
}

const MAIN = path.join(ROOT, 'src/http/main.ts');

export interface Run { child: ChildProcess; lines: Record<string, unknown>[]; stdout: () => string; exited: Promise<number | null> }

/** The service as a child process (its JSON log lines parsed as they come). */
export function run(env: Record<string, string>, args: string[] = [], entry: string[] = ['--import', 'tsx', MAIN]): Run {
  const child = spawn(process.execPath, [...entry, ...args], {
    cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const lines: Record<string, unknown>[] = [];
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    const parts = out.split('\n');
    for (const l of parts.slice(lines.length, -1)) {
      try { lines.push(JSON.parse(l) as Record<string, unknown>); } catch { lines.push({ text: l }); }
    }
  });
  child.stderr!.on('data', (c: Buffer) => process.stderr.write(c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, lines, stdout: () => out, exited };
}

/** One server-sent event of a job. */
export interface SseEvent {
  id: string;
  event: string;
  data: { id: string; state: string; progress: { done: number; total: number; images_done: number }; results?: unknown[] } & Record<string, unknown>;
}

/** The resnet fixture with a dynamic batch axis (tools/fixtures/make_dynbatch.py). */
export const DYNBATCH = path.join(ROOT, 'test/fixtures/batch/resnet-dynbatch');

/** Reads a whole event stream (it ends after the job's last event). */
export async function readEvents(url: string, headers: Record<string, string> = {}): Promise<{ res: Response; events: SseEvent[]; raw: string }> {
  const res = await fetch(url, { headers });
  const raw = await res.text();
  const events: SseEvent[] = [];
  for (const block of raw.split('\n\n')) {
    const fields: Record<string, string> = {};
    for (const line of block.split('\n')) {
      const m = /^(\w+): (.*)$/.exec(line);
      if (m) fields[m[1]] = m[2];
    }
    if (fields.event) events.push({ id: fields.id, event: fields.event, data: JSON.parse(fields.data) as SseEvent['data'] });
  }
  return { res, events, raw };
}

