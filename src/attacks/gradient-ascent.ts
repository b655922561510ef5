import { tf } from '../engine/tf.js';
import { readOne } from '../engine/read.js';
import type { BatchContext } from './types.js';
import { normOps } from './norms.js';
import { crossEntropy, targetedCrossEntropy } from './losses.js';

/** The loss an attack ascends, per example, given logits and (true labels or targets). */
export type AttackLoss = (logits: tf.Tensor2D, ctx: BatchContext) => tf.Tensor1D;

/** Cross-entropy away from the label, or toward the target when targeted. */
export const defaultLoss: AttackLoss = (logits, ctx) => (ctx.targets ? targetedCrossEntropy(logits, ctx.targets) : crossEntropy(logits, ctx.labels));

export interface AscentOptions {
  steps: number;
  /** Step length in the norm of the attack (input scale). */
  stepSize: number;
  randomStart: boolean;
  /** Total runs, each after the first from a new random start, for the examples not yet broken. */
  runs: number;
  /** MI-FGSM momentum decay mu (0 = plain PGD). */
  momentum: number;
  loss?: AttackLoss;
}

/**
 * The loop shared by FGSM, BIM, PGD and MI-FGSM (torchattacks-style, norm-generic
 * as in Foolbox): optional random start; then `steps` times: loss gradient,
 * step along the norm's steepest direction, project onto the eps-ball, clip to
 * the bounds. Per-example early stopping: an example keeps its first iterate that
 * meets the criterion, and the loop ends once every example has. Reads one
 * flag per step from the device (`await`), nothing synchronously.
 */
export async function gradientAscent(ctx: BatchContext, o: AscentOptions): Promise<tf.Tensor4D> {
  const { classifier, x, labels, targets, eps } = ctx;
  const ops = normOps(ctx.norm);
  const [lo, hi] = classifier.bounds;
  const loss = o.loss ?? defaultLoss;
  const n = x.shape[0];
  const reached = (logits: tf.Tensor2D) => {
    const pred = tf.argMax(logits, 1);
    return targets && ctx.criterion === 'target' ? tf.equal(pred, targets) : tf.notEqual(pred, labels);
  };
  let best = tf.keep(x.clone());
  let done = tf.keep(tf.zeros([n], 'bool'));
  /** Keeps each example's first success among `point` (given its logits); returns whether all are done, a scalar to read after the tidy. */
  const record = (logits: tf.Tensor2D, point: tf.Tensor4D): tf.Scalar =>
    tf.tidy(() => {
      const hit = tf.logicalAnd(reached(logits), tf.logicalNot(done));
      const newBest = tf.where(tf.broadcastTo(tf.reshape(hit, [n, 1, 1, 1]), x.shape), point, best) as tf.Tensor4D;
      const newDone = tf.logicalOr(done, hit);
      best.dispose();
      done.dispose();
      best = tf.keep(newBest);
      done = tf.keep(newDone);
      return tf.all(newDone);
    });
  const allDoneIn = async (flag: tf.Scalar): Promise<boolean> => (await readOne(flag))[0] === 1;
  for (let run = 0; run < o.runs; run++) {
    let adv = tf.tidy(() => (o.randomStart ? tf.clipByValue(tf.add(x, ops.randomStart(x.shape, eps, ctx.rng.seed())), lo, hi) : x.clone()) as tf.Tensor4D);
    let velocity: tf.Tensor4D | null = o.momentum > 0 ? tf.zerosLike(x) : null;
    let allDone = false;
    for (let step = 0; step < o.steps && !allDone; step++) {
      // The gradient's own forward pass tells whether the current iterate already
      // succeeded: no extra forward pass per step for early stopping. The step
      // itself is taken after the flag is read, only when some example is left.
      const { grad, flag } = tf.tidy(() => {
        const { grad, logits } = classifier.valueAndGradient(adv, (z) => loss(z, ctx));
        return { grad, flag: record(logits, adv) };
      });
      let next: tf.Tensor4D | undefined;
      try {
        allDone = await allDoneIn(flag);
        if (!allDone) {
          next = tf.tidy(() => {
            let g = grad;
            if (velocity) {
              // Dong et al. 2018: accumulate L1-normalized gradients with decay mu.
              const l1 = tf.reshape(tf.sum(tf.abs(tf.reshape(g, [n, -1])), 1), [-1, 1, 1, 1]);
              const v = tf.add(tf.mul(o.momentum, velocity), tf.div(g, tf.add(l1, 1e-12))) as tf.Tensor4D;
              velocity.dispose();
              velocity = tf.keep(v);
              g = v;
            }
            const moved = tf.add(adv, tf.mul(o.stepSize, ops.direction(g)));
            const delta = ops.project(tf.sub(moved, x) as tf.Tensor4D, eps);
            return tf.clipByValue(tf.add(x, delta), lo, hi) as tf.Tensor4D;
          });
        }
      } finally {
        grad.dispose();
      }
      if (next) {
        adv.dispose();
        adv = next;
      }
    }
    // The last iterate has not been scored yet.
    if (!allDone) allDone = await allDoneIn(tf.tidy(() => record(classifier.logits(adv), adv)));
    // Examples never broken keep this run's last iterate.
    const merged = tf.tidy(() => tf.where(tf.broadcastTo(tf.reshape(done, [n, 1, 1, 1]), x.shape), best, adv) as tf.Tensor4D);
    best.dispose();
    best = merged;
    adv.dispose();
    velocity?.dispose();
    if (allDone) break;
  }
  done.dispose();
  return best;
}
