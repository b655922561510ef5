/**
 * The priors p(z) an adversarial autoencoder pushes its codes toward
 * (Makhzani et al., "Adversarial autoencoders", arXiv:1511.05644, 2015): the
 * discriminator of the regularization phase sees samples from one of these as
 * "real" (label 1) and the encoder's codes as "fake" (label 0).
 *
 * - `gaussian`: N(0, I) in d dimensions.
 * - `mixture`: K (default 10) 2-D Gaussians whose means sit equally spaced on a
 *   circle, each elongated along its own radius (the paper's "mixture of 10
 *   2-D Gaussians"). For d > 2 the remaining coordinates are N(0, 1), so the
 *   class structure lives in the first two coordinates and a d-dimensional
 *   code can still be plotted by them.
 * - `swiss-roll`: a noisy 2-D spiral, d = 2 only.
 *
 * With `labels` a sample comes from the component (mixture) or the segment
 * (swiss roll) of its label: the paper's use of label information in the
 * adversarial regularization (its section 2.3), where the code of an image of
 * class y is pushed toward the y-th part of the prior.
 *
 * The paper does not give the priors' parameters; ours are the exported
 * constants below, with the reason for each. Everything is drawn from an
 * advlab {@link Rng}, so a seed gives the same samples on every machine, and
 * {@link priorMoments} and {@link priorLogDensity} give the exact mean,
 * covariance and density for tests, for the "aggregate posterior matches the
 * prior" check and for plotting codes over the prior.
 */
import { InputError } from '../../errors.js';
import { Rng } from '../../util/rng.js';
import type { GaussianMoments } from '../metrics/linalg.js';

/** The priors advlab samples; see {@link samplePrior}. */
export const PRIORS = ['gaussian', 'mixture', 'swiss-roll'] as const;

/** One of {@link PRIORS}. */
export type PriorName = (typeof PRIORS)[number];

/** Mixture components, or swiss-roll segments, when not given: the 10 classes of MNIST, one per class. */
export const DEFAULT_COMPONENTS = 10;

/**
 * Radius of the circle of mixture means. With K = 10 neighbouring means are
 * 2 R sin(pi / K) = 2.47 apart, over 6 tangential standard deviations, so the
 * classes are separated; and a point reaches the origin, where all the
 * components meet, only at R / {@link MIXTURE_RADIAL_SD} = 4 standard deviations.
 */
export const MIXTURE_RADIUS = 4;

/** Standard deviation of a mixture component along its radius: long petals, so that a class has room for its styles. */
export const MIXTURE_RADIAL_SD = 1;

/** Standard deviation of a mixture component across its radius: 1/5 of the radial one, the thin petals of the paper's figures. */
export const MIXTURE_TANGENTIAL_SD = 0.2;

/** Turns of the swiss roll: t runs over [0, 2 pi turns]. */
export const SWISS_ROLL_TURNS = 2;

/**
 * Outer radius of the swiss roll, equal to {@link MIXTURE_RADIUS} so that plots
 * of the two priors share their axes. Successive turns are
 * radius / turns = 2 apart, 20 noise standard deviations.
 */
export const SWISS_ROLL_RADIUS = 4;

/**
 * Standard deviation of the isotropic Gaussian noise around the spiral. A bare
 * curve has no 2-D density (so no {@link priorLogDensity}, and a discriminator
 * could separate it from any code off the curve exactly); 0.1 keeps the band
 * thin against the gap of 2 between turns.
 */
export const SWISS_ROLL_NOISE_SD = 0.1;

/** T, the end of the swiss roll's parameter t. */
const ROLL_END = 2 * Math.PI * SWISS_ROLL_TURNS;

/** Samples of a prior, see {@link samplePrior}. */
export interface PriorSample {
  /** n codes of d values each, row-major [n, d]. */
  z: Float32Array;
  n: number;
  d: number;
  /**
   * The mixture component or swiss-roll segment of each sample, in [0, K):
   * the given labels when there were labels; always 0 for `gaussian`.
   */
  component: Int32Array;
}

