/**
 * Quality metrics for generative models, checked against hand computations
 * and closed forms: the linear algebra under FID, FID itself, Inception
 * Score, class coverage, and improved precision/recall.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/util/rng.js';
import { InputError } from '../src/errors.js';
import {
  meanAndCovariance,
  symmetricEigen,
  symmetricEigenvalues,
  sqrtPsd,
  traceSqrtProduct,
  frechetDistance,
  frechetDistanceFromMoments,
  inceptionScore,
  inceptionScoreFromLogits,
  softmaxRows,
  classCoverage,
  argmaxRows,
  rareClasses,
  modeCollapse,
  precisionRecall,
  manifoldFraction,
  type SampleMatrix,
} from '../src/generative/metrics/index.js';

// ---- helpers -----------------------------------------------------------------

function matmul(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) for (let k = 0; k < d; k++) out[i * d + j] += a[i * d + k] * b[k * d + j];
  return out;
}

function transpose(a: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) out[j * d + i] = a[i * d + j];
  return out;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** G·Gᵀ + I for a d×d standard normal G: symmetric positive definite, well conditioned enough. */
function randomSpd(rng: Rng, d: number): Float64Array {
  const g = Float64Array.from({ length: d * d }, () => rng.normal());
  const a = matmul(g, transpose(g, d), d);
  for (let i = 0; i < d; i++) a[i * d + i] += 1;
  return a;
}

function randomSymmetric(rng: Rng, d: number): Float64Array {
  const a = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      const v = rng.normal();
      a[i * d + j] = v;
      a[j * d + i] = v;
    }
  }
  return a;
}

/** n rows of independent N(mean[i], sd[i]²) features. */
function diagonalGaussian(rng: Rng, n: number, mean: number[], sd: number[]): SampleMatrix {
  const d = mean.length;
  const data = new Float64Array(n * d);
  for (let r = 0; r < n; r++) for (let i = 0; i < d; i++) data[r * d + i] = mean[i] + sd[i] * rng.normal();
  return { data, n, d };
}

/** n rows of mean + L·z with z standard normal: covariance L·Lᵀ. */
function correlatedGaussian(rng: Rng, n: number, mean: number[], l: number[][]): SampleMatrix {
  const d = mean.length;
  const data = new Float64Array(n * d);
  const z = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < d; i++) z[i] = rng.normal();
    for (let i = 0; i < d; i++) {
      let v = mean[i];
      for (let j = 0; j < d; j++) v += l[i][j] * z[j];
      data[r * d + i] = v;
    }
  }
  return { data, n, d };
}

function assertInputError(fn: () => unknown, argument: string): void {
  assert.throws(fn, (e: unknown) => e instanceof InputError && e.argument === argument, `expected InputError on ${argument}`);
}

// ---- linear algebra ----------------------------------------------------------

test('meanAndCovariance: hand example with the n-1 denominator', () => {
  const { mean, covariance } = meanAndCovariance({ data: Float32Array.from([1, 2, 3, 6, 5, 10]), n: 3, d: 2 });
  assert.deepEqual(Array.from(mean), [3, 6]);
  // Deviations (-2, -4), (0, 0), (2, 4): var x = 8/2, var y = 32/2, cov = 16/2.
  assert.deepEqual(Array.from(covariance), [4, 8, 8, 16]);
});

test('meanAndCovariance: a large offset does not cancel the variance away (two passes)', () => {
  const { covariance } = meanAndCovariance({ data: Float64Array.from([1e9 + 1, 1e9 + 2, 1e9 + 3]), n: 3, d: 1 });
  assert.equal(covariance[0], 1);
});

test('symmetricEigen: known 2x2 and a rank-one update of the identity (repeated eigenvalues)', () => {
  const e = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
  assert.ok(maxAbsDiff(e.values, [1, 3]) < 1e-15);
  // Column 1 (eigenvalue 3) is ±(1, 1)/√2.
  assert.ok(Math.abs(Math.abs(e.vectors[1]) - Math.SQRT1_2) < 1e-15 && Math.abs(e.vectors[1] - e.vectors[3]) < 1e-15);

  // I + u·uᵀ has eigenvalue 1 (d - 1 times) and 1 + ‖u‖².
  const d = 8;
  const u = Array.from({ length: d }, (_, i) => i - 3);
  const a = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) a[i * d + j] = (i === j ? 1 : 0) + u[i] * u[j];
  const values = symmetricEigenvalues(a, d);
  const norm2 = u.reduce((s, x) => s + x * x, 0);
  assert.ok(maxAbsDiff(values, [...new Array(d - 1).fill(1), 1 + norm2]) < 1e-13 * norm2);
});

