// Feature maps of one layer as one picture, with torchvision's make_grid semantics (and save_image's
// conversion to bytes), plus per-channel statistics.
//
// torchvision.utils.make_grid(tensor [n, 1, h, w], nrow, padding, normalize, value_range, scale_each,
// pad_value), reproduced:
//   - normalize: clamp to value_range (default: the min and max of all shown maps, or of each map with
//     scale_each), then (x − lo) / max(hi − lo, 1e-5); without normalize the values are used as they
//     are (so activations outside [0, 1] saturate, as in torchvision);
//   - xmaps = min(nrow, n), ymaps = ceil(n / xmaps),
//     width = xmaps·(w + padding) + padding, height = ymaps·(h + padding) + padding, filled with
//     pad_value, map k at x = (k mod xmaps)·(w + padding) + padding, y = ⌊k / xmaps⌋·(h + padding) + padding;
//   - one map alone is returned as it is, without padding (make_grid's own special case);
//   - bytes as save_image: ⌊clamp(x·255 + 0.5, 0, 255)⌋ (float32 arithmetic).
// Feature maps are small (7×7 is common), so each map is first enlarged `scale` times by pixel
// replication (nearest neighbour: every activation one visible square, values unchanged), exactly as
// make_grid(F.interpolate(maps, scale_factor=scale, mode='nearest'), ...) would: in the formulas above
// w and h are then w·scale and h·scale, and `padding` is in pixels of the picture. The default scale is
// the smallest integer that makes a map at least 64 pixels on its shorter side, lowered if the picture
// would exceed `maxPixels`.
import { CamserveError } from '../errors/index.js';
import sharp from 'sharp';
import { COLORMAPS, DEFAULT_COMPRESSION_LEVEL, type ColormapName } from '../render/index.js';

/** A layer's feature maps: `data[(c·h + y)·w + x]` (NCHW without the batch). */
export interface FeatureMaps {
  C: number;
  h: number;
  w: number;
  data: Float32Array;
}

export type ChannelSelection = number[] | { top: number };

export interface GridOptions {
  /** maps per row (default 8) */
  nrow?: number;
  /** pixels between and around the maps, in the picture (default 2) */
  padding?: number;
  /** scale values to [0, 1] (default false) */
  normalize?: boolean;
  /** [lo, hi]: clamp to this range before normalising (only with normalize) */
  range?: [number, number];
  /** normalise each map by its own min and max (only with normalize) */
  scaleEach?: boolean;
  /** value of the padding (default 0), in the same units as the maps after normalisation */
  padValue?: number;
  /** which channels, in order (default all) */
  channels?: ChannelSelection;
  /** colour map for the maps (default: grey); padding stays grey */
  colormap?: ColormapName;
  /** integer enlargement of every map before the grid is made (default: smallest making a map ≥ 64 px on its shorter side) */
  scale?: number;
  /** largest picture, width × height (default 16 Mpx) */
  maxPixels?: number;
}

export const GRID_DEFAULTS = { nrow: 8, padding: 2, padValue: 0, minTile: 64, maxPixels: 16 * 1024 * 1024, maxScale: 64 } as const;

export interface GridLayout {
  /** channels shown, in grid order */
  channels: number[];
  n: number;
  xmaps: number;
  ymaps: number;
  /** the enlargement of each map */
  scale: number;
  /** size of one map in the picture (h·scale, w·scale) */
  tileWidth: number;
  tileHeight: number;
  /** the picture: make_grid's size for maps of tileWidth × tileHeight */
  width: number;
  height: number;
}

export interface ChannelStats {
  channel: number;
  min: number;
  max: number;
  mean: number;
  /** population standard deviation (divides by h·w) */
  std: number;
  /** share of exact zeros, 0..1 (e.g. after ReLU) */
  zeros: number;
}

/** An option that cannot be used with this layer: a bad parameter naming the option and the value. */
export class GridOptionError extends CamserveError {
  override name = 'GridOptionError';
  constructor(readonly option: string, message: string, received: unknown = null) {
    super('bad-parameter', message, { parameter: option, allowed: 'see detail', received });
  }
}

const f32 = Math.fround;

function checkMaps(maps: FeatureMaps): void {
  if (maps.data.length !== maps.C * maps.h * maps.w) {
    throw new RangeError(`feature maps: ${maps.data.length} values, expected ${maps.C}×${maps.h}×${maps.w}`);
  }
}

