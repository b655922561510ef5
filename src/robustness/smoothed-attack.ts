/**
 * An L2 attack on a smoothed classifier, and the check that certificates
 * survive it.
 *
 * The attack is Salman et al.'s ("Provably robust deep learning via
 * adversarially trained smoothed classifiers", NeurIPS 2019): PGD on the
 * smoothed soft classifier's loss, with the expectation over the noise
 * estimated on `samples` fresh noisy copies at every step (expectation over
 * transformation):
 *
 *   L(x') = -log( (1/m) Σ_i softmax(f(x' + e_i))_y ),  e_i ~ N(0, σ² I),
 *
 * steepest L2 ascent, projection onto the radius-r ball around x and the
 * input bounds. Each copy is clipped to the bounds as the base classifier
 * does (smoothing.ts), and the gradient passes only where the clip did not
 * bite. The adversarial point is then judged by PREDICT (Cohen et al.), which
 * returns a wrong class with probability at most alpha.
 *
 * A point certified at radius R >= r cannot be moved to another class within
 * r: if PREDICT names another class at the attacked point, either the
 * certificate or PREDICT erred (each with probability at most alpha), or
 * advlab has a bug. {@link smoothingViolations} lists such points.
 */
import { tf } from '../engine/tf.js';
import type { Classifier } from '../models/classifier.js';
import { InputError } from '../errors.js';
import { Rng } from '../util/rng.js';
import { ABSTAIN, predictSmoothed } from './smoothing.js';

/** Settings of {@link attackSmoothed}. */
export interface SmoothedAttackOptions {
  /** Noise level of the smoothed classifier. */
  sigma: number;
  /** L2 radius of the attack, in the input's scale. */
  radius: number;
  /** PGD steps (default 20). */
  steps?: number;
  /** Noisy copies per step, the expectation's sample (default 32). */
  samples?: number;
  /** Step size (default 2.5 radius / steps). */
  stepSize?: number;
  /** Clip the noisy copies to the bounds, as the certified classifier does (default true). */
  clipNoise?: boolean;
  /** Seed of the noise. */
  seed: number;
}

/** Defaults of the attack (Salman et al. evaluate with 20 steps). */
export const SMOOTHED_ATTACK_DEFAULTS = { steps: 20, samples: 32 } as const;

/**
 * The attacked point for one image ([h, w, c] flattened) of class `label`:
 * inside the L2 ball of `radius` around it and inside the bounds.
 */
export async function attackSmoothed(classifier: Classifier, image: Float32Array, label: number, options: SmoothedAttackOptions): Promise<Float32Array> {
  const [h, w, c] = classifier.inputShape;
  const size = h * w * c;
  if (!(image instanceof Float32Array) || image.length !== size) throw new InputError('image', `expected one image of ${size} floats, got ${image?.length}`);
  if (!Number.isInteger(label) || label < 0 || label >= classifier.numClasses) throw new InputError('label', `expected a class in [0, ${classifier.numClasses}), got ${label}`);
  if (!(options.sigma > 0 && Number.isFinite(options.sigma))) throw new InputError('sigma', `expected a positive noise level, got ${options.sigma}`);
  if (!(options.radius > 0 && Number.isFinite(options.radius))) throw new InputError('radius', `expected a positive L2 radius, got ${options.radius}`);
  const steps = options.steps ?? SMOOTHED_ATTACK_DEFAULTS.steps;
  const m = options.samples ?? SMOOTHED_ATTACK_DEFAULTS.samples;
  for (const [name, v] of [['steps', steps], ['samples', m]] as const) if (!Number.isSafeInteger(v) || v < 1) throw new InputError(name, `expected an integer >= 1, got ${v}`);
  const stepSize = options.stepSize ?? (2.5 * options.radius) / steps;
  const [lo, hi] = options.clipNoise === false ? [-Infinity, Infinity] : classifier.bounds;
  const rng = new Rng(options.seed);
  const noise = new Float32Array(m * size);
  const x0 = tf.tensor4d(image, [1, h, w, c]);
  let x = tf.clone(x0);
  try {
    for (let t = 0; t < steps; t++) {
      rng.fillNormal(noise, options.sigma);
      const next = tf.tidy(() => {
        const raw = tf.add(x, tf.tensor4d(noise, [m, h, w, c]));
        const copies = tf.clipByValue(raw, lo, hi) as tf.Tensor4D;
        // -log of the mean probability of the label over the copies, spread evenly over them (the gradient is of the sum).
        const { grad } = classifier.valueAndGradient(copies, (logits) => {
          const logp = tf.squeeze(tf.slice(tf.logSoftmax(logits), [0, label], [m, 1]), [1]);
          const loss = tf.neg(tf.sub(tf.logSumExp(logp), Math.log(m)));
          return tf.mul(tf.onesLike(logp), tf.div(loss, m)) as tf.Tensor1D;
        });
        const passes = tf.logicalAnd(tf.greaterEqual(raw, lo), tf.lessEqual(raw, hi));
        const g = tf.sum(tf.where(passes, grad, tf.zerosLike(grad)), 0, true) as tf.Tensor4D;
        const norm = tf.norm(g);
        const moved = tf.add(x, tf.mul(g, tf.div(stepSize, tf.add(norm, 1e-12))));
        const delta = tf.sub(moved, x0);
        const projected = tf.mul(delta, tf.minimum(1, tf.div(options.radius, tf.add(tf.norm(delta), 1e-12))));
        return tf.clipByValue(tf.add(x0, projected), classifier.bounds[0], classifier.bounds[1]) as tf.Tensor4D;
      });
      x.dispose();
      x = next;
    }
    return (await x.data()) as Float32Array;
  } finally {
    x0.dispose();
    x.dispose();
  }
}

