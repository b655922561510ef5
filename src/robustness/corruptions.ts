/**
 * Common corruptions ("perturbation tests"): fixed, non-adversarial damage to
 * images at five severities, for measuring how accuracy degrades off the clean
 * test set. In the spirit of MNIST-C (Mu & Gilmer 2019, arXiv:1906.02337) and
 * CIFAR-10-C / ImageNet-C (Hendrycks & Dietterich 2019, ICLR, arXiv:1903.12261),
 * with parameters scaled for 28x28 images.
 *
 * Everything here is plain JavaScript on NHWC float32 arrays (no tensors), so a
 * corruption is deterministic on every backend: the random ones draw only from
 * the {@link Rng} they are given, image by image, in order, so corrupting a set
 * batch by batch with one Rng gives exactly the same values as corrupting it at
 * once. Every output is a new array clipped to the bounds.
 *
 * Severity table (amounts relative to the range are multiplied by hi - lo):
 *
 * | corruption        | parameter                                   |    1 |    2 |    3 |    4 |    5 |
 * |-------------------|---------------------------------------------|------|------|------|------|------|
 * | `gaussian-noise`  | noise std, fraction of the range            | 0.06 | 0.10 | 0.15 | 0.22 | 0.30 |
 * | `salt-and-pepper` | fraction of pixels set to lo or hi          | 0.02 | 0.05 | 0.08 | 0.12 | 0.17 |
 * | `gaussian-blur`   | sigma, pixels                               | 0.50 | 0.75 | 1.00 | 1.50 | 2.00 |
 * | `brightness`      | delta added, fraction of the range          | 0.10 | 0.20 | 0.30 | 0.40 | 0.50 |
 * | `contrast`        | factor around the per-channel image mean    | 0.75 | 0.50 | 0.40 | 0.30 | 0.15 |
 * | `rotation`        | degrees, sign random per image              |   10 |   20 |   30 |   45 |   60 |
 * | `translation`     | pixels, max(abs dy, abs dx), any direction  |    2 |    3 |    4 |    5 |    6 |
 *
 * Where they come from: noise and salt-and-pepper sit between CIFAR-10-C's
 * (std 0.04-0.10, amount 0.01-0.07) and ImageNet-C's (0.08-0.38, 0.03-0.27),
 * since MNIST's thick high-contrast strokes shrug off CIFAR-sized noise;
 * brightness is ImageNet-C's; contrast is CIFAR-10-C's; blur sigmas are CIFAR-10-C's
 * (0.4-1) stretched to 2 px, where a 28x28 digit's strokes start to merge;
 * rotation and translation follow MNIST-C's affine corruptions, graded.
 */
import type { Rng } from '../util/rng.js';
import { InputError } from '../errors.js';

/** [height, width, channels] of one image. */
export type ImageShape = readonly [number, number, number];
/** [lo, hi]: the valid value range of the images. */
export type Bounds = readonly [number, number];
/** Parameter values of severities 1..5, in order. */
export type SeverityValues = readonly [number, number, number, number, number];

/** The corruption names, in the order reports list them. */
export const CORRUPTION_NAMES = ['gaussian-noise', 'salt-and-pepper', 'gaussian-blur', 'brightness', 'contrast', 'rotation', 'translation'] as const;
export type CorruptionName = (typeof CORRUPTION_NAMES)[number];

/** The valid severities. */
export const SEVERITIES = [1, 2, 3, 4, 5] as const;

/** One corruption: its parameter per severity and the function applying it. */
export interface Corruption {
  readonly name: CorruptionName;
  /** One line for help texts and reports. */
  readonly description: string;
  /** What the severity values measure, with their unit. */
  readonly parameter: string;
  /** The parameter at severities 1..5 (index severity - 1). */
  readonly severities: SeverityValues;
  /** True if {@link Corruption.apply} draws from its Rng. */
  readonly random: boolean;
  /**
   * Corrupts `images` (NHWC float32, any count, values in `bounds`, default
   * [0, 1]) at `severity` (integer 1..5) and returns a new array clipped to the
   * bounds. `images` is not modified. Throws InputError on a bad shape,
   * severity, bounds, or a non-finite or out-of-bounds value.
   */
  apply(images: Float32Array, shape: ImageShape, severity: number, rng: Rng, bounds?: Bounds): Float32Array;
}

