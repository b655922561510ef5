import type { Rng } from '../util/rng.js';

/**
 * Helpers of APGD (Croce & Hein 2020), as the reference code computes them
 * (fra31/auto-attack, autopgd_base.py): the checkpoints at which the step size
 * is reviewed, the halving test, and the random start.
 */

/**
 * The iterates after which APGD reviews the step size. The reference counts
 * iterates since the last review up to k, starting from
 * k = n_iter_2 = max(int(0.22 n), 1) and shortening k by
 * size_decr = max(int(0.03 n), 1) after each review, down to
 * n_iter_min = max(int(0.06 n), 1). 100 steps: 22, 41, 57, 70, 80, 87, 93, 99;
 * 50 steps: 11, 21, 30, 38, 45. A review at or after the last iterate would
 * change nothing and is not listed.
 */
export function apgdCheckpoints(steps: number): number[] {
  // Math.trunc of the same double products int() truncates in Python.
  const first = Math.max(Math.trunc(0.22 * steps), 1);
  const decrease = Math.max(Math.trunc(0.03 * steps), 1);
  const shortest = Math.max(Math.trunc(0.06 * steps), 1);
  const out: number[] = [];
  for (let k = first, at = first; at < steps; k = Math.max(k - decrease, shortest), at += k) out.push(at);
  return out;
}

/**
 * One example's step size and the loss bookkeeping that decides when it is
 * halved, as the reference code keeps it (fra31/auto-attack,
 * autopgd_base.py, attack_single_run):
 * - the increases are counted iterate to iterate over the interval since the
 *   last review (check_oscillation over loss_steps); a jump back to the best
 *   point is not an iterate of its own, and the first step of a run is
 *   compared with 0 (the reference reads loss_steps[-1], not yet written then);
 * - at a review the step is halved when at most `rho` of the interval's steps
 *   increased the loss, or when it was not halved at the previous review and
 *   the best loss has not improved since (loss_best_last_check >= loss_best);
 *   reduced_last_check starts true, so the second condition never fires at the
 *   first review.
 */
export class ApgdStepState {
  /** Current step size (2 eps at the start). */
  step: number;
  /** Highest loss so far. */
  lossBest: number;
  private lossPrev = 0;
  private increases = 0;
  private lossBestAtLastCheck: number;
  private reducedAtLastCheck = true;

  /** `startLoss` is the loss at the run's starting point. */
  constructor(eps: number, startLoss: number) {
    this.step = 2 * eps;
    this.lossBest = startLoss;
    this.lossBestAtLastCheck = startLoss;
  }

  /** Records the loss of the next iterate; true when it is the best so far (strictly higher). */
  observe(loss: number): boolean {
    if (loss > this.lossPrev) this.increases++;
    this.lossPrev = loss;
    if (loss > this.lossBest) {
      this.lossBest = loss;
      return true;
    }
    return false;
  }

  /** The review after an interval of `interval` iterates; true when the step was halved (the caller then returns to the best point). */
  review(interval: number, rho: number): boolean {
    const oscillating = this.increases <= rho * interval;
    const stalled = !this.reducedAtLastCheck && !(this.lossBest > this.lossBestAtLastCheck);
    const halve = oscillating || stalled;
    this.reducedAtLastCheck = halve;
    this.lossBestAtLastCheck = this.lossBest;
    this.increases = 0;
    if (halve) this.step /= 2;
    return halve;
  }
}

/**
 * The random start of the reference code for one example, written into `out`:
 * a perturbation on the boundary of the eps-ball (L-inf: uniform noise in
 * [-1, 1] rescaled so its largest coordinate is eps; L2: a Gaussian direction of
 * length eps), drawn from the example's own generator. The caller clips x + out
 * to the bounds.
 */
export function apgdStartRow(norm: 'linf' | 'l2', eps: number, rng: Rng, out: Float32Array): void {
  let size = 0;
  if (norm === 'linf') {
    for (let k = 0; k < out.length; k++) {
      const u = 2 * rng.next() - 1;
      out[k] = u;
      if (Math.abs(u) > size) size = Math.abs(u);
    }
  } else {
    for (let k = 0; k < out.length; k++) {
      const g = rng.normal();
      out[k] = g;
      size += g * g;
    }
    size = Math.sqrt(size);
  }
  const f = eps / (size + 1e-12);
  for (let k = 0; k < out.length; k++) out[k] *= f;
}