/** Options of {@link samplePrior}. */
export interface SamplePriorOptions {
  /** Number of samples, >= 1. */
  n: number;
  /** Dimension of a code: >= 1 for `gaussian`, >= 2 for `mixture`, exactly 2 for `swiss-roll`. */
  d: number;
  /** The generator the samples are drawn from (it advances). */
  rng: Rng;
  /**
   * Optional, n labels in [0, components): sample i comes from component (or
   * segment) labels[i]. Without them the component is uniform. Not for `gaussian`.
   */
  labels?: Int32Array;
  /** K, the number of mixture components or swiss-roll segments (default 10); only 1 for `gaussian`. */
  components?: number;
}

/** Parses a prior name (e.g. from a CLI option); `argument` names the option in the error. */
export function parsePrior(value: string, argument = 'prior'): PriorName {
  if ((PRIORS as readonly string[]).includes(value)) return value as PriorName;
  throw new InputError(argument, `unknown prior "${value}"; expected one of ${PRIORS.join(', ')}`);
}

/**
 * Draws n codes from a prior. With mixture component k of K at angle
 * theta_k = 2 pi k / K, u_k = (cos theta_k, sin theta_k) and v_k = u_k turned
 * by 90 degrees:
 * - `gaussian`: z ~ N(0, I_d).
 * - `mixture`: (z_1, z_2) = (R + s_r e_1) u_k + s_t e_2 v_k, e ~ N(0, I),
 *   R = {@link MIXTURE_RADIUS}, s_r = {@link MIXTURE_RADIAL_SD},
 *   s_t = {@link MIXTURE_TANGENTIAL_SD}; z_3..z_d ~ N(0, 1).
 * - `swiss-roll`: t = T sqrt(u), T = 2 pi {@link SWISS_ROLL_TURNS}, and
 *   z = (R t / T) (cos t, sin t) + s e, R = {@link SWISS_ROLL_RADIUS},
 *   s = {@link SWISS_ROLL_NOISE_SD}, e ~ N(0, I_2); segment k takes
 *   u ~ U[k / K, (k + 1) / K). The square root spreads the points evenly
 *   along the curve (its arc length from the centre grows nearly as t^2), so
 *   each segment is about a K-th of the roll's length.
 * Draws per sample, in order: the component (unless labelled), then the
 * values; so a seed fixes the whole sample.
 *
 * @param prior one of {@link PRIORS}
 * @param options n, d, rng, and optional labels and components
 * @returns the codes and the component of each
 */
export function samplePrior(prior: PriorName, options: SamplePriorOptions): PriorSample {
  parsePrior(prior);
  if (!options || typeof options !== 'object') throw new InputError('options', 'expected { n, d, rng }');
  const { n, d, rng, labels } = options;
  if (!Number.isSafeInteger(n) || n < 1) throw new InputError('n', `expected an integer >= 1, got ${n}`);
  checkDimension(prior, d);
  if (!(rng instanceof Rng)) throw new InputError('rng', 'expected an advlab Rng');
  const k = checkComponents(prior, options.components);
  if (labels !== undefined) checkLabels(prior, labels, n, k);

  const z = new Float32Array(n * d);
  const component = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    if (prior === 'gaussian') {
      for (let j = 0; j < d; j++) z[o + j] = rng.normal();
      continue;
    }
    const c = labels ? labels[i] : rng.int(k);
    component[i] = c;
    if (prior === 'mixture') {
      const theta = (2 * Math.PI * c) / k;
      const along = MIXTURE_RADIUS + MIXTURE_RADIAL_SD * rng.normal();
      const across = MIXTURE_TANGENTIAL_SD * rng.normal();
      z[o] = along * Math.cos(theta) - across * Math.sin(theta);
      z[o + 1] = along * Math.sin(theta) + across * Math.cos(theta);
      for (let j = 2; j < d; j++) z[o + j] = rng.normal();
    } else {
      const [x, y] = swissRollPoint(ROLL_END * Math.sqrt((c + rng.next()) / k));
      z[o] = x + SWISS_ROLL_NOISE_SD * rng.normal();
      z[o + 1] = y + SWISS_ROLL_NOISE_SD * rng.normal();
    }
  }
  return { z, n, d, component };
}

/** Samples of the categorical prior Cat(K), see {@link sampleCategorical}. */
export interface CategoricalSample {
  /** n one-hot rows of K values, row-major [n, K]. */
  y: Float32Array;
  /** The category of each row, in [0, K). */
  category: Int32Array;
}

