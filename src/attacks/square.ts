import { tf } from '../engine/tf.js';
import { readOne } from '../engine/read.js';
import { meetsCriterion, type Attack, type BatchContext } from './types.js';
import { Rng } from '../util/rng.js';
import { IncrementalForward } from '../models/incremental.js';

/** Parameters of {@link square}. */
export interface SquareParams {
  /** Random-search queries per image, after the one that scores the initialization. */
  queries: number;
  /** Initial fraction p of the pixels a square covers (the paper's p_init). */
  pInit: number;
  /** Rescale the schedule of p to the budget (the reference class's default), or read it in raw iterations (AutoAttack). */
  rescaleSchedule: boolean;
  [key: string]: unknown;
}

/**
 * Square Attack: a score-based black-box random search. Each step changes one
 * random square window of the current perturbation (L-inf: the window's
 * channels are set to +-eps; L2: a pair of "pseudo-Gaussian" bumps moves mass
 * between two windows, keeping the norm at eps) and keeps the proposal only if
 * the loss falls. The square's side shrinks along the paper's piecewise
 * schedule of p, halved at fixed iteration counts: with `rescaleSchedule` those
 * counts are fractions of a 10,000-query budget scaled to `queries` (the
 * reference class's default, resc_schedule=True), without it they are raw
 * iterations, as AutoAttack runs Square (resc_schedule=False).
 * Andriushchenko, Croce, Flammarion &
 * Hein, "Square Attack: a query-efficient black-box adversarial attack via
 * random search", ECCV 2020.
 *
 * Only `classifier.logits` is called (never a gradient). Losses as in the paper:
 * untargeted, the margin z_y - max_{j != y} z_j; targeted, the cross-entropy of
 * the target; both minimized. Initialization: L-inf, vertical stripes of +-eps
 * (one sign per column and channel); L2, a 5x5 grid of pseudo-Gaussian bumps of
 * random sign, scaled to norm eps. Batched: every example of the batch advances
 * together, each with its own windows and accept/reject drawn from its own
 * seed (so results do not depend on the batch); an example stops being
 * queried once it meets the criterion (its iterate is then kept as is). Every
 * iterate lies in the eps-ball and the bounds by construction. An L-inf
 * proposal differs from its example's best in one square only, so when the
 * model starts with local layers it is scored by recomputing them just around
 * the square (models/incremental.ts: the same logits, a fraction of the work).
 *
 * Distance: linf (default), l2. Parameters: queries (5000 random-search
 * queries per image, after the one that scores the initialization: 1 + 5000
 * in all, as the reference's n_queries), pInit (0.8, the paper's value for
 * L-inf; the paper uses 0.1 for L2), rescaleSchedule (true). Usage:
 * `runAttack(square, classifier, data, { eps: 0.3, params: { queries: 1000 } })`.
 */
export const square: Attack<SquareParams> = {
  name: 'square',
  title: 'Square Attack',
  paper: 'Andriushchenko et al., ECCV 2020',
  kind: 'fixed-budget',
  access: 'scores',
  norms: ['linf', 'l2'],
  targeted: 'both',
  params: [
    { name: 'queries', type: 'integer', default: 5000, min: 0, description: 'random-search queries per image, after the one that scores the start' },
    { name: 'pInit', type: 'number', default: 0.8, min: 0, max: 1, description: 'initial fraction of pixels a square covers (paper: 0.8 for linf, 0.1 for l2)' },
    { name: 'rescaleSchedule', type: 'boolean', default: true, description: 'halve p at fractions of the budget (true) or at raw iteration counts, as AutoAttack runs it (false)' },
  ],
  attackBatch: (ctx, p) => squareAttack(ctx, p),
};

/**
 * The paper's schedule of p (reference code, `p_selection`): p_init, halved
 * after iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000. With
 * `rescale` the iteration is first mapped to a 10,000-query budget
 * (int(iteration / total * 10000)); without it, it is used as it is.
 */
export function squareFraction(pInit: number, iteration: number, total: number, rescale: boolean): number {
  const it = rescale ? Math.trunc((iteration / total) * 10000) : iteration;
  if (it <= 10) return pInit;
  if (it <= 50) return pInit / 2;
  if (it <= 200) return pInit / 4;
  if (it <= 500) return pInit / 8;
  if (it <= 1000) return pInit / 16;
  if (it <= 2000) return pInit / 32;
  if (it <= 4000) return pInit / 64;
  if (it <= 6000) return pInit / 128;
  if (it <= 8000) return pInit / 256;
  return pInit / 512;
}

interface Geometry {
  h: number;
  w: number;
  c: number;
  d: number;
  lo: number;
  hi: number;
  eps: number;
}

