// Synthetic "shapes" scenes: a textured, cluttered background with 1–3 coloured shapes of known class and
// known bounding box, rendered from SVG by sharp (librsvg). Everything is a pure function of the seed: the
// generator uses its own PRNG (never Math.random), so the same seed always gives the same bytes.
//
// Seed convention (see tools/train/README.md):
//   training   [0, 100000)
//   validation [100000, 101000)
//   held-out   [1000000, ...)   never used in training
import sharp from 'sharp';

export const SCENE_SIZE = 128;

/** The ten classes, in logit order. Chosen to be clearly distinct at 18–40 px under any rotation. */
export const CLASS_NAMES = [
  'circle', 'square', 'triangle', 'star', 'cross', 'ring', 'diamond', 'heart', 'arrow', 'crescent',
] as const;
export const NUM_CLASSES = CLASS_NAMES.length;

export const SEEDS = {
  train: [0, 100_000] as const,
  val: [100_000, 101_000] as const,
  heldOut: [1_000_000, Number.MAX_SAFE_INTEGER] as const,
};

export type Box = [x0: number, y0: number, x1: number, y1: number];

export interface SceneObject {
  cls: number;
  label: string;
  /** Pixel box of the rendered shape, inclusive-exclusive: x0 <= x < x1, y0 <= y < y1. */
  box: Box;
}

export interface Scene {
  width: 128;
  height: 128;
  /** Raw RGB, 3 bytes per pixel, row-major, no alpha. */
  rgb: Buffer;
  objects: SceneObject[];
  /** Multi-hot over CLASS_NAMES. */
  labels: number[];
}

export interface SceneOptions {
  /** Number of objects (1–3); default random: 1 (30%), 2 (45%), 3 (25%). Ignored when `classes` is given. */
  numObjects?: number;
  /** Exact classes of the objects, in placement order (indices into CLASS_NAMES). */
  classes?: number[];
  /** Object size range in pixels (diameter of the shape's reference circle); default [18, 40]. */
  sizeRange?: [number, number];
  /** Number of distractor strokes/blobs; default random 4–9. */
  numDistractors?: number;
}

/** A scene before rasterisation. */
export interface SceneSpec {
  svg: string;
  objects: SceneObject[];
  labels: number[];
}

// ---------------------------------------------------------------------------------------------- PRNG

