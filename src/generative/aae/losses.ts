/**
 * The losses of an adversarial autoencoder (Makhzani et al., "Adversarial
 * autoencoders", arXiv:1511.05644, 2015), all from logits, each a scalar that
 * one player minimises. A training step runs two phases on a batch x:
 * 1. Reconstruction: encoder and decoder minimise
 *    {@link reconstructionLoss}(x, decoder(encoder(x))).
 * 2. Regularization, a GAN on the latent space in which the encoder is the
 *    generator and the "real data" are samples of the prior (./priors.ts):
 *    the discriminator minimises {@link latentDiscriminatorLoss}(D(z_prior),
 *    D(encoder(x))), then the encoder minimises
 *    {@link encoderAdversarialLoss}(D(encoder(x))).
 * In the semi-supervised mode (the paper's section 5) a third phase trains the
 * encoder's class head q(y | x) on the labelled batch with
 * {@link classificationLoss}.
 * The adversarial losses are those of ../losses.ts, under the AAE's names.
 */
import { tf } from '../../engine/tf.js';
import { InputError } from '../../errors.js';
import { discriminatorLoss, generatorLoss, type DiscriminatorLossOptions } from '../losses.js';

/** The reconstruction losses; see {@link reconstructionLoss}. */
export const RECONSTRUCTION_LOSSES = ['mse', 'bce'] as const;

/** One of {@link RECONSTRUCTION_LOSSES}. */
export type ReconstructionLoss = (typeof RECONSTRUCTION_LOSSES)[number];

/**
 * The encoder's adversarial losses: the paper's GAN game, with the generator
 * loss of Goodfellow et al. 2014 (`minimax`) or its non-saturating form (`ns`,
 * the default). Both share one discriminator loss.
 */
export const AAE_ADVERSARIAL_LOSSES = ['ns', 'minimax'] as const;

/** One of {@link AAE_ADVERSARIAL_LOSSES}. */
export type AaeAdversarialLoss = (typeof AAE_ADVERSARIAL_LOSSES)[number];

/** Parses a reconstruction loss name (e.g. from a CLI option); `argument` names the option in the error. */
export function parseReconstructionLoss(value: string, argument = 'kind'): ReconstructionLoss {
  if ((RECONSTRUCTION_LOSSES as readonly string[]).includes(value)) return value as ReconstructionLoss;
  throw new InputError(argument, `unknown reconstruction loss "${value}"; expected one of ${RECONSTRUCTION_LOSSES.join(', ')}`);
}

/**
 * The reconstruction phase's loss, minimised by the encoder and the decoder
 * together; a mean over every pixel of every image:
 * - `mse`: E[(x - xHat)^2], xHat the decoder's images.
 * - `bce`: the cross-entropy of Bernoulli pixels, xHat the decoder's LOGITS l:
 *   -E[x log sigmoid(l) + (1 - x) log(1 - sigmoid(l))]
 *   = E[x softplus(-l) + (1 - x) softplus(l)], which stays finite where
 *   sigmoid(l) rounds to 0 or 1, and whose gradient is exactly
 *   (sigmoid(l) - x) / (number of values), at l = 0 too. x may be soft
 *   targets in [0, 1] (grey pixels), not only 0 and 1.
 * A mean rather than a sum per image: it changes only the scale, which Adam
 * ignores, and the phases are separate steps, so nothing is traded against it.
 *
 * @param x the images [n, ...], float32 in [0, 1]
 * @param xHat the decoder's output, images (`mse`) or logits (`bce`), shape of x
 * @param kind one of {@link RECONSTRUCTION_LOSSES}
 * @returns the loss, a new scalar the caller disposes
 */
export function reconstructionLoss(x: tf.Tensor, xHat: tf.Tensor, kind: ReconstructionLoss): tf.Scalar {
  parseReconstructionLoss(kind);
  checkBatch(x, 'x');
  checkBatch(xHat, 'xHat');
  if (x.shape.length !== xHat.shape.length || x.shape.some((s, i) => s !== xHat.shape[i])) {
    throw new InputError('xHat', `expected the shape of x [${x.shape.join(', ')}], got [${xHat.shape.join(', ')}]`);
  }
  return tf.tidy(() => {
    if (kind === 'mse') return tf.mean(tf.square(tf.sub(x, xHat))) as tf.Scalar;
    // Two softplus terms rather than softplus(l) - x l: no cancellation of two
    // large numbers where |l| is large and x is not 0 or 1.
    return tf.mean(tf.add(tf.mul(x, tf.softplus(tf.neg(xHat))), tf.mul(tf.sub(1, x), tf.softplus(xHat)))) as tf.Scalar;
  });
}

/**
 * The regularization phase's discriminator loss, minimised by the latent
 * discriminator D only (the codes are computed outside, so the encoder gets
 * no update from it): the cross-entropy of telling prior samples (label 1)
 * from the encoder's codes (label 0),
 * -E[log sigmoid(D(z_prior))] - E[log(1 - sigmoid(D(encoder(x))))],
 * i.e. `discriminatorLoss('ns', priorLogits, codeLogits)` of ../losses.ts.
 *
 * @param priorLogits D on samples of the prior, [n] or [n, 1], float32
 * @param codeLogits D on the encoder's codes, [m] or [m, 1], float32
 * @param options one-sided label smoothing of the prior samples' target
 * @returns the loss, a new scalar the caller disposes
 */
