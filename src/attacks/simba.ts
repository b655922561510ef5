import { tf } from '../engine/tf.js';
import { readOne } from '../engine/read.js';
import type { Attack, BatchContext } from './types.js';
import type { Rng } from '../util/rng.js';

/** Parameters of {@link simba}. */
export interface SimbaParams {
  /** Queries per image, the one that scores the clean image included. */
  maxQueries: number;
  /** Step along one basis vector (input scale; a pixel step, or the L2 length of a DCT step). */
  stepSize: number;
  /** `pixel` (SimBA, Cartesian basis) or `dct` (SimBA-DCT, low frequencies first). */
  basis: string;
  /** SimBA-DCT: the side of the low-frequency block tried first, as a fraction of the image side. */
  freqRatio: number;
}

/**
 * SimBA, the Simple Black-box Attack: walk the basis vectors in random order;
 * for each, try a step of -stepSize and, if that does not help, +stepSize, and
 * keep the first that lowers the probability of the label (untargeted) or
 * raises the probability of the target (targeted). Guo, Gardner, You, Wilson &
 * Weinberger, "Simple Black-box Adversarial Attacks", ICML 2019.
 *
 * Only `classifier.logits` is called (probabilities are its softmax; never a
 * gradient). Bases: `pixel` (the paper's SimBA: one coordinate, i.e. one pixel
 * of one channel, per step) and `dct` (SimBA-DCT: orthonormal 2-D DCT basis
 * images per channel; frequencies in the low block of side freqRatio * side come
 * first, in random order, then the others). Each image has its own random order;
 * a new pass (new order) starts when one is exhausted.
 *
 * Budget, kept by construction so the driver's eps-ball check always passes:
 * L-inf, each coordinate's total change is clipped to [-eps, eps] (a pixel step
 * is min(stepSize, eps)); L2, a step that would take the perturbation outside
 * the ball is not tried, and an image stops (spends no more queries) once a full
 * step of length stepSize no longer fits, i.e. after about (eps / stepSize)^2
 * accepted steps. Pixel steps that the bounds (or the L-inf box) make no-ops are
 * skipped without a query. Batched: each round queries the -step proposals of
 * all live images together, then the +step proposals of those whose -step did
 * not help; an image stops once adversarial (decided from the logits of its
 * accepted query, so no extra query) or out of queries.
 *
 * Distance: l2 (default), linf. Parameters: maxQueries (10000 per image,
 * counting the clean image's), stepSize (0.2), basis (pixel), freqRatio (0.125,
 * dct only). Usage:
 * `runAttack(simba, classifier, data, { norm: 'l2', eps: 3, params: { maxQueries: 2000 } })`.
 */
export const simba: Attack<{ maxQueries: number; stepSize: number; basis: string; freqRatio: number }> = {
  name: 'simba',
  title: 'Simple Black-box Attack',
  paper: 'Guo et al., ICML 2019',
  kind: 'fixed-budget',
  access: 'scores',
  norms: ['l2', 'linf'],
  targeted: 'both',
  params: [
    { name: 'maxQueries', type: 'integer', default: 10000, min: 1, description: 'queries per image, the clean image included' },
    { name: 'stepSize', type: 'number', default: 0.2, min: 0, description: 'step along one basis vector, input scale' },
    { name: 'basis', type: 'string', default: 'pixel', choices: ['pixel', 'dct'], description: 'pixel (SimBA) or dct (SimBA-DCT)' },
    { name: 'freqRatio', type: 'number', default: 0.125, min: 0, max: 1, description: 'dct: side of the low-frequency block tried first, fraction of the image side' },
  ],
  attackBatch: (ctx, p) => simbaAttack(ctx, p),
};

interface ImageState {
  /** Current image, clipped to the bounds (and the L-inf box). */
  cur: Float32Array;
  /** dct: the perturbation before clipping to the bounds. */
  delta?: Float64Array;
  /** Squared L2 norm of the perturbation (pixel: of cur - x; dct: of delta). */
  sq: number;
  /** Probability of the label (untargeted) or the target. */
  prob: number;
  queries: number;
  done: boolean;
  order: Int32Array;
  next: number;
  /** Coordinates tried in the current pass without any candidate (to end a pass that cannot move). */
  idle: number;
}

interface Candidate {
  image: number;
  /** Basis index and sign of the step. */
  coord: number;
  dir: number;
  /** pixel: the coordinate's new value. */
  value: number;
}

