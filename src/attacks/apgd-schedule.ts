import { tf } from '../engine/tf.js';
import { margin } from './losses.js';

/**
 * Helpers of APGD (Croce & Hein 2020): the checkpoint schedule at which the step
 * size may be halved, the halving test, the random start of the official code,
 * and DLR losses that can be differentiated in TF.js.
 */

/**
 * The checkpoints w_j = ceil(p_j * steps) of APGD, as iteration counts: after
 * the w_j-th iterate has been computed, the step size is reviewed. The fractions
 * follow the paper: p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06),
 * computed in whole hundredths so that no rounding error moves a checkpoint
 * (0.70 * 20 is 14.000000000000002 in floating point). Checkpoints that coincide
 * for small `steps` are merged; w_0 = 0 is not listed, nor anything >= `steps`
 * (a review after the last iterate would change nothing).
 */
export function apgdCheckpoints(steps: number): number[] {
  const out: number[] = [];
  let prev = 0; // p_{j-1}, in hundredths
  let cur = 22; // p_j
  while (cur < 100) {
    const w = Math.ceil((cur * steps) / 100);
    if (w >= steps) break;
    if (w > 0 && (out.length === 0 || w > out[out.length - 1])) out.push(w);
    const next = cur + Math.max(cur - prev - 3, 6);
    prev = cur;
    cur = next;
  }
  return out;
}

/** Per-example state the step-size review looks at. */
export interface CheckpointState {
  /** Iterates since the last checkpoint whose loss exceeded the previous iterate's. */
  increases: number;
  /** Best loss now and at the last checkpoint. */
  lossBest: number;
  lossBestAtLastCheck: number;
  /** Whether the step size was halved at the last checkpoint. */
  reducedAtLastCheck: boolean;
}

/**
 * The paper's two conditions for halving the step size at a checkpoint, given the
 * length of the interval since the previous one:
 * (1) fewer than `rho` of the steps of the interval increased the loss
 *     (sum 1[f(x^{i+1}) > f(x^i)] < rho * interval);
 * (2) the step size was not changed at the previous checkpoint and the best loss
 *     has not improved since it.
 */
export function shouldHalve(s: CheckpointState, interval: number, rho: number): boolean {
  const oscillating = s.increases < rho * interval;
  const stalled = !s.reducedAtLastCheck && !(s.lossBest > s.lossBestAtLastCheck);
  return oscillating || stalled;
}

/**
 * The random start of the official APGD code: a point on the boundary of the
 * eps-ball around the clean image (L-inf: uniform noise rescaled so its largest
 * coordinate is eps; L2: a Gaussian direction of length eps). The caller clips it
 * to the bounds.
 */
export function apgdStart(norm: 'linf' | 'l2', shape: [number, number, number, number], eps: number, seed: number): tf.Tensor4D {
  return tf.tidy(() => {
    const n = shape[0];
    const t = norm === 'linf' ? tf.randomUniform(shape, -1, 1, 'float32', seed) : tf.randomNormal(shape, 0, 1, 'float32', seed);
    const flat = tf.reshape(t, [n, -1]);
    const size = norm === 'linf' ? tf.max(tf.abs(flat), 1) : tf.norm(flat, 'euclidean', 1);
    return tf.mul(t, tf.reshape(tf.div(eps, tf.add(size, 1e-12)), [-1, 1, 1, 1])) as tf.Tensor4D;
  });
}
