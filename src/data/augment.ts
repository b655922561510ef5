import type { Rng } from '../util/rng.js';
import { InputError } from '../errors.js';

/**
 * A training-time transformation of a batch, applied in place to the gathered
 * NHWC float32 values before they become a tensor. Draws only from the given
 * Rng, so a checkpointed Rng state reproduces it.
 */
export interface Augmentation {
  /** As written on the command line, e.g. `shift:1`. */
  readonly name: string;
  apply(x: Float32Array, count: number, shape: readonly [number, number, number], rng: Rng): void;
}

/**
 * Random translation by up to `maxShift` pixels in each direction, zero-filled:
 * the standard MNIST augmentation (the equivalent of pad + random crop).
 * Draws two integers per image (dy, then dx).
 *
 * @throws InputError(argument) unless `maxShift` is a positive integer.
 */
export function randomShift(maxShift: number, argument = 'augment'): Augmentation {
  if (!Number.isInteger(maxShift) || maxShift < 1) throw new InputError(argument, `shift needs a positive integer number of pixels, got ${maxShift}`);
  return {
    name: `shift:${maxShift}`,
    apply(x, count, [h, w, c], rng) {
      const size = h * w * c;
      const src = new Float32Array(size);
      for (let n = 0; n < count; n++) {
        const dy = rng.int(2 * maxShift + 1) - maxShift;
        const dx = rng.int(2 * maxShift + 1) - maxShift;
        if (dy === 0 && dx === 0) continue;
        const img = x.subarray(n * size, (n + 1) * size);
        src.set(img);
        img.fill(0);
        for (let i = Math.max(0, dy); i < Math.min(h, h + dy); i++) {
          const from = ((i - dy) * w + Math.max(0, -dx)) * c;
          const to = (i * w + Math.max(0, dx)) * c;
          img.set(src.subarray(from, from + (w - Math.abs(dx)) * c), to);
        }
      }
    },
  };
}

/**
 * Adds independent Gaussian noise N(0, sigma^2) to every value, then clips to
 * [0, 1] so the batch stays in the input domain. Gaussian data augmentation:
 * the training distribution of randomized smoothing (Cohen, Rosenfeld & Kolter,
 * ICML 2019) and a cheap robustness baseline (Zantedeschi, Nicolae & Rawat,
 * AISec 2017). Draws one normal sample per value, in memory order.
 *
 * @throws InputError(argument) unless 0 < sigma <= 1 (sigma is on the [0, 1]
 *   input scale, so a larger one would drown the image).
 */
export function gaussianNoise(sigma: number, argument = 'augment'): Augmentation {
  if (!Number.isFinite(sigma) || sigma <= 0 || sigma > 1) {
    throw new InputError(argument, `noise needs a standard deviation in (0, 1] (input scale), got ${sigma}`);
  }
  return {
    name: `noise:${sigma}`,
    apply(x, count, [h, w, c], rng) {
      const end = count * h * w * c;
      for (let i = 0; i < end; i++) x[i] = clip01(x[i] + sigma * rng.normal());
    },
  };
}

function clip01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/**
 * Cutout (DeVries & Taylor 2017, "Improved regularization of convolutional
 * neural networks with cutout"): sets one `size` x `size` square of every
 * image to 0 in all channels. As in the paper the square's centre is uniform
 * over the whole image, so the square may lie partly outside it and is clipped
 * at the border; that way border pixels are masked as often as the paper's.
 * The centre of an even-sized square is the pixel right and below the middle.
 * Draws two integers per image (centre row, then centre column).
 *
 * @throws InputError(argument) unless `size` is a positive integer (a square
 *   larger than the image is allowed: it can blank the whole image).
 */
export function cutout(size: number, argument = 'augment'): Augmentation {
  if (!Number.isInteger(size) || size < 1) throw new InputError(argument, `cutout needs a positive integer square side in pixels, got ${size}`);
  const half = Math.floor(size / 2);
  return {
    name: `cutout:${size}`,
    apply(x, count, [h, w, c], rng) {
      const imageSize = h * w * c;
      for (let n = 0; n < count; n++) {
        const top = rng.int(h) - half;
        const left = rng.int(w) - half;
        // Never empty: the centre is inside the image.
        const j0 = Math.max(0, left);
        const j1 = Math.min(w, left + size);
        for (let i = Math.max(0, top); i < Math.min(h, top + size); i++) {
          const row = n * imageSize + i * w * c;
          x.fill(0, row + j0 * c, row + j1 * c);
        }
      }
    },
  };
}

/** Builds one augmentation from its argument text (`undefined` when the spec has no `:`). */
type AugmentationParser = (arg: string | undefined, part: string, argument: string) => Augmentation;

const PARSERS: Record<string, AugmentationParser> = {
  // `shift` alone has always meant one pixel.
  shift: (arg, part, argument) => randomShift(arg === undefined ? 1 : numberArg(arg, part, argument), argument),
  noise: (arg, part, argument) => gaussianNoise(numberArg(arg, part, argument), argument),
  cutout: (arg, part, argument) => cutout(numberArg(arg, part, argument), argument),
};

const EXPECTED = 'expected none, or a comma-separated list of shift, shift:N, noise:SIGMA, cutout:N';

/** The number after `name:`; the constructors check its range. */
function numberArg(arg: string | undefined, part: string, argument: string): number {
  // Number('') and Number(' ') are 0, which would turn a forgotten value into a silent default.
  const value = arg === undefined || arg.trim() === '' ? NaN : Number(arg);
  if (Number.isNaN(value)) throw new InputError(argument, `"${part}" needs a number after ":"; ${EXPECTED}`);
  return value;
}

/**
 * Parses an `--augment` spec: `none`, or a comma-separated list of
 * `shift` / `shift:N` ({@link randomShift}), `noise:SIGMA`
 * ({@link gaussianNoise}) and `cutout:N` ({@link cutout}), e.g.
 * `shift:2,noise:0.1,cutout:8`. The trainer applies them to each batch in the
 * order written, all drawing from the one Rng it passes.
 *
 * @throws InputError(argument) for an unknown name, a missing or malformed
 *   value, or a value out of range.
 */
export function parseAugmentations(spec: string, argument = 'augment'): Augmentation[] {
  if (spec.trim() === 'none' || spec.trim() === '') return [];
  return spec.split(',').map((raw) => {
    const part = raw.trim();
    const [name, arg, ...rest] = part.split(':');
    const parser = Object.hasOwn(PARSERS, name) ? PARSERS[name] : undefined;
    if (!parser || rest.length > 0) throw new InputError(argument, `unknown augmentation "${part}"; ${EXPECTED}`);
    return parser(arg, part, argument);
  });
}