/** One attacked point, as {@link attackAndPredict} judges it. */
export interface SmoothedAttackOutcome {
  /** PREDICT at the attacked point (-1: abstain). */
  prediction: number;
  /** L2 distance of the attacked point from the image (re-measured). */
  distance: number;
}

/**
 * Attacks one image (see {@link attackSmoothed}) and judges the point with
 * PREDICT (n copies, level alpha, its own seed); the distance is re-measured
 * in float64 so the caller can check the ball.
 */
export async function attackAndPredict(
  classifier: Classifier,
  image: Float32Array,
  label: number,
  options: SmoothedAttackOptions & { n: number; alpha: number; batchSize?: number; predictSeed: number },
): Promise<SmoothedAttackOutcome> {
  const adversarial = await attackSmoothed(classifier, image, label, options);
  let sq = 0;
  for (let i = 0; i < image.length; i++) sq += (adversarial[i] - image[i]) ** 2;
  const p = await predictSmoothed(classifier, adversarial, {
    sigma: options.sigma,
    n: options.n,
    alpha: options.alpha,
    seed: options.predictSeed,
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
    ...(options.clipNoise === false ? { clipNoise: false } : {}),
  });
  return { prediction: p.prediction, distance: Math.sqrt(sq) };
}

/** Per-image inputs of the consistency check at one radius. */
export interface ConsistencyPoint {
  index: number;
  label: number;
  /** CERTIFY's class (-1: abstain) and radius. */
  certified: number;
  radius: number;
  /** PREDICT at the attacked point (-1: abstain). */
  attacked: number;
}

/** What the consistency check found at one radius. */
export interface SmoothingConsistency {
  radius: number;
  images: number;
  /** Certified correct at this radius. */
  certifiedAccuracy: number;
  /** Not broken: the smoothed classifier was right on the clean image and PREDICT names no other class at the attacked point. */
  empiricalRobustAccuracy: number;
  /** PREDICT abstained at the attacked point of an image it had right. */
  abstainedUnderAttack: number;
  /** Images certified at this radius that the attack moved to another class: each is an error (see the module comment). */
  violations: number[];
}

/**
 * The check of certificates against the attack at `radius`: certified
 * accuracy must not exceed the empirical robust accuracy, and no image
 * certified at `radius` may be broken.
 */
export function smoothingConsistency(points: readonly ConsistencyPoint[], radius: number): SmoothingConsistency {
  const n = points.length;
  const right = (p: ConsistencyPoint) => p.certified !== ABSTAIN && p.certified === p.label;
  const broken = (p: ConsistencyPoint) => p.attacked !== ABSTAIN && p.attacked !== p.label;
  const certified = points.filter((p) => right(p) && p.radius >= radius);
  const robust = points.filter((p) => right(p) && !broken(p));
  return {
    radius,
    images: n,
    certifiedAccuracy: n ? certified.length / n : 0,
    empiricalRobustAccuracy: n ? robust.length / n : 0,
    abstainedUnderAttack: points.filter((p) => right(p) && p.attacked === ABSTAIN).length,
    violations: certified.filter(broken).map((p) => p.index),
  };
}
