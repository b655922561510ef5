import { tf } from '../engine/tf.js';
import { readAndDispose, readOne } from '../engine/read.js';
import type { Attack, BatchContext } from './types.js';
import type { Rng } from '../util/rng.js';

/** Parameters of {@link hopSkipJump}. */
export interface HopSkipJumpParams {
  /** Queries per image, everything included (clean check, initialization, searches, estimates). */
  maxQueries: number;
  /** Iterations (gradient estimate, step, binary search) at most. */
  iterations: number;
  /** Monte Carlo samples of the first gradient estimate; iteration t uses initNumEvals * sqrt(t). */
  initNumEvals: number;
  /** Cap on the samples of one gradient estimate. */
  maxNumEvals: number;
  /** Sets the binary-search tolerance theta = gamma / d^(3/2) (L2) or gamma / d^2 (L-inf), and the probe radius. */
  gamma: number;
}

/**
 * HopSkipJumpAttack: a decision-based attack that walks along the decision
 * boundary. From an adversarial starting point, a binary search on the segment
 * to the clean image reaches the boundary; then, each iteration, the sign of
 * the decision at random probes around the boundary point estimates the
 * boundary's normal (Monte Carlo, with baseline subtraction), a geometric
 * step-size search moves along it (step dist / sqrt(t), halved until the point
 * is adversarial) and a binary search returns to the boundary. Chen, Jordan &
 * Wainwright, "HopSkipJumpAttack: A Query-Efficient Decision-Based Attack",
 * IEEE S&P 2020.
 *
 * Decision-only: the classifier is queried through `classifier.logits`, and only
 * the argmax of each row is used (is it adversarial or not); never a gradient.
 * Start: the first adversarial point among uniform-noise images (untargeted: up
 * to 20 draws, then the other images of the batch with a different label;
 * targeted: the batch's images labelled with the target first, then noise), at
 * most 100 tries; an image with no start is returned clean. An image the
 * classifier already gets wrong (untargeted) or puts in the target class is
 * returned as is after one query. Batched: the per-image searches (binary and
 * step-size) advance together over the batch, one query per live image per round;
 * each gradient estimate is one image's samples (in chunks). Returns, per image,
 * the adversarial point of smallest distance (L2, or L-inf for linf) found.
 *
 * Budget: every image spends at most maxQueries; an iteration is skipped (the
 * image stops) when its estimate could not have at least min(planned, 20)
 * samples while leaving room for the binary search. A finite eps (optional for
 * this minimal attack) is a cap: an image stops as soon as its best point is
 * within eps, and is returned clean if it never gets there.
 *
 * Distance: l2 (default), linf. Parameters: maxQueries (5000 per image),
 * iterations (40), initNumEvals (100), maxNumEvals (1000; the paper's 10000
 * only matters for budgets far above 5000), gamma (1). Usage:
 * `runAttack(hopSkipJump, classifier, data, { params: { maxQueries: 2000 } })`.
 */
export const hopSkipJump: Attack<{ maxQueries: number; iterations: number; initNumEvals: number; maxNumEvals: number; gamma: number }> = {
  name: 'hopskipjump',
  title: 'HopSkipJumpAttack',
  paper: 'Chen, Jordan & Wainwright, IEEE S&P 2020',
  kind: 'minimal',
  access: 'decision',
  norms: ['l2', 'linf'],
  targeted: 'both',
  params: [
    { name: 'maxQueries', type: 'integer', default: 5000, min: 1, description: 'queries per image, everything included' },
    { name: 'iterations', type: 'integer', default: 40, min: 0, description: 'iterations at most (estimate, step, binary search)' },
    { name: 'initNumEvals', type: 'integer', default: 100, min: 1, description: 'Monte Carlo samples of the first gradient estimate (then times sqrt(t))' },
    { name: 'maxNumEvals', type: 'integer', default: 1000, min: 1, description: 'cap on the samples of one gradient estimate (paper: 10000)' },
    { name: 'gamma', type: 'number', default: 1, min: 1e-6, description: 'binary-search tolerance theta = gamma / d^1.5 (l2) or gamma / d^2 (linf)' },
  ],
  attackBatch: (ctx, p) => hopSkipJumpAttack(ctx, p),
};

const INIT_TRIES = 100;
const NOISE_FIRST = 20;
const MIN_EVALS = 20;
const MAX_HALVINGS = 30;
/** Largest number of values in one chunk of probe images (bounds memory for large images). */
const CHUNK_VALUES = 1 << 21;

