/**
 * The WorkerPool task behind `runAttack(..., { pool })`: one batch of one
 * attack, run in a worker on a rebuilt copy of the caller's classifier. The
 * driver in the main thread still validates, chooses targets and re-verifies;
 * only the attack's own work (its gradients and queries) moves to workers.
 *
 * A batch gets the same seed and the same images as in a run without a pool,
 * and every worker runs the same backend and kernels, so a pooled run returns
 * exactly the images of an unpooled one.
 */
import { tf } from '../engine/tf.js';
import { classifierInWorker, type SharedClassifier } from '../models/pool-model.js';
import { Rng } from '../util/rng.js';
import { InputError } from '../errors.js';
import { findAttack } from './index.js';
import type { Criterion, Norm } from './types.js';

/** URL of this module, for the pool's TaskRef. */
export const ATTACK_TASK_URL = import.meta.url;

/** One batch of one attack, as plain data. */
export interface AttackBatchPayload {
  classifier: SharedClassifier;
  attack: string;
  params: Record<string, unknown>;
  /** Clean images, NHWC, flattened. */
  x: Float32Array;
  shape: [number, number, number, number];
  labels: Int32Array;
  targets: Int32Array | null;
  norm: Norm;
  /** Infinity travels fine through structured clone. */
  eps: number;
  criterion: Criterion;
  /** Seed of the batch's Rng. */
  seed: number;
  exampleSeeds: Uint32Array;
}

/** Candidate images of the batch and what the attack spent on them. */
export interface AttackBatchOutput {
  adversarial: Float32Array;
  queries: number;
  gradients: number;
}

/** Runs one attack batch (see the module comment). */
export async function attackBatchTask(p: AttackBatchPayload): Promise<AttackBatchOutput> {
  const attack = findAttack(p.attack);
  if (!attack) throw new InputError('attack', `unknown attack "${p.attack}"`);
  const classifier = await classifierInWorker(p.classifier);
  const x = tf.tensor4d(p.x, p.shape);
  const labels = tf.tensor1d(p.labels, 'int32');
  const targets = p.targets ? tf.tensor1d(p.targets, 'int32') : undefined;
  let candidate: tf.Tensor4D | undefined;
  try {
    candidate = await attack.attackBatch({ classifier, x, labels, targets, norm: p.norm, eps: p.eps, criterion: p.criterion, rng: new Rng(p.seed), exampleSeeds: p.exampleSeeds }, p.params);
    const adversarial = (await candidate.data()) as Float32Array;
    return { adversarial, ...classifier.counts };
  } finally {
    tf.dispose([x, labels, targets, candidate].filter((t) => t !== undefined) as tf.Tensor[]);
    classifier.dispose();
  }
}
