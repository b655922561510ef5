/**
 * Fréchet distance between feature distributions, each summarized as a
 * Gaussian: the FID of Heusel et al., "GANs trained by a two time-scale update
 * rule converge to a local Nash equilibrium", NeurIPS 2017, when the features
 * are Inception-v3 pool features; here any feature extractor (for example a
 * classifier's penultimate layer) may supply them.
 *
 * FID is biased upwards for finite samples, by an amount that shrinks with the
 * number of samples (Chong & Forsyth, "Effectively unbiased FID and Inception
 * Score and where to find them", CVPR 2020): compare values computed from equal
 * sample sizes only.
 */
import { InputError } from '../../errors.js';
import { checkSamples, meanAndCovariance, traceSqrtProduct, type GaussianMoments, type SampleMatrix } from './linalg.js';

/**
 * Squared Fréchet (2-Wasserstein) distance between N(a.mean, a.covariance) and
 * N(b.mean, b.covariance):
 * ‖μa − μb‖² + tr(Σa + Σb − 2 (Σa^½ Σb Σa^½)^½).
 * Covariances must be symmetric PSD (d*d, row-major). The result is clamped at
 * 0, which rounding can undershoot when the two Gaussians are equal.
 *
 * Usage: `frechetDistanceFromMoments(meanAndCovariance(real), meanAndCovariance(fake))`;
 * the real set's moments can be computed once and kept.
 */
export function frechetDistanceFromMoments(a: GaussianMoments, b: GaussianMoments): number {
  const d = checkMoments(a, 'a');
  const db = checkMoments(b, 'b');
  if (db !== d) throw new InputError('b', `has dimension ${db}, a has ${d}`);
  let meanTerm = 0;
  for (let i = 0; i < d; i++) meanTerm += (a.mean[i] - b.mean[i]) ** 2;
  let traces = 0;
  for (let i = 0; i < d; i++) traces += a.covariance[i * d + i] + b.covariance[i * d + i];
  return Math.max(0, meanTerm + traces - 2 * traceSqrtProduct(a.covariance, b.covariance, d));
}

/**
 * The Fréchet distance (FID when the features are Inception features) between
 * two sets of feature vectors, rows = samples, each set summarized by its mean
 * and covariance (denominator n − 1, as `np.cov` in the reference code). Both
 * sets need the same number of features d and at least 2 samples each.
 * Cost: O(n·d²) for the covariances plus O(d³) for the matrix square roots,
 * about a second or two at d = 256.
 */
export function frechetDistance(featuresA: SampleMatrix, featuresB: SampleMatrix): number {
  checkSamples(featuresA, 'featuresA', 2);
  checkSamples(featuresB, 'featuresB', 2);
  if (featuresB.d !== featuresA.d) {
    throw new InputError('featuresB', `has ${featuresB.d} features per sample, featuresA has ${featuresA.d}`);
  }
  return frechetDistanceFromMoments(meanAndCovariance(featuresA), meanAndCovariance(featuresB));
}

/** Checks one Gaussian's moments and returns its dimension. */
function checkMoments(g: GaussianMoments, argument: string): number {
  if (!g || !(g.mean instanceof Float64Array) || !(g.covariance instanceof Float64Array)) {
    throw new InputError(argument, 'expected { mean: Float64Array, covariance: Float64Array }');
  }
  const d = g.mean.length;
  if (d < 1) throw new InputError(argument, 'mean is empty');
  if (g.covariance.length !== d * d) throw new InputError(argument, `covariance has ${g.covariance.length} entries, expected ${d}*${d} for a mean of length ${d}`);
  for (let i = 0; i < d; i++) {
    if (!Number.isFinite(g.mean[i])) throw new InputError(argument, `mean[${i}] is ${g.mean[i]}`);
    if (g.covariance[i * d + i] < 0) throw new InputError(argument, `covariance has a negative variance at (${i}, ${i}): ${g.covariance[i * d + i]}`);
  }
  return d;
}
