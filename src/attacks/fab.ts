import { tf } from '../engine/tf.js';
import { readAndDispose, readOne } from '../engine/read.js';
import { meetsCriterion, type Attack, type BatchContext, type Norm } from './types.js';
import type { Classifier } from '../models/classifier.js';
import { Rng } from '../util/rng.js';
import { InputError } from '../errors.js';

/** Parameters of {@link fab}. */
export type FabParams = { steps: number; restarts: number; alphaMax: number; eta: number; beta: number };

/**
 * FAB, targeted: Fast Adaptive Boundary attack. Croce and Hein, "Minimally
 * distorted adversarial examples with a fast adaptive boundary attack", ICML
 * 2020 (the targeted version, FAB-T, is the one AutoAttack uses), following the
 * authors' reference code (fra31/auto-attack, fab_base.py and fab_pt.py).
 *
 * Each step linearizes a decision boundary at the current iterate x_k through
 * g = Z_t - Z_j and its gradient: under the `misclassification` criterion j is
 * the true class y (AutoAttack's FAB-T), under the `target` criterion the
 * target's strongest rival at x_k (so that the target itself is reached). It
 * projects both x_k and the clean image x_0 onto that hyperplane intersected
 * with the box of valid inputs (exact minimal-norm projections), and moves to a
 * convex combination of the two extrapolated projections, biased toward x_0 by
 * alpha = min(|d_k| / (|d_k| + |d_0|), alphaMax):
 * x_{k+1} = clip((1 - alpha)(x_k + eta d_k) + alpha (x_0 + eta d_0)).
 * When x_{k+1} meets the criterion it is recorded if it is the closest so far,
 * then pulled back toward x_0: x_0 + beta (x_{k+1} - x_0). Runs after the first
 * begin at a random point at half the best distance found so far (half of eps
 * with a cap, and from x_0 again when there is neither), drawn from each
 * example's own seed.
 *
 * Kind: minimal perturbation, targeted only. Distance: linf (default), l2.
 * Only examples classified correctly at the start are attacked; the others, and
 * those never brought to their goal, come back clean. A finite `eps` is a cap:
 * the result is projected onto the eps-ball.
 *
 * Parameters: steps (100), restarts (1: the total number of runs, AutoAttack's
 * n_restarts), alphaMax (0.1), eta (1.05), beta (0.9), the paper's and
 * reference code's defaults. Cost per run: `steps` gradients and `steps`
 * forward passes per attacked image.
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
    { name: 'restarts', type: 'integer', default: 1, min: 1, description: "total runs, later ones from random starts at half the best distance found (AutoAttack's n_restarts)" },
    { name: 'alphaMax', type: 'number', default: 0.1, min: 0, max: 1, description: 'largest weight of the projection of the clean image in each step' },
    { name: 'eta', type: 'number', default: 1.05, min: 1, description: 'extrapolation factor of the projections (overshoot past the boundary)' },
    { name: 'beta', type: 'number', default: 0.9, min: 0, max: 1, description: 'after a success, the iterate moves back to x0 + beta (x - x0)' },
  ],
  attackBatch: (ctx, p) => fabBatch(ctx, p),
};

async function fabBatch(ctx: BatchContext, p: FabParams): Promise<tf.Tensor4D> {
  const { classifier, x, labels, targets, eps, criterion } = ctx;
  const norm: Norm = ctx.norm;
  if (norm !== 'linf' && norm !== 'l2') throw new InputError('norm', `fab supports linf and l2, not ${norm}`);
  if (!targets) throw new InputError('targeted', 'fab is targeted only: give targets (an array, "random" or "least-likely")');
  const [lo, hi] = classifier.bounds;
  const shape = x.shape;
  const n = shape[0];
  const d = shape[1] * shape[2] * shape[3];
  const x0 = ((await x.data()) as Float32Array).slice();
  const y = ((await labels.data()) as Int32Array).slice();
  const t = ((await targets.data()) as Int32Array).slice();
  const best = x0.slice();
  const bestDist = new Float64Array(n).fill(Infinity);
  const size = norm === 'linf' ? linfNorm : l2Norm;
  const rival = criterion === 'target' ? 'strongest' : 'label';

  const clean = (await gap(classifier, x0, n, shape, [], [], rival, false)).pred;
  const attacked: number[] = [];
  for (let i = 0; i < n; i++) if (clean[i] === y[i] && t[i] !== y[i]) attacked.push(i);
  const m = attacked.length;
  const tA = attacked.map((i) => t[i]);
  const yA = attacked.map((i) => y[i]);
  const rngs = attacked.map((i) => new Rng(ctx.exampleSeeds[i]));
  const work = new ProjectionWork(d);
  const d1 = new Float32Array(d);
  const d2 = new Float32Array(d);
  const delta = new Float32Array(d);

  for (let run = 0; m > 0 && run < p.restarts; run++) {
    // The iterates of the attacked examples, [m * d].
    const x1 = new Float32Array(m * d);
    attacked.forEach((i, j) => {
      const row = x0.subarray(i * d, (i + 1) * d);
      x1.set(row, j * d);
      const radius = 0.5 * Math.min(bestDist[i], eps);
      if (run > 0 && Number.isFinite(radius)) randomStart(x1.subarray(j * d, (j + 1) * d), row, radius, norm, lo, hi, rngs[j]);
    });
    for (let step = 0; step < p.steps; step++) {
      // g = Z_t - Z_j and its gradient at x1 (j: the label, or the target's strongest rival there).
      const g = await gap(classifier, x1, m, shape, tA, yA, rival, true);
      for (let j = 0; j < m; j++) {
        const xk = x1.subarray(j * d, (j + 1) * d);
        const xo = x0.subarray(attacked[j] * d, (attacked[j] + 1) * d);
        const w = g.grad!.subarray(j * d, (j + 1) * d);
        // Linearized boundary: value + w.(z - xk) = 0.
        let wDiff = 0;
        for (let k = 0; k < d; k++) wDiff += w[k] * (xo[k] - xk[k]);
        projectToHyperplane(xk, w, -g.value[j], lo, hi, norm, d1, work);
        projectToHyperplane(xo, w, -(g.value[j] + wDiff), lo, hi, norm, d2, work);
        const a1 = Math.max(size(d1), 1e-8);
        const a2 = Math.max(size(d2), 1e-8);
        const alpha = Math.min(Math.max(a1 / (a1 + a2), 0), p.alphaMax);
        for (let k = 0; k < d; k++) {
          const v = (xk[k] + p.eta * d1[k]) * (1 - alpha) + (xo[k] + p.eta * d2[k]) * alpha;
          xk[k] = v < lo ? lo : v > hi ? hi : v;
        }
      }
      // A forward pass checks the new iterates. (Taking the check from the next step's gradient instead would
      // save it, but an iterate that succeeds is pulled back and needs a gradient of its own, and near the
      // boundary, where FAB spends its steps, most of them do: measured, that cost more than the forward pass.)
      const pred = (await gap(classifier, x1, m, shape, tA, yA, rival, false)).pred;
      for (let j = 0; j < m; j++) {
        const i = attacked[j];
        if (!meetsCriterion(pred[j], y[i], t[i], criterion)) continue;
        const xk = x1.subarray(j * d, (j + 1) * d);
        const xo = x0.subarray(i * d, (i + 1) * d);
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

/** Reusable per-coordinate buffers of {@link projectToHyperplane}. */
export class ProjectionWork {
  slope: Float64Array;
  brk: Float64Array;
  constructor(d: number) {
    this.slope = new Float64Array(d);
    this.brk = new Float64Array(d);
  }
}

