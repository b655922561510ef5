import type { ImageSet } from './types.js';
import { take } from './split.js';
import { InputError } from '../errors.js';

/**
 * Indices of a class-balanced prefix of `set`: position k*K + c holds the k-th
 * image of class c (K classes), so every prefix is balanced and other tools can
 * pick the same images. When a class runs out, later rounds skip it.
 */
export function balancedOrder(labels: Int32Array, numClasses: number): Int32Array {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  labels.forEach((l, i) => byClass[l].push(i));
  const out = new Int32Array(labels.length);
  let n = 0;
  const rounds = Math.max(0, ...byClass.map((c) => c.length));
  for (let k = 0; k < rounds; k++) {
    for (let c = 0; c < numClasses; c++) if (k < byClass[c].length) out[n++] = byClass[c][k];
  }
  return out;
}

/**
 * The first `n` images of the balanced order (the meaning of `--n N` in every
 * command). `n` undefined means the whole set, in balanced order.
 */
export function balancedSubset(set: ImageSet, numClasses: number, n?: number, argument = 'n', split = 'test'): ImageSet {
  if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw new InputError(argument, `expected a positive integer, got ${n}`);
  if (n !== undefined && n > set.count) throw new InputError(argument, `asked for ${n} images but the ${split} split has only ${set.count}`);
  const order = balancedOrder(set.labels, numClasses);
  return take(set, n === undefined ? order : order.subarray(0, n));
}