async function squareAttack(ctx: BatchContext, p: SquareParams): Promise<tf.Tensor4D> {
  const { classifier, x, eps } = ctx;
  const n = x.shape[0];
  const [h, w, c] = classifier.inputShape;
  const [lo, hi] = classifier.bounds;
  const g: Geometry = { h, w, c, d: h * w * c, lo, hi, eps };
  const d = g.d;
  if (!(eps > 0)) return tf.clone(x);
  const clean = Float32Array.from((await x.data()) as Float32Array);
  const goal = Int32Array.from((await (ctx.targets ?? ctx.labels).data()) as Int32Array);
  const targeted = ctx.targets !== undefined;
  const labels = Int32Array.from((await ctx.labels.data()) as Int32Array);
  const goalMet = (z: Float32Array, i: number) => meetsCriterion(argmax(z), labels[i], targeted ? goal[i] : undefined, ctx.criterion);
  const k = classifier.numClasses;
  const rngs = Array.from(ctx.exampleSeeds, (seed) => new Rng(seed));

  // Initialization: one query per image.
  const best = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const xi = clean.subarray(i * d, (i + 1) * d);
    const bi = best.subarray(i * d, (i + 1) * d);
    if (ctx.norm === 'linf') initStripes(xi, bi, g, rngs[i]);
    else initBumps(xi, bi, g, rngs[i]);
  }
  const lossMin = new Float64Array(n);
  const done = new Uint8Array(n);
  // L-inf proposals differ from their example's best in one square: scored by recomputing only what it reaches, when the model allows.
  const incremental = ctx.norm === 'linf' ? IncrementalForward.of(classifier) : null;
  const initLogits = incremental ? await incremental.reset(best, n) : await score(classifier, best, n);
  for (let i = 0; i < n; i++) {
    const z = initLogits.subarray(i * k, (i + 1) * k);
    lossMin[i] = loss(z, goal[i], targeted);
    done[i] = goalMet(z, i) ? 1 : 0;
  }

  // Random search: iteration t is query t + 2 of each image.
  const delta = new Float32Array(d);
  for (let iteration = 0; iteration < p.queries; iteration++) {
    const active: number[] = [];
    for (let i = 0; i < n; i++) if (!done[i]) active.push(i);
    if (!active.length) break;
    const m = active.length;
    const frac = squareFraction(p.pInit, iteration, p.queries, p.rescaleSchedule);
    const proposals = new Float32Array(m * d);
    const windows = { tops: new Array<number>(m), lefts: new Array<number>(m), size: 0 };
    active.forEach((i, r) => {
      const xi = clean.subarray(i * d, (i + 1) * d);
      const bi = best.subarray(i * d, (i + 1) * d);
      const out = proposals.subarray(r * d, (r + 1) * d);
      if (ctx.norm === 'linf') {
        const w = proposeLinf(xi, bi, out, frac, g, rngs[i]);
        windows.tops[r] = w.top;
        windows.lefts[r] = w.left;
        windows.size = w.size;
      } else proposeL2(xi, bi, out, delta, frac, g, rngs[i]);
    });
    const logits = incremental ? await incremental.score(active, proposals, windows.tops, windows.lefts, windows.size) : await score(classifier, proposals, m);
    active.forEach((i, r) => {
      const z = logits.subarray(r * k, (r + 1) * k);
      const l = loss(z, goal[i], targeted);
      if (l < lossMin[i]) {
        lossMin[i] = l;
        best.set(proposals.subarray(r * d, (r + 1) * d), i * d);
        incremental?.accept(r);
        if (goalMet(z, i)) done[i] = 1;
      }
    });
  }
  return tf.tensor4d(best, [n, h, w, c]);
}

/** Logits of `m` images stored NHWC in `data` (m queries), read in one wait. */
async function score(classifier: BatchContext['classifier'], data: Float32Array, m: number): Promise<Float32Array> {
  const [h, w, c] = classifier.inputShape;
  return Float32Array.from((await readOne(tf.tidy(() => classifier.logits(tf.tensor4d(data, [m, h, w, c]))))) as Float32Array);
}

/** The paper's losses, minimized: margin z_y - max_{j != y} z_j (untargeted), cross-entropy of the target (targeted). */
function loss(z: Float32Array, goal: number, targeted: boolean): number {
  if (targeted) {
    let max = -Infinity;
    for (let j = 0; j < z.length; j++) if (z[j] > max) max = z[j];
    let sum = 0;
    for (let j = 0; j < z.length; j++) sum += Math.exp(z[j] - max);
    return max + Math.log(sum) - z[goal];
  }
  let other = -Infinity;
  for (let j = 0; j < z.length; j++) if (j !== goal && z[j] > other) other = z[j];
  return z[goal] - other;
}