test('symmetricEigen reconstructs random symmetric matrices with orthonormal vectors, ascending values', () => {
  const rng = new Rng(1);
  for (const d of [1, 3, 30]) {
    const a = randomSymmetric(rng, d);
    const { values, vectors } = symmetricEigen(a, d);
    for (let i = 1; i < d; i++) assert.ok(values[i - 1] <= values[i]);
    const vd = new Float64Array(d * d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) vd[i * d + j] = vectors[i * d + j] * values[j];
    const scale = maxAbs(a);
    assert.ok(maxAbsDiff(matmul(vd, transpose(vectors, d), d), a) < 1e-13 * scale, `V·diag·Vᵀ = A at d = ${d}`);
    const identity = Float64Array.from({ length: d * d }, (_, i) => (i % (d + 1) === 0 ? 1 : 0));
    assert.ok(maxAbsDiff(matmul(transpose(vectors, d), vectors, d), identity) < 1e-13, `VᵀV = I at d = ${d}`);
    assert.ok(maxAbsDiff(symmetricEigenvalues(a, d), values) < 1e-13 * scale);
  }
});

test('symmetricEigen refuses non-symmetric, NaN and wrongly sized matrices', () => {
  assertInputError(() => symmetricEigen(Float64Array.from([1, 2, 3, 4]), 2), 'a');
  assertInputError(() => symmetricEigen(Float64Array.from([1, NaN, NaN, 1]), 2), 'a');
  assertInputError(() => symmetricEigen(Float64Array.from([1, 2, 2]), 2), 'a');
});

test('sqrtPsd: [[5,4],[4,5]] has square root [[2,1],[1,2]]; singular and random SPD matrices square back', () => {
  assert.ok(maxAbsDiff(sqrtPsd(Float64Array.from([5, 4, 4, 5]), 2), [2, 1, 1, 2]) < 1e-14);

  // sqrt(u·uᵀ) = u·uᵀ / ‖u‖ (rank one: eigenvalue ‖u‖², the rest 0).
  const u = [1, -2, 2];
  const uu = Float64Array.from({ length: 9 }, (_, i) => u[Math.floor(i / 3)] * u[i % 3]);
  assert.ok(maxAbsDiff(sqrtPsd(uu, 3), Array.from(uu, (x) => x / 3)) < 1e-14);

  const d = 20;
  const a = randomSpd(new Rng(2), d);
  const s = sqrtPsd(a, d);
  assert.ok(maxAbsDiff(s, transpose(s, d)) === 0, 'symmetric');
  assert.ok(maxAbsDiff(matmul(s, s, d), a) < 1e-12 * maxAbs(a));
  assert.ok(symmetricEigenvalues(s, d)[0] > 0, 'positive definite');
});

test('sqrtPsd refuses a matrix with a clearly negative eigenvalue', () => {
  assertInputError(() => sqrtPsd(Float64Array.from([1, 2, 2, 1]), 2), 'a');
});

test('traceSqrtProduct matches sum sqrt(a_i b_i) for diagonals and the 2x2 closed form', () => {
  const a = Float64Array.from([4, 0, 0, 0, 9, 0, 0, 0, 0]);
  const b = Float64Array.from([1, 0, 0, 0, 4, 0, 0, 0, 7]);
  assert.ok(Math.abs(traceSqrtProduct(a, b, 3) - (2 + 6 + 0)) < 1e-14);

  // For 2x2, the eigenvalues of A·B are those of sqrt(A)·B·sqrt(A), so
  // tr sqrt(A·B) = sqrt(tr(A·B) + 2·sqrt(det A · det B)).
  const p = Float64Array.from([3, 1, 1, 2]);
  const q = Float64Array.from([1, -0.5, -0.5, 4]);
  const trPQ = 3 * 1 + 1 * -0.5 + 1 * -0.5 + 2 * 4;
  const expected = Math.sqrt(trPQ + 2 * Math.sqrt((3 * 2 - 1) * (4 - 0.25)));
  assert.ok(Math.abs(traceSqrtProduct(p, q, 2) - expected) < 1e-14 * expected);
  assertInputError(() => traceSqrtProduct(p, Float64Array.from([1, 3, 3, 1]), 2), 'b');
});

