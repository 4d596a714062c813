// Seeded random numbers for the methods that draw (Random-CAM's weights, SS-CAM's and SmoothGrad's
// noise): reproducible per seed, independent of Math.random.

/** mulberry32: a small 32-bit generator, uniform in [0, 1) with 2⁻³² resolution. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** N(0, σ²) vectors from one seeded stream (Box–Muller), drawn in call order. */
export function gaussian(std: number, seed: number): (size: number) => Float32Array {
  const next = mulberry32(seed);
  return (size) => {
    const out = new Float32Array(size);
    for (let i = 0; i < size; i += 2) {
      const r = Math.sqrt(-2 * Math.log(1 - next()));
      const t = 2 * Math.PI * next();
      out[i] = std * r * Math.cos(t);
      if (i + 1 < size) out[i + 1] = std * r * Math.sin(t);
    }
    return out;
  };
}

/**
 * The noise of a method that runs on noisy copies of a `size`-value input: the given draws laid out
 * [samples, size] (a library's noise replayed; their length decides how many samples), else `samples`
 * vectors of N(0, std²) from `seed`, drawn in call order.
 */
export function noiseSamples(size: number, o: { draws?: Float32Array; samples: number; std: number; seed: number }): { samples: number; noise(sample: number): Float32Array } {
  const { draws } = o;
  if (draws) {
    if (draws.length % size !== 0) throw new RangeError(`${draws.length} drawn values are not samples of the ${size}-value input`);
    return { samples: draws.length / size, noise: (s) => draws.subarray(s * size, (s + 1) * size) };
  }
  const draw = gaussian(o.std, o.seed);
  return { samples: o.samples, noise: () => draw(size) };
}

