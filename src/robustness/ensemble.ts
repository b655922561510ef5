/**
 * One batch of a robustness evaluation: every stage of a suite, in order, on
 * the points no earlier stage broke; the verdict per example is the worst case
 * over the stages (AutoAttack, Croce & Hein 2020). Each stage goes through
 * runAttack, so every adversarial example is re-predicted and checked against
 * the bounds and the eps-ball before it counts.
 *
 * An example counts as broken when a stage returns a valid input inside the
 * ball that the model misclassifies, whatever class it lands in: targeted
 * stages run with the `misclassification` criterion, so any iterate that
 * leaves the true class counts, not only one at the target (AutoAttack's
 * APGD-T and FAB-T keep any misclassified iterate).
 */
import { tf } from '../engine/tf.js';
import type { Classifier } from '../models/classifier.js';
import { findAttack } from '../attacks/index.js';
import { runAttack } from '../attacks/run.js';
import type { AttackInput } from '../attacks/validate.js';
import { deriveSeed } from '../util/rng.js';
import { take } from '../data/split.js';
import type { Suite } from './types.js';

/** Images per attack call below which target ranks of a targeted stage are attacked together. */
const RANK_BATCH = 64;

/** Marks in {@link EnsembleBatchResult.brokenBy} besides a stage index. */
export const ROBUST = -1;
export const MISCLASSIFIED = -2;

/** What a stage cost and did on one batch. */
export interface StageBatchFigures {
  /** Examples it broke that no earlier stage had broken. */
  broken: number;
  /** Images it attacked, summed over target ranks. */
  attacked: number;
  gradients: number;
  queries: number;
  seconds: number;
  /** With allPoints: examples correctly classified that this stage alone leaves unbroken. */
  standaloneRobust?: number;
}

/** The per-example verdicts of one batch (plain data: it crosses threads and goes to checkpoints). */
export interface EnsembleBatchResult {
  count: number;
  cleanPredictions: Int32Array;
  /** Prediction on the final image: the adversarial one where broken, else the clean one. */
  finalPredictions: Int32Array;
  /** Stage index that broke the example first, {@link ROBUST} or {@link MISCLASSIFIED}. */
  brokenBy: Int8Array;
  /** The adversarial image where broken, else the clean image (NHWC, flattened); omitted when not asked for. */
  adversarial?: Float32Array;
  stages: StageBatchFigures[];
}

/** Options of {@link evaluateBatch}. */
export interface EnsembleOptions {
  suite: Suite;
  eps: number;
  /** Seed of this batch; each stage and target rank derives its own from it. */
  seed: number;
  /**
   * Run every stage on every correctly classified point (not only those still
   * robust) to measure each stage alone; the worst-case verdict is the same,
   * the cost much higher. Default false.
   */
  allPoints?: boolean;
  /** Keep the adversarial images (default true). */
  keepImages?: boolean;
}

/** Evaluates one batch with a suite (see the module comment). */
export async function evaluateBatch(classifier: Classifier, input: AttackInput, options: EnsembleOptions): Promise<EnsembleBatchResult> {
  const { suite, eps, seed } = options;
  const n = input.count;
  const size = input.imageShape[0] * input.imageShape[1] * input.imageShape[2];
  const labels = input.labels;
  const cleanLogits = logitsOf(classifier, input.images, n, input.imageShape);
  const k = classifier.numClasses;
  const cleanPredictions = new Int32Array(n);
  for (let i = 0; i < n; i++) cleanPredictions[i] = argmax(cleanLogits, i * k, k);
  const finalPredictions = cleanPredictions.slice();
  const brokenBy = new Int8Array(n).fill(ROBUST);
  for (let i = 0; i < n; i++) if (cleanPredictions[i] !== labels[i]) brokenBy[i] = MISCLASSIFIED;
  const keep = options.keepImages ?? true;
  const adversarial = keep ? input.images.slice() : undefined;
  // Target classes by rank of the clean logits (rank 1 = the predicted class), as AutoAttack orders them.
  const ranked = Array.from({ length: n }, (_, i) => rankClasses(cleanLogits, i * k, k));

  const stages: StageBatchFigures[] = [];
  for (let s = 0; s < suite.stages.length; s++) {
    const stage = suite.stages[s];
    const attack = findAttack(stage.attack)!;
    const figures: StageBatchFigures = { broken: 0, attacked: 0, gradients: 0, queries: 0, seconds: 0 };
    // Points this stage still has to break: robust ones, or every correct one with allPoints.
    const open = new Uint8Array(n);
    for (let i = 0; i < n; i++) open[i] = brokenBy[i] === ROBUST || (options.allPoints && brokenBy[i] !== MISCLASSIFIED) ? 1 : 0;
    const ranks = stage.targetClasses ? Array.from({ length: stage.targetClasses }, (_, r) => r + 2) : [0];
    for (let r = 0; r < ranks.length; ) {
      const idx: number[] = [];
      for (let i = 0; i < n; i++) if (open[i]) idx.push(i);
      if (!idx.length) break;
      // Few points left: several target ranks in one call, so the batch stays full
      // (a gradient step on 1 image costs a third of one on 32). With many points,
      // one rank at a time, as AutoAttack does, so later ranks skip broken points.
      const together = Math.max(1, Math.min(ranks.length - r, Math.floor(RANK_BATCH / idx.length)));
      const chunk = ranks.slice(r, r + together);
      r += together;
      const rows = chunk.flatMap((rank) => idx.map((i) => ({ i, rank })));
      const sub = take(input, rows.map((row) => row.i), size);
      const result = await runAttack(attack, classifier, sub, {
        norm: suite.norm,
        eps,
        seed: deriveSeed(seed, `${stage.name}:${chunk[0]}`),
        batchSize: rows.length,
        params: stage.params,
        criterion: 'misclassification',
        ...(chunk[0] ? { targeted: Int32Array.from(rows, ({ i, rank }) => ranked[i][rank - 1]) } : {}),
      });
      figures.attacked += rows.length;
      figures.gradients += result.gradients;
      figures.queries += result.queries;
      figures.seconds += result.seconds;
      rows.forEach(({ i }, j) => {
        if (result.adversarialPredictions[j] === labels[i]) return;
        open[i] = 0;
        if (brokenBy[i] !== ROBUST) return;
        brokenBy[i] = s;
        figures.broken++;
        finalPredictions[i] = result.adversarialPredictions[j];
        adversarial?.set(result.adversarial.subarray(j * size, (j + 1) * size), i * size);
      });
    }
    if (options.allPoints) {
      let robust = 0;
      for (let i = 0; i < n; i++) if (brokenBy[i] !== MISCLASSIFIED && open[i]) robust++;
      figures.standaloneRobust = robust;
    }
    stages.push(figures);
  }
  return { count: n, cleanPredictions, finalPredictions, brokenBy, ...(adversarial ? { adversarial } : {}), stages };
}

function logitsOf(classifier: Classifier, images: Float32Array, n: number, shape: readonly [number, number, number]): Float32Array {
  return tf.tidy(() => classifier.logits(tf.tensor4d(images, [n, ...shape])).dataSync() as Float32Array).slice();
}

function argmax(v: Float32Array, offset: number, k: number): number {
  let best = 0;
  for (let j = 1; j < k; j++) if (v[offset + j] > v[offset + best]) best = j;
  return best;
}

/** Classes sorted by decreasing logit. */
function rankClasses(v: Float32Array, offset: number, k: number): number[] {
  return Array.from({ length: k }, (_, j) => j).sort((a, b) => v[offset + b] - v[offset + a] || a - b);
}
