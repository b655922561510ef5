/**
 * Scoring a detector of adversarial examples: ROC AUC of its scores on clean
 * against adversarial inputs, and its detection rate at a threshold set on
 * clean data alone (the false-positive rate a deployment would pick).
 */
import { InputError } from '../errors.js';

/**
 * Area under the ROC curve of `positives` (adversarial) against `negatives`
 * (clean), higher score meaning "adversarial": the probability that a random
 * positive scores above a random negative, ties counting half (the
 * Mann-Whitney U statistic divided by n·m). O((n + m) log(n + m)).
 * @throws InputError if either set is empty or holds a non-finite score.
 */
export function rocAuc(negatives: ArrayLike<number>, positives: ArrayLike<number>): number {
  for (const [name, s] of [['negatives', negatives], ['positives', positives]] as const) {
    if (s.length === 0) throw new InputError(name, 'expected at least one score');
    for (let i = 0; i < s.length; i++) if (!Number.isFinite(s[i])) throw new InputError(name, `expected finite scores, got ${s[i]} at index ${i}`);
  }
  const all = [...Array.from(negatives, (v) => ({ v, pos: false })), ...Array.from(positives, (v) => ({ v, pos: true }))].sort((a, b) => a.v - b.v);
  // Rank sum of the positives, tied groups sharing their mean rank.
  let rankSum = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j].v === all[i].v) j++;
    const meanRank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) if (all[k].pos) rankSum += meanRank;
    i = j;
  }
  const m = positives.length;
  const n = negatives.length;
  return (rankSum - (m * (m + 1)) / 2) / (m * n);
}

/** The q-quantile (0..1) of `values` by linear interpolation between order statistics. */
export function quantile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) throw new InputError('values', 'expected at least one value');
  if (!(q >= 0 && q <= 1)) throw new InputError('q', `expected a number in [0, 1], got ${q}`);
  const s = Float64Array.from(values).sort();
  const at = q * (s.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(s.length - 1, lo + 1);
  return s[lo] + (at - lo) * (s[hi] - s[lo]);
}

/** A detector's figures against one set of adversarial examples. */
export interface DetectionFigures {
  /** Adversarial examples scored (successful ones only). */
  adversarial: number;
  rocAuc: number | null;
  /** Fraction of them scoring above the clean-data threshold. */
  detectionRate: number | null;
}

/** The threshold flagging `falsePositiveRate` of the clean scores (its (1 - rate) quantile). */
export function cleanThreshold(cleanScores: ArrayLike<number>, falsePositiveRate: number): number {
  if (!(falsePositiveRate > 0 && falsePositiveRate < 1)) throw new InputError('falsePositiveRate', `expected a number in (0, 1), got ${falsePositiveRate}`);
  return quantile(cleanScores, 1 - falsePositiveRate);
}

/** ROC AUC and detection rate of `adversarialScores` against `cleanScores` (null figures when there is no adversarial example). */
export function detectionFigures(cleanScores: ArrayLike<number>, adversarialScores: ArrayLike<number>, threshold: number): DetectionFigures {
  const m = adversarialScores.length;
  if (m === 0) return { adversarial: 0, rocAuc: null, detectionRate: null };
  let detected = 0;
  for (let i = 0; i < m; i++) if (adversarialScores[i] > threshold) detected++;
  return { adversarial: m, rocAuc: rocAuc(cleanScores, adversarialScores), detectionRate: detected / m };
}