// ---- FID ---------------------------------------------------------------------

test('FID of a feature set with itself is 0', () => {
  const rng = new Rng(3);
  const d = 16;
  const l = Array.from({ length: d }, () => Array.from({ length: d }, () => rng.normal()));
  const x = correlatedGaussian(rng, 500, Array.from({ length: d }, (_, i) => i), l);
  const { covariance } = meanAndCovariance(x);
  let trace = 0;
  for (let i = 0; i < d; i++) trace += covariance[i * d + i];
  const fid = frechetDistance(x, x);
  assert.ok(fid >= 0 && fid <= 1e-8 * trace, `FID(x, x) = ${fid}, trace ${trace}`);
  // Also from a float32 copy, and with fewer samples than features (singular covariance).
  const few: SampleMatrix = { data: Float32Array.from(x.data.subarray(0, 5 * d)), n: 5, d };
  assert.ok(frechetDistance(few, few) <= 1e-8 * trace);
});

test('FID of 2-D samples matches the closed form from their sample means and covariances', () => {
  const rng = new Rng(4);
  const a = correlatedGaussian(rng, 300, [1, -1], [[1, 0], [0.8, 0.6]]);
  const b = correlatedGaussian(rng, 400, [0, 0.5], [[2, 0], [-1, 0.5]]);
  // Sample moments by hand (n - 1 denominator).
  const moments = (x: SampleMatrix) => {
    let mx = 0;
    let my = 0;
    for (let r = 0; r < x.n; r++) {
      mx += x.data[2 * r];
      my += x.data[2 * r + 1];
    }
    mx /= x.n;
    my /= x.n;
    let sxx = 0;
    let sxy = 0;
    let syy = 0;
    for (let r = 0; r < x.n; r++) {
      const dx = x.data[2 * r] - mx;
      const dy = x.data[2 * r + 1] - my;
      sxx += dx * dx;
      sxy += dx * dy;
      syy += dy * dy;
    }
    return { mx, my, sxx: sxx / (x.n - 1), sxy: sxy / (x.n - 1), syy: syy / (x.n - 1) };
  };
  const p = moments(a);
  const q = moments(b);
  const trPQ = p.sxx * q.sxx + 2 * p.sxy * q.sxy + p.syy * q.syy;
  const detP = p.sxx * p.syy - p.sxy ** 2;
  const detQ = q.sxx * q.syy - q.sxy ** 2;
  const expected = (p.mx - q.mx) ** 2 + (p.my - q.my) ** 2 + p.sxx + p.syy + q.sxx + q.syy - 2 * Math.sqrt(trPQ + 2 * Math.sqrt(detP * detQ));
  const fid = frechetDistance(a, b);
  assert.ok(Math.abs(fid - expected) < 1e-10 * expected, `${fid} vs ${expected}`);
  // The distance is symmetric, though the two orders take different square roots.
  assert.ok(Math.abs(frechetDistance(b, a) - fid) < 1e-10 * fid);
});

test('FID of large samples of diagonal Gaussians is close to sum (mu1-mu2)^2 + sum (s1-s2)^2', () => {
  const rng = new Rng(5);
  const n = 50000;
  const mu1 = [0, 0.5, -1, 2];
  const mu2 = [0.3, 0.5, 0, 1.5];
  const s1 = [1, 2, 0.5, 1.5];
  const s2 = [1.2, 1, 0.5, 3];
  const d = mu1.length;
  let analytic = 0;
  for (let i = 0; i < d; i++) analytic += (mu1[i] - mu2[i]) ** 2 + (s1[i] - s2[i]) ** 2;
  const fid = frechetDistance(diagonalGaussian(rng, n, mu1, s1), diagonalGaussian(rng, n, mu2, s2));

  // Tolerance: the estimate's sampling error, to first order (delta method).
  // Mean term: ‖m1 - m2‖² moves by 2(μ1-μ2)·(e1 - e2) with e ~ N(0, diag(s²)/n).
  // Covariance term, per dimension: (√v1 - √v2)² moves by (1 - s2/s1)·δv1 + (1 - s1/s2)·δv2,
  // where Var(δv) = 2s⁴/(n-1). Off-diagonal sample covariances only enter at
  // second order, as does ‖e1 - e2‖²: a bias of order (d² + 2d)·max s²/n.
  // Five standard deviations plus that bias: a wrong formula (a missing factor
  // 2, a square root too few) would be off by far more.
  let variance = 0;
  for (let i = 0; i < d; i++) {
    variance += (4 * (mu1[i] - mu2[i]) ** 2 * (s1[i] ** 2 + s2[i] ** 2)) / n;
    variance += ((1 - s2[i] / s1[i]) ** 2 * 2 * s1[i] ** 4) / (n - 1) + ((1 - s1[i] / s2[i]) ** 2 * 2 * s2[i] ** 4) / (n - 1);
  }
  const bias = ((d * d + 2 * d) * Math.max(...s1, ...s2) ** 2) / n;
  const tolerance = 5 * Math.sqrt(variance) + bias;
  assert.ok(tolerance < 0.05 * analytic, `tolerance ${tolerance} is tight enough to mean something`);
  assert.ok(Math.abs(fid - analytic) < tolerance, `FID ${fid}, analytic ${analytic}, tolerance ${tolerance}`);
});