/**
 * Draws n one-hot vectors from the uniform categorical prior Cat(K): the
 * "real" samples of the category discriminator in the categorical + style
 * mode (Makhzani et al. 2015, section 5: "the first adversarial network
 * imposes a Categorical distribution on the label representation"). One
 * draw of the Rng per sample.
 *
 * @param n samples, >= 1
 * @param k categories, >= 2
 * @param rng the generator (it advances)
 */
export function sampleCategorical(n: number, k: number, rng: Rng): CategoricalSample {
  if (!Number.isSafeInteger(n) || n < 1) throw new InputError('n', `expected an integer >= 1, got ${n}`);
  if (!Number.isSafeInteger(k) || k < 2) throw new InputError('k', `expected an integer >= 2 categories, got ${k}`);
  if (!(rng instanceof Rng)) throw new InputError('rng', 'expected an advlab Rng');
  const y = new Float32Array(n * k);
  const category = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = rng.int(k);
    category[i] = c;
    y[i * k + c] = 1;
  }
  return { y, category };
}

/**
 * The exact mean and covariance (d*d, row-major, the population covariance)
 * of a prior in d dimensions, in closed form: the reference for tests and for
 * comparing the codes' moments with the prior's (e.g.
 * `frechetDistanceFromMoments(priorMoments(...), meanAndCovariance(codes))`).
 * The mixture's are the moments of its components averaged; with K >= 3
 * components on the circle they reduce to mean 0 and covariance
 * (R^2 + s_r^2 + s_t^2) / 2 I in the first two coordinates. The swiss roll's
 * come from integrating t^2 (cos t, sin t) and t^3 (1, cos 2t, sin 2t)
 * against the density 2t / T^2 of t by parts (see {@link samplePrior}).
 *
 * @param prior one of {@link PRIORS}
 * @param d the dimension, as for {@link samplePrior}
 * @param components K, as for {@link samplePrior}
 */
export function priorMoments(prior: PriorName, d: number, components?: number): GaussianMoments {
  parsePrior(prior);
  checkDimension(prior, d);
  const k = checkComponents(prior, components);
  const mean = new Float64Array(d);
  const covariance = new Float64Array(d * d);
  // Every prior is N(0, 1) and independent beyond its first two coordinates.
  for (let j = 0; j < d; j++) covariance[j * d + j] = 1;
  if (prior === 'gaussian') return { mean, covariance };

  // Second moments E[z zᵀ] of the first two coordinates, then centred.
  let mx = 0;
  let my = 0;
  let sxx: number;
  let syy: number;
  let sxy: number;
  if (prior === 'mixture') {
    sxx = 0;
    syy = 0;
    sxy = 0;
    const r2 = MIXTURE_RADIUS ** 2;
    const vr = MIXTURE_RADIAL_SD ** 2;
    const vt = MIXTURE_TANGENTIAL_SD ** 2;
    for (let c = 0; c < k; c++) {
      const cos = Math.cos((2 * Math.PI * c) / k);
      const sin = Math.sin((2 * Math.PI * c) / k);
      mx += (MIXTURE_RADIUS * cos) / k;
      my += (MIXTURE_RADIUS * sin) / k;
      // Component covariance vr u uᵀ + vt v vᵀ plus its mean's mean meanᵀ = r2 u uᵀ.
      sxx += ((r2 + vr) * cos * cos + vt * sin * sin) / k;
      syy += ((r2 + vr) * sin * sin + vt * cos * cos) / k;
      sxy += ((r2 + vr - vt) * cos * sin) / k;
    }
  } else {
    const T = ROLL_END;
    const a = SWISS_ROLL_RADIUS / T;
    const [sin, cos, sin2, cos2] = [Math.sin(T), Math.cos(T), Math.sin(2 * T), Math.cos(2 * T)];
    // E[t^2 cos t] and E[t^2 sin t] times 2 / T^2, from the antiderivatives
    // t^2 sin t + 2t cos t - 2 sin t and -t^2 cos t + 2t sin t + 2 cos t.
    mx = ((2 * a) / T ** 2) * (T * T * sin + 2 * T * cos - 2 * sin);
    my = ((2 * a) / T ** 2) * (-T * T * cos + 2 * T * sin + 2 * cos - 2);
    // t^3 cos^2 t = t^3 (1 + cos 2t) / 2, t^3 sin^2 t = t^3 (1 - cos 2t) / 2,
    // t^3 cos t sin t = t^3 sin 2t / 2; the integrals of t^3 cos 2t and t^3 sin 2t over [0, T]:
    const c3 = (T ** 3 * sin2) / 2 + (3 * T * T * cos2) / 4 - (3 * T * sin2) / 4 - (3 * cos2) / 8 + 3 / 8;
    const s3 = (-(T ** 3) * cos2) / 2 + (3 * T * T * sin2) / 4 + (3 * T * cos2) / 4 - (3 * sin2) / 8;
    const v = SWISS_ROLL_NOISE_SD ** 2;
    sxx = ((a * a) / T ** 2) * (T ** 4 / 4 + c3) + v;
    syy = ((a * a) / T ** 2) * (T ** 4 / 4 - c3) + v;
    sxy = ((a * a) / T ** 2) * s3;
  }
  mean[0] = mx;
  mean[1] = my;
  covariance[0] = sxx - mx * mx;
  covariance[1] = covariance[d] = sxy - mx * my;
  covariance[d + 1] = syy - my * my;
  return { mean, covariance };
}

