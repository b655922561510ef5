/**
 * AAE priors (src/generative/aae/priors.ts) and losses (src/generative/aae/losses.ts).
 * Priors: sample moments against priorMoments, and priorMoments against hand
 * values; the swiss roll within its noise band of the right segment; labels
 * choosing components; the log density integrating to 1 with the moments of
 * priorMoments; seeds; errors naming the argument.
 * Losses: hand computations in plain JS, also at logits of +-100 and +-1e4;
 * the bce gradient; memory; errors.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { InputError } from '../src/errors.js';
import { Rng } from '../src/util/rng.js';
import type { GaussianMoments } from '../src/generative/metrics/linalg.js';
import {
  MIXTURE_RADIAL_SD,
  MIXTURE_RADIUS,
  MIXTURE_TANGENTIAL_SD,
  SWISS_ROLL_NOISE_SD,
  mixtureMeans,
  parsePrior,
  priorLogDensity,
  priorMoments,
  samplePrior,
  type PriorName,
  type PriorSample,
} from '../src/generative/aae/priors.js';
import {
  classificationLoss,
  encoderAdversarialLoss,
  latentDiscriminatorLoss,
  parseReconstructionLoss,
  reconstructionLoss,
  type AaeAdversarialLoss,
  type ReconstructionLoss,
} from '../src/generative/aae/losses.js';

before(async () => {
  await initBackend({ backend: 'wasm' });
});

// ---------------------------------------------------------------- priors

/** Samples for the moment checks: standard errors of sd / 141. */
const N = 20000;

/**
 * The sample's moments that disagree with `expected`. Each estimate is a mean
 * of N iid terms (z_i for a mean; (z_i - mu_i)(z_j - mu_j) for a covariance,
 * centred on the true mean so it is unbiased), so by the CLT it lies within 5
 * standard errors (its terms' sd / sqrt(N)) but with probability 6e-7. The
 * covariance terms' sd is estimated from the sample: their fourth moments
 * differ from prior to prior.
 */
function momentFailures(s: PriorSample, expected: GaussianMoments): string[] {
  const { z, n, d } = s;
  const { mean, covariance } = expected;
  const failures: string[] = [];
  for (let i = 0; i < d; i++) {
    let sum = 0;
    for (let r = 0; r < n; r++) sum += z[r * d + i];
    const se = Math.sqrt(covariance[i * d + i] / n);
    if (Math.abs(sum / n - mean[i]) > 5 * se) failures.push(`mean[${i}] = ${sum / n}, expected ${mean[i]} +- ${5 * se}`);
  }
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = 0;
      let sumSq = 0;
      for (let r = 0; r < n; r++) {
        const p = (z[r * d + i] - mean[i]) * (z[r * d + j] - mean[j]);
        sum += p;
        sumSq += p * p;
      }
      const c = sum / n;
      const se = Math.sqrt((sumSq / n - c * c) / n);
      if (Math.abs(c - covariance[i * d + j]) > 5 * se) failures.push(`cov[${i}][${j}] = ${c}, expected ${covariance[i * d + j]} +- ${5 * se}`);
    }
  }
  return failures;
}

/** Asserts a sample matches its prior's moments, and that 10% more variance would not. */
function assertMoments(s: PriorSample, expected: GaussianMoments, what: string): void {
  assert.deepEqual(momentFailures(s, expected), [], what);
  // The tolerance is tight enough to matter: inflating the covariance by 10% is caught.
  const wrong = { mean: expected.mean, covariance: expected.covariance.map((v) => v * 1.1) };
  assert.ok(momentFailures(s, wrong).length > 0, `${what}: a 10% variance error goes unnoticed`);
}