test('frechetDistanceFromMoments: equal Gaussians give 0, a shifted mean gives the squared shift', () => {
  const covariance = Float64Array.from([2, 0.5, 0.5, 1]);
  const a = { mean: Float64Array.from([0, 0]), covariance };
  assert.ok(frechetDistanceFromMoments(a, a) < 1e-14);
  assert.ok(Math.abs(frechetDistanceFromMoments(a, { mean: Float64Array.from([3, 4]), covariance }) - 25) < 1e-12);
});

test('FID refuses mismatched dimensions, fewer than 2 samples and NaN', () => {
  const a: SampleMatrix = { data: new Float64Array(12).map((_, i) => i % 5), n: 4, d: 3 };
  assertInputError(() => frechetDistance(a, { data: new Float64Array(8), n: 4, d: 2 }), 'featuresB');
  assertInputError(() => frechetDistance(a, { data: new Float64Array(3), n: 1, d: 3 }), 'featuresB');
  assertInputError(() => frechetDistance({ data: Float64Array.from([1, 2, NaN, 4, 5, 6]), n: 2, d: 3 }, a), 'featuresA');
  assertInputError(() => frechetDistance({ data: new Float64Array(5), n: 2, d: 3 }, a), 'featuresA');
  const m = meanAndCovariance(a);
  assertInputError(() => frechetDistanceFromMoments(m, { mean: new Float64Array(2), covariance: new Float64Array(4) }), 'b');
  assertInputError(() => frechetDistanceFromMoments(m, { mean: Float64Array.from([0, 0, NaN]), covariance: m.covariance }), 'b');
});

// ---- Inception Score ----------------------------------------------------------

/** n one-hot rows over k classes, row r of class label(r). */
function oneHot(n: number, k: number, label: (r: number) => number): SampleMatrix {
  const data = new Float32Array(n * k);
  for (let r = 0; r < n; r++) data[r * k + label(r)] = 1;
  return { data, n, d: k };
}

test('Inception Score: confident predictions spread over 10 classes give 10, all one class gives 1', () => {
  const spread = inceptionScore(oneHot(100, 10, (r) => r % 10));
  assert.ok(Math.abs(spread.mean - 10) < 1e-12);
  assert.equal(spread.std, 0);
  assert.deepEqual(spread.scores.length, 1);
  assert.ok(Math.abs(inceptionScore(oneHot(100, 10, () => 3)).mean - 1) < 1e-15);
  // Uncertain predictions: p(y|x) = p(y) gives KL 0, so 1.
  assert.ok(Math.abs(inceptionScore({ data: new Float64Array(40).fill(0.1), n: 4, d: 10 }).mean - 1) < 1e-12);
});

test('Inception Score: a hand-computed two-sample case', () => {
  // Rows (1, 0) and (1/2, 1/2): p(y) = (3/4, 1/4); KL1 = log(4/3),
  // KL2 = ½ log(2/3) + ½ log 2 = ½ log(4/3); IS = exp(¾ log(4/3)).
  const is = inceptionScore({ data: Float64Array.from([1, 0, 0.5, 0.5]), n: 2, d: 2 });
  assert.ok(Math.abs(is.mean - (4 / 3) ** 0.75) < 1e-15);
});