/** Index of the first maximum, as tf.argMax. */
function argmax(z: Float32Array): number {
  let arg = 0;
  for (let j = 1; j < z.length; j++) if (z[j] > z[arg]) arg = j;
  return arg;
}

const clip = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);
const sign = (rng: Rng) => (rng.next() < 0.5 ? -1 : 1);

/** L-inf start: vertical stripes, one sign per (column, channel), +-eps over the whole height. */
function initStripes(xi: Float32Array, out: Float32Array, g: Geometry, rng: Rng): void {
  const { h, w, c, eps, lo, hi } = g;
  for (let col = 0; col < w; col++) {
    for (let ch = 0; ch < c; ch++) {
      const s = sign(rng) * eps;
      for (let row = 0; row < h; row++) {
        const idx = (row * w + col) * c + ch;
        out[idx] = clip(xi[idx] + s, lo, hi);
      }
    }
  }
}

/** Side of the square for fraction `frac` of the pixels (official code: round(sqrt(p * d / c))). */
function side(frac: number, g: Geometry, min: number): number {
  return Math.min(Math.max(Math.round(Math.sqrt((frac * g.d) / g.c)), min), Math.min(g.h, g.w));
}

/**
 * L-inf step: a random s x s window of `best` gets a fresh +-eps per channel;
 * signs are redrawn (at most 10 times) while the window would not change.
 * Returns the window.
 */
function proposeLinf(xi: Float32Array, bi: Float32Array, out: Float32Array, frac: number, g: Geometry, rng: Rng): { top: number; left: number; size: number } {
  const { h, w, c, eps, lo, hi } = g;
  out.set(bi);
  const s = side(frac, g, 1);
  const top = rng.int(h - s + 1);
  const left = rng.int(w - s + 1);
  const signs = new Float32Array(c);
  for (let attempt = 0; attempt < 10; attempt++) {
    for (let ch = 0; ch < c; ch++) signs[ch] = sign(rng) * eps;
    let changes = false;
    for (let row = top; row < top + s && !changes; row++) {
      for (let col = left; col < left + s && !changes; col++) {
        for (let ch = 0; ch < c; ch++) {
          const idx = (row * w + col) * c + ch;
          if (Math.abs(Math.fround(clip(xi[idx] + signs[ch], lo, hi)) - bi[idx]) >= 1e-7) {
            changes = true;
            break;
          }
        }
      }
    }
    if (changes) break;
  }
  for (let row = top; row < top + s; row++) {
    for (let col = left; col < left + s; col++) {
      for (let ch = 0; ch < c; ch++) {
        const idx = (row * w + col) * c + ch;
        out[idx] = clip(xi[idx] + signs[ch], lo, hi);
      }
    }
  }
  return { top, left, size: s };
}

/** Official `pseudo_gaussian_pert_rectangles`: nested rectangles weighted 1/(k+1)^2, unit L2 norm. */
function pseudoGaussianRect(rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  if (!rows || !cols) return out;
  const rc = Math.floor(rows / 2) + 1;
  const cc = Math.floor(cols / 2) + 1;
  let r0 = rc - 1;
  let c0 = cc - 1;
  for (let k = 0; k < Math.max(rc, cc); k++) {
    const v = 1 / ((k + 1) * (k + 1));
    for (let r = Math.max(r0, 0); r < Math.min(r0 + 2 * k + 1, rows); r++) {
      for (let q = Math.max(c0, 0); q < Math.min(c0 + 2 * k + 1, cols); q++) out[r * cols + q] += v;
    }
    r0--;
    c0--;
  }
  normalize(out);
  return out;
}

/** Official `meta_pseudo_gaussian_pert`: two opposite-signed bumps in the halves of an s x s square, randomly transposed. */
function pseudoGaussian(s: number, rng: Rng): Float64Array {
  const out = new Float64Array(s * s);
  const half = Math.floor(s / 2);
  const topPart = pseudoGaussianRect(half, s);
  const bottom = pseudoGaussianRect(s - half, s);
  for (let i = 0; i < topPart.length; i++) out[i] = topPart[i];
  for (let i = 0; i < bottom.length; i++) out[half * s + i] = -bottom[i];
  normalize(out);
  if (rng.next() > 0.5) {
    const t = new Float64Array(s * s);
    for (let r = 0; r < s; r++) for (let q = 0; q < s; q++) t[q * s + r] = out[r * s + q];
    return t;
  }
  return out;
}

function normalize(v: Float64Array): void {
  let sq = 0;
  for (let i = 0; i < v.length; i++) sq += v[i] * v[i];
  const norm = Math.sqrt(sq);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] /= norm;
}