/** min, max, mean, std, share of zeros of every channel. */
export function channelStats(maps: FeatureMaps, channels?: number[]): ChannelStats[] {
  checkMaps(maps);
  const hw = maps.h * maps.w;
  const list = channels ?? Array.from({ length: maps.C }, (_, c) => c);
  return list.map((c) => {
    const m = maps.data.subarray(c * hw, (c + 1) * hw);
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    let zeros = 0;
    for (const v of m) {
      if (v < min) min = v;
      if (v > max) max = v;
      sum += v;
      if (v === 0) zeros++;
    }
    const mean = sum / hw;
    let sq = 0;
    for (const v of m) sq += (v - mean) * (v - mean);
    return { channel: c, min, max, mean, std: Math.sqrt(sq / hw), zeros: zeros / hw };
  });
}

/** Channel indices for a selection: the list as given (checked), or the k of largest mean (ties: lower index first). */
export function selectChannels(maps: FeatureMaps, selection: ChannelSelection | undefined): number[] {
  if (!selection) return Array.from({ length: maps.C }, (_, c) => c);
  if (Array.isArray(selection)) {
    if (selection.length === 0) throw new GridOptionError('channels', 'channels: the list is empty');
    for (const c of selection) {
      if (!Number.isInteger(c) || c < 0 || c >= maps.C) throw new GridOptionError('channels', `channel ${c} is outside 0..${maps.C - 1}`, c);
    }
    return [...selection];
  }
  const k = selection.top;
  if (!Number.isInteger(k) || k < 1) throw new GridOptionError('channels', `top:k needs a positive integer k, got ${k}`);
  const means = channelStats(maps).map((s) => s.mean);
  return Array.from({ length: maps.C }, (_, c) => c)
    .sort((a, b) => means[b] - means[a] || a - b)
    .slice(0, Math.min(k, maps.C));
}

/**
 * make_grid's values: a width × height float image (make_grid's own size, before enlarging) and a
 * mask of the pixels that are padding.
 */
