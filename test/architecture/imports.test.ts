// The layering of src/ (docs/architecture.md): folders import downward only, through index.ts, and the
// HTTP and thread libraries stay in their folders. The check itself is tested on planted violations.
import assert from 'node:assert/strict';
import { appendFile, cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { LAYERS, checkImports } from '../../tools/architecture/check-imports.js';
import { ROOT } from '../http/contract.js';

const SRC = path.join(ROOT, 'src');
let copy: string;

before(async () => {
  copy = await mkdtemp(path.join(os.tmpdir(), 'camserve-layers-'));
  await cp(SRC, path.join(copy, 'src'), { recursive: true });
});
after(async () => {
  await rm(copy, { recursive: true, force: true });
});

/** The check run on a fresh copy of src/ with `line` appended to `file`. */
async function planted(file: string, line: string) {
  const dir = await mkdtemp(path.join(copy, 'case-'));
  await cp(path.join(copy, 'src'), path.join(dir, 'src'), { recursive: true });
  await appendFile(path.join(dir, 'src', file), `\n${line}\n`);
  return checkImports(path.join(dir, 'src'));
}

test('src/ keeps its layering: no folder imports upward, sideways or past an index.ts', () => {
  assert.deepEqual(checkImports(SRC), []);
});

test('every folder of src/ is in the layer table, and the table has no cycle', () => {
  const seen = new Set<string>();
  const visit = (f: string, stack: string[]) => {
    assert.ok(!stack.includes(f), `cycle: ${[...stack, f].join(' → ')}`);
    if (seen.has(f)) return;
    for (const g of LAYERS[f] ?? []) visit(g, [...stack, f]);
    seen.add(f);
  };
  for (const f of Object.keys(LAYERS)) visit(f, []);
});

test('a lower folder importing an upper one fails the check (onnx → http)', async () => {
  const v = await planted('onnx/model.ts', "import { createApp } from '../http/index.js';");
  assert.equal(v.length, 1);
  assert.equal(v[0].file, path.join('onnx', 'model.ts'));
  assert.match(v[0].why, /may import only from errors; http\/ is not below it/);
});

test('a folder that is not below fails the check (cam → onnx), as does a type-only import', async () => {
  const v = await planted('cam/compute.ts', "import type { OnnxModel } from '../onnx/index.js';");
  assert.equal(v.length, 1);
  assert.match(v[0].why, /cam\/ may import only from errors, render/);
});

test('reaching past another folder\'s index.ts fails the check', async () => {
  const v = await planted('engine/explain.ts', "export { RULES } from '../autodiff/rules/index.js';");
  assert.equal(v.length, 1);
  assert.match(v[0].why, /entered through autodiff\/index.ts only/);
});

test('express, multer and the worker pool outside http/ and cli/ fail the check', async () => {
  assert.match((await planted('engine/runtime.ts', "import express from 'express';"))[0].why, /express may be imported only in http/);
  assert.match((await planted('inspect/grid.ts', "import multer from 'multer';"))[0].why, /multer may be imported only in http/);
  assert.match((await planted('api/params.ts', "import { InferencePool } from '../workers/index.js';"))[0].why, /api\/ may import only from/);
  assert.match((await planted('engine/runtime.ts', "import { Worker } from 'node:worker_threads';"))[0].why, /node:worker_threads may be imported only in workers/);
});