/** Writes clip(x + delta * eps / ||delta||) into `out` (exactly norm eps before clipping, at most eps after). */
function scaleToBall(xi: Float32Array, delta: ArrayLike<number>, out: Float32Array, g: Geometry): void {
  let sq = 0;
  for (let i = 0; i < g.d; i++) sq += delta[i] * delta[i];
  const f = sq > 0 ? g.eps / Math.sqrt(sq) : 0;
  for (let i = 0; i < g.d; i++) out[i] = clip(xi[i] + delta[i] * f, g.lo, g.hi);
}

/** L2 start: a grid of pseudo-Gaussian bumps of side h/5 with random signs per channel, scaled to norm eps. */
function initBumps(xi: Float32Array, out: Float32Array, g: Geometry, rng: Rng): void {
  const { h, w, c } = g;
  const delta = new Float64Array(g.d);
  const s = Math.max(1, Math.floor(h / 5));
  const startH = Math.max(0, Math.floor((h - 5 * s) / 2));
  const startW = Math.max(0, Math.floor((w - 5 * s) / 2));
  for (let bh = 0; bh < Math.floor(h / s); bh++) {
    for (let bw = 0; bw < Math.floor(w / s); bw++) {
      const bump = pseudoGaussian(s, rng);
      for (let ch = 0; ch < c; ch++) {
        const sg = sign(rng);
        for (let r = 0; r < s; r++) {
          const row = startH + bh * s + r;
          if (row >= h) break;
          for (let q = 0; q < s; q++) {
            const col = startW + bw * s + q;
            if (col >= w) break;
            delta[(row * w + col) * c + ch] += sg * bump[r * s + q];
          }
        }
      }
    }
  }
  scaleToBall(xi, delta, out, g);
}

/**
 * L2 step (official `square_attack_l2`): window 1 gets a new pseudo-Gaussian bump
 * plus its old (normalized) content, rescaled per channel to take the window-1 and
 * window-2 mass plus the unused budget; window 2 is zeroed; the whole
 * perturbation is rescaled to norm eps.
 */
function proposeL2(xi: Float32Array, bi: Float32Array, out: Float32Array, delta: Float32Array, frac: number, g: Geometry, rng: Rng): void {
  const { h, w, c, d, eps } = g;
  let s = side(frac, g, 3);
  if (s % 2 === 0) s = s + 1 <= Math.min(h, w) ? s + 1 : s - 1;
  s = Math.max(1, s);
  for (let i = 0; i < d; i++) delta[i] = bi[i] - xi[i];
  const h1 = rng.int(h - s + 1);
  const w1 = rng.int(w - s + 1);
  const h2 = rng.int(h - s + 1);
  const w2 = rng.int(w - s + 1);
  const in1 = (row: number, col: number) => row >= h1 && row < h1 + s && col >= w1 && col < w1 + s;
  const in2 = (row: number, col: number) => row >= h2 && row < h2 + s && col >= w2 && col < w2 + s;
  let imageSq = 0;
  for (let i = 0; i < d; i++) imageSq += delta[i] * delta[i];
  const window1Sq = new Float64Array(c);
  const unionSq = new Float64Array(c);
  for (let row = 0; row < h; row++) {
    for (let col = 0; col < w; col++) {
      const a = in1(row, col);
      const b = in2(row, col);
      if (!a && !b) continue;
      for (let ch = 0; ch < c; ch++) {
        const v = delta[(row * w + col) * c + ch];
        if (a) window1Sq[ch] += v * v;
        unionSq[ch] += v * v;
      }
    }
  }
  const bump = pseudoGaussian(s, rng);
  const fresh = new Float64Array(s * s * c);
  for (let ch = 0; ch < c; ch++) {
    const sg = sign(rng);
    const oldNorm = Math.sqrt(window1Sq[ch]) + 1e-10;
    let sq = 0;
    for (let r = 0; r < s; r++) {
      for (let q = 0; q < s; q++) {
        const v = bump[r * s + q] * sg + delta[((h1 + r) * w + (w1 + q)) * c + ch] / oldNorm;
        fresh[(r * s + q) * c + ch] = v;
        sq += v * v;
      }
    }
    const target = Math.sqrt(Math.max(eps * eps - imageSq, 0) / c + unionSq[ch]);
    const f = sq > 0 ? target / Math.sqrt(sq) : 0;
    for (let r = 0; r < s * s; r++) fresh[r * c + ch] *= f;
  }
  for (let r = 0; r < s; r++) for (let q = 0; q < s; q++) for (let ch = 0; ch < c; ch++) delta[((h2 + r) * w + (w2 + q)) * c + ch] = 0;
  for (let r = 0; r < s; r++) for (let q = 0; q < s; q++) for (let ch = 0; ch < c; ch++) delta[((h1 + r) * w + (w1 + q)) * c + ch] = fresh[(r * s + q) * c + ch];
  scaleToBall(xi, delta, out, g);
}
