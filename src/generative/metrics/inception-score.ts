/**
 * Inception Score: exp(E_x KL(p(y|x) ‖ p(y))), high when each sample is
 * classified confidently (low-entropy p(y|x)) and the samples together cover
 * many classes (high-entropy marginal p(y)). Salimans et al., "Improved
 * techniques for training GANs", NeurIPS 2016. It ranges from 1 to the number
 * of classes K; with a classifier other than Inception-v3 the numbers are
 * comparable only between runs that use the same classifier.
 */
import { InputError } from '../../errors.js';
import { checkSamples, type SampleMatrix } from './linalg.js';

/** Options of {@link inceptionScore}. */
export interface InceptionScoreOptions {
  /**
   * Number of parts the samples are cut into, each scored on its own (default
   * 1: one score over all samples). The reference code uses 10 and reports the
   * mean and standard deviation over the parts.
   */
  splits?: number;
}

/** An Inception Score over one or more splits. */
export interface InceptionScore {
  /** Mean of the per-split scores (the score itself when splits = 1). */
  mean: number;
  /** Population standard deviation (numpy's default, as the reference) of the per-split scores; 0 for one split. */
  std: number;
  /** The score of each split, in order. */
  scores: number[];
}

/** How far a row of probabilities may sum from 1 (float32 softmax outputs are well within). */
const ROW_SUM_TOLERANCE = 1e-3;

/**
 * Inception Score of class probabilities p(y|x): one row per generated
 * sample, d = number of classes, rows summing to 1 (each row is renormalized,
 * so float32 rounding does not matter). With `splits` = s, the rows are cut
 * into s consecutive parts of (nearly) equal size, as the reference does:
 * part i holds rows floor(i·n/s) to floor((i+1)·n/s) − 1.
 * Terms with p(y|x) = 0 count as 0 (0·log 0 = 0).
 *
 * Usage: `inceptionScore({ data: probs, n: 5000, d: 10 }, { splits: 10 }).mean`.
 */
export function inceptionScore(probabilities: SampleMatrix, options: InceptionScoreOptions = {}): InceptionScore {
  checkSamples(probabilities, 'probabilities', 1);
  const { data, n, d: k } = probabilities;
  const splits = options.splits ?? 1;
  if (!Number.isSafeInteger(splits) || splits < 1 || splits > n) {
    throw new InputError('splits', `expected an integer from 1 to the number of samples (${n}), got ${splits}`);
  }
  const sums = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let sum = 0;
    for (let y = 0; y < k; y++) {
      const p = data[r * k + y];
      if (p < 0) throw new InputError('probabilities', `negative probability ${p} at row ${r}, class ${y}`);
      sum += p;
    }
    if (Math.abs(sum - 1) > ROW_SUM_TOLERANCE) {
      throw new InputError('probabilities', `row ${r} sums to ${sum}, not 1 (for logits, use inceptionScoreFromLogits)`);
    }
    sums[r] = sum;
  }

  const scores: number[] = [];
  const marginal = new Float64Array(k);
  for (let s = 0; s < splits; s++) {
    const start = Math.floor((s * n) / splits);
    const end = Math.floor(((s + 1) * n) / splits);
    marginal.fill(0);
    for (let r = start; r < end; r++) {
      for (let y = 0; y < k; y++) marginal[y] += data[r * k + y] / sums[r];
    }
    for (let y = 0; y < k; y++) marginal[y] /= end - start;
    // KL(p(y|x) ‖ p(y)) = Σ_y p log(p / p(y)); p(y) >= p(y|x)/count > 0 wherever p > 0.
    let kl = 0;
    for (let r = start; r < end; r++) {
      for (let y = 0; y < k; y++) {
        const p = data[r * k + y] / sums[r];
        if (p > 0) kl += p * Math.log(p / marginal[y]);
      }
    }
    scores.push(Math.exp(kl / (end - start)));
  }
  const mean = scores.reduce((a, b) => a + b, 0) / splits;
  const std = Math.sqrt(scores.reduce((a, b) => a + (b - mean) ** 2, 0) / splits);
  return { mean, std, scores };
}

/** {@link inceptionScore} of the softmax of `logits` (one row of class logits per sample). */
export function inceptionScoreFromLogits(logits: SampleMatrix, options: InceptionScoreOptions = {}): InceptionScore {
  return inceptionScore(softmaxRows(logits), options);
}

/**
 * Row-wise softmax into a new float64 matrix. The row maximum is subtracted
 * before exponentiating, so large logits cannot overflow exp (the largest term
 * is exp(0) = 1 and the sum is at least 1).
 */
export function softmaxRows(logits: SampleMatrix): SampleMatrix {
  checkSamples(logits, 'logits', 1);
  const { data, n, d } = logits;
  const out = new Float64Array(n * d);
  for (let r = 0; r < n; r++) {
    const o = r * d;
    let max = -Infinity;
    for (let y = 0; y < d; y++) max = Math.max(max, data[o + y]);
    let sum = 0;
    for (let y = 0; y < d; y++) {
      const e = Math.exp(data[o + y] - max);
      out[o + y] = e;
      sum += e;
    }
    for (let y = 0; y < d; y++) out[o + y] /= sum;
  }
  return { data: out, n, d };
}
