/**
 * The GAN losses, from discriminator logits, in numerically stable form.
 *
 * Every loss takes the discriminator's raw outputs (logits, one per example,
 * shape [n] or [n, 1]) and never a sigmoid probability: log(sigmoid(t)) is
 * written -softplus(-t) and log(1 - sigmoid(t)) is -softplus(t), which stay
 * finite where sigmoid(t) rounds to 0 or 1 in float32 (|t| > ~17) and the
 * naive log gives -Infinity, then NaN gradients.
 *
 * Why not the losses of the widely copied Keras tutorial GAN (the one in the
 * team's reference notes, reference/adversarial-learning-overview.zh.txt)?
 * Each of its mistakes is enough to break training:
 * - The discriminator loss has the wrong sign. E[log D(x)] + E[log(1 - D(G(z)))]
 *   is the value D must maximise; minimised as a loss (its L_D and its
 *   `disc_loss`), it teaches D to reject real data and to accept fakes.
 * - The generator and discriminator losses are swapped. Its
 *   L_G = -E[log D(x)] - E[log(1 - D(G(z)))] is the discriminator's
 *   cross-entropy: a generator minimising it tries to make D(G(z)) small, to
 *   be caught, and the first term does not even depend on G. With L_D above,
 *   each network optimises the other's objective.
 * - It writes log1p(1 - D), which is log(2 - D), for log(1 - D). That is
 *   bounded in [0, log 2] with a slope between -1 and -1/2: the log-loss, whose
 *   optimal D is p_data / (p_data + p_g) and whose game measures a
 *   Jensen-Shannon divergence, is gone, and so is any strong push on D.
 * - The "real" batch is uniform noise (np.random.random), so D learns to tell
 *   noise from G's output and G learns to imitate noise: the data never enters.
 * (Its code also calls G outside the GradientTape, so G gets no gradient.)
 * Here each function's name says which player minimises it.
 */
import { tf } from '../engine/tf.js';
import { InputError } from '../errors.js';

/** The GAN losses advlab implements; see {@link discriminatorLoss} and {@link generatorLoss}. */
export const GAN_LOSSES = ['minimax', 'ns', 'lsgan', 'hinge', 'wgan-gp'] as const;

/** One of {@link GAN_LOSSES}. */
export type GanLoss = (typeof GAN_LOSSES)[number];

/** The default loss: non-saturating (`ns`), the one Goodfellow et al. recommend in practice. */
export const DEFAULT_GAN_LOSS: GanLoss = 'ns';

/** The gradient penalty weight of Gulrajani et al. 2017, used in all their experiments. */
export const DEFAULT_GP_LAMBDA = 10;

/** Options of {@link discriminatorLoss}. */
export interface DiscriminatorLossOptions {
  /**
   * One-sided label smoothing (Salimans et al., "Improved techniques for
   * training GANs", NeurIPS 2016): the target of the real examples becomes
   * this value, in (0, 1]; fakes keep target 0. Only for `minimax` and `ns`
   * (the losses with a target); 1 (or omitted) means no smoothing.
   */
  labelSmoothing?: number;
}

/**
 * A critic (WGAN discriminator) as a function: a batch [n, ...] to one logit
 * per example, shape [n] or [n, 1]. It must treat each example on its own (no
 * batch normalization), see {@link gradientPenalty}.
 */
export type Critic = (x: tf.Tensor) => tf.Tensor;

/** Parses a GAN loss name (e.g. from a CLI option); `argument` names the option in the error. */
export function parseGanLoss(value: string, argument = 'loss'): GanLoss {
  if ((GAN_LOSSES as readonly string[]).includes(value)) return value as GanLoss;
  throw new InputError(argument, `unknown GAN loss "${value}"; expected one of ${GAN_LOSSES.join(', ')}`);
}

