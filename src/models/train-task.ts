/**
 * The pool task of data-parallel training: one shard of a batch on the
 * worker's copy of the model at the trainer's current weights, returning the
 * gradient of the shard's share of the batch loss (its per-example losses
 * summed and divided by the whole batch's size, so the shards' gradients add
 * up to the batch mean's), and after the step the weights that are not
 * trained (batch norm's moving statistics), which the trainer averages.
 */
import { tf, type tfl } from '../engine/tf.js';
import { modelInWorker } from './pool-model.js';
import { forgetSyncedWeights, syncWeights, type WeightsRef } from './published-weights.js';

/** URL of this module, for the pool's TaskRef. */
export const TRAIN_TASK_URL = import.meta.url;

/** One shard of a plain (cross-entropy) training batch. */
export interface GradientPayload extends WeightsRef {
  x: Float32Array;
  y: Int32Array;
  shape: [number, number, number, number];
  numClasses: number;
  /** Images in the whole batch (the divisor of every shard's loss). */
  batchSize: number;
}

/** What a shard gives back. */
export interface ShardGradients {
  /** d(shard loss)/d(weight), every trainable weight in `model.trainableWeights` order, concatenated. */
  grads: Float32Array;
  /** The shard's share of the batch loss (sum of its losses / batch size). */
  loss: number;
  correct: number;
  /** Sums of the objective's extra figures (see {@link ShardObjective.extras}). */
  extras: number[];
  /** The weights not trained (`model.nonTrainableWeights` order, model after model) after the step; empty without batch norm. */
  state: Float32Array;
}

/** Cross-entropy gradients of one shard. */
export async function gradientTask(p: GradientPayload): Promise<ShardGradients> {
  const model = await modelInWorker(p.model);
  syncWeights(model, p);
  return shardGradients(model, p.model.key, (m) => {
    const x = tf.tensor4d(p.x, p.shape);
    const y = tf.tensor1d(p.y, 'int32');
    const logits = m.apply(x, { training: true }) as tf.Tensor2D;
    const losses = tf.losses.softmaxCrossEntropy(tf.oneHot(y, p.numClasses), logits, undefined, undefined, tf.Reduction.NONE);
    return { loss: tf.div(tf.sum(losses), p.batchSize) as tf.Scalar, correct: tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'int32')) as tf.Scalar };
  });
}

/** What a shard's loss function gives: its share of the batch loss, and figures to read out with it. */
export interface ShardObjective {
  loss: tf.Scalar;
  correct?: tf.Scalar;
  /** More scalars the trainer sums over the shards (e.g. a GAN's mean discriminator outputs, scaled like the loss). */
  extras?: tf.Scalar[];
}

/**
 * The gradients of `lossOf(trained).loss` with respect to `trained`'s trainable
 * weights, read out with the loss, the correct count, the extras and the
 * non-trained weights of `stateOf` (tensors made inside `lossOf` are freed
 * here). Training mode moves batch norm's statistics: the synced versions of
 * `stateOf`'s models are forgotten (`keys`), so the next shard on this thread
 * starts from the published ones again.
 */
export async function shardGradients(trained: tfl.LayersModel, key: string, lossOf: (model: tfl.LayersModel) => ShardObjective, stateOf: { model: tfl.LayersModel; key: string }[] = [{ model: trained, key }]): Promise<ShardGradients> {
  return variableGradients(
    trained.trainableWeights.map((w) => w.read() as tf.Variable),
    () => lossOf(trained),
    stateOf,
  );
}

/**
 * {@link shardGradients} for any list of variables (several models' weights,
 * or part of one model's): the gradients of `lossOf().loss` with respect to
 * `variables`, concatenated in their order.
 */
export async function variableGradients(variables: readonly tf.Variable[], lossOf: () => ShardObjective, stateOf: { model: tfl.LayersModel; key: string }[] = []): Promise<ShardGradients> {
  let correct: tf.Scalar | undefined;
  let extras: tf.Scalar[] = [];
  const { value, grads } = tf.variableGrads(() => {
    const r = lossOf();
    correct = r.correct ? tf.keep(r.correct) : undefined;
    extras = (r.extras ?? []).map((e) => tf.keep(e));
    return r.loss;
  }, variables as tf.Variable[]);
  for (const s of stateOf) if (s.model.nonTrainableWeights.length) forgetSyncedWeights(s.key);
  try {
    const out = new Float32Array(variables.reduce((a, v) => a + v.size, 0));
    let offset = 0;
    for (const v of variables) {
      out.set((await grads[v.name].data()) as Float32Array, offset);
      offset += v.size;
    }
    const stateWeights = stateOf.flatMap((s) => s.model.nonTrainableWeights);
    const stateSizes = stateWeights.map((w) => (w.shape as number[]).reduce((a, b) => a * b, 1));
    const state = new Float32Array(stateSizes.reduce((a, b) => a + b, 0));
    offset = 0;
    for (let i = 0; i < stateWeights.length; i++) {
      state.set((await stateWeights[i].read().data()) as Float32Array, offset);
      offset += stateSizes[i];
    }
    const extraValues: number[] = [];
    for (const e of extras) extraValues.push((await e.data())[0]);
    return { grads: out, loss: (await value.data())[0], correct: correct ? (await correct.data())[0] : 0, extras: extraValues, state };
  } finally {
    tf.dispose([value, ...(correct ? [correct] : []), ...extras, ...Object.values(grads)]);
  }
}
