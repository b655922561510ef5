/**
 * Randomized smoothing (Cohen, Rosenfeld & Kolter, "Certified adversarial
 * robustness via randomized smoothing", ICML 2019; their reference code is
 * locuslab/smoothing, core.py). The smoothed classifier
 *
 *   g(x) = argmax_c P(f(x + e) = c),  e ~ N(0, sigma^2 I),
 *
 * of a base classifier f is robust around x in L2: if the top class has
 * probability at least pA >= 1/2, no perturbation of L2 norm below
 * sigma * Φ⁻¹(pA) changes g(x) (the paper's Theorem 1 with pB = 1 - pA).
 *
 * CERTIFY (the paper's Algorithm, "certify"): n0 noisy copies choose the top
 * class cA; n fresh copies count it; the one-sided Clopper-Pearson lower
 * bound of its probability at level alpha is pA; below 1/2 the smoothed
 * classifier abstains, else the radius is sigma * Φ⁻¹(pA). With probability
 * at least 1 - alpha over the noise, a certificate it returns is true.
 * PREDICT: n copies; the top class, unless a two-sided binomial test cannot
 * tell the top two counts apart at level alpha (then it abstains); it
 * returns a wrong class with probability at most alpha.
 *
 * By default each noisy copy is clipped to the classifier's bounds before f
 * sees it: the clip is part of the base classifier (f'(z) = f(clip(z)) is a
 * classifier like any other, so the theorem and the certificates are
 * unchanged), and a model trained with `--augment noise:σ` or the consistency
 * defense, which clip the same way, is certified on the distribution it was
 * trained on. `clipNoise: false` feeds f the raw x + e, as the paper's code.
 * Noise comes from advlab's seeded Rng, so counts do not depend on the
 * backend or on how the copies are batched.
 */
import { tf } from '../engine/tf.js';
import type { Classifier } from '../models/classifier.js';
import { InputError } from '../errors.js';
import { Rng } from '../util/rng.js';
import { binomialCdf, clopperPearsonLower } from '../util/binomial.js';
import { normalQuantile } from '../util/normal.js';
import { deriveSeed } from '../util/rng.js';
import type { TaskPool } from '../engine/task-pool.js';
import { shareClassifier } from '../models/pool-model.js';

/** The class a smoothed classifier returns when it abstains. */
export const ABSTAIN = -1;

/** Defaults of the paper (and of locuslab/smoothing's certify.py). */
export const SMOOTHING_DEFAULTS = { n0: 100, n: 100_000, alpha: 0.001, batchSize: 400 } as const;

/** Options shared by {@link certify} and {@link predictSmoothed}. */
export interface SmoothingOptions {
  /** Standard deviation of the Gaussian noise, in the input's scale. */
  sigma: number;
  /** Seed of the noise. */
  seed: number;
  /** Noisy copies per forward pass (default 400). */
  batchSize?: number;
  /** Clip each noisy copy to the classifier's bounds, as part of the base classifier (default true; see the module comment). */
  clipNoise?: boolean;
}

/** What {@link certify} gives for one image. */
export interface Certificate {
  /** The smoothed classifier's class, or {@link ABSTAIN}. */
  prediction: number;
  /** Certified L2 radius (0 when abstaining). */
  radius: number;
  /** The lower confidence bound of the top class's probability. */
  pALower: number;
  /** The class the n0 selection copies chose (also when abstaining). */
  selected: number;
  /** How many of the n estimation copies the base classifier gave `selected`. */
  count: number;
  /** Estimation copies. */
  n: number;
}

/**
 * How often the base classifier gives each class on `num` noisy copies of
 * `image` (one image, [h, w, c] flattened, in the input's scale), each
 * clipped to the classifier's bounds unless `clip` is false.
 */
export async function noisyCounts(classifier: Classifier, image: Float32Array, num: number, sigma: number, rng: Rng, batchSize: number = SMOOTHING_DEFAULTS.batchSize, clip = true): Promise<Int32Array> {
  const [lo, hi] = clip ? classifier.bounds : [-Infinity, Infinity];
  const [h, w, c] = classifier.inputShape;
  const size = h * w * c;
  const counts = new Int32Array(classifier.numClasses);
  for (let done = 0; done < num; done += batchSize) {
    const b = Math.min(batchSize, num - done);
    const noisy = new Float32Array(b * size);
    rng.fillNormal(noisy, sigma);
    for (let i = 0; i < b; i++) {
      for (let j = 0, o = i * size; j < size; j++, o++) {
        const v = noisy[o] + image[j];
        noisy[o] = v < lo ? lo : v > hi ? hi : v;
      }
    }
    const classes = tf.tidy(() => tf.argMax(classifier.logits(tf.tensor4d(noisy, [b, h, w, c])), 1));
    const values = (await classes.data()) as Int32Array;
    classes.dispose();
    for (const k of values) counts[k]++;
  }
  return counts;
}

