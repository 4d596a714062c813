// Localisation metrics of class activation maps on the synthetic shapes scenes (tools/shapes/scenes.ts),
// whose objects have known classes and boxes. Used by bench/localisation.ts (every method, ≥ 500 held-out
// scenes) and test/shapes/localisation.test.ts (Grad-CAM on a small held-out sample, in CI).
//
// Every map is the engine's raw map (ModelRuntime.explain → explanations[i].map, at the layer's
// resolution, after the method's ReLU), upsampled bilinearly to the scene's size (resizeBilinear, as the
// overlay is rendered). On that map:
//
//   pointing game      the map's maximum (first in raster order) lies inside a box of the explained class;
//                      a map without a peak (constant, e.g. all zero) is a miss;
//   energy-in-box      Σ_{pixels in the boxes of the class} m / Σ_{all pixels} m with m = max(map, 0)
//                      (the share of the non-negative map's mass; scaling the map changes nothing;
//                      an all-zero map scores 0);
//   discriminative     in a scene with exactly two classes A and B: the map of A peaks inside a box of A
//                      and inside no box of B (and likewise for B, counted as a separate pair).
//
// A box [x0, y0, x1, y1] is inclusive-exclusive in pixels: pixel (x, y) is inside when x0 ≤ x < x1 and
// y0 ≤ y < y1. Classes present more than once count once per scene, with all their boxes.
import { toModelInput } from '../../src/engine/input.js';
import type { ModelRuntime } from '../../src/engine/runtime.js';
import type { MethodName } from '../../src/cam/types.js';
import { resizeBilinear, type CamMap } from '../../src/render/index.js';
import type { Box, Scene } from './scenes.js';

// ------------------------------------------------------------------------------------- map metrics

/** The map at the scene's resolution (bilinear, OpenCV-style half-pixel centres, as renderOverlay does). */
export function toSceneSize(map: CamMap, width: number, height: number): CamMap {
  return resizeBilinear(map, width, height);
}

/** The first maximum of a map in raster order, or undefined when the map is constant (or all NaN). */
export function peak(map: CamMap): { x: number; y: number } | undefined {
  const d = map.data;
  let best = -Infinity;
  let at = -1;
  let min = Infinity;
  for (let i = 0; i < d.length; i++) {
    const v = d[i]!;
    if (v > best) { best = v; at = i; }
    if (v < min) min = v;
  }
  if (at < 0 || !(best > min)) return undefined;
  return { x: at % map.width, y: Math.floor(at / map.width) };
}

export function inBox(x: number, y: number, box: Box): boolean {
  return x >= box[0] && x < box[2] && y >= box[1] && y < box[3];
}

const inAny = (x: number, y: number, boxes: readonly Box[]): boolean => boxes.some((b) => inBox(x, y, b));

/** Pointing game: does the map's maximum fall inside one of `boxes`? */
export function pointingHit(map: CamMap, boxes: readonly Box[]): boolean {
  const p = peak(map);
  return p !== undefined && inAny(p.x, p.y, boxes);
}

/** Class-discriminative pointing: the maximum lies inside one of `own` and inside none of `other`. */
export function discriminativeHit(map: CamMap, own: readonly Box[], other: readonly Box[]): boolean {
  const p = peak(map);
  return p !== undefined && inAny(p.x, p.y, own) && !inAny(p.x, p.y, other);
}

/** Share of the non-negative map's mass inside the union of `boxes` (0 for an all-zero map). */
export function energyInBoxes(map: CamMap, boxes: readonly Box[]): number {
  const { width: W, data } = map;
  let total = 0;
  let inside = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!(v > 0)) continue;
    total += v;
    if (inAny(i % W, Math.floor(i / W), boxes)) inside += v;
  }
  return total > 0 ? inside / total : 0;
}

// ------------------------------------------------------------------------------- scenes → cases

/** One class present in a scene: its boxes, and for a two-class scene the other class's boxes. */
export interface ClassCase {
  cls: number;
  boxes: Box[];
  /** set only in scenes with exactly two distinct classes */
  other?: { cls: number; boxes: Box[] };
}

