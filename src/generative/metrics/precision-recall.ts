/**
 * Improved precision and recall of a generative model (Kynkäänniemi et al.,
 * "Improved precision and recall metric for assessing generative models",
 * NeurIPS 2019). Each set of feature vectors stands for a manifold: the union
 * of balls around its points, each ball's radius the distance from its point
 * to its k-th nearest neighbour within the set. Precision is the fraction of
 * generated points inside the real manifold (are samples realistic?), recall
 * the fraction of real points inside the generated manifold (is the variety of
 * the data covered?). Distances are Euclidean on the feature vectors.
 */
import { InputError } from '../../errors.js';
import { checkSamples, type SampleMatrix } from './linalg.js';

/** Options of {@link precisionRecall}. */
export interface PrecisionRecallOptions {
  /** Neighbour whose distance sets each ball's radius (default 3, the paper's choice). */
  k?: number;
}

/** Improved precision and recall. */
export interface PrecisionRecall {
  /** Fraction of generated points inside the real manifold. */
  precision: number;
  /** Fraction of real points inside the generated manifold. */
  recall: number;
  /** The k used. */
  k: number;
}

/**
 * Improved precision and recall of `generated` against `real` (rows = samples,
 * same d). A point on a ball's boundary counts as inside, as in the reference
 * code. Each set needs more than k points. Brute force, O((n_real + n_gen)²·d)
 * time and O((n_real + n_gen)·(d + k)) memory: fine for a few thousand points.
 *
 * Usage: `const { precision, recall } = precisionRecall(realFeatures, fakeFeatures)`.
 */
export function precisionRecall(real: SampleMatrix, generated: SampleMatrix, options: PrecisionRecallOptions = {}): PrecisionRecall {
  const k = checkK(options.k ?? 3);
  const r = prepare(real, 'real', k + 1);
  const g = prepare(generated, 'generated', k + 1);
  if (g.d !== r.d) throw new InputError('generated', `has ${g.d} features per sample, real has ${r.d}`);
  const realRadii = kthNeighbourDistances2(r, k);
  const generatedRadii = kthNeighbourDistances2(g, k);
  return { precision: fractionInside(r, realRadii, g), recall: fractionInside(g, generatedRadii, r), k };
}

/**
 * Fraction of the rows of `queries` inside the k-nearest-neighbour manifold of
 * `reference` (precision when reference is real and queries generated, recall
 * the other way round).
 */
export function manifoldFraction(reference: SampleMatrix, queries: SampleMatrix, k = 3): number {
  const ref = prepare(reference, 'reference', checkK(k) + 1);
  const q = prepare(queries, 'queries', 1);
  if (q.d !== ref.d) throw new InputError('queries', `has ${q.d} features per sample, reference has ${ref.d}`);
  return fractionInside(ref, kthNeighbourDistances2(ref, k), q);
}

/** Rows as float64 with their squared norms, for ‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b. */
interface Points {
  x: Float64Array;
  norms: Float64Array;
  n: number;
  d: number;
}

function checkK(k: number): number {
  if (!Number.isSafeInteger(k) || k < 1) throw new InputError('k', `expected a positive integer, got ${k}`);
  return k;
}

/** Checks `m` (at least `minRows` rows) and converts it. */
function prepare(m: SampleMatrix, argument: string, minRows: number): Points {
  checkSamples(m, argument, minRows);
  const x = m.data instanceof Float64Array ? m.data : Float64Array.from(m.data);
  const norms = new Float64Array(m.n);
  // The norm and the cross products go through the same dot(), so a point
  // compared with an exact copy of itself is at distance exactly 0.
  for (let i = 0; i < m.n; i++) norms[i] = dot(x, i * m.d, x, i * m.d, m.d);
  return { x, norms, n: m.n, d: m.d };
}

/** Rows per block in the distance loops: about 128 KB of a block stays in cache while the other set streams by. */
function blockRows(d: number): number {
  return Math.max(1, Math.min(256, Math.floor(16384 / d)));
}

/** a·b over d entries from offsets oa, ob (four partial sums, to shorten the dependency chain). */
function dot(a: Float64Array, oa: number, b: Float64Array, ob: number, d: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let t = 0;
  for (; t + 3 < d; t += 4) {
    s0 += a[oa + t] * b[ob + t];
    s1 += a[oa + t + 1] * b[ob + t + 1];
    s2 += a[oa + t + 2] * b[ob + t + 2];
    s3 += a[oa + t + 3] * b[ob + t + 3];
  }
  for (; t < d; t++) s0 += a[oa + t] * b[ob + t];
  return s0 + s1 + s2 + s3;
}

/**
 * Squared distance from each point to its k-th nearest other point of the same
 * set. Each pair is measured once and offered to both points' k smallest,
 * kept sorted in a small array per point.
 */
function kthNeighbourDistances2(p: Points, k: number): Float64Array {
  const { x, norms, n, d } = p;
  const nearest = new Float64Array(n * k).fill(Infinity);
  const offer = (i: number, dist2: number) => {
    const o = i * k;
    if (dist2 >= nearest[o + k - 1]) return;
    let s = k - 1;
    while (s > 0 && nearest[o + s - 1] > dist2) {
      nearest[o + s] = nearest[o + s - 1];
      s--;
    }
    nearest[o + s] = dist2;
  };
  const rows = blockRows(d);
  for (let i0 = 0; i0 < n; i0 += rows) {
    const i1 = Math.min(n, i0 + rows);
    for (let j = i0 + 1; j < n; j++) {
      const oj = j * d;
      const iEnd = Math.min(i1, j);
      for (let i = i0; i < iEnd; i++) {
        const dist2 = Math.max(0, norms[i] + norms[j] - 2 * dot(x, i * d, x, oj, d));
        offer(i, dist2);
        offer(j, dist2);
      }
    }
  }
  return Float64Array.from({ length: n }, (_, i) => nearest[i * k + k - 1]);
}

/** Fraction of the query points within some reference point's ball (squared radii `radii2`). */
function fractionInside(ref: Points, radii2: Float64Array, q: Points): number {
  const d = ref.d;
  const inside = new Uint8Array(q.n);
  let count = 0;
  const rows = blockRows(d);
  for (let i0 = 0; i0 < q.n; i0 += rows) {
    const i1 = Math.min(q.n, i0 + rows);
    let left = i1 - i0;
    for (let j = 0; j < ref.n && left > 0; j++) {
      const oj = j * d;
      for (let i = i0; i < i1; i++) {
        if (inside[i]) continue;
        const dist2 = Math.max(0, q.norms[i] + ref.norms[j] - 2 * dot(q.x, i * d, ref.x, oj, d));
        if (dist2 <= radii2[j]) {
          inside[i] = 1;
          left--;
        }
      }
    }
    count += i1 - i0 - left;
  }
  return count / q.n;
}
