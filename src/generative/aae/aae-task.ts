/**
 * The pool task of data-parallel AAE training: one shard of one phase of a
 * batch (train-aae.ts) on the worker's copies of the nets at the trainer's
 * current weights, returning the gradients of the shard's share of the
 * phase's loss (aae-objectives.ts). Every random draw (prior samples, the
 * category discriminator's noise, the labelled batch and its augmentation)
 * is made by the trainer from the run's Rng and sliced into the payloads, so
 * a run does not depend on which worker computes what.
 */
import { tf, type tfl } from '../../engine/tf.js';
import { modelInWorker } from '../../models/pool-model.js';
import { syncWeights, type WeightsRef } from '../../models/published-weights.js';
import { variableGradients, type ShardGradients } from '../../models/train-task.js';
import { aaeVariables, classificationObjective, discriminatorInputs, discriminatorObjective, encode, encoderObjective, reconstructionObjective } from './aae-objectives.js';
import type { AaeAdversarialLoss, ReconstructionLoss } from './losses.js';

/** URL of this module, for the pool's TaskRef. */
export const AAE_TASK_URL = import.meta.url;

/** The phases a shard computes: `latent` is phase 2a, both discriminators on the same codes. */
export type AaeShardPhase = 'reconstruction' | 'latent' | 'encoder' | 'classification';

/** One shard of one phase, as plain data. */
export interface AaeStepPayload {
  phase: AaeShardPhase;
  /** The nets at the trainer's weights: the encoder always, the others where the phase uses them. */
  encoder: WeightsRef;
  decoder?: WeightsRef;
  discriminator?: WeightsRef;
  category?: WeightsRef;
  /** The class head's categories (0: no class head). */
  categories: number;
  /** The shard's images [m, h, w, c] (phase 3: its part of the labelled batch). */
  x: Float32Array;
  shape: [number, number, number, number];
  /** Images in the whole batch: each shard's loss is scaled by its share. */
  batchSize: number;
  reconstructionLoss: ReconstructionLoss;
  adversarialLoss: AaeAdversarialLoss;
  /** Supervised prior: the images' classes and the number of components (one-hot next to the code). */
  labels?: Int32Array;
  components?: number;
  /** Phase 2a: prior samples [m, latentDim]. */
  zPrior?: Float32Array;
  latentDim: number;
  /** Phase 2a, categorical: one-hot prior samples [m, K], and the noise on them and on q(y | x) (empty: no noise). */
  yPrior?: Float32Array;
  priorNoise?: Float32Array;
  codeNoise?: Float32Array;
  /** Phase 2b, categorical: the noise on q(y | x) [m, K] (empty: no noise). */
  qNoise?: Float32Array;
  /** Phase 2b: the balance weight and the balance term's gradient at the batch's mean q(y | x) [K]. */
  balance?: number;
  balanceGradient?: Float32Array;
  /** Phase 3: the labelled images' classes [m]. */
  classes?: Int32Array;
}

/**
 * One shard of one phase. Returns one gradient set, except phase 2a in the
 * categorical mode: the style discriminator's, then the category
 * discriminator's, whose extras end with the shard's sum of q(y | x) over its
 * images (K numbers; the trainer needs the batch mean for the balance term).
 */
export async function aaeStepTask(p: AaeStepPayload): Promise<ShardGradients[]> {
  const E = await net(p.encoder);
  const G = p.decoder ? await net(p.decoder) : undefined;
  const D = p.discriminator ? await net(p.discriminator) : undefined;
  const C = p.category ? await net(p.category) : undefined;
  const vars = aaeVariables({ encoder: E, decoder: G, discriminator: D, categoryDiscriminator: C ?? null, categories: p.categories });
  const m = p.shape[0];
  const share = m / p.batchSize;
  const owned: tf.Tensor[] = [];
  const own = <T extends tf.Tensor>(t: T): T => (owned.push(t), t);
  const x = own(tf.tensor4d(p.x, p.shape));
  const label = p.labels ? own(tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(p.labels!, 'int32'), p.components!), 'float32')) as tf.Tensor2D) : undefined;
  const withNoise = (y: tf.Tensor2D, noise: Float32Array | undefined) => (noise?.length ? tf.tidy(() => tf.add(y, tf.tensor2d(noise, y.shape)) as tf.Tensor2D) : y);
  const scaled = (t: tf.Scalar) => tf.mul(t, share) as tf.Scalar;
  try {
    switch (p.phase) {
      case 'reconstruction':
        return [await variableGradients(vars.autoencoder, () => ({ loss: scaled(reconstructionObjective(E, G!, x, p.reconstructionLoss)) }))];
      case 'classification': {
        const y = own(tf.tensor1d(p.classes!, 'int32'));
        return [await variableGradients(vars.classifier, () => ({ loss: scaled(classificationObjective(E, x, y)) }))];
      }
      case 'latent': {
        // The codes outside the tape: the discriminators' steps need no gradient through the encoder.
        const codes = tf.tidy(() => {
          const c = encode(E, x);
          return { z: c.z, y: c.logits ? (tf.softmax(c.logits) as tf.Tensor2D) : undefined };
        });
        own(codes.z);
        const zPrior = own(tf.tensor2d(p.zPrior!, [m, p.latentDim]));
        const discriminatorStep = (netOf: tfl.LayersModel, variables: tf.Variable[], prior: tf.Tensor | tf.Tensor[], code: tf.Tensor | tf.Tensor[], more: () => tf.Scalar[] = () => []) =>
          variableGradients(variables, () => {
            const r = discriminatorObjective(netOf, prior, code);
            return { loss: scaled(r.loss), extras: [scaled(r.priorMean), scaled(r.codeMean), ...more()] };
          });
        const style = await discriminatorStep(D!, vars.discriminator, discriminatorInputs(zPrior, label), discriminatorInputs(codes.z, label));
        if (!C || !codes.y) return [style];
        own(codes.y);
        const q = codes.y;
        const yPrior = own(tf.tensor2d(p.yPrior!, [m, p.categories]));
        const yIn = own(withNoise(yPrior, p.priorNoise));
        const codeIn = own(withNoise(q, p.codeNoise));
        const category = await discriminatorStep(C, vars.category, yIn, codeIn, () => tf.unstack(tf.sum(q, 0)) as tf.Scalar[]);
        return [style, category];
      }
      case 'encoder':
        return [
          await variableGradients(vars.encoder, () => {
            const r = encoderObjective(E, D!, C, x, label, p.adversarialLoss, (q) => withNoise(q, p.qNoise));
            if (!r.category) return { loss: scaled(r.style), extras: [scaled(r.style)] };
            let loss = tf.add(scaled(r.style), scaled(r.category)) as tf.Scalar;
            // The batch-level balance term, linearised at the batch's mean q: its
            // gradient is balance * g . dq_i/dtheta / n summed over the images,
            // so the shards' parts add up to the whole batch's exactly.
            if (p.balance && p.balanceGradient) loss = tf.add(loss, tf.mul(p.balance / p.batchSize, tf.sum(tf.mul(r.q!, tf.tensor1d(p.balanceGradient))))) as tf.Scalar;
            return { loss, extras: [scaled(r.style), scaled(r.category)] };
          }),
        ];
    }
  } finally {
    tf.dispose(owned.filter((t, i) => owned.indexOf(t) === i));
  }
}

async function net(ref: WeightsRef): Promise<tfl.LayersModel> {
  const model = await modelInWorker(ref.model);
  syncWeights(model, ref);
  return model;
}