/**
 * The certified radius of a top class seen `count` times in `n` copies:
 * sigma * Φ⁻¹(pA) with pA the one-sided Clopper-Pearson lower bound at level
 * alpha, or null (abstain) when pA < 1/2.
 */
export function certifiedRadius(count: number, n: number, alpha: number, sigma: number): { pALower: number; radius: number | null } {
  const pALower = clopperPearsonLower(count, n, alpha);
  return { pALower, radius: pALower < 0.5 ? null : sigma * normalQuantile(pALower) };
}

/** CERTIFY for one image (see the module comment). */
export async function certify(classifier: Classifier, image: Float32Array, options: SmoothingOptions & { n0?: number; n?: number; alpha?: number }): Promise<Certificate> {
  const { sigma, n0, n, alpha, batchSize, clipNoise } = check(classifier, image, options);
  const rng = new Rng(options.seed);
  const selection = await noisyCounts(classifier, image, n0, sigma, rng, batchSize, clipNoise);
  const selected = argMax(selection);
  const estimation = await noisyCounts(classifier, image, n, sigma, rng, batchSize, clipNoise);
  const count = estimation[selected];
  const { pALower, radius } = certifiedRadius(count, n, alpha, sigma);
  return { prediction: radius === null ? ABSTAIN : selected, radius: radius ?? 0, pALower, selected, count, n };
}

/** What {@link predictSmoothed} gives for one image. */
export interface SmoothedPrediction {
  /** The smoothed classifier's class, or {@link ABSTAIN}. */
  prediction: number;
  /** The two most frequent classes and their counts. */
  top: [number, number];
  counts: [number, number];
  /** The two-sided binomial test's p-value of the top two counts. */
  pValue: number;
}

/** PREDICT for one image (see the module comment). */
export async function predictSmoothed(classifier: Classifier, image: Float32Array, options: SmoothingOptions & { n?: number; alpha?: number }): Promise<SmoothedPrediction> {
  const { sigma, n, alpha, batchSize, clipNoise } = check(classifier, image, { ...options, n0: 1 });
  const counts = await noisyCounts(classifier, image, n, sigma, new Rng(options.seed), batchSize, clipNoise);
  const first = argMax(counts);
  let second = first === 0 ? 1 : 0;
  for (let k = 0; k < counts.length; k++) if (k !== first && counts[k] > counts[second]) second = k;
  const pValue = binomialTestTwoSided(counts[first], counts[first] + counts[second]);
  return { prediction: pValue > alpha ? ABSTAIN : first, top: [first, second], counts: [counts[first], counts[second]], pValue };
}

/**
 * The two-sided binomial test of k successes in n trials against p = 1/2:
 * the probability of a count at least as far from n/2 as k (1 when n = 0).
 */
export function binomialTestTwoSided(k: number, n: number): number {
  if (n === 0) return 1;
  const tail = Math.max(k, n - k);
  // P(X >= tail) = P(X <= n - tail) by symmetry; doubled, capped at 1.
  return Math.min(1, 2 * binomialCdf(n - tail, n, 0.5));
}

/** Options of {@link certifyImages}. */
export interface CertifyImagesOptions extends SmoothingOptions {
  n0?: number;
  n?: number;
  alpha?: number;
  /** Workers to spread the images over (a pool of one, or none: this thread). */
  pool?: TaskPool;
  /** Images per task (default 1: the finest spread, and a unit of progress). */
  imagesPerTask?: number;
  /** Called with the images finished so far. */
  onProgress?: (done: number) => void;
  /** Index of the first image in the whole set (its seed's index), for a set certified in parts. */
  firstIndex?: number;
}

/**
 * CERTIFY for each of `count` images (NHWC, flattened), image i with the seed
 * deriveSeed(seed, `smoothing:<i>`), spread over `pool` when given: results
 * do not depend on the pool.
 */
export function certifyImages(classifier: Classifier, images: Float32Array, count: number, options: CertifyImagesOptions): Promise<Certificate[]> {
  return smoothImages<Certificate>('certify', classifier, images, count, options);
}

/** PREDICT for each of `count` images, with the seeds and the pool of {@link certifyImages}. */
export function predictImages(classifier: Classifier, images: Float32Array, count: number, options: CertifyImagesOptions): Promise<SmoothedPrediction[]> {
  return smoothImages<SmoothedPrediction>('predict', classifier, images, count, options);
}

