import { tf } from '../engine/tf.js';
import type { ImageSet } from './types.js';
import { imageSize } from './types.js';
import type { Rng } from '../util/rng.js';
import type { Augmentation } from './augment.js';

/** One batch as tensors; the caller disposes them. */
export interface Batch {
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  /** Indices into the source set. */
  indices: Int32Array;
}

/**
 * Splits 0..count-1 into batches, shuffled with `rng` when given (one draw of a
 * permutation per call, so a checkpointed rng state reproduces the next epoch).
 */
export function batchOrder(count: number, batchSize: number, rng?: Rng): Int32Array[] {
  const order = rng ? rng.permutation(count) : Int32Array.from({ length: count }, (_, i) => i);
  const out: Int32Array[] = [];
  for (let i = 0; i < count; i += batchSize) out.push(order.subarray(i, Math.min(count, i + batchSize)));
  return out;
}

/**
 * Gathers the images and labels at `indices` into tensors, after applying the
 * augmentations (if any) to the gathered copy with `rng`.
 */
export function makeBatch(set: ImageSet, indices: Int32Array, augment: readonly Augmentation[] = [], rng?: Rng): Batch {
  const size = imageSize(set.imageShape);
  const x = new Float32Array(indices.length * size);
  const y = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    x.set(set.images.subarray(i * size, (i + 1) * size), k * size);
    y[k] = set.labels[i];
  }
  if (augment.length && !rng) throw new Error('makeBatch: augmentations need an rng');
  for (const a of augment) a.apply(x, indices.length, set.imageShape, rng!);
  return {
    x: tf.tensor4d(x, [indices.length, ...set.imageShape]),
    y: tf.tensor1d(y, 'int32'),
    indices,
  };
}

/** Iterates over `set` in batches of tensors (seeded shuffle when `rng` is given). */
export function* batches(set: ImageSet, batchSize: number, rng?: Rng): Generator<Batch> {
  for (const idx of batchOrder(set.count, batchSize, rng)) yield makeBatch(set, idx);
}