/** Small, fast, well-mixed PRNG (sfc32), seeded through a splitmix32 hash of the integer seed. */
export class Rng {
  private a: number; private b: number; private c: number; private d: number;
  constructor(seed: number) {
    let s = (Math.floor(seed) >>> 0) ^ Math.floor(seed / 2 ** 32);
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next(); this.b = next(); this.c = next(); this.d = next();
    for (let i = 0; i < 12; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number { return this.u32() / 4294967296; }
  uniform(lo: number, hi: number): number { return lo + (hi - lo) * this.next(); }
  /** Integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  pick<T>(xs: readonly T[]): T { return xs[Math.floor(this.next() * xs.length)]!; }
  chance(p: number): boolean { return this.next() < p; }
}

// ------------------------------------------------------------------------------------------ geometry

type Pt = [number, number];
type Contour = Pt[];

function regular(n: number, r: number, phase = -Math.PI / 2): Contour {
  const pts: Contour = [];
  for (let i = 0; i < n; i++) {
    const a = phase + (2 * Math.PI * i) / n;
    pts.push([r * Math.cos(a), r * Math.sin(a)]);
  }
  return pts;
}

function arc(cx: number, cy: number, r: number, a0: number, a1: number, n: number): Contour {
  const pts: Contour = [];
  for (let i = 0; i <= n; i++) {
    const a = a0 + ((a1 - a0) * i) / n;
    pts.push([cx + r * Math.cos(a), cy + r * Math.sin(a)]);
  }
  return pts;
}

/**
 * Each shape in unit coordinates (reference circle of radius 1, y down), as contours filled with the
 * even-odd rule. Curved shapes are finely sampled polygons, so the bounding box computed from the same
 * points is the box of what is drawn.
 */
const SHAPES: Record<(typeof CLASS_NAMES)[number], () => Contour[]> = {
  circle: () => [regular(72, 0.95)],
  square: () => [[[-0.78, -0.78], [0.78, -0.78], [0.78, 0.78], [-0.78, 0.78]]],
  triangle: () => [regular(3, 1.12)],
  star: () => {
    const pts: Contour = [];
    for (let i = 0; i < 10; i++) {
      const r = i % 2 === 0 ? 1.1 : 0.45;
      const a = -Math.PI / 2 + (Math.PI * i) / 5;
      pts.push([r * Math.cos(a), r * Math.sin(a)]);
    }
    return [pts];
  },
  cross: () => {
    const w = 0.3, l = 1.0;
    return [[[-w, -l], [w, -l], [w, -w], [l, -w], [l, w], [w, w], [w, l], [-w, l], [-w, w], [-l, w], [-l, -w], [-w, -w]]];
  },
  ring: () => [regular(72, 1.0), regular(72, 0.58).reverse()],
  diamond: () => [[[0, -1.12], [0.6, 0], [0, 1.12], [-0.6, 0]]],
  heart: () => {
    // Classic parametric heart, x in [-16, 16], y in [-17, 12] (y up), scaled and flipped to y down.
    const pts: Contour = [];
    const n = 96;
    for (let i = 0; i < n; i++) {
      const t = (2 * Math.PI * i) / n;
      const x = 16 * Math.sin(t) ** 3;
      const y = 13 * Math.cos(t) - 5 * Math.cos(2 * t) - 2 * Math.cos(3 * t) - Math.cos(4 * t);
      pts.push([x / 16, -(y + 2.5) / 15.5]);
    }
    return [pts];
  },
  arrow: () => {
    const sw = 0.2, hw = 0.62, hx = 0.1;
    return [[[-1.05, -sw], [hx, -sw], [hx, -hw], [1.05, 0], [hx, hw], [hx, sw], [-1.05, sw]]];
  },
  crescent: () => {
    // Outer circle (0,0,R) minus inner circle (d,0,r): outer arc through the far side, inner arc back.
    const R = 1.0, r = 0.82, d = 0.5;
    const xi = (R * R - r * r + d * d) / (2 * d);
    const yi = Math.sqrt(R * R - xi * xi);
    const aOuter = Math.atan2(yi, xi);
    const aInner = Math.atan2(yi, xi - d);
    const outer = arc(0, 0, R, aOuter, 2 * Math.PI - aOuter, 64);
    const inner = arc(d, 0, r, -aInner, aInner - 2 * Math.PI, 64).slice(1, -1);
    // Re-centre on the bounding box so rotation is about the middle of the crescent.
    const pts = [...outer, ...inner];
    const cx = (Math.min(...pts.map((p) => p[0])) + Math.max(...pts.map((p) => p[0]))) / 2;
    return [pts.map(([x, y]): Pt => [x - cx, y])];
  },
};

function transform(contours: Contour[], scale: number, angle: number, tx: number, ty: number): Contour[] {
  const c = Math.cos(angle), s = Math.sin(angle);
  return contours.map((pts) => pts.map(([x, y]): Pt => [tx + scale * (c * x - s * y), ty + scale * (s * x + c * y)]));
}

function bounds(contours: Contour[]): [number, number, number, number] {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const pts of contours) for (const [x, y] of pts) {
    if (x < x0) x0 = x; if (y < y0) y0 = y; if (x > x1) x1 = x; if (y > y1) y1 = y;
  }
  return [x0, y0, x1, y1];
}

const f2 = (v: number): string => (Math.round(v * 100) / 100).toString();

function pathData(contours: Contour[]): string {
  return contours.map((pts) => 'M' + pts.map(([x, y]) => `${f2(x)} ${f2(y)}`).join('L') + 'Z').join('');
}

// ------------------------------------------------------------------------------------------- colours

type Rgb = [number, number, number];

function hsl(h: number, s: number, l: number): Rgb {
  h = ((h % 360) + 360) % 360;
  const c = (1 - Math.abs(2 * l - 1)) * s;
  const x = c * (1 - Math.abs(((h / 60) % 2) - 1));
  const m = l - c / 2;
  const [r, g, b] = h < 60 ? [c, x, 0] : h < 120 ? [x, c, 0] : h < 180 ? [0, c, x] : h < 240 ? [0, x, c] : h < 300 ? [x, 0, c] : [c, 0, x];
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
}

/** Rec. 601 luma in [0, 1]. */
const luma = ([r, g, b]: Rgb): number => (0.299 * r + 0.587 * g + 0.114 * b) / 255;
const hex = ([r, g, b]: Rgb): string => '#' + [r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('');
const mix = (a: Rgb, b: Rgb, t: number): Rgb => [0, 1, 2].map((i) => Math.round(a[i]! * (1 - t) + b[i]! * t)) as Rgb;

/** A saturated-enough colour whose luma differs from `bg`'s by at least `minContrast`. */
function contrastingColour(rng: Rng, bg: number, minContrast: number): Rgb {
  for (let i = 0; i < 64; i++) {
    const c = hsl(rng.uniform(0, 360), rng.uniform(0.45, 1), rng.uniform(0.06, 0.94));
    if (Math.abs(luma(c) - bg) >= minContrast) return c;
  }
  return bg > 0.5 ? [20, 20, 20] : [235, 235, 235];
}

// ------------------------------------------------------------------------------------------- scenes

function overlapFraction(a: number[], b: number[]): number {
  const ix = Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!));
  const iy = Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));
  const area = (r: number[]): number => (r[2]! - r[0]!) * (r[3]! - r[1]!);
  return (ix * iy) / Math.min(area(a), area(b));
}