/**
 * The discriminator's loss (the critic's, for `wgan-gp`), a scalar to minimise.
 * With r = realLogits = D(x), f = fakeLogits = D(G(z)), softplus(t) = log(1 + e^t):
 * - `minimax`, `ns` (Goodfellow et al., "Generative adversarial nets", NeurIPS
 *   2014): the cross-entropy -E[log sigmoid(r)] - E[log(1 - sigmoid(f))]
 *   = E[softplus(-r)] + E[softplus(f)]. With label smoothing t the real term
 *   is E[t softplus(-r) + (1 - t) softplus(r)].
 * - `lsgan` (Mao et al., "Least squares generative adversarial networks", ICCV
 *   2017, a = 0, b = 1): 0.5 E[(r - 1)^2] + 0.5 E[f^2], on the raw outputs.
 * - `hinge` (Lim & Ye, "Geometric GAN", 2017; Miyato et al., "Spectral
 *   normalization for GANs", ICLR 2018): E[relu(1 - r)] + E[relu(1 + f)].
 * - `wgan-gp` (Gulrajani et al., "Improved training of Wasserstein GANs",
 *   NeurIPS 2017): the Wasserstein part E[f] - E[r] only. The critic's full
 *   loss adds {@link gradientPenalty}; a trainer minimises, over the critic's
 *   weights only (fakes computed outside, so G gets no update):
 *   `tf.add(discriminatorLoss('wgan-gp', critic(x), critic(fake)), gradientPenalty(critic, x, fake, seed + step))`.
 *   Without the penalty the Wasserstein part is unbounded below.
 * Real and fake batches may differ in size: each expectation is its own mean.
 *
 * @param loss one of {@link GAN_LOSSES}
 * @param realLogits D on a real batch, [n] or [n, 1], float32
 * @param fakeLogits D on a generated batch, [m] or [m, 1], float32
 * @param options label smoothing, see {@link DiscriminatorLossOptions}
 * @returns the loss, a new scalar the caller disposes
 */
export function discriminatorLoss(loss: GanLoss, realLogits: tf.Tensor, fakeLogits: tf.Tensor, options: DiscriminatorLossOptions = {}): tf.Scalar {
  parseGanLoss(loss);
  checkLogits(realLogits, 'realLogits');
  checkLogits(fakeLogits, 'fakeLogits');
  const t = realTarget(loss, options.labelSmoothing);
  return tf.tidy(() => {
    const r = tf.reshape(realLogits, [-1]);
    const f = tf.reshape(fakeLogits, [-1]);
    switch (loss) {
      case 'minimax':
      case 'ns': {
        // Binary cross-entropy with target t: -[t log s(r) + (1 - t) log(1 - s(r))]
        // = t softplus(-r) + (1 - t) softplus(r). The second term is skipped at
        // t = 1 so an infinite logit cannot turn 0 * Infinity into NaN.
        const positive = tf.softplus(tf.neg(r));
        const real = t === 1 ? positive : tf.add(tf.mul(positive, t), tf.mul(tf.softplus(r), 1 - t));
        return tf.add(tf.mean(real), tf.mean(tf.softplus(f))) as tf.Scalar;
      }
      case 'lsgan':
        return tf.add(tf.mul(tf.mean(tf.square(tf.sub(r, 1))), 0.5), tf.mul(tf.mean(tf.square(f)), 0.5)) as tf.Scalar;
      case 'hinge':
        return tf.add(tf.mean(tf.relu(tf.sub(1, r))), tf.mean(tf.relu(tf.add(1, f)))) as tf.Scalar;
      case 'wgan-gp':
        return tf.sub(tf.mean(f), tf.mean(r)) as tf.Scalar;
    }
  });
}

/**
 * The generator's loss, a scalar to minimise, from f = fakeLogits = D(G(z)):
 * - `minimax` (Goodfellow et al. 2014): E[log(1 - sigmoid(f))] = -E[softplus(f)].
 *   It saturates: dL/df = -sigmoid(f) / n vanishes when D confidently rejects
 *   the fakes (f << 0), which is exactly early in training.
 * - `ns` (Goodfellow et al. 2014, sec. 3, the default): -E[log sigmoid(f)]
 *   = E[softplus(-f)]; same fixed point, but dL/df = -sigmoid(-f) / n stays
 *   near -1/n when D rejects the fakes.
 * - `lsgan` (Mao et al. 2017, c = 1): 0.5 E[(f - 1)^2].
 * - `hinge` (Lim & Ye 2017; Miyato et al. 2018) and `wgan-gp` (Gulrajani et
 *   al. 2017): -E[f].
 *
 * @param loss one of {@link GAN_LOSSES}
 * @param fakeLogits D on a generated batch, [n] or [n, 1], float32
 * @returns the loss, a new scalar the caller disposes
 */