// ---------------------------------------------------------------- validation

/** Checks images against shape and bounds; returns the image count. */
export function checkImages(images: Float32Array, shape: ImageShape, bounds: Bounds = [0, 1], argument = 'images'): number {
  if (!(images instanceof Float32Array)) throw new InputError(argument, 'expected a Float32Array of NHWC values');
  if (!Array.isArray(shape) || shape.length !== 3 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new InputError('imageShape', `expected [height, width, channels] of positive integers, got [${Array.isArray(shape) ? shape.join(', ') : String(shape)}]`);
  }
  checkBounds(bounds);
  const size = shape[0] * shape[1] * shape[2];
  if (images.length % size !== 0) {
    throw new InputError(argument, `expected a multiple of ${shape[0]} x ${shape[1]} x ${shape[2]} = ${size} values (whole images), got ${images.length}`);
  }
  const [lo, hi] = bounds;
  for (let i = 0; i < images.length; i++) {
    const v = images[i];
    if (!Number.isFinite(v)) throw new InputError(argument, `non-finite value ${v} in image ${Math.floor(i / size)}`);
    if (v < lo || v > hi) throw new InputError(argument, `value ${v} in image ${Math.floor(i / size)} is outside the bounds [${lo}, ${hi}]`);
  }
  return images.length / size;
}

function checkBounds(bounds: Bounds): void {
  if (!Array.isArray(bounds) || bounds.length !== 2 || !Number.isFinite(bounds[0]) || !Number.isFinite(bounds[1]) || !(bounds[0] < bounds[1])) {
    throw new InputError('bounds', `expected [lo, hi] with finite lo < hi, got [${Array.isArray(bounds) ? bounds.join(', ') : String(bounds)}]`);
  }
}

/** Checks that `severity` is an integer 1..5. */
export function checkSeverity(severity: number, argument = 'severity'): void {
  if (typeof severity !== 'number' || !Number.isInteger(severity) || severity < 1 || severity > 5) {
    throw new InputError(argument, `expected an integer from 1 to 5, got ${severity}`);
  }
}

function checkParameter(value: number, argument: string, min: number, max = Infinity, minInclusive = true): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value > max || (minInclusive ? value < min : value <= min)) {
    throw new InputError(argument, `expected a number ${minInclusive ? '>=' : '>'} ${min}${max < Infinity ? ` and <= ${max}` : ''}, got ${value}`);
  }
}

