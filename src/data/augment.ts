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
 */
export function randomShift(maxShift: number): Augmentation {
  if (!Number.isInteger(maxShift) || maxShift < 1) throw new InputError('augment', `shift needs a positive integer number of pixels, got ${maxShift}`);
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

/** Parses `none`, `shift` or `shift:N` (comma-separated for several). */
export function parseAugmentations(spec: string, argument = 'augment'): Augmentation[] {
  if (spec === 'none' || spec === '') return [];
  return spec.split(',').map((part) => {
    const [name, arg] = part.split(':');
    if (name === 'shift') return randomShift(arg === undefined ? 1 : Number(arg));
    throw new InputError(argument, `unknown augmentation "${part}"; expected none, shift or shift:N`);
  });
}