/** The mixture's component means, row-major [K, 2]: mean k at angle 2 pi k / K on the circle of radius {@link MIXTURE_RADIUS}. */
export function mixtureMeans(components = DEFAULT_COMPONENTS): Float64Array {
  const k = checkComponents('mixture', components);
  const means = new Float64Array(2 * k);
  for (let c = 0; c < k; c++) {
    means[2 * c] = MIXTURE_RADIUS * Math.cos((2 * Math.PI * c) / k);
    means[2 * c + 1] = MIXTURE_RADIUS * Math.sin((2 * Math.PI * c) / k);
  }
  return means;
}

/** Nodes of the quadrature over t in the swiss roll's density: the curve moves at most 0.0123 between nodes, an 8th of the noise sd. */
const ROLL_NODES = 4096;

/**
 * The log density of a prior's first two coordinates (for d > 2, their
 * marginal, which is the 2-D prior itself) at m points, row-major [m, 2]: the
 * background of a "codes over the prior" scatter plot. Gaussian and mixture in
 * closed form. The swiss roll's density is the noise kernel averaged along the
 * curve, integral of (2t / T^2) N(z; curve(t), s^2 I) dt, by the midpoint rule
 * over 4096 nodes, which samples the kernel at under s / 8 of arc: against a
 * rule with 2^21 nodes the log density agrees to round-off along the roll and
 * within 2e-4 next to its two ends, where the integrand is cut off (about
 * 0.1 ms a point, so 0.4 s for a 64 x 64 grid). Sums are taken as
 * log-sum-exp, so points far from the prior get a finite log density, not
 * log 0.
 *
 * @param prior one of {@link PRIORS}
 * @param points m points (x, y), row-major
 * @param components K, as for {@link samplePrior} (the swiss roll's density does not depend on it)
 * @returns m log densities, in nats
 */
export function priorLogDensity(prior: PriorName, points: ArrayLike<number>, components?: number): Float64Array {
  parsePrior(prior);
  const k = checkComponents(prior, components);
  if (!points || typeof points.length !== 'number' || points.length % 2 !== 0) {
    throw new InputError('points', 'expected m points (x, y), row-major, an even number of values');
  }
  const m = points.length / 2;
  const out = new Float64Array(m);
  const log2pi = Math.log(2 * Math.PI);
  const cos = Array.from({ length: k }, (_, c) => Math.cos((2 * Math.PI * c) / k));
  const sin = Array.from({ length: k }, (_, c) => Math.sin((2 * Math.PI * c) / k));
  const vr = MIXTURE_RADIAL_SD ** 2;
  const vt = MIXTURE_TANGENTIAL_SD ** 2;
  const v = SWISS_ROLL_NOISE_SD ** 2;
  const roll = prior === 'swiss-roll' ? rollNodes() : undefined;
  for (let i = 0; i < m; i++) {
    const x = points[2 * i];
    const y = points[2 * i + 1];
    if (prior === 'gaussian') {
      out[i] = -log2pi - (x * x + y * y) / 2;
    } else if (prior === 'mixture') {
      const lse = new LogSumExp();
      for (let c = 0; c < k; c++) {
        // Coordinates along and across component c's radius, from its mean.
        const along = x * cos[c] + y * sin[c] - MIXTURE_RADIUS;
        const across = -x * sin[c] + y * cos[c];
        lse.add(-(along * along) / (2 * vr) - (across * across) / (2 * vt));
      }
      out[i] = lse.value() - Math.log(k) - log2pi - Math.log(MIXTURE_RADIAL_SD * MIXTURE_TANGENTIAL_SD);
    } else if (roll) {
      const lse = new LogSumExp();
      for (let j = 0; j < ROLL_NODES; j++) {
        lse.add(roll.logWeight[j] - ((x - roll.x[j]) ** 2 + (y - roll.y[j]) ** 2) / (2 * v));
      }
      out[i] = lse.value() - log2pi - Math.log(v);
    }
  }
  return out;
}