/** The distinct classes of a scene (in first-appearance order) with their boxes. */
export function sceneCases(scene: Pick<Scene, 'objects'>): ClassCase[] {
  const byClass = new Map<number, Box[]>();
  for (const o of scene.objects) {
    const list = byClass.get(o.cls) ?? [];
    list.push(o.box);
    byClass.set(o.cls, list);
  }
  const cases: ClassCase[] = [...byClass].map(([cls, boxes]) => ({ cls, boxes }));
  if (cases.length === 2) {
    const [a, b] = cases as [ClassCase, ClassCase];
    a.other = { cls: b.cls, boxes: b.boxes };
    b.other = { cls: a.cls, boxes: a.boxes };
  }
  return cases;
}

// ----------------------------------------------------------------------------------------- tallies

export interface LocalisationSummary {
  scenes: number;
  /** (scene, class) pairs scored by the pointing game and energy-in-box */
  pairs: number;
  pointing: number;
  energy: number;
  /** (scene, class) pairs of two-class scenes */
  discPairs: number;
  discriminative: number;
  /** mean explain() time per scene, ms */
  msPerScene: number;
}

/** Accumulates the three localisation metrics over (scene, class) pairs. */
export class LocalisationTally {
  scenes = 0;
  pairs = 0;
  hits = 0;
  energySum = 0;
  discPairs = 0;
  discHits = 0;
  ms = 0;

  /** Scores one class of one scene; `map` must already be at the scene's resolution. */
  add(map: CamMap, c: ClassCase): { hit: boolean; energy: number; discriminative?: boolean } {
    const hit = pointingHit(map, c.boxes);
    const energy = energyInBoxes(map, c.boxes);
    this.pairs++;
    if (hit) this.hits++;
    this.energySum += energy;
    let disc: boolean | undefined;
    if (c.other) {
      disc = discriminativeHit(map, c.boxes, c.other.boxes);
      this.discPairs++;
      if (disc) this.discHits++;
    }
    return { hit, energy, discriminative: disc };
  }

  summary(): LocalisationSummary {
    const r = (a: number, b: number) => (b > 0 ? a / b : NaN);
    return {
      scenes: this.scenes, pairs: this.pairs, pointing: r(this.hits, this.pairs), energy: r(this.energySum, this.pairs),
      discPairs: this.discPairs, discriminative: r(this.discHits, this.discPairs), msPerScene: r(this.ms, this.scenes),
    };
  }
}

export interface AccuracySummary {
  n: number;
  /** all sigmoid(logit) > 0.5 decisions right */
  exactMatch: number;
  /** mean over classes and scenes of a right decision */
  hamming: number;
  perClass: { accuracy: number; recall: number; precision: number; positives: number }[];
}

/** Multi-label accuracy from logits (decision: sigmoid > 0.5, i.e. logit > 0). */
export class AccuracyTally {
  private n = 0;
  private exact = 0;
  private readonly right: number[];
  private readonly tp: number[];
  private readonly fp: number[];
  private readonly pos: number[];

  constructor(readonly numClasses: number) {
    this.right = new Array<number>(numClasses).fill(0);
    this.tp = new Array<number>(numClasses).fill(0);
    this.fp = new Array<number>(numClasses).fill(0);
    this.pos = new Array<number>(numClasses).fill(0);
  }

  add(logits: ArrayLike<number>, labels: readonly number[]): void {
    if (logits.length !== this.numClasses || labels.length !== this.numClasses) {
      throw new RangeError(`expected ${this.numClasses} logits and labels, got ${logits.length} and ${labels.length}`);
    }
    this.n++;
    let all = true;
    for (let k = 0; k < this.numClasses; k++) {
      const pred = 1 / (1 + Math.exp(-logits[k]!)) > 0.5;
      const truth = labels[k] === 1;
      if (pred === truth) this.right[k]!++; else all = false;
      if (truth) this.pos[k]!++;
      if (pred && truth) this.tp[k]!++;
      if (pred && !truth) this.fp[k]!++;
    }
    if (all) this.exact++;
  }