export function latentDiscriminatorLoss(priorLogits: tf.Tensor, codeLogits: tf.Tensor, options: DiscriminatorLossOptions = {}): tf.Scalar {
  checkLogits(priorLogits, 'priorLogits');
  checkLogits(codeLogits, 'codeLogits');
  return discriminatorLoss('ns', priorLogits, codeLogits, options);
}

/**
 * The regularization phase's encoder loss, minimised by the encoder only (D
 * held fixed): the generator's loss of the latent GAN, which pushes the codes
 * toward where D believes prior samples lie, i.e. `generatorLoss(loss,
 * codeLogits)` of ../losses.ts:
 * - `ns` (default): -E[log sigmoid(D(encoder(x)))], strong gradients while D
 *   still rejects the codes.
 * - `minimax`: E[log(1 - sigmoid(D(encoder(x))))], the paper's minimax game
 *   as written; it saturates when D rejects the codes confidently.
 *
 * @param codeLogits D on the encoder's codes, [n] or [n, 1], float32
 * @param loss one of {@link AAE_ADVERSARIAL_LOSSES}
 * @returns the loss, a new scalar the caller disposes
 */
export function encoderAdversarialLoss(codeLogits: tf.Tensor, loss: AaeAdversarialLoss = 'ns'): tf.Scalar {
  if (!(AAE_ADVERSARIAL_LOSSES as readonly string[]).includes(loss)) {
    throw new InputError('loss', `unknown adversarial loss "${loss}"; expected one of ${AAE_ADVERSARIAL_LOSSES.join(', ')}`);
  }
  checkLogits(codeLogits, 'codeLogits');
  return generatorLoss(loss, codeLogits);
}

/**
 * The semi-supervised phase's loss, minimised by the encoder's class head
 * q(y | x) on a labelled batch: the softmax cross-entropy
 * -E[log softmax(logits)_y], from logits through log-softmax (finite for any
 * finite logits), a mean over the batch.
 *
 * @param logits the class head's logits [n, K], K >= 2, float32
 * @param labels the classes [n], int32 in [0, K)
 * @returns the loss, a new scalar the caller disposes
 */
export function classificationLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  checkBatch(logits, 'logits');
  const [n, k] = logits.shape as number[];
  if (logits.rank !== 2 || k < 2) throw new InputError('logits', `expected [n, K] with K >= 2 classes, got [${logits.shape.join(', ')}]`);
  if (!(labels instanceof tf.Tensor) || labels.rank !== 1 || labels.shape[0] !== n || labels.dtype !== 'int32') {
    throw new InputError('labels', `expected int32 [${n}], one class per row of logits`);
  }
  // tf.oneHot turns an out-of-range class into a zero row, a silent loss of 0:
  // check here (n integers, a cheap read).
  const y = labels.dataSync();
  for (let i = 0; i < n; i++) {
    if (y[i] < 0 || y[i] >= k) throw new InputError('labels', `class ${y[i]} at ${i} is outside [0, ${k})`);
  }
  return tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(labels, k)), 1))) as tf.Scalar);
}

/**
 * The clustering mode's batch-level balance term (an addition to the paper's
 * section 6, not in it): KL(mean_x q(y | x) || Cat(K)) over a batch,
 * log K + sum_k m_k log m_k with m the batch mean of the softmax rows; 0 when
 * the batch uses the K categories equally, log K when it puts everything in
 * one. The category discriminator judges one code at a time, so it sees a
 * collapse onto few categories only through how often each one-hot vertex
 * comes up, and its gradient reaches the encoder through a saturated softmax
 * (near zero); this term sees the whole batch's marginal and its gradient
 * does not vanish at a one-hot row. It is the marginal-entropy term of
 * CatGAN (Springenberg 2016) and IMSAT (Hu et al. 2017). m_k is clipped at
 * 1e-12 inside the log so an empty category adds 0, not NaN.
 *
 * @param probabilities softmax rows [n, K], K >= 2, float32
 * @returns the loss, a new scalar the caller disposes
 */
export function categoryBalanceLoss(probabilities: tf.Tensor): tf.Scalar {
  checkBatch(probabilities, 'probabilities');
  const k = probabilities.shape[1] ?? 0;
  if (probabilities.rank !== 2 || k < 2) throw new InputError('probabilities', `expected [n, K] with K >= 2 categories, got [${probabilities.shape.join(', ')}]`);
  return tf.tidy(() => {
    const m = tf.mean(probabilities, 0);
    return tf.add(Math.log(k), tf.sum(tf.mul(m, tf.log(tf.maximum(m, 1e-12))))) as tf.Scalar;
  });
}

function checkBatch(t: tf.Tensor, argument: string): void {
  if (!(t instanceof tf.Tensor)) throw new InputError(argument, 'expected a tensor');
  if (t.rank < 1 || t.shape[0] === 0) throw new InputError(argument, `expected a batch [n, ...] with n >= 1, got [${t.shape.join(', ')}]`);
  if (t.dtype !== 'float32') throw new InputError(argument, `expected float32, got ${t.dtype}`);
}

function checkLogits(logits: tf.Tensor, argument: string): void {
  checkBatch(logits, argument);
  const s = logits.shape;
  if (!(s.length === 1 || (s.length === 2 && s[1] === 1))) {
    throw new InputError(argument, `expected one logit per example, shape [n] or [n, 1], got [${s.join(', ')}]`);
  }
}
