/**
 * The discriminator's and the generator's objectives of one GAN step, shared
 * by the single-thread trainer (train-gan.ts) and the data-parallel shard task
 * (gan-task.ts), so both compute the same losses with the same operations.
 * Every term is a mean over the batch, so a shard's objective times its share
 * of the batch adds up to the batch's.
 */
import { tf, type tfl } from '../../engine/tf.js';
import { auxiliaryClassifierLoss, discriminatorLoss, generatorLoss, gradientPenalty, type GanLoss } from '../losses.js';

/** What the objectives need besides the tensors. */
export interface GanObjectiveSpec {
  loss: GanLoss;
  labelSmoothing?: number;
  gpLambda: number;
  /** Report the discriminator's outputs as probabilities (minimax, ns) rather than raw scores. */
  probabilities: boolean;
  /** The discriminator takes the class as a second input (cgan). */
  discriminatorTakesClass: boolean;
}

/** D's real/fake logits, and its class logits when it has an auxiliary classifier (training mode). */
export function discriminate(D: tfl.LayersModel, spec: GanObjectiveSpec, x: tf.Tensor, c?: tf.Tensor2D): { logits: tf.Tensor; classLogits?: tf.Tensor } {
  const out = D.apply(c && spec.discriminatorTakesClass ? [x, c] : x, { training: true }) as tf.Tensor | tf.Tensor[];
  return Array.isArray(out) ? { logits: out[0], classLogits: out[1] } : { logits: out };
}

/** The generator's inputs: the code, and the one-hot class when conditional. */
export function generatorInputs(z: tf.Tensor2D, c?: tf.Tensor2D): tf.Tensor | tf.Tensor[] {
  return c ? [z, c] : z;
}

/**
 * The discriminator's loss on a real and a fake batch (each normalised on its
 * own), plus the auxiliary classifier's cross-entropy on the real labels
 * (acgan) or the fakes' codes (infogan), plus wgan-gp's penalty (`penalty`: the
 * step's seed, or the shard's eps). Also the mean outputs on real and fake.
 */
export function discriminatorObjective(
  D: tfl.LayersModel,
  spec: GanObjectiveSpec,
  batch: { real: tf.Tensor; fake: tf.Tensor; realClass?: tf.Tensor2D; fakeClass?: tf.Tensor2D; realLabels?: tf.Tensor; codes?: Int32Array; penalty: number | tf.Tensor1D },
): { loss: tf.Scalar; realMean: tf.Scalar; fakeMean: tf.Scalar } {
  const real = discriminate(D, spec, batch.real, batch.realClass);
  const r = real.logits;
  const judged = discriminate(D, spec, batch.fake, batch.fakeClass);
  const f = judged.logits;
  const realMean = tf.mean(spec.probabilities ? tf.sigmoid(r) : r) as tf.Scalar;
  const fakeMean = tf.mean(spec.probabilities ? tf.sigmoid(f) : f) as tf.Scalar;
  let loss = discriminatorLoss(spec.loss, r, f, spec.labelSmoothing !== undefined ? { labelSmoothing: spec.labelSmoothing } : {});
  if (batch.realLabels) loss = tf.add(loss, auxiliaryClassifierLoss(real.classLogits!, batch.realLabels)) as tf.Scalar;
  if (batch.codes) loss = tf.add(loss, auxiliaryClassifierLoss(judged.classLogits!, tf.tensor1d(batch.codes, 'int32'))) as tf.Scalar;
  if (spec.loss === 'wgan-gp') {
    const critic = (x: tf.Tensor) => discriminate(D, spec, x, batch.realClass).logits;
    loss = tf.add(loss, gradientPenalty(critic, batch.real, batch.fake, batch.penalty, spec.gpLambda)) as tf.Scalar;
  }
  return { loss, realMean, fakeMean };
}

/** The generator's loss on fresh fakes (and the auxiliary classifier's cross-entropy for the classes asked for). */
export function generatorObjective(G: tfl.LayersModel, D: tfl.LayersModel, spec: GanObjectiveSpec, z: tf.Tensor2D, fakeClass?: tf.Tensor2D, fakeLabels?: Int32Array): tf.Scalar {
  const fake = G.apply(generatorInputs(z, fakeClass), { training: true }) as tf.Tensor4D;
  const judged = discriminate(D, spec, fake, fakeClass);
  const loss = generatorLoss(spec.loss, judged.logits);
  return judged.classLogits ? (tf.add(loss, auxiliaryClassifierLoss(judged.classLogits, tf.tensor1d(fakeLabels!, 'int32'))) as tf.Scalar) : loss;
}
