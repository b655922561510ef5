/**
 * The small dense linear algebra the generative-model metrics need, in plain
 * typed arrays: moments of a feature matrix, a symmetric eigendecomposition
 * (cyclic Jacobi), the square root of a symmetric positive semi-definite (PSD)
 * matrix, and tr(sqrt(A·B)) for PSD A and B. Matrices are square, row-major
 * Float64Arrays of d*d entries; sums are accumulated in float64 whatever the
 * input type.
 */
import { InputError } from '../../errors.js';

/** `n` samples (rows) of `d` values each, row-major: features, or class probabilities (then d = classes). */
export interface SampleMatrix {
  data: Float32Array | Float64Array;
  n: number;
  d: number;
}

/** Mean (length d) and covariance (d*d, row-major) of a set of feature vectors. */
export interface GaussianMoments {
  mean: Float64Array;
  covariance: Float64Array;
}

/** A symmetric eigendecomposition A = V diag(values) Vᵀ. */
export interface SymmetricEigen {
  /** Eigenvalues in ascending order. */
  values: Float64Array;
  /** d*d row-major; column i is the unit eigenvector of values[i]. */
  vectors: Float64Array;
}

/**
 * Checks that `x` is a well-formed sample matrix of at least `minRows` rows
 * with finite values, naming `argument` in the error.
 */
export function checkSamples(x: SampleMatrix, argument: string, minRows = 1): void {
  if (!x || !(x.data instanceof Float32Array || x.data instanceof Float64Array)) {
    throw new InputError(argument, 'expected { data: Float32Array | Float64Array, n, d }');
  }
  if (!Number.isSafeInteger(x.d) || x.d < 1) throw new InputError(argument, `d must be a positive integer, got ${x.d}`);
  if (!Number.isSafeInteger(x.n) || x.n < 0) throw new InputError(argument, `n must be a non-negative integer, got ${x.n}`);
  if (x.data.length !== x.n * x.d) throw new InputError(argument, `data has ${x.data.length} values, expected n*d = ${x.n}*${x.d} = ${x.n * x.d}`);
  if (x.n < minRows) throw new InputError(argument, `needs at least ${minRows} samples, got ${x.n}`);
  const bad = firstNonFinite(x.data);
  if (bad >= 0) throw new InputError(argument, `value ${x.data[bad]} at row ${Math.floor(bad / x.d)}, column ${bad % x.d}`);
}

/** Index of the first NaN or infinite entry, or -1. */
function firstNonFinite(a: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return i;
  return -1;
}

/**
 * Mean and unbiased covariance (denominator n-1, as numpy's `np.cov` in the
 * FID reference implementation) of the rows of `x`. Two passes (mean, then
 * centred products) so large means do not cancel the variance away.
 */
export function meanAndCovariance(x: SampleMatrix): GaussianMoments {
  checkSamples(x, 'features', 2);
  const { data, n, d } = x;
  const mean = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    const row = r * d;
    for (let i = 0; i < d; i++) mean[i] += data[row + i];
  }
  for (let i = 0; i < d; i++) mean[i] /= n;

  // Rows go through in blocks, centred and transposed, so each covariance
  // entry is a contiguous dot product over the block and the block stays in
  // cache; only the upper triangle is summed, then mirrored.
  const cov = new Float64Array(d * d);
  const block = 64;
  const t = new Float64Array(d * block);
  for (let r0 = 0; r0 < n; r0 += block) {
    const b = Math.min(block, n - r0);
    for (let r = 0; r < b; r++) {
      const row = (r0 + r) * d;
      for (let i = 0; i < d; i++) t[i * block + r] = data[row + i] - mean[i];
    }
    for (let i = 0; i < d; i++) {
      const oi = i * block;
      for (let j = i; j < d; j++) {
        const oj = j * block;
        let s = 0;
        for (let r = 0; r < b; r++) s += t[oi + r] * t[oj + r];
        cov[i * d + j] += s;
      }
    }
  }
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      const v = cov[i * d + j] / (n - 1);
      cov[i * d + j] = v;
      cov[j * d + i] = v;
    }
  }
  return { mean, covariance: cov };
}

/**
 * Eigenvalues (ascending) and orthonormal eigenvectors of the symmetric d×d
 * matrix `a` (row-major). Entries may differ from their mirror by rounding
 * (up to 1e-6 of the largest entry); the average of the two is used.
 *
 * Cyclic Jacobi (Jacobi 1846; the rotation formulas of Rutishauser 1971): every
 * rotation zeroes one off-diagonal pair. Each sweep costs O(d³) and about 8 to
 * 12 are needed, so it is meant for d up to a few hundred (around a second at
 * d = 256); it is slower than tridiagonalization + QL for large d, but simple,
 * always convergent, and accurate even for the tiny eigenvalues of nearly
 * singular covariances (Demmel & Veselić 1992, "Jacobi's method is more
 * accurate than QR").
 */
