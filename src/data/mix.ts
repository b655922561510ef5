/**
 * Generated images mixed into training batches (Gowal et al., NeurIPS 2021,
 * "Improving Robustness using Generated Data"; Wang et al., ICML 2023, "Better
 * Diffusion Models Further Improve Adversarial Training"): every batch of
 * size b holds exactly round(f·b) generated images (round half up) and the
 * rest real ones, spread evenly over the batch.
 *
 * An epoch keeps the steps and batch sizes of a pass over the real data
 * without generated data (ceil(N / B) batches), so runs with and without
 * generated data at the same epochs take the same number of steps, on the
 * same number of images, under the same learning-rate schedule. Its real
 * part is the first sum(b - round(f·b)) ≈ (1 - f)·N images of the epoch's
 * shuffle (a fresh share each epoch, none twice in an epoch); its generated
 * part continues one stream of passes over the pool, each pass a seeded
 * permutation, so no generated image repeats before the whole pool was used.
 *
 * The real shuffle takes the trainer's Rng exactly as {@link batchOrder} does
 * (one permutation per epoch), and the generated stream is a pure function of
 * (seed, epoch): a checkpointed Rng state resumes both, and fraction 0 gives
 * the batches of plain training.
 */
import { tf } from '../engine/tf.js';
import { InputError } from '../errors.js';
import { Rng, deriveSeed } from '../util/rng.js';
import { sha256Hex, viewBytes } from '../util/hash.js';
import type { Augmentation } from './augment.js';
import type { Batch } from './batches.js';
import { imageSize, type ImageSet } from './types.js';

/** Generated images and how much of every batch they fill (the trainer's `generated` option). */
export interface GeneratedMix {
  /** The generated images with their labels (the class asked for, or a classifier's pseudo-label); same image shape as the real set. */
  pool: ImageSet;
  /** Share of every batch that is generated, in [0, 1). */
  fraction: number;
  /** Identifies the pool in checkpoints, so a resume with other generated data is refused; computed from the pool when absent. */
  fingerprint?: string;
}

/** One batch of a mixed epoch: which real and which pool images, in the order they fill the batch's real and generated slots. */
export interface MixedBatchPlan {
  real: Int32Array;
  generated: Int32Array;
}

/** Generated images in a batch of `size` at `fraction`: round(fraction · size), half up. */
export function generatedInBatch(size: number, fraction: number): number {
  return Math.round(fraction * size);
}

/** @throws InputError(argument) unless `fraction` is a number in [0, 1) (1 would leave no real image to anchor training). */
export function checkGeneratedFraction(fraction: number, argument = 'generatedFraction'): void {
  if (typeof fraction !== 'number' || !Number.isFinite(fraction) || fraction < 0 || fraction >= 1) {
    throw new InputError(argument, `expected a share of each batch in [0, 1), got ${fraction}`);
  }
}

/**
 * Which positions of a batch of `size` hold its `generated` images: spread
 * evenly (position k is generated when floor((k+1)·g/size) > floor(k·g/size)),
 * so each data-parallel shard, a contiguous slice, gets its share of both.
 */
export function generatedSlots(size: number, generated: number): Uint8Array {
  const slots = new Uint8Array(size);
  for (let k = 0; k < size; k++) slots[k] = Math.floor(((k + 1) * generated) / size) > Math.floor((k * generated) / size) ? 1 : 0;
  return slots;
}

/**
 * Positions [start, start + count) of an endless stream of passes over a pool
 * of `poolCount` images, pass k a permutation seeded by (seed, k): pure, so a
 * resumed run needs no state for it.
 */
export class GeneratedStream {
  private cached = new Map<number, Int32Array>();

  constructor(
    readonly poolCount: number,
    readonly seed: number,
  ) {
    if (!Number.isSafeInteger(poolCount) || poolCount < 1) throw new InputError('generated', `the pool of generated images is empty`);
  }

  take(start: number, count: number): Int32Array {
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const p = start + i;
      out[i] = this.pass(Math.floor(p / this.poolCount))[p % this.poolCount];
    }
    return out;
  }

  private pass(k: number): Int32Array {
    let perm = this.cached.get(k);
    if (!perm) {
      perm = new Rng(deriveSeed(this.seed, `generated-pass:${k}`)).permutation(this.poolCount);
      // Epochs move forward: at most the pass being finished and the next are needed.
      if (this.cached.size >= 2) this.cached.delete(Math.min(...this.cached.keys()));
      this.cached.set(k, perm);
    }
    return perm;
  }
}