export function generatorLoss(loss: GanLoss, fakeLogits: tf.Tensor): tf.Scalar {
  parseGanLoss(loss);
  checkLogits(fakeLogits, 'fakeLogits');
  return tf.tidy(() => {
    const f = tf.reshape(fakeLogits, [-1]);
    switch (loss) {
      case 'minimax':
        return tf.neg(tf.mean(tf.softplus(f))) as tf.Scalar;
      case 'ns':
        return tf.mean(tf.softplus(tf.neg(f))) as tf.Scalar;
      case 'lsgan':
        return tf.mul(tf.mean(tf.square(tf.sub(f, 1))), 0.5) as tf.Scalar;
      case 'hinge':
      case 'wgan-gp':
        return tf.neg(tf.mean(f)) as tf.Scalar;
    }
  });
}

/**
 * The auxiliary classifier's loss of an AC-GAN (Odena et al., "Conditional
 * image synthesis with auxiliary classifier GANs", ICML 2017): the softmax
 * cross-entropy -E[log softmax(classLogits)[y]], computed as
 * logsumexp(l) - l[y] so it stays finite for any logits. The discriminator
 * minimises it on real images with their labels, the generator on its samples
 * with the classes it was asked for.
 *
 * @param classLogits the discriminator's class head, [n, K], float32
 * @param labels the classes, int32 [n] with values in [0, K)
 * @returns the loss, a new scalar the caller disposes
 */
export function auxiliaryClassifierLoss(classLogits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  if (classLogits.rank !== 2 || classLogits.dtype !== 'float32') throw new InputError('classLogits', `expected float32 [n, K], got ${classLogits.dtype} [${classLogits.shape.join(', ')}]`);
  if (labels.rank !== 1 || labels.dtype !== 'int32' || labels.shape[0] !== classLogits.shape[0]) {
    throw new InputError('labels', `expected int32 [${classLogits.shape[0]}], got ${labels.dtype} [${labels.shape.join(', ')}]`);
  }
  return tf.tidy(() => {
    const picked = tf.sum(tf.mul(classLogits, tf.cast(tf.oneHot(labels, classLogits.shape[1]!), 'float32')), 1);
    return tf.mean(tf.sub(tf.logSumExp(classLogits, 1), picked)) as tf.Scalar;
  });
}

/**
 * The random points on which {@link gradientPenalty} evaluates the critic's
 * gradient: xhat = eps x + (1 - eps) fake, one eps ~ U[0, 1) per example,
 * drawn with `tf.randomUniform` and `seed`. Exposed so that a caller (or a
 * test) can see the very eps the penalty of the same seed uses.
 *
 * @param real a real batch [n, ...], float32
 * @param fake a generated batch of the same shape
 * @param seed a non-negative integer; a trainer passes a new one every step
 * @returns eps [n] and xhat (shape of `real`), new tensors the caller disposes
 */
export function randomInterpolates(real: tf.Tensor, fake: tf.Tensor, seed: number): { eps: tf.Tensor1D; xhat: tf.Tensor } {
  checkBatches(real, fake);
  checkSeed(seed);
  return tf.tidy(() => {
    const eps = tf.randomUniform([real.shape[0]], 0, 1, 'float32', seed) as tf.Tensor1D;
    return { eps, xhat: interpolate(real, fake, eps) };
  });
}

/** eps x + (1 - eps) fake, one eps per example broadcast over its features. */
function interpolate(real: tf.Tensor, fake: tf.Tensor, eps: tf.Tensor1D): tf.Tensor {
  const e = tf.reshape(eps, [real.shape[0], ...real.shape.slice(1).map(() => 1)]);
  return tf.add(tf.mul(e, real), tf.mul(tf.sub(1, e), fake));
}

/**
 * The WGAN-GP gradient penalty (Gulrajani et al., "Improved training of
 * Wasserstein GANs", NeurIPS 2017): lambda E[(||grad_xhat D(xhat)||_2 - 1)^2]
 * at the points of {@link randomInterpolates}. Add it to
 * `discriminatorLoss('wgan-gp', ...)` to get the critic's loss; it is
 * differentiable with respect to the critic's weights (the gradient is taken
 * functionally with `tf.grad`, which TF.js records for a second derivative).
 *
 * @param critic the critic, per example (no batch normalization)
 * @param real a real batch [n, ...], float32
 * @param fake a generated batch of the same shape
 * @param seed seeds eps; a non-negative integer, new every training step (or the eps themselves, one per example)
 * @param lambda the penalty weight, >= 0 (default 10)
 * @returns the penalty, a new scalar the caller disposes
 */
