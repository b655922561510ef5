import { tf } from '../engine/tf.js';
import type { Attack, BatchContext, Norm } from './types.js';
import type { Classifier } from '../models/classifier.js';
import type { Rng } from '../util/rng.js';
import { InputError } from '../errors.js';

/** Parameters of {@link fab}. */
export type FabParams = { steps: number; restarts: number; alphaMax: number; eta: number; beta: number };

/**
 * FAB, targeted: Fast Adaptive Boundary attack. Croce and Hein, "Minimally
 * distorted adversarial examples with a fast adaptive boundary attack", ICML
 * 2020 (the targeted version, FAB-T, is the one AutoAttack uses), following the
 * authors' reference code (auto-attack's fab_pt.py).
 *
 * Each step linearizes the decision boundary between the target t and its
 * strongest rival j at the current iterate x_k (g = Z_t - Z_j and its gradient,
 * j = argmax_{j != t} Z_j: the true class y at first, as in the reference code,
 * but any class standing between y and t later), projects
 * both x_k and the clean image x_0 onto that hyperplane intersected with the
 * box of valid inputs (exact minimal-norm projections, solved per example by a
 * sort over the box's breakpoints), and moves to a convex combination of the
 * two extrapolated projections, biased toward x_0 by
 * alpha = min(|d_k| / (|d_k| + |d_0|), alphaMax):
 * x_{k+1} = clip((1 - alpha)(x_k + eta d_k) + alpha (x_0 + eta d_0)).
 * When x_{k+1} reaches the target it is recorded if it is the closest so far,
 * then pulled back toward x_0: x_0 + beta (x_{k+1} - x_0). Extra restarts begin
 * at a random point at half the best distance found so far (half of eps with
 * a cap, and from x_0 again when there is neither).
 *
 * Kind: minimal perturbation, targeted only. Distance: linf (default), l2.
 * Only examples classified correctly at the start are attacked; the others, and
 * those never brought to their target, come back clean. A finite `eps` is a cap:
 * the result is projected onto the eps-ball.
 *
 * Parameters: steps (100), restarts (0: one run from x_0), alphaMax (0.1),
 * eta (1.05), beta (0.9), the paper's and reference code's defaults. Cost per
 * run: `steps` gradients and `steps` queries per attacked image.
 * Usage: `runAttack(fab, classifier, data, { norm: 'linf', targeted: 'random' })`.
 */
export const fab: Attack<FabParams> = {
  name: 'fab',
  title: 'Fast Adaptive Boundary (targeted)',
  paper: 'Croce & Hein, ICML 2020',
  kind: 'minimal',
  access: 'gradient',
  norms: ['linf', 'l2'],
  targeted: 'targeted',
  params: [
    { name: 'steps', type: 'integer', default: 100, min: 1, description: 'iterations per run' },
    { name: 'restarts', type: 'integer', default: 0, min: 0, description: 'extra runs from random starts at half the best distance found' },
    { name: 'alphaMax', type: 'number', default: 0.1, min: 0, max: 1, description: 'largest weight of the projection of the clean image in each step' },
    { name: 'eta', type: 'number', default: 1.05, min: 1, description: 'extrapolation factor of the projections (overshoot past the boundary)' },
    { name: 'beta', type: 'number', default: 0.9, min: 0, max: 1, description: 'after a success, the iterate moves back to x0 + beta (x - x0)' },
  ],
  attackBatch: (ctx, p) => fabBatch(ctx, p),
};