/**
 * The batches of epoch `epoch` (1-based) over `realCount` real images and
 * `stream`'s pool: batch sizes as {@link batchOrder}'s, each with
 * round(fraction·b) generated images. Draws one permutation of the real
 * indices from `rng`, as batchOrder does.
 */
export function mixedBatchOrder(realCount: number, batchSize: number, fraction: number, stream: GeneratedStream, epoch: number, rng: Rng): MixedBatchPlan[] {
  const order = rng.permutation(realCount);
  const sizes: number[] = [];
  for (let i = 0; i < realCount; i += batchSize) sizes.push(Math.min(batchSize, realCount - i));
  const perEpoch = sizes.reduce((a, b) => a + generatedInBatch(b, fraction), 0);
  let real = 0;
  let generated = (epoch - 1) * perEpoch;
  return sizes.map((b) => {
    const g = generatedInBatch(b, fraction);
    const plan = { real: order.subarray(real, real + b - g), generated: stream.take(generated, g) };
    real += b - g;
    generated += g;
    return plan;
  });
}

/**
 * Gathers a mixed batch into tensors: real and pool images in their slots
 * ({@link generatedSlots}), then the augmentations on the whole batch (as
 * Gowal et al. augment generated images like real ones). `indices` are into
 * the real set followed by the pool (a pool image j is `real.count + j`).
 */
export function makeMixedBatch(real: ImageSet, pool: ImageSet, plan: MixedBatchPlan, augment: readonly Augmentation[] = [], rng?: Rng): Batch {
  const size = imageSize(real.imageShape);
  const n = plan.real.length + plan.generated.length;
  const slots = generatedSlots(n, plan.generated.length);
  const x = new Float32Array(n * size);
  const y = new Int32Array(n);
  const indices = new Int32Array(n);
  let r = 0;
  let g = 0;
  for (let k = 0; k < n; k++) {
    const [set, i, offset] = slots[k] ? [pool, plan.generated[g++], real.count] : [real, plan.real[r++], 0];
    x.set(set.images.subarray(i * size, (i + 1) * size), k * size);
    y[k] = set.labels[i];
    indices[k] = offset + i;
  }
  if (augment.length && !rng) throw new Error('makeMixedBatch: augmentations need an rng');
  for (const a of augment) a.apply(x, n, real.imageShape, rng!);
  return { x: tf.tensor4d(x, [n, ...real.imageShape]), y: tf.tensor1d(y, 'int32'), indices };
}

/**
 * Checks a mix against the real training set.
 * @throws InputError naming `generatedFraction` (outside [0, 1)) or `generated` (an empty pool, another image shape, labels outside the classes).
 */
export function checkGeneratedMix(mix: GeneratedMix, real: ImageSet, numClasses: number): void {
  checkGeneratedFraction(mix.fraction);
  const { pool } = mix;
  if (!Number.isSafeInteger(pool.count) || pool.count < 1) throw new InputError('generated', 'the pool of generated images is empty');
  if (pool.imageShape.join('x') !== real.imageShape.join('x')) throw new InputError('generated', `generated images of shape [${pool.imageShape.join(', ')}] do not match the training images' [${real.imageShape.join(', ')}]`);
  if (pool.images.length !== pool.count * imageSize(pool.imageShape) || pool.labels.length !== pool.count) throw new InputError('generated', `the pool holds ${pool.images.length} values and ${pool.labels.length} labels for ${pool.count} images`);
  for (const l of pool.labels) if (!(l >= 0 && l < numClasses)) throw new InputError('generated', `a generated image is labelled ${l}, outside the model's ${numClasses} classes`);
}

/** SHA-256 of a pool's images, labels and shape: what a checkpoint remembers of the generated data it was trained with. */
export function poolFingerprint(pool: ImageSet): string {
  const images = sha256Hex(viewBytes(pool.images));
  const labels = sha256Hex(viewBytes(pool.labels));
  return sha256Hex(`${pool.count}:${pool.imageShape.join('x')}:${images}:${labels}`);
}