export function makeGrid(maps: FeatureMaps, opts: GridOptions = {}): { layout: GridLayout; values: Float32Array; pad: Uint8Array } {
  checkMaps(maps);
  const nrow = opts.nrow ?? GRID_DEFAULTS.nrow;
  const padding = opts.padding ?? GRID_DEFAULTS.padding;
  const padValue = opts.padValue ?? GRID_DEFAULTS.padValue;
  if (!Number.isInteger(nrow) || nrow < 1) throw new GridOptionError('nrow', `nrow must be a positive integer, got ${nrow}`, nrow);
  if (!Number.isInteger(padding) || padding < 0) throw new GridOptionError('padding', `padding must be a non-negative integer, got ${padding}`, padding);
  if (!Number.isFinite(padValue)) throw new GridOptionError('pad_value', `pad_value must be a finite number, got ${padValue}`);
  if (opts.range && !(opts.range[0] < opts.range[1])) throw new GridOptionError('range', `range must be [lo, hi] with lo < hi, got [${opts.range.join(', ')}]`);
  const channels = selectChannels(maps, opts.channels);
  const { h, w } = maps;
  const hw = h * w;
  const n = channels.length;
  // The selected maps, normalised as make_grid does (in float32 like torch).
  const sel = new Float32Array(n * hw);
  channels.forEach((c, k) => sel.set(maps.data.subarray(c * hw, (c + 1) * hw), k * hw));
  if (opts.normalize) {
    const normRange = (t: Float32Array) => {
      let lo: number;
      let hi: number;
      if (opts.range) [lo, hi] = [f32(opts.range[0]), f32(opts.range[1])];
      else {
        lo = Infinity;
        hi = -Infinity;
        for (const v of t) {
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      }
      const denom = f32(Math.max(hi - lo, 1e-5));
      for (let i = 0; i < t.length; i++) {
        const v = Math.min(Math.max(t[i], lo), hi);
        t[i] = f32(f32(v - lo) / denom);
      }
    };
    if (opts.scaleEach) for (let k = 0; k < n; k++) normRange(sel.subarray(k * hw, (k + 1) * hw));
    else normRange(sel);
  }
  if (n === 1) {
    // make_grid returns a single image as it is.
    const layout = { channels, n, xmaps: 1, ymaps: 1, scale: 1, tileWidth: w, tileHeight: h, width: w, height: h };
    return { layout, values: sel, pad: new Uint8Array(hw) };
  }
  const xmaps = Math.min(nrow, n);
  const ymaps = Math.ceil(n / xmaps);
  const width = xmaps * (w + padding) + padding;
  const height = ymaps * (h + padding) + padding;
  const values = new Float32Array(width * height).fill(f32(padValue));
  const pad = new Uint8Array(width * height).fill(1);
  for (let k = 0; k < n; k++) {
    const x0 = (k % xmaps) * (w + padding) + padding;
    const y0 = Math.floor(k / xmaps) * (h + padding) + padding;
    for (let y = 0; y < h; y++) {
      values.set(sel.subarray(k * hw + y * w, k * hw + (y + 1) * w), (y0 + y) * width + x0);
      pad.fill(0, (y0 + y) * width + x0, (y0 + y) * width + x0 + w);
    }
  }
  return { layout: { channels, n, xmaps, ymaps, scale: 1, tileWidth: w, tileHeight: h, width, height }, values, pad };
}

/** save_image's conversion: ⌊clamp(x·255 + 0.5, 0, 255)⌋ in float32 (NaN → 0). */
export function toByte(x: number): number {
  const v = f32(f32(x * 255) + 0.5);
  if (!(v > 0)) return 0;
  return v >= 255 ? 255 : Math.trunc(v);
}

/** make_grid's picture size for n maps of tileWidth × tileHeight (one map: no padding). */
export function gridSize(n: number, tileWidth: number, tileHeight: number, nrow: number, padding: number): { xmaps: number; ymaps: number; width: number; height: number } {
  if (n === 1) return { xmaps: 1, ymaps: 1, width: tileWidth, height: tileHeight };
  const xmaps = Math.min(nrow, n);
  const ymaps = Math.ceil(n / xmaps);
  return { xmaps, ymaps, width: xmaps * (tileWidth + padding) + padding, height: ymaps * (tileHeight + padding) + padding };
}

/** The enlargement for n maps of h × w: as asked (checked against maxPixels), or the default lowered to fit. */
export function chooseScale(n: number, maps: Pick<FeatureMaps, 'h' | 'w'>, opts: Pick<GridOptions, 'scale' | 'maxPixels' | 'nrow' | 'padding'> = {}): number {
  const maxPixels = opts.maxPixels ?? GRID_DEFAULTS.maxPixels;
  const nrow = opts.nrow ?? GRID_DEFAULTS.nrow;
  const padding = opts.padding ?? GRID_DEFAULTS.padding;
  const size = (s: number) => gridSize(n, maps.w * s, maps.h * s, nrow, padding);
  const pixels = (s: number) => size(s).width * size(s).height;
  if (opts.scale !== undefined) {
    if (!Number.isInteger(opts.scale) || opts.scale < 1 || opts.scale > GRID_DEFAULTS.maxScale) {
      throw new GridOptionError('scale', `scale must be an integer in 1..${GRID_DEFAULTS.maxScale}, got ${opts.scale}`, opts.scale);
    }
    if (pixels(opts.scale) > maxPixels) {
      const { width, height } = size(opts.scale);
      throw new GridOptionError('scale', `at scale ${opts.scale} the grid would be ${width}×${height} pixels, more than ${maxPixels}; use a smaller scale or fewer channels`);
    }
    return opts.scale;
  }
  let s = Math.min(GRID_DEFAULTS.maxScale, Math.max(1, Math.ceil(GRID_DEFAULTS.minTile / Math.max(1, Math.min(maps.h, maps.w)))));
  while (s > 1 && pixels(s) > maxPixels) s--;
  if (pixels(s) > maxPixels) {
    const { width, height } = size(1);
    throw new GridOptionError('channels', `the grid of ${n} maps would be ${width}×${height} pixels, more than ${maxPixels} even at scale 1; select fewer channels`);
  }
  return s;
}

/** `channels` of `maps`, each enlarged `scale` times by pixel replication. */
function enlarge(maps: FeatureMaps, channels: number[], scale: number): FeatureMaps {
  const { h, w } = maps;
  const H = h * scale;
  const W = w * scale;
  const data = new Float32Array(channels.length * H * W);
  channels.forEach((c, k) => {
    for (let y = 0; y < h; y++) {
      const row = data.subarray((k * H + y * scale) * W, (k * H + y * scale + 1) * W);
      for (let x = 0; x < w; x++) row.fill(maps.data[(c * h + y) * w + x], x * scale, (x + 1) * scale);
      for (let r = 1; r < scale; r++) data.copyWithin((k * H + y * scale + r) * W, (k * H + y * scale) * W, (k * H + y * scale + 1) * W);
    }
  });
  return { C: channels.length, h: H, w: W, data };
}

/** The grid as an RGB image: the chosen channels enlarged, then make_grid, then save_image's bytes (or a colour map). */
export function gridRgb(maps: FeatureMaps, opts: GridOptions = {}): { layout: GridLayout; rgb: Buffer } {
  checkMaps(maps);
  const channels = selectChannels(maps, opts.channels);
  const scale = chooseScale(channels.length, maps, opts);
  // Enlarging first changes no min, max or mean, so normalisation is the same as on the maps themselves.
  const made = makeGrid(enlarge(maps, channels, scale), { ...opts, channels: undefined });
  const { values, pad } = made;
  const layout: GridLayout = { ...made.layout, channels, scale };
  const lut = opts.colormap ? COLORMAPS[opts.colormap] : undefined;
  const rgb = Buffer.alloc(layout.width * layout.height * 3);
  for (let i = 0; i < values.length; i++) {
    const b = toByte(values[i]);
    if (lut && !pad[i]) {
      rgb[3 * i] = lut[3 * b];
      rgb[3 * i + 1] = lut[3 * b + 1];
      rgb[3 * i + 2] = lut[3 * b + 2];
    } else {
      rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = b;
    }
  }
  return { layout, rgb };
}

/** Space between stacked grids, in PNG pixels (filled with the padding colour). */
export const STACK_GAP = 8;

/**
 * Several grids (one per layer) stacked top to bottom in the order given, left-aligned, separated by
 * STACK_GAP pixels; the space right of narrower grids and between them has the first grid's padding colour.
 */
export function stackRgb(grids: { rgb: Buffer; width: number; height: number }[], padByte: number): { rgb: Buffer; width: number; height: number; offsets: number[] } {
  const width = Math.max(...grids.map((g) => g.width));
  const height = grids.reduce((a, g) => a + g.height, 0) + STACK_GAP * (grids.length - 1);
  const rgb = Buffer.alloc(width * height * 3, padByte);
  const offsets: number[] = [];
  let y0 = 0;
  for (const g of grids) {
    offsets.push(y0);
    for (let y = 0; y < g.height; y++) g.rgb.copy(rgb, ((y0 + y) * width) * 3, y * g.width * 3, (y + 1) * g.width * 3);
    y0 += g.height + STACK_GAP;
  }
  return { rgb, width, height, offsets };
}

export async function encodePng(rgb: Buffer, width: number, height: number): Promise<Buffer> {
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png({ compressionLevel: DEFAULT_COMPRESSION_LEVEL }).toBuffer();
}

export interface LayerGrid {
  layer: string;
  maps: FeatureMaps;
}

export interface GridResult {
  png: Buffer;
  width: number;
  height: number;
  layers: { layer: string; layout: GridLayout; offsetY: number; stats: ChannelStats[] }[];
}

/** One PNG for one or more layers (stacked), with each layer's layout and the statistics of the shown channels. */
export async function featureGrid(layers: LayerGrid[], opts: GridOptions = {}, withPng = true): Promise<GridResult> {
  if (layers.length === 0) throw new RangeError('featureGrid: no layers');
  const grids = layers.map((l) => {
    const g = gridRgb(l.maps, opts);
    return { layer: l.layer, ...g, stats: channelStats(l.maps, g.layout.channels) };
  });
  const stacked = stackRgb(grids.map((g) => ({ rgb: g.rgb, width: g.layout.width, height: g.layout.height })), toByte(opts.padValue ?? 0));
  const maxPixels = opts.maxPixels ?? GRID_DEFAULTS.maxPixels;
  if (stacked.width * stacked.height > maxPixels) {
    throw new GridOptionError('layer', `the stacked grids would be ${stacked.width}×${stacked.height} pixels, more than ${maxPixels}; ask for fewer layers or channels`);
  }
  const png = withPng ? await encodePng(stacked.rgb, stacked.width, stacked.height) : Buffer.alloc(0);
  return {
    png, width: stacked.width, height: stacked.height,
    layers: grids.map((g, i) => ({ layer: g.layer, layout: g.layout, offsetY: stacked.offsets[i], stats: g.stats })),
  };
}