test('Inception Score over splits: mean and population std of the per-split scores', () => {
  // 20 rows: the first 10 all class 0 (split score 1), the next 10 one of each class (split score 10).
  const is = inceptionScore(oneHot(20, 10, (r) => (r < 10 ? 0 : r - 10)), { splits: 2 });
  assert.ok(maxAbsDiff(is.scores, [1, 10]) < 1e-12);
  assert.ok(Math.abs(is.mean - 5.5) < 1e-12 && Math.abs(is.std - 4.5) < 1e-12);
  const ten = inceptionScore(oneHot(100, 10, (r) => r % 10), { splits: 10 });
  assert.ok(Math.abs(ten.mean - 10) < 1e-12 && ten.std < 1e-12);
  assertInputError(() => inceptionScore(oneHot(5, 10, () => 0), { splits: 6 }), 'splits');
});

test('Inception Score from logits: stable softmax, large logits included', () => {
  const sm = softmaxRows({ data: Float64Array.from([0, Math.log(3), 1000, 1000]), n: 2, d: 2 });
  assert.ok(maxAbsDiff(sm.data, [0.25, 0.75, 0.5, 0.5]) < 1e-15);
  const k = 10;
  const logits = new Float32Array(50 * k);
  for (let r = 0; r < 50; r++) logits[r * k + (r % k)] = 1000;
  assert.ok(Math.abs(inceptionScoreFromLogits({ data: logits, n: 50, d: k }).mean - 10) < 1e-12);
  // Logits passed as probabilities are refused, with a pointer to the logits helper.
  assert.throws(() => inceptionScore({ data: logits, n: 50, d: k }), (e: unknown) => e instanceof InputError && /logits/.test(e.message));
  assertInputError(() => inceptionScore({ data: Float64Array.from([1.5, -0.5]), n: 1, d: 2 }), 'probabilities');
});

// ---- class coverage -------------------------------------------------------------

test('class coverage: a uniform histogram has KL 0, a one-class histogram log K', () => {
  const k = 10;
  const uniform = classCoverage(Int32Array.from({ length: 200 }, (_, i) => i % k), k);
  assert.ok(Math.abs(uniform.klFromUniform) < 1e-15);
  assert.equal(uniform.minFraction, 0.1);
  assert.deepEqual(uniform.missing, []);
  assert.equal(modeCollapse(uniform), false);

  const one = classCoverage(new Array(50).fill(7), k);
  assert.ok(Math.abs(one.klFromUniform - Math.log(k)) < 1e-15);
  assert.equal(one.minFraction, 0);
  assert.equal(one.minClass, 0);
  assert.deepEqual(one.missing, [0, 1, 2, 3, 4, 5, 6, 8, 9]);
  assert.equal(modeCollapse(one), true);
});

test('class coverage: hand-computed KL, argmax of scores, and the 0.25/K threshold', () => {
  // Fractions (1/2, 1/4, 1/4) over K = 3: ½ log(3/2) + 2·¼ log(3/4).
  const c = classCoverage({ data: Float64Array.from([5, 1, 0, 2, 9, 1, 0, 0, 3, 7, 7, 1]), n: 4, d: 3 });
  assert.deepEqual(Array.from(argmaxRows({ data: Float64Array.from([5, 1, 0, 7, 7, 1]), n: 2, d: 3 })), [0, 0]);
  assert.deepEqual(c.counts, [2, 1, 1]);
  assert.ok(Math.abs(c.klFromUniform - (0.5 * Math.log(1.5) + 0.5 * Math.log(0.75))) < 1e-15);

  // K = 10, default threshold 0.025: a class with 2% is rare, one with 3% is not.
  const labels = (rare: number) => Int32Array.from({ length: 100 }, (_, i) => (i < rare ? 0 : 1 + (i % 9)));
  assert.equal(modeCollapse(classCoverage(labels(2), 10)), true);
  assert.deepEqual(rareClasses(classCoverage(labels(2), 10)), [0]);
  assert.equal(modeCollapse(classCoverage(labels(3), 10)), false);
  assert.equal(modeCollapse(classCoverage(labels(3), 10), 0.05), true);

  assertInputError(() => classCoverage([0, 1, 2]), 'classes');
  assertInputError(() => classCoverage([0, 1, 10], 10), 'predicted');
  assertInputError(() => classCoverage([], 10), 'predicted');
});

// ---- improved precision and recall ----------------------------------------------------

