import type { ImageSet } from './types.js';
import { imageSize } from './types.js';

/** Fraction of each class that goes to the train split. */
export const TRAIN_FRACTION = 0.8;

/**
 * The split every advlab tool shares, so other tools can reproduce it: for each
 * class c, in file order, the first floor(0.8 * n_c) valid images are train and
 * the rest test; classes are concatenated in order 0..K-1. No shuffling here;
 * batches are shuffled later with a seed.
 */
export function splitByClass(all: ImageSet, numClasses: number): { train: ImageSet; test: ImageSet } {
  const size = imageSize(all.imageShape);
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < all.count; i++) byClass[all.labels[i]].push(i);
  const trainIdx: number[] = [];
  const testIdx: number[] = [];
  for (const idx of byClass) {
    const nTrain = Math.floor(TRAIN_FRACTION * idx.length);
    trainIdx.push(...idx.slice(0, nTrain));
    testIdx.push(...idx.slice(nTrain));
  }
  return { train: take(all, trainIdx, size), test: take(all, testIdx, size) };
}

/** The images at `indices`, in that order. */
export function take(set: Omit<ImageSet, 'imageShape'> & { imageShape: readonly [number, number, number] }, indices: ArrayLike<number>, size = imageSize(set.imageShape)): ImageSet {
  const n = indices.length;
  const images = new Float32Array(n * size);
  const labels = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const i = indices[k];
    images.set(set.images.subarray(i * size, (i + 1) * size), k * size);
    labels[k] = set.labels[i];
  }
  return { images, labels, count: n, imageShape: [...set.imageShape] as [number, number, number] };
}
