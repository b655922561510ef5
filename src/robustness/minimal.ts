/**
 * Minimal adversarial perturbations: for each correctly classified image, the
 * smallest perturbation (in the evaluation's norm) that the minimal-perturbation
 * attacks find, minimised over attacks and target classes. Each found norm is
 * an upper bound on the true minimal distance, so the accuracy curve it implies
 * is an upper bound on robust accuracy at every eps (DeepFool: Moosavi-Dezfooli
 * et al. 2016; FAB: Croce & Hein 2020).
 */
import type { Classifier } from '../models/classifier.js';
import type { TaskPool } from '../engine/task-pool.js';
import { findAttack } from '../attacks/index.js';
import { runAttack } from '../attacks/run.js';
import type { AttackInput } from '../attacks/validate.js';
import type { Norm } from '../attacks/types.js';
import { deriveSeed } from '../util/rng.js';
import { take } from '../data/split.js';
import { InputError } from '../errors.js';
import { tf } from '../engine/tf.js';
import { readOne } from '../engine/read.js';
import type { MinimalPerturbations } from './types.js';

/** Attacks `--minimal` accepts. */
export const MINIMAL_ATTACKS = ['deepfool', 'fab', 'cw'] as const;

/** Options of {@link minimalNorms}. */
export interface MinimalOptions {
  attacks: readonly string[];
  norm: Norm;
  seed?: number;
  batchSize?: number;
  /** Target classes (by clean-logit rank) for targeted-only attacks such as FAB. Default 3. */
  targetClasses?: number;
  pool?: TaskPool;
}

/** Per-example minimal norms: Infinity where no attack succeeded, NaN where the clean image is misclassified. */
export interface MinimalNorms {
  norms: Float32Array;
  gradients: number;
  seconds: number;
}

/**
 * Runs each minimal-perturbation attack on the correctly classified images of
 * `input` and keeps, per image, the smallest re-verified perturbation.
 */
export async function minimalNorms(classifier: Classifier, input: AttackInput, options: MinimalOptions): Promise<MinimalNorms> {
  const n = input.count;
  const size = input.imageShape[0] * input.imageShape[1] * input.imageShape[2];
  const k = classifier.numClasses;
  const logits = ((await readOne(tf.tidy(() => classifier.logits(tf.tensor4d(input.images, [n, ...input.imageShape]))))) as Float32Array).slice();
  const ranked = Array.from({ length: n }, (_, i) => Array.from({ length: k }, (_, j) => j).sort((a, b) => logits[i * k + b] - logits[i * k + a] || a - b));
  const norms = new Float32Array(n).fill(Infinity);
  const correct: number[] = [];
  for (let i = 0; i < n; i++) {
    if (ranked[i][0] === input.labels[i]) correct.push(i);
    else norms[i] = NaN;
  }
  let gradients = 0;
  let seconds = 0;
  if (!correct.length) return { norms, gradients, seconds };
  const sub = take(input, correct, size);
  for (const name of options.attacks) {
    const attack = findAttack(name);
    if (!attack || attack.kind !== 'minimal') throw new InputError('minimal', `"${name}" is not a minimal-perturbation attack; expected ${MINIMAL_ATTACKS.join(', ')}`);
    if (!attack.norms.includes(options.norm)) throw new InputError('minimal', `${name} does not support ${options.norm}; it supports ${attack.norms.join(', ')}`);
    const ranks = attack.targeted === 'targeted' ? Array.from({ length: Math.min(options.targetClasses ?? 3, k - 1) }, (_, r) => r + 2) : [0];
    for (const rank of ranks) {
      const r = await runAttack(attack, classifier, sub, {
        norm: options.norm,
        seed: deriveSeed(options.seed ?? 0, `minimal:${name}:${rank}`),
        batchSize: options.batchSize ?? 128,
        pool: options.pool,
        ...(rank ? { targeted: Int32Array.from(correct, (i) => ranked[i][rank - 1]) } : {}),
      });
      gradients += r.gradients;
      seconds += r.seconds;
      const found = options.norm === 'linf' ? r.norms.linf : r.norms.l2;
      correct.forEach((i, j) => {
        // Any misclassification counts, also a targeted run that missed its target.
        if (r.adversarialPredictions[j] !== input.labels[i] && found[j] < norms[i]) norms[i] = found[j];
      });
    }
  }
  return { norms, gradients, seconds };
}

/**
 * Summary of per-example minimal norms: median (unbroken images count as
 * infinite), quantiles, a histogram of the finite ones, and the accuracy curve
 * they imply on `grid` (fraction of all images correct with minimal norm > eps).
 */
export function summarizeMinimal(m: MinimalNorms, attacks: readonly string[], norm: Norm, grid: readonly number[]): MinimalPerturbations {
  const n = m.norms.length;
  const attacked: number[] = [];
  for (const v of m.norms) if (!Number.isNaN(v)) attacked.push(v);
  attacked.sort((a, b) => a - b);
  const finite = attacked.filter(Number.isFinite);
  const quantile = (values: number[], q: number): number | null => {
    if (!values.length) return null;
    const v = values[Math.min(values.length - 1, Math.floor(q * values.length))];
    return Number.isFinite(v) ? v : null;
  };
  const bins = 20;
  const top = finite.length ? finite[finite.length - 1] : 0;
  const edges = Array.from({ length: bins + 1 }, (_, b) => (top * b) / bins);
  const counts = new Array(bins).fill(0);
  if (top > 0) for (const v of finite) counts[Math.min(bins - 1, Math.floor((v / top) * bins))]++;
  else if (finite.length) counts[0] = finite.length;
  return {
    attack: attacks.join('+'),
    norm,
    attacked: attacked.length,
    found: finite.length,
    median: attacked.length ? quantile(attacked, 0.5) : null,
    medianFound: quantile(finite, 0.5),
    quantiles: [0.1, 0.25, 0.5, 0.75, 0.9].map((q) => ({ q, value: quantile(attacked, q) })),
    histogram: { edges, counts },
    curve: grid.map((eps) => ({ eps, accuracy: n ? attacked.filter((v) => v > eps).length / n : 0 })),
    gradientsPerImage: n ? m.gradients / n : 0,
    seconds: m.seconds,
  };
}