function clip(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

// ---------------------------------------------------------------- primitives

/**
 * Adds i.i.d. Gaussian noise of standard deviation `std * (hi - lo)` to every
 * value, then clips.
 */
export function addGaussianNoise(images: Float32Array, shape: ImageShape, std: number, rng: Rng, bounds: Bounds = [0, 1]): Float32Array {
  checkImages(images, shape, bounds);
  checkParameter(std, 'std', 0);
  const [lo, hi] = bounds;
  const s = std * (hi - lo);
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = clip(images[i] + s * rng.normal(), lo, hi);
  return out;
}

/**
 * Salt-and-pepper (impulse) noise: each pixel, independently with probability
 * `fraction`, has all its channels set to `lo` or `hi` (equally likely).
 */
export function addSaltAndPepper(images: Float32Array, shape: ImageShape, fraction: number, rng: Rng, bounds: Bounds = [0, 1]): Float32Array {
  checkImages(images, shape, bounds);
  checkParameter(fraction, 'fraction', 0, 1);
  const [lo, hi] = bounds;
  const c = shape[2];
  const out = new Float32Array(images);
  for (let p = 0; p < out.length; p += c) {
    if (rng.next() < fraction) out.fill(rng.next() < 0.5 ? lo : hi, p, p + c);
  }
  return out;
}

/**
 * Modified Bessel function of the first kind times e^-t, e^-t I_n(t), by its
 * power series (converges for every t; used for t = sigma^2 <= a few dozen).
 */
function scaledBesselI(n: number, t: number): number {
  const half = t / 2;
  let term = Math.exp(-t);
  for (let k = 1; k <= n; k++) term *= half / k;
  let sum = term;
  for (let k = 0; term > sum * 1e-17 || k < 2; k++) {
    term *= (half * half) / ((k + 1) * (k + 1 + n));
    sum += term;
    if (k > 10000) break;
  }
  return sum;
}

/**
 * The 1-D blur kernel for `sigma` (pixels): Lindeberg's discrete Gaussian,
 * T(n) = e^(-s^2) I_n(s^2), normalized, over -r..r with r the first offset
 * whose weight drops below 1e-10 of the centre's. Its variance, sum n^2 T(n),
 * is sigma^2 (to rounding), unlike a sampled Gaussian, whose variance falls
 * short below sigma ~ 1 (0.215 instead of 0.25 at sigma 0.5). Index r is the
 * centre. sigma 0 gives [1].
 */
export function gaussianKernel(sigma: number): Float64Array {
  checkParameter(sigma, 'sigma', 0, 20);
  if (sigma === 0) return Float64Array.of(1);
  const t = sigma * sigma;
  const weights = [scaledBesselI(0, t)];
  for (let n = 1; n < 100000; n++) {
    const w = scaledBesselI(n, t);
    weights.push(w);
    if (n > sigma && w < weights[0] * 1e-10) break;
  }
  const r = weights.length - 1;
  const k = new Float64Array(2 * r + 1);
  let total = 0;
  for (let n = -r; n <= r; n++) total += weights[Math.abs(n)];
  for (let n = -r; n <= r; n++) k[n + r] = weights[Math.abs(n)] / total;
  return k;
}

/**
 * Gaussian blur with standard deviation `sigma` pixels: the separable
 * {@link gaussianKernel} along rows then columns, per channel, with clamped
 * (replicated) edges, so a constant image stays constant.
 */
export function gaussianBlur(images: Float32Array, shape: ImageShape, sigma: number, bounds: Bounds = [0, 1]): Float32Array {
  const count = checkImages(images, shape, bounds);
  const kernel = gaussianKernel(sigma);
  const [h, w, c] = shape;
  const [lo, hi] = bounds;
  const r = (kernel.length - 1) / 2;
  const size = h * w * c;
  const out = new Float32Array(images.length);
  const tmp = new Float64Array(size);
  // One line (a row or a column of one channel) with r clamped values at each end.
  const pad = new Float64Array(Math.max(h, w) + 2 * r);
  const taps = kernel.length;
  for (let n = 0; n < count; n++) {
    const base = n * size;
    for (let k = 0; k < c; k++) {
      // Along rows (x).
      for (let i = 0; i < h; i++) {
        const row = base + i * w * c + k;
        for (let q = 0; q < w + 2 * r; q++) pad[q] = images[row + Math.min(w - 1, Math.max(0, q - r)) * c];
        for (let j = 0; j < w; j++) {
          let s = 0;
          for (let t = 0; t < taps; t++) s += kernel[t] * pad[j + t];
          tmp[i * w * c + j * c + k] = s;
        }
      }
      // Along columns (y).
      for (let j = 0; j < w; j++) {
        const col = j * c + k;
        for (let q = 0; q < h + 2 * r; q++) pad[q] = tmp[col + Math.min(h - 1, Math.max(0, q - r)) * w * c];
        for (let i = 0; i < h; i++) {
          let s = 0;
          for (let t = 0; t < taps; t++) s += kernel[t] * pad[i + t];
          out[base + i * w * c + col] = clip(s, lo, hi);
        }
      }
    }
  }
  return out;
}

/**
 * Adds `delta * (hi - lo)` to every value, then clips. (For grey images this is
 * CIFAR-10-C's shift of the HSV value channel; colour images get it on every
 * channel.)
 */
export function shiftBrightness(images: Float32Array, shape: ImageShape, delta: number, bounds: Bounds = [0, 1]): Float32Array {
  checkImages(images, shape, bounds);
  checkParameter(delta, 'delta', -1, 1);
  const [lo, hi] = bounds;
  const d = delta * (hi - lo);
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = clip(images[i] + d, lo, hi);
  return out;
}

/**
 * Scales each image's values around its own mean, per channel (as CIFAR-10-C
 * does): x' = (x - m) * factor + m, then clips. With factor in [0, 1] the
 * result never leaves the bounds and keeps the means.
 */
export function scaleContrast(images: Float32Array, shape: ImageShape, factor: number, bounds: Bounds = [0, 1]): Float32Array {
  const count = checkImages(images, shape, bounds);
  checkParameter(factor, 'factor', 0);
  const [lo, hi] = bounds;
  const c = shape[2];
  const pixels = shape[0] * shape[1];
  const size = pixels * c;
  const out = new Float32Array(images.length);
  const mean = new Float64Array(c);
  for (let n = 0; n < count; n++) {
    const base = n * size;
    mean.fill(0);
    for (let p = 0; p < size; p++) mean[p % c] += images[base + p];
    for (let k = 0; k < c; k++) mean[k] /= pixels;
    for (let p = 0; p < size; p++) {
      const m = mean[p % c];
      out[base + p] = clip((images[base + p] - m) * factor + m, lo, hi);
    }
  }
  return out;
}

/**
 * Rotates each image about its centre ((h-1)/2, (w-1)/2) by `degrees`
 * (positive = counter-clockwise as displayed, rows running down), sampling the
 * source bilinearly; whatever comes from outside the image is `lo`. `degrees`
 * is one angle for all images or a function of the image index.
 */
export function rotateImages(images: Float32Array, shape: ImageShape, degrees: number | ((image: number) => number), bounds: Bounds = [0, 1]): Float32Array {
  const count = checkImages(images, shape, bounds);
  const [h, w, c] = shape;
  const [lo, hi] = bounds;
  const size = h * w * c;
  const cy = (h - 1) / 2;
  const cx = (w - 1) / 2;
  const out = new Float32Array(images.length);
  const snap = (v: number) => (Math.abs(v - Math.round(v)) < 1e-9 ? Math.round(v) : v);
  for (let n = 0; n < count; n++) {
    const angle = typeof degrees === 'number' ? degrees : degrees(n);
    checkParameter(angle, 'degrees', -360, 360);
    const rad = (angle * Math.PI) / 180;
    const cos = Math.cos(rad);
    const sin = Math.sin(rad);
    const base = n * size;
    const at = (i: number, j: number, k: number) => (i >= 0 && i < h && j >= 0 && j < w ? images[base + (i * w + j) * c + k] : lo);
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        // Inverse map: where in the source does output pixel (i, j) come from?
        const y = i - cy;
        const x = j - cx;
        const sx = snap(cx + x * cos - y * sin);
        const sy = snap(cy + x * sin + y * cos);
        const x0 = Math.floor(sx);
        const y0 = Math.floor(sy);
        const fx = sx - x0;
        const fy = sy - y0;
        for (let k = 0; k < c; k++) {
          let v = (1 - fy) * (1 - fx) * at(y0, x0, k);
          if (fx > 0) v += (1 - fy) * fx * at(y0, x0 + 1, k);
          if (fy > 0) v += fy * (1 - fx) * at(y0 + 1, x0, k);
          if (fx > 0 && fy > 0) v += fy * fx * at(y0 + 1, x0 + 1, k);
          out[base + (i * w + j) * c + k] = clip(v, lo, hi);
        }
      }
  }
  return out;
}

