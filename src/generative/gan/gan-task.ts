/**
 * The pool task of data-parallel GAN training: one shard of a discriminator
 * or generator step on the worker's copies of both networks at the trainer's
 * current weights, returning the gradient of the shard's share of the step's
 * loss (gan-objectives.ts) for the stepped network's weights, and both
 * networks' batch-norm statistics after it (see models/data-parallel.ts).
 */
import { tf } from '../../engine/tf.js';
import { modelInWorker } from '../../models/pool-model.js';
import { syncWeights, type WeightsRef } from '../../models/published-weights.js';
import { shardGradients, type ShardGradients } from '../../models/train-task.js';
import { discriminatorObjective, generatorInputs, generatorObjective, type GanObjectiveSpec } from './gan-objectives.js';

/** URL of this module, for the pool's TaskRef. */
export const GAN_TASK_URL = import.meta.url;

/** One shard of a GAN step, as plain data (classes as labels, made one-hot here). */
export interface GanStepPayload {
  step: 'discriminator' | 'generator';
  generator: WeightsRef;
  discriminator: WeightsRef;
  spec: GanObjectiveSpec;
  numClasses: number;
  /** Images in the whole batch (each shard's loss is scaled by its share). */
  batchSize: number;
  /** Latent codes [m, latentDim]. */
  z: Float32Array;
  latentDim: number;
  /** Classes the generator is asked for (conditional GANs), [m]. */
  fakeClasses?: Int32Array;
  /** Discriminator step: the real images [m, h, w, c] and their classes (conditional, [m]). */
  real?: Float32Array;
  shape?: [number, number, number, number];
  realClasses?: Int32Array;
  /** Train the auxiliary classifier on the real classes (acgan). */
  realLabels?: boolean;
  /** infogan: the codes the fakes were drawn with, [m]. */
  codes?: Int32Array;
  /** wgan-gp: the shard's slice of the step's interpolation eps, [m]. */
  penaltyEps?: Float32Array;
}

/** One shard of a discriminator or generator step. */
export async function ganStepTask(p: GanStepPayload): Promise<ShardGradients> {
  const G = await modelInWorker(p.generator.model);
  const D = await modelInWorker(p.discriminator.model);
  syncWeights(G, p.generator);
  syncWeights(D, p.discriminator);
  const m = p.z.length / p.latentDim;
  const share = m / p.batchSize;
  const oneHot = (labels: Int32Array | undefined) => (labels ? (tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), p.numClasses), 'float32')) as tf.Tensor2D) : undefined);
  const z = tf.tensor2d(p.z, [m, p.latentDim]);
  const fakeClass = oneHot(p.fakeClasses);
  const both = [
    { model: G, key: p.generator.model.key },
    { model: D, key: p.discriminator.model.key },
  ];
  const owned: tf.Tensor[] = [z, ...(fakeClass ? [fakeClass] : [])];
  try {
    if (p.step === 'generator') {
      return await shardGradients(G, p.generator.model.key, () => ({ loss: tf.mul(generatorObjective(G, D, p.spec, z, fakeClass, p.fakeClasses), share) as tf.Scalar }), both);
    }
    const real = tf.tensor4d(p.real!, p.shape!);
    const realClass = oneHot(p.realClasses);
    const realLabels = p.realLabels && p.realClasses ? tf.tensor1d(p.realClasses, 'int32') : undefined;
    const penalty = p.penaltyEps ? tf.tensor1d(p.penaltyEps) : 0;
    // The fakes outside the tape: the discriminator step needs no gradient through G.
    const fake = tf.tidy(() => G.apply(generatorInputs(z, fakeClass), { training: true }) as tf.Tensor4D);
    owned.push(real, fake, ...([realClass, realLabels, typeof penalty === 'number' ? undefined : penalty].filter(Boolean) as tf.Tensor[]));
    return await shardGradients(
      D,
      p.discriminator.model.key,
      () => {
        const r = discriminatorObjective(D, p.spec, { real, fake, realClass, fakeClass, realLabels, codes: p.codes, penalty });
        return { loss: tf.mul(r.loss, share) as tf.Scalar, extras: [tf.mul(r.realMean, share) as tf.Scalar, tf.mul(r.fakeMean, share) as tf.Scalar] };
      },
      both,
    );
  } finally {
    tf.dispose(owned);
  }
}