interface State {
  queries: number;
  /** Finished: out of budget, out of iterations, already adversarial, within the eps cap, or no start. */
  done: boolean;
  /** Current boundary point (adversarial). */
  point: Float32Array | null;
  /** Distance of `point` to the clean image. */
  dist: number;
  best: Float32Array | null;
  bestDist: number;
}

async function hopSkipJumpAttack(ctx: BatchContext, p: HopSkipJumpParams): Promise<tf.Tensor4D> {
  const { classifier, x, rng } = ctx;
  const n = x.shape[0];
  const [h, w, c] = classifier.inputShape;
  const d = h * w * c;
  const [lo, hi] = classifier.bounds;
  const l2 = ctx.norm !== 'linf';
  const targeted = ctx.targets !== undefined;
  const cap = ctx.eps;
  const clean = Float32Array.from((await x.data()) as Float32Array);
  const labels = Int32Array.from((await ctx.labels.data()) as Int32Array);
  const goal = Int32Array.from((await (ctx.targets ?? ctx.labels).data()) as Int32Array);
  const theta = l2 ? p.gamma / (d * Math.sqrt(d)) : p.gamma / (d * d);
  const xOf = (i: number) => clean.subarray(i * d, (i + 1) * d);
  const distance = (i: number, img: Float32Array): number => {
    const xi = xOf(i);
    let acc = 0;
    for (let k = 0; k < d; k++) {
      const diff = Math.abs(img[k] - xi[k]);
      if (l2) acc += diff * diff;
      else if (diff > acc) acc = diff;
    }
    return l2 ? Math.sqrt(acc) : acc;
  };

  /** One decision per image: queries every (image, candidate) pair at once (one read), counting each image's query. */
  const decide = async (items: { i: number; img: Float32Array }[]): Promise<boolean[]> => {
    if (!items.length) return [];
    const data = new Float32Array(items.length * d);
    items.forEach((it, r) => data.set(it.img, r * d));
    const preds = Int32Array.from((await readOne(tf.tidy(() => tf.argMax(classifier.logits(tf.tensor4d(data, [items.length, h, w, c])), 1)))) as Int32Array);
    return items.map((it, r) => {
      states[it.i].queries++;
      return targeted ? preds[r] === goal[it.i] : preds[r] !== goal[it.i];
    });
  };
  const budget = (i: number) => p.maxQueries - states[i].queries;
  const record = (i: number, img: Float32Array, dist: number) => {
    const s = states[i];
    s.point = img;
    s.dist = dist;
    if (dist < s.bestDist) {
      s.best = img;
      s.bestDist = dist;
      if (Number.isFinite(cap) && dist <= cap) s.done = true;
    }
  };

  const states: State[] = Array.from({ length: n }, () => ({ queries: 0, done: false, point: null, dist: Infinity, best: null, bestDist: Infinity }));

  // 0. Images that already meet the goal need nothing.
  const cleanItems = states.map((_, i) => ({ i, img: xOf(i) }));
  (await decide(cleanItems)).forEach((hit, i) => {
    if (hit) {
      states[i].best = xOf(i).slice();
      states[i].bestDist = 0;
      states[i].done = true;
    }
  });

  // 1. An adversarial starting point per image.
  const starts: (Float32Array | null)[] = new Array(n).fill(null);
  const fromBatch = (i: number) => {
    const list: number[] = [];
    for (let j = 0; j < n; j++) if (j !== i && (targeted ? labels[j] === goal[i] : labels[j] !== labels[i])) list.push(j);
    return list;
  };
  const batchCandidates = states.map((_, i) => fromBatch(i));
  for (let t = 0; t < INIT_TRIES; t++) {
    const items: { i: number; img: Float32Array }[] = [];
    for (let i = 0; i < n; i++) {
      if (states[i].done || starts[i] || budget(i) < 1) continue;
      const pool = batchCandidates[i];
      const useBatch = targeted ? t < pool.length : t >= NOISE_FIRST && t - NOISE_FIRST < pool.length;
      if (useBatch) items.push({ i, img: xOf(pool[targeted ? t : t - NOISE_FIRST]) });
      else {
        const noise = new Float32Array(d);
        for (let k = 0; k < d; k++) noise[k] = lo + (hi - lo) * rng.next();
        items.push({ i, img: noise });
      }
    }
    if (!items.length) break;
    (await decide(items)).forEach((hit, r) => {
      if (hit) starts[items[r].i] = items[r].img.slice();
    });
  }
  for (let i = 0; i < n; i++) if (!starts[i]) states[i].done = true;

  // 2. Binary search from each start to the boundary.
  await binarySearch(starts.map((img, i) => (img && !states[i].done ? img : null)));

  // 3. Iterations: estimate the boundary normal, step along it, return to the boundary.
  for (let t = 1; t <= p.iterations; t++) {
    const planned = Math.min(Math.floor(p.initNumEvals * Math.sqrt(t)), p.maxNumEvals);
    const updates: (Float32Array | null)[] = new Array(n).fill(null);
    for (let i = 0; i < n; i++) {
      const s = states[i];
      if (s.done || !s.point) continue;
      const evals = Math.min(planned, budget(i) - searchSteps(s.dist) - 1);
      if (evals < Math.min(planned, MIN_EVALS)) {
        s.done = true;
        continue;
      }
      // Probe radius (paper): 0.1 of the range at first, then sqrt(d) theta dist (L2) or d theta dist (L-inf).
      const delta = t === 1 ? 0.1 * (hi - lo) : (l2 ? Math.sqrt(d) : d) * theta * s.dist;
      const grad = await estimateGradient(i, s.point, evals, delta);
      if (grad) updates[i] = grad;
    }
    if (updates.every((u) => u === null)) break;
    // Geometric step-size search: start at dist / sqrt(t), halve until adversarial.
    const stepped: (Float32Array | null)[] = new Array(n).fill(null);
    const size = updates.map((u, i) => (u ? states[i].dist / Math.sqrt(t) : 0));
    const searching = updates.map((u) => u !== null);
    for (let round = 0; round < MAX_HALVINGS && searching.some(Boolean); round++) {
      const items: { i: number; img: Float32Array }[] = [];
      for (let i = 0; i < n; i++) {
        if (!searching[i]) continue;
        if (budget(i) < 1) {
          searching[i] = false;
          continue;
        }
        const s = states[i];
        const u = updates[i]!;
        const img = new Float32Array(d);
        for (let k = 0; k < d; k++) img[k] = clip(s.point![k] + size[i] * u[k], lo, hi);
        items.push({ i, img });
      }
      (await decide(items)).forEach((hit, r) => {
        const i = items[r].i;
        if (hit) {
          stepped[i] = items[r].img;
          searching[i] = false;
        } else size[i] /= 2;
      });
    }
    await binarySearch(stepped);
  }

  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const s = states[i];
    out.set(s.best && s.bestDist <= cap ? s.best : xOf(i), i * d);
  }
  return tf.tensor4d(out, [n, h, w, c]);

  /** Queries the binary search needs from a point at distance `dist` (L2 searches the blend factor in [0, 1]). */
  function searchSteps(dist: number): number {
    return Math.max(0, Math.ceil(Math.log2(l2 ? 1 / theta : Math.max(1, dist / (hi - lo)) / theta)));
  }

  /**
   * Binary search (paper's `binary_search_batch`) between each clean image and its
   * adversarial `far` point, all images in lockstep; records the adversarial end.
   * L2: the blend (1 - a) x + a far, tolerance theta on a. L-inf: `far` clipped
   * to the box of radius a around x, tolerance min(dist * theta, theta * range)
   * (the paper's, for inputs in [0, 1]).
   */
  async function binarySearch(far: (Float32Array | null)[]): Promise<void> {
    const low = new Float64Array(n);
    const high = new Float64Array(n);
    const tol = new Float64Array(n);
    const live: boolean[] = far.map((f) => f !== null);
    for (let i = 0; i < n; i++) {
      if (!far[i]) continue;
      const dist = distance(i, far[i]!);
      high[i] = l2 ? 1 : dist;
      tol[i] = l2 ? theta : Math.min(dist * theta, theta * (hi - lo));
    }
    const project = (i: number, a: number): Float32Array => {
      const xi = xOf(i);
      const f = far[i]!;
      const out = new Float32Array(d);
      for (let k = 0; k < d; k++) out[k] = l2 ? (1 - a) * xi[k] + a * f[k] : clip(f[k], xi[k] - a, xi[k] + a);
      return out;
    };
    for (;;) {
      const items: { i: number; img: Float32Array }[] = [];
      const mids: number[] = [];
      for (let i = 0; i < n; i++) {
        if (!live[i]) continue;
        if (high[i] - low[i] <= tol[i] || budget(i) < 1) {
          live[i] = false;
          continue;
        }
        const mid = (low[i] + high[i]) / 2;
        items.push({ i, img: project(i, mid) });
        mids.push(mid);
      }
      if (!items.length) break;
      (await decide(items)).forEach((hit, r) => {
        const i = items[r].i;
        if (hit) high[i] = mids[r];
        else low[i] = mids[r];
      });
    }
    for (let i = 0; i < n; i++) {
      if (!far[i]) continue;
      // The high end is adversarial: `far` itself (a = 1 or its own distance) or a queried midpoint.
      const img = high[i] === (l2 ? 1 : distance(i, far[i]!)) ? far[i]!.slice() : project(i, high[i]);
      record(i, img, distance(i, img));
    }
  }

  /**
   * Monte Carlo estimate of the boundary normal at `point` (paper's
   * `approximate_gradient`): `evals` probes point + delta u (u uniform on the
   * sphere for L2, uniform in the cube then normalized for L-inf), clipped to the
   * bounds; the mean of (phi - mean phi) u, phi = +-1 the decision; unit L2 norm.
   * L-inf steps along its sign. Null if the estimate vanishes.
   */
  async function estimateGradient(i: number, point: Float32Array, evals: number, delta: number): Promise<Float32Array | null> {
    const chunk = Math.max(1, Math.floor(CHUNK_VALUES / d));
    const sumU = new Float64Array(d);
    const sumFU = new Float64Array(d);
    let sumF = 0;
    for (let start = 0; start < evals; start += chunk) {
      const b = Math.min(chunk, evals - start);
      const noise = l2 ? gaussian(b * d, rng) : uniform(b * d, rng);
      // The sums leave the tidy as tensors and are read in one wait.
      const [fSum, u, fu] = await readAndDispose(
        tf.tidy(() => {
          const base = tf.tensor4d(point, [1, h, w, c]);
          const raw = tf.tensor4d(noise, [b, h, w, c]);
          const norms = tf.reshape(tf.norm(tf.reshape(raw, [b, d]), 'euclidean', 1), [b, 1, 1, 1]);
          const probes = tf.clipByValue(tf.add(base, tf.mul(delta, tf.div(raw, tf.add(norms, 1e-12)))), lo, hi) as tf.Tensor4D;
          const dirs = tf.div(tf.sub(probes, base), delta);
          const preds = tf.argMax(classifier.logits(probes), 1);
          const hits = targeted ? tf.equal(preds, goal[i]) : tf.notEqual(preds, goal[i]);
          const phi = tf.sub(tf.mul(tf.cast(hits, 'float32'), 2), 1);
          return [tf.sum(phi), tf.sum(tf.reshape(dirs, [b, d]), 0), tf.sum(tf.mul(tf.reshape(dirs, [b, d]), tf.reshape(phi, [b, 1])), 0)];
        }),
      );
      states[i].queries += b;
      sumF += fSum[0];
      for (let k = 0; k < d; k++) {
        sumU[k] += u[k];
        sumFU[k] += fu[k];
      }
    }
    // Baseline subtraction: mean((phi - mean phi) u); all-equal decisions give +-mean(u).
    const grad = new Float32Array(d);
    const meanF = sumF / evals;
    let sq = 0;
    for (let k = 0; k < d; k++) {
      const g = meanF === 1 ? sumU[k] : meanF === -1 ? -sumU[k] : sumFU[k] - meanF * sumU[k];
      grad[k] = l2 ? g : Math.sign(g);
      sq += grad[k] * grad[k];
    }
    if (!(sq > 0)) return null;
    if (l2) {
      const norm = Math.sqrt(sq);
      for (let k = 0; k < d; k++) grad[k] /= norm;
    }
    return grad;
  }
}

const clip = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);

/** `count` standard normal samples (Box-Muller, both outputs of each pair). */
function gaussian(count: number, rng: Rng): Float32Array {
  const out = new Float32Array(count);
  for (let k = 0; k < count; k += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rng.next()));
    const a = 2 * Math.PI * rng.next();
    out[k] = r * Math.cos(a);
    if (k + 1 < count) out[k + 1] = r * Math.sin(a);
  }
  return out;
}

/** `count` samples uniform in [-1, 1). */
function uniform(count: number, rng: Rng): Float32Array {
  const out = new Float32Array(count);
  for (let k = 0; k < count; k++) out[k] = 2 * rng.next() - 1;
  return out;
}