export function symmetricEigen(a: Float32Array | Float64Array, d: number): SymmetricEigen {
  const m = symmetricCopy(a, d, 'a');
  const vt = new Float64Array(d * d);
  for (let i = 0; i < d; i++) vt[i * d + i] = 1;
  jacobi(m, d, vt);
  const order = ascendingDiagonal(m, d);
  const values = new Float64Array(d);
  const vectors = new Float64Array(d * d);
  order.forEach((src, col) => {
    values[col] = m[src * d + src];
    // vt holds eigenvectors as rows; the result has them as columns.
    for (let k = 0; k < d; k++) vectors[k * d + col] = vt[src * d + k];
  });
  return { values, vectors };
}

/** Eigenvalues (ascending) of the symmetric matrix `a`, without the vectors (about half the work). */
export function symmetricEigenvalues(a: Float32Array | Float64Array, d: number): Float64Array {
  const m = symmetricCopy(a, d, 'a');
  jacobi(m, d, null);
  return Float64Array.from(ascendingDiagonal(m, d), (i) => m[i * d + i]);
}

/**
 * The symmetric PSD square root S of the symmetric PSD matrix `a` (S·S = a),
 * through the eigendecomposition: V diag(sqrt(λ)) Vᵀ. Negative eigenvalues
 * left by rounding are taken as 0; clearly negative ones (below -1e-4 of the
 * largest) mean `a` is not PSD and throw.
 */
export function sqrtPsd(a: Float32Array | Float64Array, d: number): Float64Array {
  const { values, vectors } = symmetricEigen(a, d);
  const top = Math.max(Math.abs(values[0]), Math.abs(values[d - 1]));
  if (values[0] < -PSD_TOLERANCE * top) {
    throw new InputError('a', `not positive semi-definite: eigenvalue ${values[0]} (largest ${values[d - 1]})`);
  }
  const roots = values.map((v) => Math.sqrt(Math.max(0, v)));
  const s = new Float64Array(d * d);
  // S = sum_k sqrt(λ_k) v_k v_kᵀ, upper triangle then mirrored so S is exactly symmetric.
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      let sum = 0;
      const oi = i * d;
      const oj = j * d;
      for (let k = 0; k < d; k++) sum += vectors[oi + k] * roots[k] * vectors[oj + k];
      s[i * d + j] = sum;
      s[j * d + i] = sum;
    }
  }
  return s;
}

/**
 * tr(sqrt(A·B)) for symmetric PSD `a` and `b`. A·B itself is not symmetric, but
 * it is similar to sqrt(A)·B·sqrt(A), which is symmetric PSD, so the trace is
 * the sum of the square roots of that matrix's eigenvalues: no complex
 * arithmetic and no ε·I added to singular covariances, unlike the general
 * `scipy.linalg.sqrtm` of the FID reference. Throws an InputError naming `a`
 * or `b` when that matrix is clearly not PSD.
 */
export function traceSqrtProduct(a: Float32Array | Float64Array, b: Float32Array | Float64Array, d: number): number {
  const bs = symmetricCopy(b, d, 'b');
  const sa = sqrtPsd(a, d);
  const m = multiply(multiply(sa, bs, d), sa, d);
  // Rounding leaves m slightly asymmetric; its symmetric part is what is meant.
  for (let i = 0; i < d; i++) {
    for (let j = i + 1; j < d; j++) {
      const v = 0.5 * (m[i * d + j] + m[j * d + i]);
      m[i * d + j] = v;
      m[j * d + i] = v;
    }
  }
  const values = symmetricEigenvalues(m, d);
  // Rounding errors in m are of order eps·tr(A)·‖B‖ whatever the size of m
  // itself (tiny when A and B live in different subspaces), so that is the
  // scale a negative eigenvalue is judged against. tr(A) = ‖sqrt(A)‖²_F.
  let traceA = 0;
  let normB = 0;
  for (let i = 0; i < d * d; i++) {
    traceA += sa[i] * sa[i];
    normB += bs[i] * bs[i];
  }
  if (values[0] < -PSD_TOLERANCE * traceA * Math.sqrt(normB)) {
    throw new InputError('b', `not positive semi-definite: sqrt(a)·b·sqrt(a) has eigenvalue ${values[0]}`);
  }
  let sum = 0;
  for (let i = 0; i < d; i++) sum += Math.sqrt(Math.max(0, values[i]));
  return sum;
}

/** Relative size of a negative eigenvalue beyond which a matrix is taken as not PSD (float32 rounding stays far below). */
const PSD_TOLERANCE = 1e-4;

/** Product of two d×d row-major matrices (i-k-j order, so the inner loop runs along rows). */
export function multiply(x: Float64Array, y: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    const oi = i * d;
    for (let k = 0; k < d; k++) {
      const xik = x[oi + k];
      if (xik === 0) continue;
      const ok = k * d;
      for (let j = 0; j < d; j++) out[oi + j] += xik * y[ok + j];
    }
  }
  return out;
}