function closeArray(actual: ArrayLike<number>, expected: number[], what: string, tol = 1e-12): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])), `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
  }
}

test('gaussian: mean 0 and covariance I, component 0', () => {
  const m = priorMoments('gaussian', 3);
  closeArray(m.mean, [0, 0, 0], 'mean');
  closeArray(m.covariance, [1, 0, 0, 0, 1, 0, 0, 0, 1], 'covariance');
  const s = samplePrior('gaussian', { n: N, d: 3, rng: new Rng(1) });
  assert.equal(s.z.length, N * 3);
  assertMoments(s, m, 'gaussian');
  assert.ok(s.component.every((c) => c === 0));
});

test('mixture: priorMoments by hand, and the samples match them (d = 3 adds an N(0, 1) coordinate)', () => {
  const [r, sr, st] = [MIXTURE_RADIUS, MIXTURE_RADIAL_SD, MIXTURE_TANGENTIAL_SD];
  // K >= 3 means on a circle: mean 0, covariance (R^2 + sr^2 + st^2) / 2 in the plane.
  const v = (r * r + sr * sr + st * st) / 2;
  const m = priorMoments('mixture', 3);
  closeArray(m.mean, [0, 0, 0], 'mean');
  closeArray(m.covariance, [v, 0, 0, 0, v, 0, 0, 0, 1], 'covariance');
  // One component: its own mean (R, 0) and diag(sr^2, st^2).
  const one = priorMoments('mixture', 2, 1);
  closeArray(one.mean, [r, 0], 'mean, K = 1');
  closeArray(one.covariance, [sr * sr, 0, 0, st * st], 'covariance, K = 1');

  const s = samplePrior('mixture', { n: N, d: 3, rng: new Rng(2) });
  assertMoments(s, m, 'mixture');
  assertMoments(samplePrior('mixture', { n: N, d: 2, rng: new Rng(3), components: 1 }), one, 'mixture, K = 1');
  assertMoments(samplePrior('mixture', { n: N, d: 2, rng: new Rng(4), components: 3 }), priorMoments('mixture', 2, 3), 'mixture, K = 3');
  // Unlabelled components are uniform: each count within 5 standard errors of N / 10.
  const counts = new Array(10).fill(0);
  for (const c of s.component) counts[c]++;
  const se = Math.sqrt(N * 0.1 * 0.9);
  for (const c of counts) assert.ok(Math.abs(c - N / 10) <= 5 * se, `component counts ${counts}`);
});

/** The noiseless roll at t: radius 4 t / (4 pi), angle t (written here independently of the module). */
const rollPoint = (t: number): [number, number] => [(t / Math.PI) * Math.cos(t), (t / Math.PI) * Math.sin(t)];

test('swiss roll: priorMoments by hand, and the samples match them', () => {
  // With a = R / T = 1 / pi and T = 4 pi (sin T = 0, cos T = 1) the integrals by parts reduce to
  // mean (4a / T, -2a) = (1 / pi^2, -2 / pi), E[x^2] = a^2 (T^2 / 4 + 3 / 4), E[y^2] = a^2 (T^2 / 4 - 3 / 4),
  // E[xy] = a^2 (-T / 2 + 3 / (4 T)); plus the noise variance on the diagonal.
  const pi = Math.PI;
  const [mx, my] = [1 / pi ** 2, -2 / pi];
  const v = SWISS_ROLL_NOISE_SD ** 2;
  const cxx = 4 + 3 / (4 * pi ** 2) - mx * mx + v;
  const cyy = 4 - 3 / (4 * pi ** 2) - my * my + v;
  const cxy = (-2 * pi + 3 / (16 * pi)) / pi ** 2 - mx * my;
  const m = priorMoments('swiss-roll', 2);
  closeArray(m.mean, [mx, my], 'mean');
  closeArray(m.covariance, [cxx, cxy, cxy, cyy], 'covariance');
  assertMoments(samplePrior('swiss-roll', { n: N, d: 2, rng: new Rng(5) }), m, 'swiss roll');
});

test('swiss roll: every point within 6 noise sd of its own segment, labelled or not', () => {
  const T = 4 * Math.PI;
  // 4000 points of the curve, at most 0.013 apart.
  const nodes = Array.from({ length: 4000 }, (_, j) => (j + 0.5) * (T / 4000));
  const curve = nodes.map(rollPoint);
  const n = 1000;
  for (const [labels, k] of [[undefined, 10], [Int32Array.from({ length: n }, (_, i) => i % 5), 5]] as const) {
    const s = samplePrior('swiss-roll', { n, d: 2, rng: new Rng(6), labels, components: k });
    if (labels) assert.deepEqual(s.component, labels);
    for (let i = 0; i < n; i++) {
      const c = s.component[i];
      // Segment c is t in [T sqrt(c / K), T sqrt((c + 1) / K)].
      const [lo, hi] = [T * Math.sqrt(c / k), T * Math.sqrt((c + 1) / k)];
      let best = Infinity;
      nodes.forEach((t, j) => {
        if (t >= lo && t <= hi) best = Math.min(best, Math.hypot(s.z[2 * i] - curve[j][0], s.z[2 * i + 1] - curve[j][1]));
      });
      // P(|noise| > 6 sd) = e^-18 per point; 0.013, one node spacing, for the discretized curve.
      assert.ok(best <= 6 * SWISS_ROLL_NOISE_SD + 0.013, `point ${i} (segment ${c}) is ${best} from its segment`);
      assert.ok(Math.hypot(s.z[2 * i], s.z[2 * i + 1]) <= 4 + 6 * SWISS_ROLL_NOISE_SD);
    }
  }
});

test('mixture labels choose the component: points nearest their own mean', () => {
  const n = 2000;
  const labels = Int32Array.from({ length: n }, (_, i) => (i * 7) % 10);
  const s = samplePrior('mixture', { n, d: 2, rng: new Rng(7), labels });
  assert.deepEqual(s.component, labels);
  const means = mixtureMeans(10);
  let nearest = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < 10; c++) {
      const dc = (s.z[2 * i] - means[2 * c]) ** 2 + (s.z[2 * i + 1] - means[2 * c + 1]) ** 2;
      const db = (s.z[2 * i] - means[2 * best]) ** 2 + (s.z[2 * i + 1] - means[2 * best + 1]) ** 2;
      if (dc < db) best = c;
    }
    if (best === labels[i]) nearest++;
  }
  // The nearest mean is the angular sector of +-18 degrees; a point leaves its
  // own mostly when it falls within ~1 of the origin (radial draw < -3 sd): ~0.2%.
  assert.ok(nearest / n >= 0.99, `only ${nearest} of ${n} nearest their own component`);
});

/** Sum of exp(log density) h^2 over the grid [-L, L]^2 of step h, with the first and second moments it gives. */
function gridIntegral(prior: PriorName, L: number, h: number): { mass: number; moments: GaussianMoments } {
  const side = Math.round((2 * L) / h);
  const pts = new Float64Array(2 * side * side);
  for (let a = 0; a < side; a++) {
    for (let b = 0; b < side; b++) {
      pts[2 * (a * side + b)] = -L + (a + 0.5) * h;
      pts[2 * (a * side + b) + 1] = -L + (b + 0.5) * h;
    }
  }
  const lp = priorLogDensity(prior, pts);
  let [mass, sx, sy, sxx, syy, sxy] = [0, 0, 0, 0, 0, 0];
  for (let i = 0; i < lp.length; i++) {
    const w = Math.exp(lp[i]) * h * h;
    const [x, y] = [pts[2 * i], pts[2 * i + 1]];
    mass += w;
    sx += w * x;
    sy += w * y;
    sxx += w * x * x;
    syy += w * y * y;
    sxy += w * x * y;
  }
  const [mx, my] = [sx / mass, sy / mass];
  const cxy = sxy / mass - mx * my;
  return { mass, moments: { mean: Float64Array.of(mx, my), covariance: Float64Array.of(sxx / mass - mx * mx, cxy, cxy, syy / mass - my * my) } };
}

test('the log density integrates to 1 and has the moments of priorMoments', () => {
  // A grid sum of a Gaussian of sd s with step h errs by ~exp(-2 pi^2 s^2 / h^2)
  // (Poisson summation): 3e-9 at h = s (the roll's noise, 0.1), far less at
  // h = s / 2 (the mixture's tangential sd, 0.2) and h = s / 4 (gaussian); the
  // grids reach 6 sd or more beyond each prior.
  for (const [prior, L, h] of [['gaussian', 7, 0.25], ['mixture', 11, 0.1], ['swiss-roll', 5, 0.1]] as const) {
    const { mass, moments } = gridIntegral(prior, L, h);
    assert.ok(Math.abs(mass - 1) < 1e-4, `${prior}: mass ${mass}`);
    const m = priorMoments(prior, 2);
    closeArray(moments.mean, Array.from(m.mean), `${prior} grid mean`, 1e-3);
    closeArray(moments.covariance, Array.from(m.covariance), `${prior} grid covariance`, 1e-3);
  }
  // Far from the prior the density underflows, its logarithm does not.
  for (const prior of ['gaussian', 'mixture', 'swiss-roll'] as const) {
    const lp = priorLogDensity(prior, [60, -80]);
    assert.ok(Number.isFinite(lp[0]) && lp[0] < -100, `${prior}: ${lp[0]}`);
  }
  // By hand: the standard normal at the origin, and the one-component mixture at its mean.
  closeArray(priorLogDensity('gaussian', [0, 0]), [-Math.log(2 * Math.PI)], 'gaussian at 0');
  closeArray(priorLogDensity('mixture', [MIXTURE_RADIUS, 0], 1), [-Math.log(2 * Math.PI * MIXTURE_RADIAL_SD * MIXTURE_TANGENTIAL_SD)], 'mixture K = 1 at its mean');
});

test('the same seed gives the same samples, another seed others', () => {
  const labels = Int32Array.from([3, 1, 4, 1, 5]);
  for (const [prior, d] of [['gaussian', 4], ['mixture', 3], ['swiss-roll', 2]] as const) {
    const draw = (seed: number) => samplePrior(prior, { n: 5, d, rng: new Rng(seed), labels: prior === 'gaussian' ? undefined : labels });
    assert.deepEqual(draw(11), draw(11), prior);
    assert.notDeepEqual(draw(11).z, draw(12).z, prior);
  }
});

test('bad prior input is an InputError naming the argument', () => {
  const rng = new Rng(0);
  const throwsInput = (f: () => unknown, argument: string) =>
    assert.throws(f, (e: unknown) => e instanceof InputError && e.argument === argument, `expected an InputError on ${argument}`);
  throwsInput(() => parsePrior('uniform'), 'prior');
  throwsInput(() => samplePrior('uniform' as PriorName, { n: 1, d: 2, rng }), 'prior');
  throwsInput(() => priorMoments('laplace' as PriorName, 2), 'prior');
  for (const n of [0, -1, 1.5, Number.NaN]) throwsInput(() => samplePrior('gaussian', { n, d: 2, rng }), 'n');
  throwsInput(() => samplePrior('gaussian', { n: 1, d: 0, rng }), 'd');
  throwsInput(() => samplePrior('mixture', { n: 1, d: 1, rng }), 'd');
  throwsInput(() => samplePrior('swiss-roll', { n: 1, d: 3, rng }), 'd');
  throwsInput(() => priorMoments('swiss-roll', 1), 'd');
  throwsInput(() => samplePrior('gaussian', { n: 1, d: 2, rng: {} as Rng }), 'rng');
  throwsInput(() => samplePrior('mixture', { n: 2, d: 2, rng, labels: Int32Array.of(0, 10) }), 'labels');
  throwsInput(() => samplePrior('swiss-roll', { n: 2, d: 2, rng, labels: Int32Array.of(-1, 0) }), 'labels');
  throwsInput(() => samplePrior('mixture', { n: 2, d: 2, rng, labels: Int32Array.of(3, 3), components: 3 }), 'labels');
  throwsInput(() => samplePrior('mixture', { n: 3, d: 2, rng, labels: Int32Array.of(0, 1) }), 'labels');
  throwsInput(() => samplePrior('mixture', { n: 2, d: 2, rng, labels: [0, 1] as unknown as Int32Array }), 'labels');
  throwsInput(() => samplePrior('gaussian', { n: 2, d: 2, rng, labels: Int32Array.of(0, 0) }), 'labels');
  for (const k of [0, 2.5]) throwsInput(() => samplePrior('mixture', { n: 1, d: 2, rng, components: k }), 'components');
  throwsInput(() => samplePrior('gaussian', { n: 1, d: 2, rng, components: 10 }), 'components');
  throwsInput(() => priorLogDensity('mixture', [1, 2, 3]), 'points');
});

// ---------------------------------------------------------------- losses

// softplus(t) = log(1 + e^t), written so that e^t never overflows.
const softplus = (t: number) => Math.max(t, 0) + Math.log(1 + Math.exp(-Math.abs(t)));
const sigmoid = (t: number) => 1 / (1 + Math.exp(-t));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function close(actual: number, expected: number, what: string, rel = 1e-5) {
  assert.ok(Number.isFinite(actual), `${what}: ${actual} is not finite`);
  assert.ok(Math.abs(actual - expected) <= rel * Math.max(1, Math.abs(expected)), `${what}: got ${actual}, expected ${expected}`);
}

/** Runs `f`, checks it left exactly one new tensor (its result), and gives its value. */
function value(f: () => tf.Tensor): number {
  const before = tf.memory().numTensors;
  const t = f();
  assert.equal(tf.memory().numTensors, before + 1, 'only the returned tensor may survive');
  const v = t.dataSync()[0];
  t.dispose();
  return v;
}

// Pixels (targets) and decoder logits, four of them far beyond where float32
// sigmoid rounds to 0 or 1, with targets that make the naive log(0) matter.
const X = [0, 1, 0.3, 1, 0, 0.5, 1, 0];
const L = [0, 2, -3, 100, -100, 1e4, -1e4, 50];

test('reconstruction: mse of images and bce of logits equal the hand values, finite at logits of +-1e4', () => {
  tf.tidy(() => {
    const naive = tf.log(tf.sigmoid(tf.tensor1d([-1e4]))).dataSync()[0];
    assert.equal(naive, -Infinity, 'the test logits must break the naive form');
  });
  const images = [0.1, 0.9, 0.3, 0.0, 0.7, 0.5, 1.0, 0.2];
  const x = tf.tensor4d(X, [2, 2, 2, 1]);
  const xHat = tf.tensor4d(images, [2, 2, 2, 1]);
  const logits = tf.tensor4d(L, [2, 2, 2, 1]);
  close(value(() => reconstructionLoss(x, xHat, 'mse')), mean(X.map((v, i) => (v - images[i]) ** 2)), 'mse');
  // -[x log s(l) + (1 - x) log(1 - s(l))] by hand; at x = 0.5, l = 1e4 it is 5000.
  const bce = mean(X.map((v, i) => v * softplus(-L[i]) + (1 - v) * softplus(L[i])));
  close(value(() => reconstructionLoss(x, logits, 'bce')), bce, 'bce');
  // The gradient is (sigmoid(l) - x) / 8 everywhere, at l = 0 included.
  const before = tf.memory().numTensors;
  const g = tf.grad((l: tf.Tensor) => reconstructionLoss(x, l, 'bce'))(logits);
  assert.equal(tf.memory().numTensors, before + 1);
  const gv = g.dataSync();
  X.forEach((v, i) => close(gv[i], (sigmoid(L[i]) - v) / 8, `bce gradient at ${L[i]}`, 1e-5));
  tf.dispose([x, xHat, logits, g]);
});

// Discriminator logits on prior samples (r) and on codes (f), of different batch sizes.
const R = [2, -1, 50, -100, 0.3];
const F = [-3, 0.5, 100, -50];

test('latent discriminator and encoder losses equal the hand values, with label smoothing', () => {
  const r = tf.tensor1d(R);
  const f = tf.tensor2d(F, [4, 1]);
  // D: prior samples are real (label 1), codes are fake (label 0).
  close(value(() => latentDiscriminatorLoss(r, f)), mean(R.map((t) => softplus(-t))) + mean(F.map(softplus)), 'D');
  const smoothed = mean(R.map((t) => 0.9 * softplus(-t) + 0.1 * softplus(t))) + mean(F.map(softplus));
  close(value(() => latentDiscriminatorLoss(r, f, { labelSmoothing: 0.9 })), smoothed, 'D, smoothed');
  // Encoder: -E[log s(f)] (ns, the default) or E[log(1 - s(f))] (minimax).
  close(value(() => encoderAdversarialLoss(f)), mean(F.map((t) => softplus(-t))), 'encoder ns');
  close(value(() => encoderAdversarialLoss(f, 'minimax')), -mean(F.map(softplus)), 'encoder minimax');
  tf.dispose([r, f]);
});

test('classification loss: softmax cross-entropy from logits, finite at logits of +-100', () => {
  const rows = [[1, 2, 3], [0, 0, 0], [100, -100, 0]];
  const y = [2, 0, 1];
  const logits = tf.tensor2d(rows);
  const labels = tf.tensor1d(y, 'int32');
  const hand = mean(rows.map((row, i) => {
    const top = Math.max(...row);
    return top + Math.log(row.reduce((s, v) => s + Math.exp(v - top), 0)) - row[y[i]];
  }));
  close(value(() => classificationLoss(logits, labels)), hand, 'cross-entropy');
  close(hand, (3 + Math.log(1 + Math.exp(-1) + Math.exp(-2)) - 3 + Math.log(3) + 200) / 3, 'hand value', 1e-12);
  tf.dispose([logits, labels]);
});

test('bad loss input is an InputError naming the argument, and leaks nothing', () => {
  const x = tf.zeros([2, 3]);
  const narrow = tf.zeros([2, 2]);
  const ints = tf.zeros([2, 3], 'int32');
  const logits = tf.zeros([2, 1]);
  const wide = tf.zeros([2, 3]);
  const empty = tf.zeros([0]);
  const labels = tf.tensor1d([0, 3], 'int32');
  const floatLabels = tf.tensor1d([0, 1]);
  const goodLabels = tf.tensor1d([0, 0], 'int32');
  const flat = tf.zeros([3]);
  const throwsInput = (f: () => unknown, argument: string) => {
    const before = tf.memory().numTensors;
    assert.throws(f, (e: unknown) => e instanceof InputError && e.argument === argument, `expected an InputError on ${argument}`);
    assert.equal(tf.memory().numTensors, before, 'a rejected call leaks nothing');
  };
  throwsInput(() => parseReconstructionLoss('l1'), 'kind');
  throwsInput(() => reconstructionLoss(x, x, 'l1' as ReconstructionLoss), 'kind');
  throwsInput(() => reconstructionLoss(x, narrow, 'mse'), 'xHat');
  throwsInput(() => reconstructionLoss(ints, x, 'bce'), 'x');
  throwsInput(() => reconstructionLoss(x, ints, 'bce'), 'xHat');
  throwsInput(() => latentDiscriminatorLoss(wide, logits), 'priorLogits');
  throwsInput(() => latentDiscriminatorLoss(logits, empty), 'codeLogits');
  throwsInput(() => latentDiscriminatorLoss(logits, logits, { labelSmoothing: 1.5 }), 'labelSmoothing');
  throwsInput(() => encoderAdversarialLoss(wide), 'codeLogits');
  throwsInput(() => encoderAdversarialLoss(logits, 'lsgan' as AaeAdversarialLoss), 'loss');
  throwsInput(() => classificationLoss(x, labels), 'labels');
  throwsInput(() => classificationLoss(x, floatLabels), 'labels');
  throwsInput(() => classificationLoss(logits, goodLabels), 'logits');
  throwsInput(() => classificationLoss(flat, labels), 'logits');
  tf.dispose([x, narrow, ints, logits, wide, empty, labels, floatLabels, goodLabels, flat]);
});