/** The midpoint-rule nodes of {@link priorLogDensity} on the swiss roll: the curve's points and the log of their weights (2t / T^2) h. */
function rollNodes(): { x: Float64Array; y: Float64Array; logWeight: Float64Array } {
  const x = new Float64Array(ROLL_NODES);
  const y = new Float64Array(ROLL_NODES);
  const logWeight = new Float64Array(ROLL_NODES);
  const h = ROLL_END / ROLL_NODES;
  for (let j = 0; j < ROLL_NODES; j++) {
    const t = (j + 0.5) * h;
    [x[j], y[j]] = swissRollPoint(t);
    logWeight[j] = Math.log((2 * t * h) / ROLL_END ** 2);
  }
  return { x, y, logWeight };
}

/** The point of the (noiseless) swiss roll at t in [0, T]: radius R t / T, angle t. */
function swissRollPoint(t: number): [number, number] {
  const r = (SWISS_ROLL_RADIUS * t) / ROLL_END;
  return [r * Math.cos(t), r * Math.sin(t)];
}

/** log(sum exp(v)) accumulated one term at a time, rescaled by the running maximum so nothing overflows or underflows to 0. */
class LogSumExp {
  private max = -Infinity;
  private sum = 0;

  add(v: number): void {
    if (v === -Infinity) return;
    if (v <= this.max) {
      this.sum += Math.exp(v - this.max);
    } else {
      this.sum = this.sum * Math.exp(this.max - v) + 1;
      this.max = v;
    }
  }

  value(): number {
    return this.max + Math.log(this.sum);
  }
}

function checkDimension(prior: PriorName, d: number): void {
  const min = prior === 'gaussian' ? 1 : 2;
  if (!Number.isSafeInteger(d) || d < min) throw new InputError('d', `the ${prior} prior needs an integer dimension >= ${min}, got ${d}`);
  if (prior === 'swiss-roll' && d !== 2) throw new InputError('d', `the swiss-roll prior is 2-D, got d = ${d}`);
}

/** K, after checking it: the default, or 1 for `gaussian`. */
function checkComponents(prior: PriorName, components: number | undefined): number {
  if (prior === 'gaussian') {
    if (components !== undefined && components !== 1) throw new InputError('components', `the gaussian prior has one component, got ${components}`);
    return 1;
  }
  if (components === undefined) return DEFAULT_COMPONENTS;
  if (!Number.isSafeInteger(components) || components < 1) throw new InputError('components', `expected an integer >= 1, got ${components}`);
  return components;
}

function checkLabels(prior: PriorName, labels: Int32Array, n: number, k: number): void {
  if (prior === 'gaussian') throw new InputError('labels', 'the gaussian prior has no components to choose; use mixture or swiss-roll');
  if (!(labels instanceof Int32Array)) throw new InputError('labels', 'expected an Int32Array');
  if (labels.length !== n) throw new InputError('labels', `expected n = ${n} labels, got ${labels.length}`);
  for (let i = 0; i < n; i++) {
    if (labels[i] < 0 || labels[i] >= k) throw new InputError('labels', `label ${labels[i]} at ${i} is outside [0, ${k}) (components = ${k})`);
  }
}