function fabBatch(ctx: BatchContext, p: FabParams): tf.Tensor4D {
  const { classifier, x, labels, targets, eps, rng } = ctx;
  const norm: Norm = ctx.norm;
  if (norm !== 'linf' && norm !== 'l2') throw new InputError('norm', `fab supports linf and l2, not ${norm}`);
  if (!targets) throw new InputError('targeted', 'fab is targeted only: give targets (an array, "random" or "least-likely")');
  const [lo, hi] = classifier.bounds;
  const shape = x.shape;
  const n = shape[0];
  const d = shape[1] * shape[2] * shape[3];
  const x0 = (x.dataSync() as Float32Array).slice();
  const y = (labels.dataSync() as Int32Array).slice();
  const t = (targets.dataSync() as Int32Array).slice();
  const best = x0.slice();
  const bestDist = new Float64Array(n).fill(Infinity);
  const size = norm === 'linf' ? linfNorm : l2Norm;

  const clean = predict(classifier, x0, n, shape);
  const attacked: number[] = [];
  for (let i = 0; i < n; i++) if (clean[i] === y[i] && t[i] !== y[i]) attacked.push(i);
  const m = attacked.length;

  for (let run = 0; m > 0 && run <= p.restarts; run++) {
    // The iterates of the attacked examples, [m * d].
    const x1 = new Float32Array(m * d);
    attacked.forEach((i, j) => {
      const row = x0.subarray(i * d, (i + 1) * d);
      x1.set(row, j * d);
      const radius = 0.5 * Math.min(bestDist[i], eps);
      if (run > 0 && Number.isFinite(radius)) randomStart(x1.subarray(j * d, (j + 1) * d), row, radius, norm, lo, hi, rng);
    });
    const tA = attacked.map((i) => t[i]);
    const d1 = new Float32Array(d);
    const d2 = new Float32Array(d);
    for (let step = 0; step < p.steps; step++) {
      // g = Z_t - Z_j at x1 (j: the target's strongest rival there) and its gradient, per example.
      const { value, grad } = targetGap(classifier, x1, m, shape, tA);
      for (let j = 0; j < m; j++) {
        const i = attacked[j];
        const xk = x1.subarray(j * d, (j + 1) * d);
        const xo = x0.subarray(i * d, (i + 1) * d);
        const w = grad.subarray(j * d, (j + 1) * d);
        // Linearized boundary: value + w.(z - xk) = 0.
        let wDiff = 0;
        for (let k = 0; k < d; k++) wDiff += w[k] * (xo[k] - xk[k]);
        projectToHyperplane(xk, w, -value[j], lo, hi, norm, d1);
        projectToHyperplane(xo, w, -(value[j] + wDiff), lo, hi, norm, d2);
        const a1 = Math.max(size(d1), 1e-8);
        const a2 = Math.max(size(d2), 1e-8);
        const alpha = Math.min(Math.max(a1 / (a1 + a2), 0), p.alphaMax);
        for (let k = 0; k < d; k++) {
          const v = (xk[k] + p.eta * d1[k]) * (1 - alpha) + (xo[k] + p.eta * d2[k]) * alpha;
          xk[k] = v < lo ? lo : v > hi ? hi : v;
        }
      }
      const preds = predict(classifier, x1, m, shape);
      for (let j = 0; j < m; j++) {
        if (preds[j] !== tA[j]) continue;
        const i = attacked[j];
        const xk = x1.subarray(j * d, (j + 1) * d);
        const xo = x0.subarray(i * d, (i + 1) * d);
        const delta = new Float32Array(d);
        for (let k = 0; k < d; k++) delta[k] = xk[k] - xo[k];
        const dist = size(delta);
        if (dist < bestDist[i]) {
          bestDist[i] = dist;
          best.set(xk, i * d);
        }
        for (let k = 0; k < d; k++) xk[k] = xo[k] + p.beta * delta[k];
      }
    }
  }
  return tf.tidy(() => {
    const adv = tf.tensor4d(best, shape);
    if (!Number.isFinite(eps)) return adv;
    const delta = tf.sub(adv, x);
    const capped =
      norm === 'linf'
        ? tf.clipByValue(delta, -eps, eps)
        : tf.mul(delta, tf.reshape(tf.minimum(1, tf.div(eps, tf.add(tf.norm(tf.reshape(delta, [n, d]), 'euclidean', 1), 1e-12))), [n, 1, 1, 1]));
    return tf.clipByValue(tf.add(x, capped), lo, hi) as tf.Tensor4D;
  });
}

/**
 * The smallest perturbation d (in `norm`) of `point` with w.d = c and
 * point + d inside [lo, hi], written into `out`. The reachable w.d is
 * piecewise linear and monotone in the step size, with a breakpoint where each
 * coordinate hits the box; sorting the breakpoints finds the exact step. When
 * the box makes c unreachable, the step saturates at the box's corner (the
 * nearest the hyperplane one can get).
 */
