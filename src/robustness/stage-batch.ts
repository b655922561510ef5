/**
 * One engine batch of an evaluation: one stage's attack on a set of points
 * (each with its own target and seed), run through `runAttack`, so every
 * candidate is re-predicted and checked against the bounds and the eps-ball.
 * Targeted stages use the `misclassification` criterion: an iterate that leaves
 * the true class breaks the point whatever class it lands in (AutoAttack's
 * APGD-T and FAB-T). Runs wherever it is called: here, or in a pool worker
 * through pool-task.ts, with the same result.
 */
import type { Classifier } from '../models/classifier.js';
import { findAttack } from '../attacks/index.js';
import { runAttack } from '../attacks/run.js';
import type { Norm } from '../attacks/types.js';
import { InputError } from '../errors.js';

/** A stage batch as plain data (it crosses threads and queues). */
export interface StageBatchInput {
  attack: string;
  params: Record<string, unknown>;
  norm: Norm;
  eps: number;
  /** Clean images, NHWC, flattened. */
  images: Float32Array;
  imageShape: [number, number, number];
  labels: Int32Array;
  /** One target per point for a targeted stage, else null. */
  targets: Int32Array | null;
  /** One seed per point (see RunAttackOptions.exampleSeeds). */
  exampleSeeds: Uint32Array;
}

/** What the batch found and spent. */
export interface StageBatchOutput {
  /** 1 where the point's returned image is a valid misclassified input inside the ball. */
  success: Uint8Array;
  /** Prediction on each returned image. */
  predictions: Int32Array;
  /** The returned images (the clean one where the attack failed). */
  adversarial: Float32Array;
  gradients: number;
  queries: number;
  /** Busy seconds of the thread that ran it. */
  seconds: number;
}

/** Runs one stage batch on `classifier`. */
export async function runStageBatch(classifier: Classifier, b: StageBatchInput): Promise<StageBatchOutput> {
  const attack = findAttack(b.attack);
  if (!attack) throw new InputError('attack', `unknown attack "${b.attack}"`);
  const count = b.labels.length;
  const r = await runAttack(attack, classifier, { images: b.images, labels: b.labels, imageShape: b.imageShape, count }, {
    norm: b.norm,
    eps: b.eps,
    batchSize: count,
    params: b.params,
    criterion: 'misclassification',
    exampleSeeds: b.exampleSeeds,
    ...(b.targets ? { targeted: b.targets } : {}),
  });
  return { success: r.success, predictions: r.adversarialPredictions, adversarial: r.adversarial, gradients: r.gradients, queries: r.queries, seconds: r.seconds };
}