async function simbaAttack(ctx: BatchContext, p: SimbaParams): Promise<tf.Tensor4D> {
  const { classifier, x, eps, rng } = ctx;
  const n = x.shape[0];
  const [h, w, c] = classifier.inputShape;
  const d = h * w * c;
  const [lo, hi] = classifier.bounds;
  const k = classifier.numClasses;
  const targeted = ctx.targets !== undefined;
  const linf = ctx.norm === 'linf';
  const dct = p.basis === 'dct';
  if (!(eps > 0) || !(p.stepSize > 0)) return tf.clone(x);
  const clean = Float32Array.from((await x.data()) as Float32Array);
  const goal = Int32Array.from((await (ctx.targets ?? ctx.labels).data()) as Int32Array);
  const step = linf && !dct ? Math.min(p.stepSize, eps) : p.stepSize;
  const cosH = dct ? dctTable(h) : null;
  const cosW = dct ? dctTable(w) : null;
  const makeOrder = dct ? () => dctOrder(h, w, c, p.freqRatio, rng) : () => rng.permutation(d);

  const states: ImageState[] = [];
  const cleanLogits = await score(classifier, clean, n);
  for (let i = 0; i < n; i++) {
    const z = cleanLogits.subarray(i * k, (i + 1) * k);
    states.push({
      cur: clean.slice(i * d, (i + 1) * d),
      delta: dct ? new Float64Array(d) : undefined,
      sq: 0,
      prob: softmaxAt(z, goal[i]),
      queries: 1,
      done: reached(z, goal[i], targeted) || p.maxQueries <= 1,
      order: makeOrder(),
      next: 0,
      idle: 0,
    });
  }

  // A pixel candidate's new value, or NaN when the step is a no-op or leaves the L2 ball.
  const pixelValue = (i: number, coord: number, dir: number): number => {
    const s = states[i];
    const xv = clean[i * d + coord];
    const old = s.cur[coord];
    const lower = linf ? Math.max(lo, xv - eps) : lo;
    const upper = linf ? Math.min(hi, xv + eps) : hi;
    const v = Math.fround(clip(old + dir * step, lower, upper));
    if (v === old) return NaN;
    if (!linf) {
      const sq = s.sq - (old - xv) ** 2 + (v - xv) ** 2;
      if (sq > eps * eps) return NaN;
    }
    return v;
  };
  // A DCT candidate's change of the squared L2 norm of delta (L2 only).
  const dctSq = (i: number, coord: number, dir: number): number => {
    const s = states[i];
    let dot = 0;
    forBasis(coord, h, w, c, cosH!, cosW!, (idx, b) => (dot += s.delta![idx] * b));
    return s.sq + 2 * dir * step * dot + step * step;
  };
  // Writes candidate image `cand` into `out`.
  const render = (cand: Candidate, out: Float32Array): void => {
    const s = states[cand.image];
    out.set(s.cur);
    if (!dct) {
      out[cand.coord] = cand.value;
      return;
    }
    const xi = clean.subarray(cand.image * d, (cand.image + 1) * d);
    forBasis(cand.coord, h, w, c, cosH!, cosW!, (idx, b) => {
      let v = s.delta![idx] + cand.dir * step * b;
      if (linf) v = clip(v, -eps, eps);
      out[idx] = clip(xi[idx] + v, lo, hi);
    });
  };
  const accept = (cand: Candidate, image: Float32Array, z: Float32Array): void => {
    const s = states[cand.image];
    const i = cand.image;
    if (!dct) {
      const xv = clean[i * d + cand.coord];
      s.sq += (cand.value - xv) ** 2 - (s.cur[cand.coord] - xv) ** 2;
      s.cur[cand.coord] = cand.value;
    } else {
      let sq = s.sq;
      forBasis(cand.coord, h, w, c, cosH!, cosW!, (idx, b) => {
        const old = s.delta![idx];
        let v = old + cand.dir * step * b;
        if (linf) v = clip(v, -eps, eps);
        sq += v * v - old * old;
        s.delta![idx] = v;
      });
      s.sq = sq;
      s.cur.set(image);
    }
    s.prob = softmaxAt(z, goal[i]);
    if (reached(z, goal[i], targeted)) s.done = true;
  };
  const improves = (i: number, z: Float32Array) => {
    const q = softmaxAt(z, goal[i]);
    return targeted ? q > states[i].prob : q < states[i].prob;
  };

  for (;;) {
    // Each live image proposes its next basis vector: the -step candidate first, the +step one as a fallback.
    const first: Candidate[] = [];
    const second = new Map<number, Candidate>();
    for (let i = 0; i < n; i++) {
      const s = states[i];
      if (s.done) continue;
      if (s.queries >= p.maxQueries || (!linf && s.sq + step * step > eps * eps * (1 + 1e-9))) {
        s.done = true;
        continue;
      }
      let found: Candidate[] = [];
      while (!found.length) {
        if (s.next >= s.order.length) {
          s.order = makeOrder();
          s.next = 0;
        }
        const coord = s.order[s.next++];
        for (const dir of [-1, 1]) {
          if (!dct) {
            const v = pixelValue(i, coord, dir);
            if (!Number.isNaN(v)) found.push({ image: i, coord, dir, value: v });
          } else if (linf || dctSq(i, coord, dir) <= eps * eps) {
            found.push({ image: i, coord, dir, value: NaN });
          }
        }
        if (found.length) s.idle = 0;
        else if (++s.idle >= d) break; // a whole pass with nothing to try: stuck
      }
      if (!found.length) {
        s.done = true;
        continue;
      }
      first.push(found[0]);
      if (found[1]) second.set(i, found[1]);
    }
    if (!first.length) break;
    const retry: Candidate[] = [];
    await runRound(first, (cand, image, z) => {
      if (improves(cand.image, z)) accept(cand, image, z);
      else {
        const next = second.get(cand.image);
        if (next && states[cand.image].queries < p.maxQueries) retry.push(next);
      }
    });
    if (retry.length) await runRound(retry, (cand, image, z) => improves(cand.image, z) && accept(cand, image, z));
  }

  async function runRound(cands: Candidate[], handle: (cand: Candidate, image: Float32Array, z: Float32Array) => void): Promise<void> {
    const m = cands.length;
    const images = new Float32Array(m * d);
    cands.forEach((cand, r) => render(cand, images.subarray(r * d, (r + 1) * d)));
    const logits = await score(classifier, images, m);
    cands.forEach((cand, r) => {
      states[cand.image].queries++;
      handle(cand, images.subarray(r * d, (r + 1) * d), logits.subarray(r * k, (r + 1) * k));
    });
  }

  const out = new Float32Array(n * d);
  states.forEach((s, i) => out.set(s.cur, i * d));
  return tf.tensor4d(out, [n, h, w, c]);
}