export function projectToHyperplane(point: ArrayLike<number>, w: ArrayLike<number>, c: number, lo: number, hi: number, norm: 'linf' | 'l2', out: Float32Array): void {
  const d = out.length;
  out.fill(0);
  if (c === 0 || !Number.isFinite(c)) return;
  const s = c > 0 ? 1 : -1;
  const target = Math.abs(c);
  // Coordinate k moves by s * sign(w_k) * min(rate_k * p, cap_k), contributing |w_k| * that to s * w.d.
  const idx: number[] = [];
  const brk = new Float64Array(d);
  const cap = new Float64Array(d);
  const slope = new Float64Array(d);
  for (let k = 0; k < d; k++) {
    const wk = w[k];
    if (wk === 0) continue;
    const aw = Math.abs(wk);
    cap[k] = s * wk > 0 ? hi - point[k] : point[k] - lo;
    if (cap[k] < 0) cap[k] = 0;
    // p is t (linf: every coordinate moves by t) or mu (l2: coordinate k moves by mu * |w_k|).
    slope[k] = norm === 'linf' ? aw : aw * aw;
    brk[k] = norm === 'linf' ? cap[k] : cap[k] / aw;
    idx.push(k);
  }
  if (!idx.length) return;
  idx.sort((a, b) => brk[a] - brk[b]);
  let remaining = 0;
  for (const k of idx) remaining += slope[k];
  let reached = 0; // sum of |w_k| cap_k over coordinates already at the box
  let p = brk[idx[idx.length - 1]]; // saturation, if the target is out of reach
  for (const k of idx) {
    const h = reached + brk[k] * remaining;
    if (h >= target) {
      p = remaining > 0 ? (target - reached) / remaining : brk[k];
      break;
    }
    reached += slope[k] * brk[k];
    remaining -= slope[k];
  }
  for (const k of idx) {
    const move = Math.min(norm === 'linf' ? p : p * Math.abs(w[k]), cap[k]);
    out[k] = s * Math.sign(w[k]) * move;
  }
}

function linfNorm(v: Float32Array): number {
  let m = 0;
  for (let k = 0; k < v.length; k++) m = Math.max(m, Math.abs(v[k]));
  return m;
}

function l2Norm(v: Float32Array): number {
  let s = 0;
  for (let k = 0; k < v.length; k++) s += v[k] * v[k];
  return Math.sqrt(s);
}

function predict(classifier: Classifier, images: Float32Array, m: number, shape: readonly number[]): Int32Array {
  return tf.tidy(() => classifier.predict(tf.tensor4d(images, [m, shape[1], shape[2], shape[3]])).dataSync() as Int32Array).slice();
}

/**
 * Z_t - max_{j != t} Z_j per example (negative until the target wins) and its
 * input gradient with the runner-up j fixed, as plain arrays.
 */
function targetGap(classifier: Classifier, images: Float32Array, m: number, shape: readonly number[], t: number[]): { value: Float32Array; grad: Float32Array } {
  const K = classifier.numClasses;
  const xs = tf.tensor4d(images, [m, shape[1], shape[2], shape[3]]);
  const tHot = tf.tidy(() => tf.oneHot(tf.tensor1d(t, 'int32'), K));
  try {
    const out = classifier.valueAndGradient(xs, (logits) => {
      // The strongest rival of the target at this point (a constant for the gradient).
      const rival = tf.argMax(tf.sub(logits, tf.mul(tHot, 1e9)), 1);
      const pick = tf.sub(tHot, tf.oneHot(rival, K));
      return tf.sum(tf.mul(logits, pick), 1) as tf.Tensor1D;
    });
    const result = { value: (out.value.dataSync() as Float32Array).slice(), grad: (out.grad.dataSync() as Float32Array).slice() };
    tf.dispose([out.value, out.grad, out.logits]);
    return result;
  } finally {
    tf.dispose([xs, tHot]);
  }
}

/** A random point at `radius` from `center` (uniform direction in the norm's sphere scale), clipped to the bounds, written into `out`. */
function randomStart(out: Float32Array, center: Float32Array, radius: number, norm: 'linf' | 'l2', lo: number, hi: number, rng: Rng): void {
  const d = out.length;
  const r = new Float64Array(d);
  for (let k = 0; k < d; k++) r[k] = norm === 'linf' ? 2 * rng.next() - 1 : rng.normal();
  let scale = 0;
  if (norm === 'linf') for (let k = 0; k < d; k++) scale = Math.max(scale, Math.abs(r[k]));
  else {
    for (let k = 0; k < d; k++) scale += r[k] * r[k];
    scale = Math.sqrt(scale);
  }
  if (!(scale > 0)) return;
  for (let k = 0; k < d; k++) {
    const v = center[k] + (radius * r[k]) / scale;
    out[k] = v < lo ? lo : v > hi ? hi : v;
  }
}