async function smoothImages<R>(mode: 'certify' | 'predict', classifier: Classifier, images: Float32Array, count: number, options: CertifyImagesOptions): Promise<R[]> {
  const size = classifier.inputShape.reduce((a, b) => a * b, 1);
  if (images.length !== count * size) throw new InputError('images', `expected ${count} images of ${size} floats, got ${images.length} floats`);
  const settings = check(classifier, images.subarray(0, size), options);
  const first = options.firstIndex ?? 0;
  const seeds = Array.from({ length: count }, (_, i) => deriveSeed(options.seed, `smoothing:${first + i}`));
  const per = Math.max(1, options.imagesPerTask ?? 1);
  if (!options.pool || options.pool.size <= 1) {
    const out: R[] = [];
    for (let i = 0; i < count; i++) {
      const image = images.slice(i * size, (i + 1) * size);
      const one = { ...settings, seed: seeds[i] };
      out.push((mode === 'certify' ? await certify(classifier, image, one) : await predictSmoothed(classifier, image, one)) as R);
      options.onProgress?.(i + 1);
    }
    return out;
  }
  const { SMOOTHING_TASK_URL } = await import('./smoothing-task.js');
  const shared = await shareClassifier(classifier);
  const payloads = [];
  for (let from = 0; from < count; from += per) {
    const to = Math.min(count, from + per);
    payloads.push({ classifier: shared, mode, images: images.slice(from * size, to * size), seeds: seeds.slice(from, to), ...settings });
  }
  // In waves of two tasks per worker, so progress (and a caller's checkpoint) moves between them.
  const out: R[] = [];
  const wave = 2 * options.pool.size;
  for (let k = 0; k < payloads.length; k += wave) {
    const parts = await options.pool.run<R[], (typeof payloads)[number]>({ module: SMOOTHING_TASK_URL, name: 'smoothingTask' }, payloads.slice(k, k + wave));
    for (const part of parts) out.push(...part);
    options.onProgress?.(out.length);
  }
  return out;
}

/**
 * Certified accuracy at each radius: the share of images the smoothed
 * classifier gets right (not abstaining) with a certified radius of at least
 * r (Cohen et al.'s curve). `labels[i]` is image i's class.
 */
export function certifiedAccuracy(certificates: readonly Pick<Certificate, 'prediction' | 'radius'>[], labels: ArrayLike<number>, radii: readonly number[]): { radius: number; accuracy: number }[] {
  const n = certificates.length;
  return radii.map((r) => ({ radius: r, accuracy: n === 0 ? 0 : certificates.filter((c, i) => c.prediction !== ABSTAIN && c.prediction === labels[i] && c.radius >= r).length / n }));
}

function argMax(counts: Int32Array): number {
  let best = 0;
  for (let k = 1; k < counts.length; k++) if (counts[k] > counts[best]) best = k;
  return best;
}

function check(classifier: Classifier, image: Float32Array, o: SmoothingOptions & { n0?: number; n?: number; alpha?: number }) {
  const size = classifier.inputShape.reduce((a, b) => a * b, 1);
  if (!(image instanceof Float32Array) || image.length !== size) throw new InputError('image', `expected one image of ${size} floats (${classifier.inputShape.join('x')}), got ${image?.length}`);
  for (let i = 0; i < image.length; i++) if (!Number.isFinite(image[i])) throw new InputError('image', `value ${image[i]} at ${i} is not finite`);
  if (!(o.sigma > 0 && Number.isFinite(o.sigma))) throw new InputError('sigma', `expected a positive noise level, got ${o.sigma}`);
  const n0 = o.n0 ?? SMOOTHING_DEFAULTS.n0;
  const n = o.n ?? SMOOTHING_DEFAULTS.n;
  const alpha = o.alpha ?? SMOOTHING_DEFAULTS.alpha;
  const batchSize = o.batchSize ?? SMOOTHING_DEFAULTS.batchSize;
  for (const [name, v] of [['n0', n0], ['n', n], ['batchSize', batchSize]] as const) if (!Number.isSafeInteger(v) || v < 1) throw new InputError(name, `expected an integer >= 1, got ${v}`);
  if (!(alpha > 0 && alpha < 1)) throw new InputError('alpha', `expected a level in (0, 1), got ${alpha}`);
  if (!Number.isSafeInteger(o.seed)) throw new InputError('seed', `expected an integer, got ${o.seed}`);
  return { sigma: o.sigma, n0, n, alpha, batchSize, clipNoise: o.clipNoise ?? true };
}