/** A float64 copy of the d×d matrix `a`, checked finite and symmetric, symmetrized exactly. */
function symmetricCopy(a: Float32Array | Float64Array, d: number, argument: string): Float64Array {
  if (!Number.isSafeInteger(d) || d < 1) throw new InputError('d', `expected a positive integer, got ${d}`);
  if (a.length !== d * d) throw new InputError(argument, `has ${a.length} entries, expected d*d = ${d * d}`);
  const bad = firstNonFinite(a);
  if (bad >= 0) throw new InputError(argument, `entry (${Math.floor(bad / d)}, ${bad % d}) is ${a[bad]}`);
  let largest = 0;
  for (let i = 0; i < a.length; i++) largest = Math.max(largest, Math.abs(a[i]));
  const m = Float64Array.from(a);
  for (let i = 0; i < d; i++) {
    for (let j = i + 1; j < d; j++) {
      const u = m[i * d + j];
      const l = m[j * d + i];
      if (Math.abs(u - l) > 1e-6 * largest) throw new InputError(argument, `not symmetric: entry (${i}, ${j}) is ${u} but (${j}, ${i}) is ${l}`);
      const v = 0.5 * (u + l);
      m[i * d + j] = v;
      m[j * d + i] = v;
    }
  }
  return m;
}

/** Rows of the diagonal of m sorted by value, ascending. */
function ascendingDiagonal(m: Float64Array, d: number): number[] {
  return Array.from({ length: d }, (_, i) => i).sort((i, j) => m[i * d + i] - m[j * d + j]);
}

const MAX_SWEEPS = 60;

/**
 * Diagonalizes the symmetric matrix m in place by plane rotations, leaving the
 * eigenvalues on its diagonal (only the upper triangle is kept up to date; the
 * lower one is left stale). If `vt` is given (identity on entry), it
 * accumulates the rotations so that its rows end as the eigenvectors. An off-diagonal entry is rotated away unless it is
 * negligible against its two diagonal entries (|a_pq| <= eps·sqrt|a_pp·a_qq|,
 * the criterion that keeps small eigenvalues relatively accurate); the matrix is
 * diagonal when a whole sweep finds nothing to rotate, usually after 6 to 12
 * sweeps (convergence is quadratic in the end).
 */
function jacobi(m: Float64Array, d: number, vt: Float64Array | null): void {
  let norm = 0;
  for (let i = 0; i < d * d; i++) norm += m[i] * m[i];
  if (norm === 0) return;
  // Entries this small cannot move any eigenvalue that matters; without the
  // floor, denormal leftovers around a zero diagonal could keep a sweep busy.
  const floor = Math.sqrt(norm) * Number.EPSILON * Number.EPSILON;
  const eps = Number.EPSILON;
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let rotated = false;
    for (let p = 0; p < d - 1; p++) {
      const op = p * d;
      for (let q = p + 1; q < d; q++) {
        const oq = q * d;
        const apq = m[op + q];
        if (apq === 0) continue;
        const app = m[op + p];
        const aqq = m[oq + q];
        const size = Math.abs(apq);
        if (size <= eps * Math.sqrt(Math.abs(app * aqq)) || size <= floor) {
          m[op + q] = 0;
          continue;
        }
        rotated = true;
        // t = tan(angle) is the smaller root of t² + 2θt - 1 = 0, so |angle| <= π/4
        // (the choice that makes the method converge); for huge θ, t ≈ 1/(2θ).
        const theta = (aqq - app) / (2 * apq);
        const t = Math.abs(theta) > 1e150 ? 0.5 / theta : Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        // tau = tan(angle/2): updates written as x + small correction round better.
        const tau = s / (1 + c);
        m[op + p] = app - t * apq;
        m[oq + q] = aqq + t * apq;
        m[op + q] = 0;
        // Only the upper triangle is kept: entries (k, p) and (k, q) are read
        // where they live there, in three ranges of k.
        for (let k = 0; k < p; k++) {
          const ok = k * d;
          const akp = m[ok + p];
          const akq = m[ok + q];
          m[ok + p] = akp - s * (akq + tau * akp);
          m[ok + q] = akq + s * (akp - tau * akq);
        }
        for (let k = p + 1; k < q; k++) {
          const akp = m[op + k];
          const akq = m[k * d + q];
          m[op + k] = akp - s * (akq + tau * akp);
          m[k * d + q] = akq + s * (akp - tau * akq);
        }
        for (let k = q + 1; k < d; k++) {
          const akp = m[op + k];
          const akq = m[oq + k];
          m[op + k] = akp - s * (akq + tau * akp);
          m[oq + k] = akq + s * (akp - tau * akq);
        }
        if (vt) {
          for (let k = 0; k < d; k++) {
            const vp = vt[op + k];
            const vq = vt[oq + k];
            vt[op + k] = vp - s * (vq + tau * vp);
            vt[oq + k] = vq + s * (vp - tau * vq);
          }
        }
      }
    }
    if (!rotated) return;
  }
  // Not reached in practice (Jacobi converges quadratically); the leftover
  // off-diagonal entries are then at rounding level, so the diagonal stands.
}