/**
 * Shifts each image by whole pixels, `dy` down and `dx` right (negative: up,
 * left), filling the uncovered border with `lo`. `offset` is one [dy, dx] for
 * all images or a function of the image index.
 */
export function translateImages(images: Float32Array, shape: ImageShape, offset: readonly [number, number] | ((image: number) => readonly [number, number]), bounds: Bounds = [0, 1]): Float32Array {
  const count = checkImages(images, shape, bounds);
  const [h, w, c] = shape;
  const size = h * w * c;
  const out = new Float32Array(images.length).fill(bounds[0]);
  for (let n = 0; n < count; n++) {
    const [dy, dx] = typeof offset === 'function' ? offset(n) : offset;
    if (!Number.isInteger(dy) || !Number.isInteger(dx)) throw new InputError('offset', `expected whole pixels [dy, dx], got [${dy}, ${dx}]`);
    if (Math.abs(dx) >= w || Math.abs(dy) >= h) continue;
    const base = n * size;
    for (let i = Math.max(0, dy); i < Math.min(h, h + dy); i++) {
      const from = base + ((i - dy) * w + Math.max(0, -dx)) * c;
      const to = base + (i * w + Math.max(0, dx)) * c;
      out.set(images.subarray(from, from + (w - Math.abs(dx)) * c), to);
    }
  }
  return out;
}