test('precision/recall: a hand-checked 1-D case with k = 1', () => {
  // Real 0, 1, 3, 7, 40: nearest-neighbour radii 1, 1, 2, 4, 33.
  // Generated 0.5, 5.5, 12, -3: radii 3.5, 5, 6.5, 3.5.
  // Precision: 0.5 (ball of 0), 5.5 (ball of 7), 12 (ball of 40: 28 <= 33) in; -3 out -> 3/4.
  // Recall: 0, 1, 3 (2.5 from 0.5 <= 3.5), 7 (1.5 from 5.5 <= 5) in; 40 (28 from 12 > 6.5) out -> 4/5.
  const real: SampleMatrix = { data: Float64Array.from([0, 1, 3, 7, 40]), n: 5, d: 1 };
  const generated: SampleMatrix = { data: Float32Array.from([0.5, 5.5, 12, -3]), n: 4, d: 1 };
  assert.deepEqual(precisionRecall(real, generated, { k: 1 }), { precision: 0.75, recall: 0.8, k: 1 });
  assert.equal(manifoldFraction(real, generated, 1), 0.75);
  assert.equal(manifoldFraction(generated, real, 1), 0.8);
});

test('precision/recall: identical sets give 1 and 1, a far-away set 0 and 0', () => {
  const rng = new Rng(6);
  const real = diagonalGaussian(rng, 300, new Array(8).fill(0), new Array(8).fill(1));
  const copy: SampleMatrix = { data: Float64Array.from(real.data), n: real.n, d: real.d };
  assert.deepEqual(precisionRecall(real, copy), { precision: 1, recall: 1, k: 3 });
  const far = diagonalGaussian(rng, 300, new Array(8).fill(1000), new Array(8).fill(1));
  assert.deepEqual(precisionRecall(real, far), { precision: 0, recall: 0, k: 3 });
});

test('precision/recall: a generator covering half the real modes has recall about 0.5 and precision about 1', () => {
  // Four well separated 2-D clusters; the generator samples only two of them.
  const rng = new Rng(7);
  const centres = [[-20, -20], [-20, 20], [20, -20], [20, 20]];
  const mixture = (perCluster: number, which: number[]): SampleMatrix => {
    const parts = which.map((c) => diagonalGaussian(rng, perCluster, centres[c], [1, 1]).data);
    const data = new Float64Array(parts.length * perCluster * 2);
    parts.forEach((p, i) => data.set(p, i * p.length));
    return { data, n: parts.length * perCluster, d: 2 };
  };
  const real = mixture(150, [0, 1, 2, 3]);
  const generated = mixture(300, [0, 3]);
  const { precision, recall } = precisionRecall(real, generated);
  // Real points in the covered clusters are nearly all inside the generated
  // balls (a few in the tails are not); none of the other two clusters is.
  // Likewise a few generated points in the tails fall outside the balls of the
  // sparser real set (0.493 and 0.943 with this seed).
  assert.ok(recall > 0.45 && recall <= 0.5, `recall ${recall}`);
  assert.ok(precision > 0.9, `precision ${precision}`);
});

test('precision/recall refuses k >= n, mismatched dimensions and NaN', () => {
  const a: SampleMatrix = { data: Float64Array.from([0, 1, 2, 3]), n: 4, d: 1 };
  assertInputError(() => precisionRecall(a, { data: Float64Array.from([0, 1, 2]), n: 3, d: 1 }), 'generated');
  assertInputError(() => precisionRecall(a, a, { k: 0 }), 'k');
  assertInputError(() => precisionRecall(a, { data: new Float64Array(8), n: 4, d: 2 }), 'generated');
  assertInputError(() => precisionRecall({ data: Float64Array.from([0, NaN, 2, 3]), n: 4, d: 1 }, a), 'real');
});

test('conditional class accuracy by hand: 3 of 4 samples classified as asked; a class never asked is NaN', async () => {
  const { conditionalAccuracy } = await import('../src/generative/gan/gan-metrics.js');
  // Rows: argmax 0, 1, 1, 2; asked 0, 1, 0, 2 (class 3 never asked).
  const p: SampleMatrix = { data: Float64Array.from([0.7, 0.1, 0.1, 0.1, 0.2, 0.5, 0.2, 0.1, 0.3, 0.4, 0.2, 0.1, 0.1, 0.1, 0.6, 0.2]), n: 4, d: 4 };
  const r = conditionalAccuracy(p, Int32Array.from([0, 1, 0, 2]), 4);
  assert.equal(r.overall, 0.75);
  assert.deepEqual(r.perClass.slice(0, 3), [0.5, 1, 1]);
  assert.ok(Number.isNaN(r.perClass[3]));
  assert.throws(() => conditionalAccuracy(p, Int32Array.from([0, 1]), 4), InputError);
});
