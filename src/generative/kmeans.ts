/**
 * Seeded k-means on plain arrays: k-means++ seeding (Arthur & Vassilvitskii
 * 2007, "k-means++: the advantages of careful seeding", SODA), then Lloyd's
 * iterations until no point changes cluster. Used to give the self-conditioned
 * GAN its pseudo-classes (gan/architectures.ts, `scgan`).
 */
import { tf } from '../engine/tf.js';
import { InputError } from '../errors.js';
import { Rng } from '../util/rng.js';

/** Options of {@link kMeans}. */
export interface KMeansOptions {
  /** Clusters, in [1, number of points]. */
  k: number;
  seed: number;
  /** Most Lloyd iterations (default 50). */
  maxIterations?: number;
}

/** What {@link kMeans} found. */
export interface KMeansResult {
  /** The cluster of each point. */
  assignments: Int32Array;
  /** k centroids, row-major [k, d]. */
  centroids: Float32Array;
  /** Points per cluster. */
  sizes: number[];
  /** Sum of squared distances of the points to their centroids. */
  inertia: number;
  /** Lloyd iterations run. */
  iterations: number;
  /** True when the last iteration moved no point (false: stopped at maxIterations). */
  converged: boolean;
}

/**
 * Clusters `n` points of dimension `d` (row-major in `points`). An empty
 * cluster is re-seeded with the point farthest from its centroid, so every
 * cluster ends non-empty.
 * @throws InputError naming `points`, `d` or `k`.
 */
export function kMeans(points: Float32Array, d: number, options: KMeansOptions): KMeansResult {
  if (!Number.isSafeInteger(d) || d < 1) throw new InputError('d', `expected an integer >= 1, got ${d}`);
  const n = points.length / d;
  if (!Number.isInteger(n) || n < 1) throw new InputError('points', `expected a non-empty multiple of d = ${d} values, got ${points.length}`);
  const { k } = options;
  if (!Number.isSafeInteger(k) || k < 1 || k > n) throw new InputError('k', `expected an integer in [1, ${n}] (the number of points), got ${k}`);
  for (let i = 0; i < points.length; i++) if (!Number.isFinite(points[i])) throw new InputError('points', `value ${i} is ${points[i]}; expected finite numbers`);
  const maxIterations = options.maxIterations ?? 50;
  const rng = new Rng(options.seed);
  const centroids = seedPlusPlus(points, n, d, k, rng);
  const assignments = new Int32Array(n).fill(-1);
  const best = new Float64Array(n);
  let iterations = 0;
  let converged = false;
  const x = tf.tensor2d(points, [n, d]);
  try {
    while (iterations < maxIterations) {
      iterations++;
      const moved = assign(x, centroids, k, d, assignments, best);
      const sizes = updateCentroids(points, n, d, k, assignments, centroids);
      const reseeded = reseedEmpty(points, d, sizes, assignments, best, centroids);
      if (moved === 0 && reseeded === 0) {
        converged = true;
        break;
      }
    }
  } finally {
    x.dispose();
  }
  const sizes = new Array<number>(k).fill(0);
  let inertia = 0;
  for (let i = 0; i < n; i++) {
    sizes[assignments[i]]++;
    inertia += squaredDistance(points, i * d, centroids, assignments[i] * d, d);
  }
  return { assignments, centroids, sizes, inertia, iterations, converged };
}

/**
 * Moves each point to its nearest centroid: argmin_c |c|^2 - 2 x.c (|x|^2 is
 * the same for every c), as one matrix product; stores each point's squared
 * distance in `best`. Returns how many points changed cluster.
 */
function assign(x: tf.Tensor2D, centroids: Float32Array, k: number, d: number, assignments: Int32Array, best: Float64Array): number {
  const [arg, dist] = tf.tidy(() => {
    const c = tf.tensor2d(centroids, [k, d]);
    const score = tf.sub(tf.sum(tf.square(c), 1), tf.mul(2, tf.matMul(x, c, false, true)));
    const xx = tf.sum(tf.square(x), 1);
    return [tf.argMin(score, 1), tf.relu(tf.add(tf.min(score, 1), xx))];
  });
  const a = arg.dataSync();
  const m = dist.dataSync();
  tf.dispose([arg, dist]);
  let moved = 0;
  for (let i = 0; i < a.length; i++) {
    if (assignments[i] !== a[i]) moved++;
    assignments[i] = a[i];
    best[i] = m[i];
  }
  return moved;
}

/** k-means++: the first centroid uniformly, each next one with probability proportional to the squared distance to the nearest chosen one. */
function seedPlusPlus(points: Float32Array, n: number, d: number, k: number, rng: Rng): Float32Array {
  const centroids = new Float32Array(k * d);
  const nearest = new Float64Array(n).fill(Infinity);
  let chosen = rng.int(n);
  for (let c = 0; c < k; c++) {
    centroids.set(points.subarray(chosen * d, (chosen + 1) * d), c * d);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const dist = squaredDistance(points, i * d, centroids, c * d, d);
      if (dist < nearest[i]) nearest[i] = dist;
      total += nearest[i];
    }
    if (c === k - 1) break;
    // All points on the chosen centroids (duplicates): any unchosen index will do.
    if (total === 0) {
      chosen = (chosen + 1) % n;
      continue;
    }
    let r = rng.next() * total;
    chosen = n - 1;
    for (let i = 0; i < n; i++) {
      r -= nearest[i];
      if (r < 0) {
        chosen = i;
        break;
      }
    }
  }
  return centroids;
}

function updateCentroids(points: Float32Array, n: number, d: number, k: number, assignments: Int32Array, centroids: Float32Array): Int32Array {
  const sums = new Float64Array(k * d);
  const sizes = new Int32Array(k);
  for (let i = 0; i < n; i++) {
    const c = assignments[i];
    sizes[c]++;
    const s = c * d;
    const p = i * d;
    for (let j = 0; j < d; j++) sums[s + j] += points[p + j];
  }
  for (let c = 0; c < k; c++) {
    if (sizes[c] === 0) continue;
    for (let j = 0; j < d; j++) centroids[c * d + j] = sums[c * d + j] / sizes[c];
  }
  return sizes;
}

/** Moves each empty cluster's centroid onto the point currently farthest from its own centroid (taken from the largest error first). */
function reseedEmpty(points: Float32Array, d: number, sizes: Int32Array, assignments: Int32Array, best: Float64Array, centroids: Float32Array): number {
  let reseeded = 0;
  for (let c = 0; c < sizes.length; c++) {
    if (sizes[c] > 0) continue;
    let far = 0;
    for (let i = 1; i < best.length; i++) if (best[i] > best[far]) far = i;
    centroids.set(points.subarray(far * d, (far + 1) * d), c * d);
    sizes[assignments[far]]--;
    assignments[far] = c;
    sizes[c] = 1;
    best[far] = 0;
    reseeded++;
  }
  return reseeded;
}

function squaredDistance(a: Float32Array, ao: number, b: Float32Array, bo: number, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) {
    const t = a[ao + j] - b[bo + j];
    s += t * t;
  }
  return s;
}