/**
 * A random whole-pixel offset [dy, dx] at Chebyshev distance exactly
 * `distance` (max(|dy|, |dx|) = distance), uniform over the 8 * distance
 * offsets on that square ring: every direction, never a smaller move.
 */
export function ringOffset(distance: number, rng: Rng): [number, number] {
  if (!Number.isInteger(distance) || distance < 0) throw new InputError('distance', `expected a non-negative integer, got ${distance}`);
  if (distance === 0) return [0, 0];
  const d = distance;
  const t = rng.int(8 * d);
  const side = Math.floor(t / (2 * d));
  const u = (t % (2 * d)) - d; // -d .. d-1 along the side
  // Walk the ring's four sides, each covering 2d offsets without overlap.
  if (side === 0) return [-d, u]; // top row, left to right (excludes the top-right corner)
  if (side === 1) return [u, d]; // right column, top to bottom
  if (side === 2) return [d, -u]; // bottom row, right to left
  return [-u, -d]; // left column, bottom to top
}

// ---------------------------------------------------------------- registry

function corruption(
  name: CorruptionName,
  description: string,
  parameter: string,
  severities: SeverityValues,
  random: boolean,
  run: (images: Float32Array, shape: ImageShape, value: number, rng: Rng, bounds: Bounds) => Float32Array,
): Corruption {
  return {
    name,
    description,
    parameter,
    severities,
    random,
    apply(images, shape, severity, rng, bounds = [0, 1]) {
      checkSeverity(severity);
      return run(images, shape, severities[severity - 1], rng, bounds);
    },
  };
}

