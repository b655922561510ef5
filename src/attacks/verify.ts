import { tf } from '../engine/tf.js';
import { readOne } from '../engine/read.js';
import type { Classifier } from '../models/classifier.js';
import { meetsCriterion, type Criterion, type Norm } from './types.js';

/** Float32 arithmetic in projections overshoots by rounding; this much is forgiven. */
const RELATIVE_SLACK = 1e-5;
const ABSOLUTE_SLACK = 1e-6;

export interface BatchVerdict {
  success: Uint8Array;
  predictions: Int32Array;
  l0: Float32Array;
  l1: Float32Array;
  l2: Float32Array;
  linf: Float32Array;
  rejected: { outOfBounds: number; outsideBall: number; nonFinite: number };
}

/**
 * Re-verifies candidate adversarial examples instead of trusting the attack:
 * re-predicts them against the criterion, checks they are finite, inside the classifier's bounds and
 * (for a budget) inside the eps-ball. A candidate that reaches the goal but fails
 * a check is not a success, and is replaced in `adv` (in place) by its clean image,
 * so every image advlab returns is a valid input.
 */
export async function verifyBatch(
  classifier: Classifier,
  clean: Float32Array,
  adv: Float32Array,
  labels: Int32Array,
  targets: Int32Array | null,
  criterion: Criterion,
  cleanPredictions: Int32Array,
  budget: { norm: Norm; eps: number } | null,
): Promise<BatchVerdict> {
  const n = labels.length;
  const size = clean.length / n;
  const [lo, hi] = classifier.bounds;
  const l0 = new Float32Array(n);
  const l1 = new Float32Array(n);
  const l2 = new Float32Array(n);
  const linf = new Float32Array(n);
  const valid = new Uint8Array(n);
  const problem: ('nonFinite' | 'outOfBounds' | 'outsideBall' | null)[] = new Array(n).fill(null);
  for (let i = 0; i < n; i++) {
    let c0 = 0;
    let c1 = 0;
    let c2 = 0;
    let cinf = 0;
    let finite = true;
    let inBounds = true;
    for (let k = i * size; k < (i + 1) * size; k++) {
      const a = adv[k];
      if (!Number.isFinite(a)) {
        finite = false;
        break;
      }
      if (a < lo || a > hi) inBounds = false;
      const d = Math.abs(a - clean[k]);
      if (d > 0) c0++;
      c1 += d;
      c2 += d * d;
      if (d > cinf) cinf = d;
    }
    l0[i] = c0;
    l1[i] = c1;
    l2[i] = Math.sqrt(c2);
    linf[i] = cinf;
    const size_ = budget ? (budget.norm === 'linf' ? cinf : budget.norm === 'l2' ? Math.sqrt(c2) : c1) : 0;
    if (!finite) problem[i] = 'nonFinite';
    else if (!inBounds) problem[i] = 'outOfBounds';
    else if (budget && size_ > budget.eps * (1 + RELATIVE_SLACK) + ABSOLUTE_SLACK) problem[i] = 'outsideBall';
    valid[i] = problem[i] === null ? 1 : 0;
  }
  // Re-predict what the attack produced (non-finite rows are scored as clean copies).
  const scored = adv.slice();
  for (let i = 0; i < n; i++) if (problem[i] === 'nonFinite') scored.set(clean.subarray(i * size, (i + 1) * size), i * size);
  const predictions = ((await readOne(tf.tidy(() => classifier.predict(tf.tensor4d(scored, [n, ...classifier.inputShape]))))) as Int32Array).slice();
  const success = new Uint8Array(n);
  const rejected = { outOfBounds: 0, outsideBall: 0, nonFinite: 0 };
  for (let i = 0; i < n; i++) {
    const reached = meetsCriterion(predictions[i], labels[i], targets?.[i], criterion);
    const wasCorrect = cleanPredictions[i] === labels[i];
    if (reached && problem[i]) rejected[problem[i]!]++;
    success[i] = reached && valid[i] && wasCorrect ? 1 : 0;
    if (!valid[i]) {
      adv.set(clean.subarray(i * size, (i + 1) * size), i * size);
      predictions[i] = cleanPredictions[i];
      l0[i] = l1[i] = l2[i] = linf[i] = 0;
    }
  }
  return { success, predictions, l0, l1, l2, linf, rejected };
}