  summary(): AccuracySummary {
    const n = this.n;
    const perClass = this.right.map((r, k) => ({
      accuracy: r / n,
      recall: this.pos[k]! ? this.tp[k]! / this.pos[k]! : NaN,
      precision: this.tp[k]! + this.fp[k]! ? this.tp[k]! / (this.tp[k]! + this.fp[k]!) : NaN,
      positives: this.pos[k]!,
    }));
    return { n, exactMatch: this.exact / n, hamming: this.right.reduce((a, b) => a + b, 0) / (n * this.numClasses), perClass };
  }
}

// ----------------------------------------------------------------------------------- the engine

export interface SceneExplanation {
  logits: Float32Array;
  /** per distinct class of the scene: its case, its map at the scene's resolution and the raw map at the layer's */
  maps: { case: ClassCase; map: CamMap; raw: CamMap }[];
  ms: number;
}

/**
 * Explains every class present in `scene` with `method` through the engine (one explain() call with all
 * the classes as targets; the default layer unless `layers` is given) and returns the maps at the scene's
 * resolution.
 */
export async function explainScene(rt: ModelRuntime, scene: Scene, method: MethodName, input?: Float32Array, layers?: string[]): Promise<SceneExplanation> {
  const x = input ?? await sceneInput(rt, scene);
  const cases = sceneCases(scene);
  const t = performance.now();
  const res = await rt.explain({ input: x, method, targets: cases.map((c) => c.cls), layers });
  const ms = performance.now() - t;
  const maps = cases.map((c, i) => {
    const e = res.explanations[i]!;
    if (e.target.index !== c.cls) throw new Error(`explanation ${i} is for class ${e.target.index}, expected ${c.cls}`);
    return { case: c, map: toSceneSize(e.map, scene.width, scene.height), raw: e.map };
  });
  return { logits: res.logits, maps, ms };
}

/** The model input of a scene, prepared as the service prepares an upload (model.json's preprocessing). */
export function sceneInput(rt: ModelRuntime, scene: Scene): Promise<Float32Array> {
  return toModelInput({ data: scene.rgb, width: scene.width, height: scene.height, channels: 3 }, rt.info);
}

/** Scores `method` on `scenes` (inputs prepared once by the caller, or here). */
export async function evaluateMethod(
  rt: ModelRuntime, scenes: readonly Scene[], method: MethodName,
  opts: { inputs?: readonly Float32Array[]; layers?: string[]; accuracy?: AccuracyTally; onScene?: (i: number) => void } = {},
): Promise<LocalisationSummary> {
  const tally = new LocalisationTally();
  for (const [i, scene] of scenes.entries()) {
    const r = await explainScene(rt, scene, method, opts.inputs?.[i], opts.layers);
    tally.scenes++;
    tally.ms += r.ms;
    for (const { case: c, map } of r.maps) tally.add(map, c);
    opts.accuracy?.add(r.logits, scene.labels);
    opts.onScene?.(i);
  }
  return tally.summary();
}

/** The scores of trivial maps, for scale: a map peaked at the image centre (a cone), and a uniform map. */
export function baselineSummary(scenes: readonly Scene[]): { centre: LocalisationSummary; uniformEnergy: number } {
  const tally = new LocalisationTally();
  let uniform = 0;
  for (const scene of scenes) {
    const { width: W, height: H } = scene;
    const cone = new Float32Array(W * H);
    const cx = (W - 1) / 2, cy = (H - 1) / 2;
    // Peak at the centre pixel (64, 64) for even sizes: slightly off-centre so the maximum is unique.
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) cone[y * W + x] = W + H - Math.hypot(x - cx - 0.5, y - cy - 0.5);
    tally.scenes++;
    for (const c of sceneCases(scene)) {
      tally.add({ width: W, height: H, data: cone }, c);
      uniform += energyInBoxes({ width: W, height: H, data: new Float32Array(W * H).fill(1) }, c.boxes);
    }
  }
  const s = tally.summary();
  return { centre: s, uniformEnergy: uniform / s.pairs };
}