/** Every corruption, by name. See the module comment for the severity table. */
export const CORRUPTIONS: Readonly<Record<CorruptionName, Corruption>> = {
  'gaussian-noise': corruption(
    'gaussian-noise',
    'additive i.i.d. Gaussian noise on every value',
    'noise std, as a fraction of the range hi - lo',
    [0.06, 0.1, 0.15, 0.22, 0.3],
    true,
    (x, shape, std, rng, bounds) => addGaussianNoise(x, shape, std, rng, bounds),
  ),
  'salt-and-pepper': corruption(
    'salt-and-pepper',
    'impulse noise: random pixels set to lo or hi',
    'fraction of pixels hit (each independently; half lo, half hi)',
    [0.02, 0.05, 0.08, 0.12, 0.17],
    true,
    (x, shape, fraction, rng, bounds) => addSaltAndPepper(x, shape, fraction, rng, bounds),
  ),
  'gaussian-blur': corruption(
    'gaussian-blur',
    'separable Gaussian blur, clamped edges',
    'sigma, in pixels',
    [0.5, 0.75, 1, 1.5, 2],
    false,
    (x, shape, sigma, _rng, bounds) => gaussianBlur(x, shape, sigma, bounds),
  ),
  brightness: corruption(
    'brightness',
    'a constant added to every value',
    'delta, as a fraction of the range hi - lo',
    [0.1, 0.2, 0.3, 0.4, 0.5],
    false,
    (x, shape, delta, _rng, bounds) => shiftBrightness(x, shape, delta, bounds),
  ),
  contrast: corruption(
    'contrast',
    'values scaled towards the image mean (per channel)',
    'factor (1 = unchanged)',
    [0.75, 0.5, 0.4, 0.3, 0.15],
    false,
    (x, shape, factor, _rng, bounds) => scaleContrast(x, shape, factor, bounds),
  ),
  rotation: corruption(
    'rotation',
    'rotation about the image centre, bilinear, filled with lo',
    'degrees (clockwise or counter-clockwise at random per image)',
    [10, 20, 30, 45, 60],
    true,
    (x, shape, deg, rng, bounds) => {
      const size = shape[0] * shape[1] * shape[2];
      const signs = Array.from({ length: Math.floor(x.length / size) }, () => (rng.next() < 0.5 ? -1 : 1));
      return rotateImages(x, shape, (n) => signs[n] * deg, bounds);
    },
  ),
  translation: corruption(
    'translation',
    'whole-pixel shift in a random direction per image, filled with lo',
    'pixels, max(|dy|, |dx|)',
    [2, 3, 4, 5, 6],
    true,
    (x, shape, d, rng, bounds) => {
      const size = shape[0] * shape[1] * shape[2];
      const offsets = Array.from({ length: Math.floor(x.length / size) }, () => ringOffset(d, rng));
      return translateImages(x, shape, (n) => offsets[n], bounds);
    },
  ),
};

/** True if `name` is a corruption. */
export function isCorruptionName(name: string): name is CorruptionName {
  return (CORRUPTION_NAMES as readonly string[]).includes(name);
}

/**
 * Parses a corruption list: `all`, or names separated by commas (spaces
 * allowed, duplicates dropped, order kept). An unknown or empty name is an
 * InputError naming `argument` and listing the valid names.
 */
export function parseCorruptions(spec: string, argument = 'corruptions'): CorruptionName[] {
  const text = String(spec).trim();
  if (text === 'all') return [...CORRUPTION_NAMES];
  const out: CorruptionName[] = [];
  for (const raw of text.split(',')) {
    const name = raw.trim();
    if (!isCorruptionName(name)) {
      throw new InputError(argument, `${name === '' ? 'empty corruption name' : `unknown corruption "${name}"`}; expected "all" or a comma-separated list of ${CORRUPTION_NAMES.join(', ')}`);
    }
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/**
 * Parses a severity list: `all`, or integers 1..5 separated by commas
 * (duplicates dropped, order kept).
 */
export function parseSeverities(spec: string, argument = 'severities'): number[] {
  const text = String(spec).trim();
  if (text === 'all') return [...SEVERITIES];
  const out: number[] = [];
  for (const raw of text.split(',')) {
    const part = raw.trim();
    const s = /^[0-9]+$/.test(part) ? Number(part) : NaN;
    if (!Number.isInteger(s) || s < 1 || s > 5) throw new InputError(argument, `"${part}" is not a severity; expected "all" or a comma-separated list of integers from 1 to 5`);
    if (!out.includes(s)) out.push(s);
  }
  return out;
}
