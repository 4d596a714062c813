// Running a job, wherever it is kept: its images one after another through the inference pool (so that a
// job never holds more than one place in the pool's queue), each answered as POST /cam answers it, with
// the progress of the forward runs reported per batch.
import { collectParameters, CAM_PARAMETERS, resultPicture } from '../../api/index.js';
import { StepProgress, toModelInput, type ExplainResult } from '../../engine/index.js';
import { CamserveError, cancelled } from '../../errors/index.js';
import type { AppContext } from '../context.js';
import { requirePool } from '../context.js';
import { camResultJson, decodeAt, planCam, planRequest, type CamPlan } from '../routes/cam.js';
import type { JobImageResult, JobSpec } from './types.js';

export interface JobOutput {
  results: JobImageResult[];
  pngs: Buffer[];
}

export interface RunHooks {
  signal: AbortSignal;
  /** runs done, their total (estimated until every image has begun), images done */
  progress(done: number, total: number, imagesDone: number): void;
}

/** The plan of a job's parameters (as checked at submission; a model gone since is its error now). */
export function jobPlan(ctx: AppContext, spec: Pick<JobSpec, 'params' | 'model'>): CamPlan {
  const pool = requirePool(ctx);
  const raw = collectParameters('POST /jobs', CAM_PARAMETERS, { ...spec.params, model: spec.model });
  // Jobs answer JSON (several classes allowed); `output` picks the kind of PNG.
  const plan = planCam(ctx, pool, new Map([...raw].filter(([k]) => k !== 'output')), true);
  plan.params.output = raw.get('output') === 'heatmap' ? 'heatmap' : 'json';
  return plan;
}

const sleep = (ms: number, signal: AbortSignal) => new Promise<void>((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

export async function runJob(ctx: AppContext, spec: JobSpec, hooks: RunHooks): Promise<JobOutput> {
  let plan = jobPlan(ctx, spec);
  const results: JobImageResult[] = [];
  const pngs: Buffer[] = [];
  let imagesDone = 0;
  const progress = new StepProgress(spec.images.length, (d, t) => hooks.progress(d, t, imagesDone));
  for (const [index, bytes] of spec.images.entries()) {
    if (hooks.signal.aborted) throw cancelled('the job was cancelled');
    let done: { result: JobImageResult; png: Buffer };
    try {
      done = await runImage(ctx, plan, spec, index, bytes, hooks, progress.runner);
    } catch (e) {
      // A reload replaced the model while the job ran: its later images are planned against the new version.
      if (!(e instanceof CamserveError) || e.code !== 'model-changed') throw e;
      plan = jobPlan(ctx, spec);
      done = await runImage(ctx, plan, spec, index, bytes, hooks, progress.runner);
    }
    results.push(done.result);
    pngs.push(done.png);
    imagesDone++;
    progress.stepDone();
  }
  return { results, pngs };
}

/** One image of a job, answered as POST /cam answers it, with its PNG. */
async function runImage(
  ctx: AppContext, plan: CamPlan, spec: JobSpec, index: number, bytes: Buffer, hooks: RunHooks, onProgress: (d: number, t: number) => void,
): Promise<{ result: JobImageResult; png: Buffer }> {
  const { info, params } = plan;
  const timings: Record<string, number> = {};
  let t = performance.now();
  // Every result has its PNG.
  const decoded = await decodeAt(ctx, bytes, spec.images.length > 1 ? index : undefined, { plan, picture: true });
  timings.decode_ms = performance.now() - t;
  t = performance.now();
  const input = await toModelInput(decoded.rgb, info);
  timings.preprocess_ms = performance.now() - t;
  const result = await explainPolitely(ctx, plan, input, hooks, onProgress);
  const wall = performance.now() - t - timings.preprocess_ms;
  const inWorker = Object.values(result.timings).reduce((a, b) => a + b, 0);
  Object.assign(timings, result.timings);
  timings.queue_ms = Math.max(0, wall - inWorker);
  ctx.metrics.inference.observe({ cam_method: params.method, model: info.id }, inWorker / 1000);
  const json = await camResultJson(ctx, plan, decoded, result, timings);
  const [png] = await ctx.render(resultPicture(params.output === 'heatmap' ? 'heatmap' : 'overlay', decoded, info, result, params));
  return { result: { index, result: json, png_bytes: png.length }, png };
}

/**
 * One image through the pool. A job waits its turn instead of failing when the pool's queue is full (that
 * queue bounds requests; the job queue already bounds jobs): it retries until there is room.
 */
async function explainPolitely(
  ctx: AppContext, plan: CamPlan, input: Float32Array, hooks: RunHooks, onProgress: (d: number, t: number) => void,
): Promise<ExplainResult> {
  for (let wait = 50; ; wait = Math.min(1000, wait * 2)) {
    const pool = requirePool(ctx);
    try {
      // The pool takes the input's buffer: give it a copy it may keep, in case of a retry.
      return await pool.explain(plan.info.id, planRequest(plan, Float32Array.from(input)), { signal: hooks.signal, onProgress, version: plan.info.version });
    } catch (e) {
      if (!(e instanceof CamserveError) || e.code !== 'overloaded' || hooks.signal.aborted) throw e;
      await sleep(wait, hooks.signal);
    }
  }
}