function background(rng: Rng, W: number): { svg: string; bgLuma: number } {
  const h = rng.uniform(0, 360);
  const base = hsl(h, rng.uniform(0.1, 0.6), rng.uniform(0.3, 0.7));
  const blot = mix(base, hsl(h + rng.uniform(-90, 90), rng.uniform(0.1, 0.7), luma(base) + rng.uniform(-0.12, 0.12)), 0.85);
  const grain = luma(base) > 0.5 ? mix(base, [0, 0, 0], 0.45) : mix(base, [255, 255, 255], 0.45);
  const f1 = rng.uniform(0.012, 0.04), f2g = rng.uniform(0.08, 0.3);
  const s1 = rng.int(0, 9999), s2 = rng.int(0, 9999);
  const grainAlpha = rng.uniform(0.5, 1.4);
  const filt = (id: string, freq: number, oct: number, seed: number, c: Rgb, k: number, o: number): string =>
    `<filter id="${id}" filterUnits="userSpaceOnUse" x="0" y="0" width="${W}" height="${W}" color-interpolation-filters="sRGB">` +
    `<feTurbulence type="fractalNoise" baseFrequency="${Number(f2(freq * 1000)) / 1000}" numOctaves="${oct}" seed="${seed}"/>` +
    `<feColorMatrix type="matrix" values="0 0 0 0 ${f2(c[0] / 255)} 0 0 0 0 ${f2(c[1] / 255)} 0 0 0 0 ${f2(c[2] / 255)} ${f2(k)} 0 0 0 ${f2(o)}"/></filter>`;
  const svg =
    '<defs>' + filt('n1', f1, 2, s1, blot, 4, -1.6) + filt('n2', f2g, 2, s2, grain, grainAlpha, -0.45 * grainAlpha) + '</defs>' +
    `<rect width="${W}" height="${W}" fill="${hex(base)}"/>` +
    `<rect width="${W}" height="${W}" filter="url(#n1)"/>` +
    `<rect width="${W}" height="${W}" filter="url(#n2)"/>`;
  return { svg, bgLuma: (luma(base) + luma(blot)) / 2 };
}

/** Strokes, squiggles, dots and elongated blobs that are none of the classes. */
function distractors(rng: Rng, W: number, n: number, bgLuma: number): string {
  let out = '';
  const P = (): string => `${f2(rng.uniform(-10, W + 10))} ${f2(rng.uniform(-10, W + 10))}`;
  for (let i = 0; i < n; i++) {
    const col = hex(rng.chance(0.6) ? contrastingColour(rng, bgLuma, 0.15) : hsl(rng.uniform(0, 360), rng.uniform(0, 1), rng.uniform(0.1, 0.9)));
    const op = f2(rng.uniform(0.45, 0.9));
    const kind = rng.pick(['line', 'curve', 'curve', 'squiggle', 'dots', 'blob'] as const);
    if (kind === 'line' || kind === 'curve') {
      const d = kind === 'line' ? `M${P()}L${P()}` : `M${P()}Q${P()} ${P()}`;
      out += `<path d="${d}" fill="none" stroke="${col}" stroke-width="${f2(rng.uniform(0.8, 2.6))}" stroke-linecap="round" opacity="${op}"/>`;
    } else if (kind === 'squiggle') {
      let x = rng.uniform(0, W), y = rng.uniform(0, W), a = rng.uniform(0, 2 * Math.PI);
      let d = `M${f2(x)} ${f2(y)}`;
      const steps = rng.int(4, 9);
      for (let k = 0; k < steps; k++) {
        a += rng.uniform(-1.4, 1.4);
        x += 7 * Math.cos(a); y += 7 * Math.sin(a);
        d += `L${f2(x)} ${f2(y)}`;
      }
      out += `<path d="${d}" fill="none" stroke="${col}" stroke-width="${f2(rng.uniform(0.8, 2))}" stroke-linejoin="round" opacity="${op}"/>`;
    } else if (kind === 'dots') {
      const cx = rng.uniform(0, W), cy = rng.uniform(0, W);
      for (let k = rng.int(3, 8); k > 0; k--) {
        out += `<circle cx="${f2(cx + rng.uniform(-14, 14))}" cy="${f2(cy + rng.uniform(-14, 14))}" r="${f2(rng.uniform(0.8, 2.2))}" fill="${col}" opacity="${op}"/>`;
      }
    } else {
      const rx = rng.uniform(7, 18), ry = rx / rng.uniform(2.8, 5);
      out += `<ellipse rx="${f2(rx)}" ry="${f2(ry)}" fill="${col}" opacity="${f2(rng.uniform(0.25, 0.55))}" ` +
        `transform="translate(${f2(rng.uniform(0, W))} ${f2(rng.uniform(0, W))}) rotate(${f2(rng.uniform(0, 180))})"/>`;
    }
  }
  return out;
}