/** How far a set of codes (an aggregate posterior q(z)) is from a prior; see {@link posteriorMatch}. */
export interface PosteriorMatch {
  /** Codes compared, and their dimension. */
  n: number;
  d: number;
  /** Per-dimension mean and (population) variance of the codes. */
  mean: number[];
  variance: number[];
  /** The prior's, from {@link priorMoments}. */
  priorMean: number[];
  priorVariance: number[];
  /** max over dimensions of |mean_i - priorMean_i| / priorSd_i: the worst mean offset in prior standard deviations. */
  meanError: number;
  /** max over dimensions of |ln(variance_i / priorVariance_i)|: 0.69 is a factor of 2 either way. */
  logVarianceRatio: number;
  /**
   * The unbiased estimate of MMD^2 (Gretton et al. 2012, "A kernel two-sample
   * test", JMLR) between up to `samples` codes and as many prior samples, with
   * the Gaussian kernel exp(-|a - b|^2 / (2 s^2)), s^2 = trace of the prior's
   * covariance (half the mean squared distance of two prior samples, so the
   * kernel sees the prior's scale); near 0 (it can be slightly negative) when
   * the codes follow the prior.
   */
  mmd: number;
  /** Codes (and prior samples) in the MMD. */
  mmdSamples: number;
}

/** Options of {@link posteriorMatch}. */
export interface PosteriorMatchOptions {
  /** Draws the prior samples of the MMD (it advances). */
  rng: Rng;
  /** K, as for {@link samplePrior}. */
  components?: number;
  /** At most this many codes (evenly spaced through the set) and prior samples in the MMD, which costs O(samples^2 d) (default 1000). */
  samples?: number;
}

/**
 * Compares codes with a prior: per-dimension moments against the prior's
 * exact ones, and a kernel MMD against fresh prior samples (the moments miss
 * shape, e.g. codes on a few clusters with the right mean and variance). The
 * check of an adversarial autoencoder's regularization (Makhzani et al. 2015,
 * section 2: the aggregate posterior q(z) should match p(z)).
 *
 * @param prior one of {@link PRIORS}
 * @param codes n codes, row-major [n, d]
 * @param d the code size
 * @param options the Rng of the prior samples, components and the MMD's sample count
 */
export function posteriorMatch(prior: PriorName, codes: Float32Array, d: number, options: PosteriorMatchOptions): PosteriorMatch {
  const moments = priorMoments(prior, d, options.components);
  const n = codes.length / d;
  if (!Number.isSafeInteger(n) || n < 2) throw new InputError('codes', `expected at least 2 codes of d = ${d} values, got ${codes.length} values`);
  const maxSamples = options.samples ?? 1000;
  if (!Number.isSafeInteger(maxSamples) || maxSamples < 2) throw new InputError('samples', `expected an integer >= 2, got ${maxSamples}`);
  const mean = new Array<number>(d).fill(0);
  const variance = new Array<number>(d).fill(0);
  for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) mean[j] += codes[r * d + j] / n;
  for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) variance[j] += (codes[r * d + j] - mean[j]) ** 2 / n;
  const priorMean = Array.from(moments.mean);
  const priorVariance = Array.from({ length: d }, (_, j) => moments.covariance[j * d + j]);
  let meanError = 0;
  let logVarianceRatio = 0;
  for (let j = 0; j < d; j++) {
    meanError = Math.max(meanError, Math.abs(mean[j] - priorMean[j]) / Math.sqrt(priorVariance[j]));
    logVarianceRatio = Math.max(logVarianceRatio, Math.abs(Math.log(variance[j] / priorVariance[j])));
  }

  const m = Math.min(n, maxSamples);
  const x = new Float64Array(m * d);
  for (let i = 0; i < m; i++) {
    const r = Math.floor((i * n) / m);
    for (let j = 0; j < d; j++) x[i * d + j] = codes[r * d + j];
  }
  const y = samplePrior(prior, { n: m, d, rng: options.rng, components: prior === 'gaussian' ? undefined : options.components }).z;
  const s2 = priorVariance.reduce((a, b) => a + b, 0);
  const kernelMean = (a: ArrayLike<number>, b: ArrayLike<number>, same: boolean): number => {
    let sum = 0;
    for (let i = 0; i < m; i++) {
      for (let k = same ? i + 1 : 0; k < m; k++) {
        let dist = 0;
        for (let j = 0; j < d; j++) dist += (a[i * d + j] - b[k * d + j]) ** 2;
        sum += Math.exp(-dist / (2 * s2));
      }
    }
    // Within a set, the pairs i < k stand for both orders; the diagonal is left out (the unbiased estimate).
    return same ? (2 * sum) / (m * (m - 1)) : sum / (m * m);
  };
  const mmd = kernelMean(x, x, true) + kernelMean(y, y, true) - 2 * kernelMean(x, y, false);
  return { n, d, mean, variance, priorMean, priorVariance, meanError, logVarianceRatio, mmd, mmdSamples: m };
}