/** Logits of `m` images stored NHWC in `data` (m queries), read in one wait. */
async function score(classifier: BatchContext['classifier'], data: Float32Array, m: number): Promise<Float32Array> {
  const [h, w, c] = classifier.inputShape;
  return Float32Array.from((await readOne(tf.tidy(() => classifier.logits(tf.tensor4d(data, [m, h, w, c]))))) as Float32Array);
}

function softmaxAt(z: Float32Array, j: number): number {
  let max = -Infinity;
  for (let i = 0; i < z.length; i++) if (z[i] > max) max = z[i];
  let sum = 0;
  for (let i = 0; i < z.length; i++) sum += Math.exp(z[i] - max);
  return Math.exp(z[j] - max) / sum;
}

/** Argmax (first maximum, as tf.argMax) is not the label (untargeted) or is the target. */
function reached(z: Float32Array, goal: number, targeted: boolean): boolean {
  let arg = 0;
  for (let j = 1; j < z.length; j++) if (z[j] > z[arg]) arg = j;
  return targeted ? arg === goal : arg !== goal;
}

const clip = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);

/** Orthonormal DCT-II basis: table[u * n + i] = alpha_u cos(pi (2i + 1) u / 2n). */
function dctTable(n: number): Float64Array {
  const t = new Float64Array(n * n);
  for (let u = 0; u < n; u++) {
    const a = Math.sqrt((u === 0 ? 1 : 2) / n);
    for (let i = 0; i < n; i++) t[u * n + i] = a * Math.cos((Math.PI * (2 * i + 1) * u) / (2 * n));
  }
  return t;
}

/** Calls f(index, value) over the support of DCT basis image `coord` = (u * w + v) * c + ch (one channel plane). */
function forBasis(coord: number, h: number, w: number, c: number, cosH: Float64Array, cosW: Float64Array, f: (idx: number, b: number) => void): void {
  const ch = coord % c;
  const uv = (coord - ch) / c;
  const v = uv % w;
  const u = (uv - v) / w;
  for (let row = 0; row < h; row++) {
    const a = cosH[u * h + row];
    for (let col = 0; col < w; col++) f((row * w + col) * c + ch, a * cosW[v * w + col]);
  }
}

/** SimBA-DCT order: the low-frequency block (u < fh, v < fw, all channels) in random order, then the rest in random order. */
function dctOrder(h: number, w: number, c: number, ratio: number, rng: Rng): Int32Array {
  const fh = Math.max(1, Math.round(ratio * h));
  const fw = Math.max(1, Math.round(ratio * w));
  const low: number[] = [];
  const rest: number[] = [];
  for (let u = 0; u < h; u++) for (let v = 0; v < w; v++) for (let ch = 0; ch < c; ch++) (u < fh && v < fw ? low : rest).push((u * w + v) * c + ch);
  rng.shuffle(low);
  rng.shuffle(rest);
  return Int32Array.from([...low, ...rest]);
}
