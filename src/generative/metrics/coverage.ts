/**
 * Class coverage of generated samples: a classifier labels each sample, and the
 * histogram of labels is compared with the uniform distribution a generator of
 * a class-balanced dataset should match. Mode collapse shows as classes that
 * are rare or missing. The KL from uniform is the "KL" of the mode-counting
 * experiments in Metz et al., "Unrolled generative adversarial networks",
 * ICLR 2017 (stacked MNIST), also used by VEEGAN and PacGAN.
 */
import { InputError } from '../../errors.js';
import { checkSamples, type SampleMatrix } from './linalg.js';

/** The label histogram of a set of predictions and its distance from uniform. */
export interface ClassCoverage {
  /** Number of classes K. */
  classes: number;
  /** Number of predictions. */
  total: number;
  /** Predictions per class. */
  counts: number[];
  /** counts / total. */
  fractions: number[];
  /** KL(fractions ‖ uniform) = Σ f log(f·K) in nats, with 0·log 0 = 0: 0 when uniform, log K when one class takes all. */
  klFromUniform: number;
  /** The smallest class fraction (0 when a class is missing). */
  minFraction: number;
  /** The class with the smallest fraction (the lowest such class on ties). */
  minClass: number;
  /** Classes never predicted. */
  missing: number[];
}

/** Label of the largest value of each row (the first one on ties, as numpy's argmax). */
export function argmaxRows(x: SampleMatrix): Int32Array {
  checkSamples(x, 'predictions', 0);
  const out = new Int32Array(x.n);
  for (let r = 0; r < x.n; r++) {
    const o = r * x.d;
    let best = 0;
    for (let y = 1; y < x.d; y++) if (x.data[o + y] > x.data[o + best]) best = y;
    out[r] = best;
  }
  return out;
}

/**
 * Histogram of predicted labels over `classes` classes and its KL divergence
 * from uniform. `predicted` is either the labels (integers in [0, classes)) or
 * a matrix of per-class scores (probabilities or logits, one row per sample),
 * whose row argmax is the label; for a matrix, `classes` defaults to its d.
 * `classes` is required with labels: a collapsed generator may never produce
 * the highest class, so it cannot be read off the labels.
 */
export function classCoverage(predicted: SampleMatrix | Int32Array | readonly number[], classes?: number): ClassCoverage {
  let labels: ArrayLike<number>;
  if (isSampleMatrix(predicted)) {
    if (classes !== undefined && classes !== predicted.d) {
      throw new InputError('classes', `is ${classes} but the predictions have ${predicted.d} columns`);
    }
    classes = predicted.d;
    labels = argmaxRows(predicted);
  } else {
    if (classes === undefined) throw new InputError('classes', 'required when predictions are labels');
    labels = predicted;
  }
  if (!Number.isSafeInteger(classes) || classes < 1) throw new InputError('classes', `expected a positive integer, got ${classes}`);
  const total = labels.length;
  if (total === 0) throw new InputError('predicted', 'no predictions');
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < total; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= classes) throw new InputError('predicted', `label ${y} at ${i} is not a class in [0, ${classes})`);
    counts[y]++;
  }
  const fractions = counts.map((c) => c / total);
  let klFromUniform = 0;
  for (const f of fractions) if (f > 0) klFromUniform += f * Math.log(f * classes);
  let minClass = 0;
  for (let y = 1; y < classes; y++) if (fractions[y] < fractions[minClass]) minClass = y;
  return {
    classes,
    total,
    counts,
    fractions,
    klFromUniform,
    minFraction: fractions[minClass],
    minClass,
    missing: counts.flatMap((c, y) => (c === 0 ? [y] : [])),
  };
}

/**
 * Classes whose fraction is below `threshold` (default 0.25/K: a quarter of
 * their uniform share).
 */
export function rareClasses(coverage: ClassCoverage, threshold = 0.25 / coverage.classes): number[] {
  if (!(threshold >= 0 && threshold <= 1)) throw new InputError('threshold', `expected a fraction in [0, 1], got ${threshold}`);
  return coverage.fractions.flatMap((f, y) => (f < threshold ? [y] : []));
}

/**
 * Mode-collapse verdict: true when some class gets less than `threshold` of the
 * samples (default 0.25/K, a quarter of its uniform share). Meant for data with
 * balanced classes. Under a uniform generator the count of a class is about
 * Binomial(n, 1/K), so with 20 or more samples per class a false alarm has
 * probability below about 1e-4 per class; with fewer samples, sampling noise
 * alone can trip the verdict.
 */
export function modeCollapse(coverage: ClassCoverage, threshold = 0.25 / coverage.classes): boolean {
  return rareClasses(coverage, threshold).length > 0;
}

function isSampleMatrix(x: unknown): x is SampleMatrix {
  return typeof x === 'object' && x !== null && 'data' in x && 'n' in x && 'd' in x;
}