/**
 * The smallest perturbation d (in `norm`) of `point` with w.d = c and
 * point + d inside [lo, hi], written into `out`. Coordinate k moves by
 * sign(c w_k) min(r_k p, cap_k) (r_k = 1 for linf, |w_k| for l2; cap_k its
 * room to the box), so the reachable s w.d = h(p) = sum_k min(slope_k p,
 * |w_k| cap_k) is concave, piecewise linear and increasing in p. Newton's
 * method from p = 0 stays below the root and lands on it exactly after
 * crossing at most a few breakpoints, in O(d) per iteration with no sort (the
 * reference code sorts the breakpoints: O(d log d) per call). When the box
 * makes c unreachable, the step saturates at the box's corner (the nearest the
 * hyperplane one can get).
 */
export function projectToHyperplane(
  point: ArrayLike<number>,
  w: ArrayLike<number>,
  c: number,
  lo: number,
  hi: number,
  norm: 'linf' | 'l2',
  out: Float32Array,
  work = new ProjectionWork(out.length),
): void {
  const d = out.length;
  out.fill(0);
  if (c === 0 || !Number.isFinite(c)) return;
  const s = c > 0 ? 1 : -1;
  const target = Math.abs(c);
  const { slope, brk } = work;
  let reachable = 0;
  let slopeSum = 0;
  let saturation = 0;
  for (let k = 0; k < d; k++) {
    const wk = w[k];
    const aw = Math.abs(wk);
    const cap = s * wk > 0 ? hi - point[k] : point[k] - lo;
    if (aw === 0 || !(cap > 0)) {
      slope[k] = 0;
      brk[k] = 0;
      continue;
    }
    // p is t (linf: every coordinate moves by t) or mu (l2: coordinate k moves by mu |w_k|).
    slope[k] = norm === 'linf' ? aw : aw * aw;
    brk[k] = norm === 'linf' ? cap : cap / aw;
    reachable += aw * cap;
    slopeSum += slope[k];
    if (brk[k] > saturation) saturation = brk[k];
  }
  if (slopeSum === 0) return;
  let p = saturation;
  if (reachable > target) {
    // Newton on h(p) = target from p = 0 (h(0) = 0, h'(0+) = slopeSum).
    p = target / slopeSum;
    for (let iteration = 0; iteration <= d; iteration++) {
      let h = 0;
      let active = 0;
      for (let k = 0; k < d; k++) {
        if (slope[k] === 0) continue;
        if (brk[k] <= p) h += slope[k] * brk[k];
        else {
          h += slope[k] * p;
          active += slope[k];
        }
      }
      const gapToTarget = target - h;
      if (!(gapToTarget > target * 1e-12) || active === 0) break;
      const next = p + gapToTarget / active;
      if (!(next > p)) break;
      p = next;
    }
  }
  for (let k = 0; k < d; k++) {
    if (slope[k] === 0) continue;
    const rate = norm === 'linf' ? 1 : Math.abs(w[k]);
    const cap = norm === 'linf' ? brk[k] : brk[k] * rate;
    out[k] = s * Math.sign(w[k]) * Math.min(p * rate, cap);
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

/** What {@link gap} computes for a set of images: predictions, and with the gradient g = Z_t - Z_j and dg/dx. */
interface Gap {
  pred: Int32Array;
  value: Float32Array;
  grad?: Float32Array;
}

/**
 * Predictions at `images` (m rows), and with `withGradient` the boundary
 * function g = Z_t - Z_j per example and its input gradient, the rival j fixed
 * at this point: the label (`label`) or the target's strongest rival
 * (`strongest`). Without the gradient, one forward pass. The values are read
 * (awaited) in one wait.
 */
async function gap(classifier: Classifier, images: Float32Array, m: number, shape: readonly number[], t: number[], y: number[], rival: 'label' | 'strongest', withGradient: boolean): Promise<Gap> {
  const xs = tf.tensor4d(images, [m, shape[1], shape[2], shape[3]]);
  try {
    if (!withGradient) {
      return { pred: ((await readOne(tf.tidy(() => tf.argMax(classifier.logits(xs), 1)))) as Int32Array).slice(), value: new Float32Array(m) };
    }
    const K = classifier.numClasses;
    const tHot = tf.tidy(() => tf.oneHot(tf.tensor1d(t, 'int32'), K));
    const yHot = rival === 'label' ? tf.tidy(() => tf.oneHot(tf.tensor1d(y, 'int32'), K)) : undefined;
    try {
      const out = classifier.valueAndGradient(xs, (logits) => {
        // The rival is a constant for the gradient.
        const jHot = yHot ?? tf.oneHot(tf.argMax(tf.sub(logits, tf.mul(tHot, 1e9)), 1), K);
        return tf.sum(tf.mul(logits, tf.sub(tHot, jHot)), 1) as tf.Tensor1D;
      });
      try {
        const [pred, value, grad] = await readAndDispose([tf.tidy(() => tf.argMax(out.logits, 1)), out.value, out.grad]);
        return { pred: (pred as Int32Array).slice(), value: (value as Float32Array).slice(), grad: (grad as Float32Array).slice() };
      } finally {
        tf.dispose([out.value, out.grad, out.logits]);
      }
    } finally {
      tf.dispose([tHot, ...(yHot ? [yHot] : [])]);
    }
  } finally {
    xs.dispose();
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