export function gradientPenalty(critic: Critic, real: tf.Tensor, fake: tf.Tensor, seed: number | tf.Tensor1D, lambda = DEFAULT_GP_LAMBDA): tf.Scalar {
  if (typeof critic !== 'function') throw new InputError('critic', 'expected a function from a batch to its logits');
  checkBatches(real, fake);
  if (typeof seed === 'number') checkSeed(seed);
  else if (seed.rank !== 1 || seed.shape[0] !== real.shape[0]) throw new InputError('seed', `expected a seed or one eps per example [${real.shape[0]}], got [${seed.shape.join(', ')}]`);
  if (!Number.isFinite(lambda) || lambda < 0) throw new InputError('lambda', `expected a finite number >= 0, got ${lambda}`);
  return tf.tidy(() => {
    const n = real.shape[0];
    // A data-parallel shard passes its slice of the batch's eps (drawn with the step's seed) instead of the seed.
    const xhat = typeof seed === 'number' ? randomInterpolates(real, fake, seed).xhat : interpolate(real, fake, seed);
    // d sum_j D(xhat_j) / d xhat_i = grad D(xhat_i) because D acts on each
    // example on its own: one backward pass gives every per-example gradient.
    // A batch-norm critic mixes the examples of a batch and breaks this (the
    // penalty would no longer constrain D per input), which is why WGAN-GP
    // critics use no batch normalization (layer norm or none instead).
    let shape: number[] | undefined;
    const grad = tf.grad((x: tf.Tensor) => {
      const logits: unknown = critic(x);
      // The output is checked after the backward pass: an error thrown inside
      // tf.grad would strand the tensors its tape saved for the backward pass.
      if (!(logits instanceof tf.Tensor)) return tf.mul(tf.sum(x), 0) as tf.Scalar;
      shape = logits.shape;
      return tf.sum(logits) as tf.Scalar;
    })(xhat);
    checkCriticOutput(shape, n);
    // The 1e-12 keeps the gradient of the norm finite where D is flat (sqrt'(0) is
    // infinite) and is below float32 resolution for any norm that matters.
    const norm = tf.sqrt(tf.add(tf.sum(tf.square(tf.reshape(grad, [n, -1])), 1), 1e-12));
    return tf.mul(tf.mean(tf.square(tf.sub(norm, 1))), lambda) as tf.Scalar;
  });
}

/** The target of the real examples: 1, or the label smoothing of `minimax` / `ns`. */
function realTarget(loss: GanLoss, smoothing: number | undefined): number {
  if (smoothing === undefined) return 1;
  if (loss !== 'minimax' && loss !== 'ns') throw new InputError('labelSmoothing', `applies to the minimax and ns losses only, not ${loss}`);
  if (!(smoothing > 0 && smoothing <= 1)) throw new InputError('labelSmoothing', `expected a number in (0, 1], got ${smoothing}`);
  return smoothing;
}

function checkLogits(logits: tf.Tensor, argument: string): void {
  if (!(logits instanceof tf.Tensor)) throw new InputError(argument, 'expected a tensor of logits');
  const s = logits.shape;
  if (!(s.length === 1 || (s.length === 2 && s[1] === 1)) || s[0] === 0) {
    throw new InputError(argument, `expected one logit per example, shape [n] or [n, 1] with n >= 1, got [${s.join(', ')}]`);
  }
  if (logits.dtype !== 'float32') throw new InputError(argument, `expected float32 logits, got ${logits.dtype}`);
}

function checkBatches(real: tf.Tensor, fake: tf.Tensor): void {
  for (const [t, name] of [[real, 'real'], [fake, 'fake']] as const) {
    if (!(t instanceof tf.Tensor)) throw new InputError(name, 'expected a tensor');
    if (t.rank < 1 || t.shape[0] === 0) throw new InputError(name, `expected a batch [n, ...] with n >= 1, got [${t.shape.join(', ')}]`);
    if (t.dtype !== 'float32') throw new InputError(name, `expected float32, got ${t.dtype}`);
  }
  if (real.shape.length !== fake.shape.length || real.shape.some((d, i) => d !== fake.shape[i])) {
    throw new InputError('fake', `expected the shape of real [${real.shape.join(', ')}], got [${fake.shape.join(', ')}]`);
  }
}

function checkSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0) throw new InputError('seed', `expected a non-negative integer, got ${seed}`);
}

function checkCriticOutput(s: number[] | undefined, n: number): void {
  if (!s || !(s[0] === n && (s.length === 1 || (s.length === 2 && s[1] === 1)))) {
    throw new InputError('critic', `expected one logit per example, shape [${n}] or [${n}, 1], got ${s ? `[${s.join(', ')}]` : 'no tensor'}`);
  }
}
