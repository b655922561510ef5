/**
 * The pool tasks of pooled adversarial training, on the worker's copy of the
 * model at the trainer's current weights: the inner attack on a slice of a
 * training batch (pooled.ts), and the data-parallel step, which also takes the
 * defense's loss gradient on that slice in the same task.
 */
import { tf } from '../engine/tf.js';
import { modelInWorker } from '../models/pool-model.js';
import { syncWeights, type WeightsRef } from '../models/published-weights.js';
import { shardGradients, type ShardGradients } from '../models/train-task.js';
import { attackFrom, createDefense } from './defenses.js';
import type { DefenseConfig } from './types.js';

/** URL of this module, for the pool's TaskRef. */
export const DEFENSE_TASK_URL = import.meta.url;

/** One slice of a batch, as plain data. */
export interface AscentPayload extends WeightsRef {
  config: DefenseConfig;
  x: Float32Array;
  start: Float32Array;
  y: Int32Array;
  shape: [number, number, number, number];
  eps: number;
}

/** A slice of a batch for a data-parallel adversarial-training step. */
export interface DefendedGradientPayload extends AscentPayload {
  numClasses: number;
  /** Images in the whole batch (the slice's mean loss is scaled by its share of them). */
  batchSize: number;
  /** The global step, and steps per epoch (the defense's schedules). */
  step: number;
  stepsPerEpoch: number;
}

/** The slice's attack start as a tensor: one row per image, or several (consistency's noisy copies, image-major). */
function startTensor(p: AscentPayload): tf.Tensor4D {
  const [, h, w, c] = p.shape;
  return tf.tensor4d(p.start, [p.start.length / (h * w * c), h, w, c]);
}

/** Runs the defense's inner attack on the slice; returns the perturbed images. */
export async function ascentTask(p: AscentPayload): Promise<Float32Array> {
  const model = await modelInWorker(p.model);
  syncWeights(model, p);
  const out = tf.tidy(() => attackFrom(p.config, model, tf.tensor4d(p.x, p.shape), tf.tensor1d(p.y, 'int32'), startTensor(p), p.eps));
  try {
    return (await out.data()) as Float32Array;
  } finally {
    out.dispose();
  }
}

/** The inner attack on the slice (inference mode), then the gradient of the defense's loss on it (training mode). */
export async function defendedGradientTask(p: DefendedGradientPayload): Promise<ShardGradients> {
  const model = await modelInWorker(p.model);
  syncWeights(model, p);
  const defense = createDefense(p.config);
  const x = tf.tensor4d(p.x, p.shape);
  const y = tf.tensor1d(p.y, 'int32');
  const perturbed = tf.tidy(() => attackFrom(p.config, model, x, y, startTensor(p), p.eps));
  try {
    return await shardGradients(model, p.model.key, (m) => {
      const { loss, logits } = defense.loss(m, x, perturbed, y, p.numClasses, { eps: p.eps, step: p.step, stepsPerEpoch: p.stepsPerEpoch });
      return { loss: tf.mul(loss, p.shape[0] / p.batchSize) as tf.Scalar, correct: tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), y), 'int32')) as tf.Scalar };
    });
  } finally {
    tf.dispose([x, y, perturbed]);
  }
}