/** Builds the SVG and the ground truth of scene `seed` (no rasterisation). */
export function sceneSpec(seed: number, opts: SceneOptions = {}): SceneSpec {
  const W = SCENE_SIZE;
  const rng = new Rng(seed);
  const bg = background(rng, W);
  const nDistract = opts.numDistractors ?? rng.int(4, 9);
  const clutter = distractors(rng, W, nDistract, bg.bgLuma);

  let classes: number[];
  if (opts.classes) {
    classes = opts.classes.slice();
  } else {
    const u = rng.next();
    const n = opts.numObjects ?? (u < 0.3 ? 1 : u < 0.75 ? 2 : 3);
    classes = Array.from({ length: n }, () => rng.int(0, NUM_CLASSES - 1));
  }
  const [smin, smax] = opts.sizeRange ?? [18, 40];
  const margin = 1;
  const placed: { cls: number; raw: number[]; contours: Contour[]; colour: Rgb }[] = [];
  for (const cls of classes) {
    const proto = SHAPES[CLASS_NAMES[cls]!]();
    let size = rng.uniform(smin, smax);
    for (let attempt = 0; attempt < 200; attempt++) {
      if (attempt > 0 && attempt % 40 === 0) size = Math.max(smin * 0.8, size * 0.85);
      const angle = rng.uniform(0, 2 * Math.PI);
      const local = transform(proto, size / 2, angle, 0, 0);
      const [bx0, by0, bx1, by1] = bounds(local);
      const tx = rng.uniform(margin - bx0, W - margin - bx1);
      const ty = rng.uniform(margin - by0, W - margin - by1);
      const raw = [bx0 + tx, by0 + ty, bx1 + tx, by1 + ty];
      if (placed.some((p) => overlapFraction(p.raw, raw) > 0.1)) continue;
      placed.push({ cls, raw, contours: transform(proto, size / 2, angle, tx, ty), colour: contrastingColour(rng, bg.bgLuma, 0.28) });
      break;
    }
  }

  let shapes = '';
  const objects: SceneObject[] = [];
  const labels = new Array<number>(NUM_CLASSES).fill(0);
  for (const p of placed) {
    shapes += `<path d="${pathData(p.contours)}" fill="${hex(p.colour)}" fill-rule="evenodd"/>`;
    const [x0, y0, x1, y1] = p.raw as [number, number, number, number];
    const box: Box = [
      Math.max(0, Math.floor(x0)), Math.max(0, Math.floor(y0)), Math.min(W, Math.ceil(x1)), Math.min(W, Math.ceil(y1)),
    ];
    objects.push({ cls: p.cls, label: CLASS_NAMES[p.cls]!, box });
    labels[p.cls] = 1;
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${W}" viewBox="0 0 ${W} ${W}">` +
    bg.svg + clutter + shapes + '</svg>';
  return { svg, objects, labels };
}

/** Renders scene `seed`: 128×128 raw RGB plus its objects, boxes and multi-hot labels. */
export async function generateScene(seed: number, opts: SceneOptions = {}): Promise<Scene> {
  const spec = sceneSpec(seed, opts);
  const rgb = await sharp(Buffer.from(spec.svg)).removeAlpha().raw().toBuffer();
  if (rgb.length !== SCENE_SIZE * SCENE_SIZE * 3) throw new Error(`scene ${seed}: unexpected raster size ${rgb.length}`);
  return { width: SCENE_SIZE, height: SCENE_SIZE, rgb, objects: spec.objects, labels: spec.labels };
}

/** Scenes `startSeed`, `startSeed + 1`, …, `startSeed + n - 1`, rendered with limited concurrency. */
export async function generateScenes(startSeed: number, n: number, opts: SceneOptions = {}, concurrency = 4): Promise<Scene[]> {
  const out = new Array<Scene>(n);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      out[i] = await generateScene(startSeed + i, opts);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}

/** PNG of a scene (for examples and inspection), optionally upscaled. */
export async function scenePng(scene: Scene, size = SCENE_SIZE): Promise<Buffer> {
  let img = sharp(scene.rgb, { raw: { width: scene.width, height: scene.height, channels: 3 } });
  if (size !== scene.width) img = img.resize(size, size, { kernel: 'lanczos3' });
  return img.png().toBuffer();
}
