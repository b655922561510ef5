/**
 * GAN losses (src/generative/losses.ts) against hand computations in plain JS:
 * every D and G loss, also at logits of +-50 and +-100 where log(sigmoid) gives -Infinity;
 * label smoothing; the saturation of the minimax generator loss; the WGAN-GP
 * penalty with a linear critic (independent of eps), a quadratic one (eps
 * read back from randomInterpolates) and its derivative in the critic's
 * weights; memory; errors naming the argument.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { InputError } from '../src/errors.js';
import {
  GAN_LOSSES,
  auxiliaryClassifierLoss,
  discriminatorLoss,
  generatorLoss,
  gradientPenalty,
  parseGanLoss,
  randomInterpolates,
  type Critic,
  type GanLoss,
} from '../src/generative/losses.js';

before(async () => {
  await initBackend({ backend: 'wasm' });
});

// Fixed logits, four of them far beyond where float32 sigmoid rounds to 1
// (|t| > ~17) or to 0 (t < ~-88, where e^-t overflows).
const R = [2, -1, 50, -50, 0.3, 100, -100];
const F = [-3, 0.5, 50, -50, -0.7, -100, 100];

// softplus(t) = log(1 + e^t), written so that e^t never overflows.
const softplus = (t: number) => Math.max(t, 0) + Math.log(1 + Math.exp(-Math.abs(t)));
const relu = (t: number) => Math.max(t, 0);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The losses by hand: D's, then G's. */
function handLosses(loss: GanLoss, r: number[], f: number[]): [number, number] {
  switch (loss) {
    case 'minimax':
      return [mean(r.map((t) => softplus(-t))) + mean(f.map(softplus)), -mean(f.map(softplus))];
    case 'ns':
      return [mean(r.map((t) => softplus(-t))) + mean(f.map(softplus)), mean(f.map((t) => softplus(-t)))];
    case 'lsgan':
      return [0.5 * mean(r.map((t) => (t - 1) ** 2)) + 0.5 * mean(f.map((t) => t ** 2)), 0.5 * mean(f.map((t) => (t - 1) ** 2))];
    case 'hinge':
      return [mean(r.map((t) => relu(1 - t))) + mean(f.map((t) => relu(1 + t))), -mean(f)];
    case 'wgan-gp':
      return [mean(f) - mean(r), -mean(f)];
  }
}

function close(actual: number, expected: number, what: string, rel = 1e-5) {
  assert.ok(Number.isFinite(actual), `${what}: ${actual} is not finite`);
  assert.ok(Math.abs(actual - expected) <= rel * Math.max(1, Math.abs(expected)), `${what}: got ${actual}, expected ${expected}`);
}

/** Runs `f`, checks it left exactly `returned` new tensors, and gives its value. */
function value(f: () => tf.Tensor, returned = 1): number {
  const before = tf.memory().numTensors;
  const t = f();
  assert.equal(tf.memory().numTensors, before + returned, 'only the returned tensor may survive');
  const v = t.dataSync()[0];
  t.dispose();
  assert.equal(tf.memory().numTensors, before + returned - 1);
  return v;
}

function throwsInput(f: () => unknown, argument: string) {
  const before = tf.memory().numTensors;
  assert.throws(f, (e: unknown) => e instanceof InputError && e.argument === argument);
  assert.equal(tf.memory().numTensors, before, 'a rejected call leaks nothing');
}

test('the naive log(sigmoid) fails at the test logits, so the stable forms are really tested', () => {
  const naive = tf.tidy(() => {
    const t = tf.tensor1d([50, -100]);
    return [tf.log(tf.sub(1, tf.sigmoid(t))).dataSync()[0], tf.log(tf.sigmoid(t)).dataSync()[1]];
  });
  assert.deepEqual(naive, [-Infinity, -Infinity]);
});

test('every discriminator and generator loss equals the hand value, finite at logits of +-50 and +-100', () => {
  for (const loss of GAN_LOSSES) {
    const [d, g] = handLosses(loss, R, F);
    for (const shape of [[R.length], [R.length, 1]]) {
      const r = tf.tensor(R, shape);
      const f = tf.tensor(F, shape);
      close(value(() => discriminatorLoss(loss, r, f)), d, `${loss} D ${shape}`);
      close(value(() => generatorLoss(loss, f)), g, `${loss} G ${shape}`);
      tf.dispose([r, f]);
    }
  }
});

test('real and fake batches of different sizes: each expectation is its own mean', () => {
  const r = tf.tensor1d(R.slice(0, 2));
  const f = tf.tensor1d(F);
  close(value(() => discriminatorLoss('hinge', r, f)), handLosses('hinge', R.slice(0, 2), F)[0], 'hinge D');
  tf.dispose([r, f]);
});

test('auxiliary classifier loss: mean of logsumexp(l) - l[y], finite at logits of +-100, and InputErrors', () => {
  const logits = [
    [2, -1, 0.5],
    [100, -100, 0],
    [-3, 0, 3],
  ];
  const labels = [0, 1, 2];
  // By hand, in float64: -log softmax(l)[y] per row.
  const hand =
    logits
      .map((row, i) => {
        const m = Math.max(...row);
        return m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) - row[labels[i]];
      })
      .reduce((a, b) => a + b, 0) / logits.length;
  const before = tf.memory().numTensors;
  const l = tf.tensor2d(logits);
  const y = tf.tensor1d(labels, 'int32');
  close(value(() => auxiliaryClassifierLoss(l, y)), hand, 'aux CE');
  assert.ok(hand > 66 && hand < 67, 'row 2 alone costs 200 / 3');
  const short = tf.tensor1d([0, 1], 'int32');
  const flat = tf.tensor1d([1, 2, 3]);
  assert.throws(() => auxiliaryClassifierLoss(l, short), (e: unknown) => e instanceof InputError && e.argument === 'labels');
  assert.throws(() => auxiliaryClassifierLoss(flat, y), (e: unknown) => e instanceof InputError && e.argument === 'classLogits');
  tf.dispose([l, y, short, flat]);
  assert.equal(tf.memory().numTensors, before);
});

test('one-sided label smoothing: -[t log s(r) + (1 - t) log(1 - s(r))] on reals, fakes untouched', () => {
  const t = 0.9;
  // The hand formula with the logs themselves, for logits where float64 sigmoid is exact enough.
  const small = R.filter((x) => Math.abs(x) < 5);
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const direct = mean(small.map((x) => -(t * Math.log(sig(x)) + (1 - t) * Math.log(1 - sig(x))))) + mean(F.map(softplus));
  // log s(r) = -softplus(-r) and log(1 - s(r)) = -softplus(r): the same formula, valid at +-50.
  const stable = (r: number[]) => mean(r.map((x) => t * softplus(-x) + (1 - t) * softplus(x))) + mean(F.map(softplus));
  for (const loss of ['minimax', 'ns'] as const) {
    const rs = tf.tensor1d(small);
    const ra = tf.tensor1d(R);
    const f = tf.tensor1d(F);
    close(value(() => discriminatorLoss(loss, rs, f, { labelSmoothing: t })), direct, `${loss} smoothed, small logits`);
    const smoothed = value(() => discriminatorLoss(loss, ra, f, { labelSmoothing: t }));
    close(smoothed, stable(R), `${loss} smoothed, +-50`);
    // softplus(r) - softplus(-r) = r, so smoothing adds exactly (1 - t) mean(r) = 0.0186.
    close(smoothed - value(() => discriminatorLoss(loss, ra, f)), (1 - t) * mean(R), `${loss} smoothed - plain`, 1e-4);
    close(value(() => discriminatorLoss(loss, ra, f, { labelSmoothing: 1 })), handLosses(loss, R, F)[0], `${loss} t = 1`);
    tf.dispose([rs, ra, f]);
  }
});

test('when D rejects the fakes (f = -10), the minimax G gradient vanishes and the ns one does not', () => {
  const n = 4;
  const f = tf.fill([n], -10);
  const gradient = (loss: GanLoss) => {
    const before = tf.memory().numTensors;
    const g = tf.grad((x: tf.Tensor) => generatorLoss(loss, x))(f);
    const values = Array.from(g.dataSync());
    g.dispose();
    assert.equal(tf.memory().numTensors, before);
    return values;
  };
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  // d/df_i of -mean(softplus(f)) is -sigmoid(f_i) / n = -sigmoid(-10) / 4 = -1.135e-5.
  const minimax = gradient('minimax');
  // d/df_i of mean(softplus(-f)) is -sigmoid(-f_i) / n = -(1 - 4.54e-5) / 4, nearly -1/n.
  const ns = gradient('ns');
  for (let i = 0; i < n; i++) {
    close(minimax[i], -sig(-10) / n, 'minimax dL/df', 1e-4);
    close(ns[i], -sig(10) / n, 'ns dL/df', 1e-5);
    // The ratio is e^10 = 22026.
    assert.ok(Math.abs(ns[i]) > 1000 * Math.abs(minimax[i]));
  }
  f.dispose();
});

// Batches of 3 examples of shape [2, 2, 1] (4 features), fixed values.
const XS = [
  [0.1, 0.9, 0.4, 0.2],
  [0.7, 0.3, 0.0, 1.0],
  [0.5, 0.5, 0.8, 0.6],
];
const FAKES = [
  [-0.3, 0.2, 1.1, 0.0],
  [0.4, -0.6, 0.2, 0.9],
  [1.5, 0.1, -0.2, 0.3],
];
const batch = (rows: number[][]) => tf.tensor4d(rows.flat(), [rows.length, 2, 2, 1]);

/** D(x) = w . x per example, [n, 1]. */
const linearCritic = (w: tf.Tensor) => (x: tf.Tensor) => tf.matMul(tf.reshape(x, [x.shape[0], 4]), tf.reshape(w, [4, 1]));

test('gradient penalty of a linear critic is lambda (||w|| - 1)^2 for every eps', () => {
  const w = tf.tensor1d([1, 2, 2, 0]); // ||w|| = 3
  const real = batch(XS);
  const fake = batch(FAKES);
  for (const seed of [0, 1, 42]) {
    close(value(() => gradientPenalty(linearCritic(w), real, fake, seed)), 10 * (3 - 1) ** 2, `lambda 10, seed ${seed}`);
    close(value(() => gradientPenalty(linearCritic(w), real, fake, seed, 2.5)), 2.5 * (3 - 1) ** 2, `lambda 2.5, seed ${seed}`);
  }
  tf.dispose([w, real, fake]);
});

test('gradient penalty of a quadratic critic: grad D(xhat) = xhat at the eps of randomInterpolates', () => {
  // D(x) = 0.5 ||x||^2 per example, so grad D(xhat) = xhat and the penalty depends on eps.
  const critic = (x: tf.Tensor) => tf.mul(tf.sum(tf.square(tf.reshape(x, [x.shape[0], -1])), 1), 0.5);
  const real = batch(XS);
  const fake = batch(FAKES);
  const byHand = (seed: number) => {
    const { eps, xhat } = randomInterpolates(real, fake, seed);
    const e = Array.from(eps.dataSync());
    const points = xhat.arraySync() as number[][][][];
    tf.dispose([eps, xhat]);
    assert.ok(e.every((v) => v >= 0 && v < 1) && new Set(e).size === e.length, `one eps per example in [0, 1): ${e}`);
    const rows = XS.map((x, i) => x.map((v, j) => e[i] * v + (1 - e[i]) * FAKES[i][j]));
    rows.forEach((row, i) => row.forEach((v, j) => close(points[i][Math.floor(j / 2)][j % 2][0], v, 'xhat')));
    return 10 * mean(rows.map((row) => (Math.sqrt(row.reduce((a, v) => a + v * v, 0)) - 1) ** 2));
  };
  const p7 = value(() => gradientPenalty(critic, real, fake, 7));
  close(p7, byHand(7), 'seed 7');
  close(value(() => gradientPenalty(critic, real, fake, 7)), p7, 'the same seed gives the same penalty');
  const p8 = value(() => gradientPenalty(critic, real, fake, 8));
  close(p8, byHand(8), 'seed 8');
  assert.notEqual(p7, p8, 'another seed, other eps, another penalty');
  tf.dispose([real, fake]);
});

test('the penalty is differentiable in the critic weights: d/dw lambda (||w|| - 1)^2 = 2 lambda (||w|| - 1) w / ||w||', () => {
  const w = tf.tensor1d([1, 2, 2, 0]);
  const real = batch(XS);
  const fake = batch(FAKES);
  const before = tf.memory().numTensors;
  const g = tf.grad((v: tf.Tensor) => gradientPenalty(linearCritic(v), real, fake, 3))(w);
  const expected = [1, 2, 2, 0].map((v) => ((2 * 10 * (3 - 1)) / 3) * v);
  Array.from(g.dataSync()).forEach((v, i) => close(v, expected[i], `dP/dw${i}`, 1e-4));
  g.dispose();
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([w, real, fake]);
});

test('randomInterpolates leaves only eps and xhat', () => {
  const real = batch(XS);
  const fake = batch(FAKES);
  const before = tf.memory().numTensors;
  const { eps, xhat } = randomInterpolates(real, fake, 5);
  assert.equal(tf.memory().numTensors, before + 2);
  assert.deepEqual(eps.shape, [3]);
  assert.deepEqual(xhat.shape, [3, 2, 2, 1]);
  tf.dispose([eps, xhat, real, fake]);
});

test('bad input is an InputError naming the argument, and leaks nothing', () => {
  const r = tf.tensor1d([1, 2]);
  const f = tf.tensor1d([0, -1]);
  const wide = tf.tensor2d([1, 2, 3, 4], [2, 2]);
  const ints = tf.tensor1d([1, 2], 'int32');
  const empty = tf.tensor1d([]);
  const real = batch(XS);
  const fake = batch(FAKES);
  const shorter = batch(FAKES.slice(0, 2));
  const w = tf.tensor1d([1, 0, 0, 0]);

  throwsInput(() => parseGanLoss('wgan'), 'loss');
  throwsInput(() => discriminatorLoss('wgan' as GanLoss, r, f), 'loss');
  throwsInput(() => generatorLoss('vanilla' as GanLoss, f), 'loss');
  for (const s of [0, -0.1, 1.5, Number.NaN]) throwsInput(() => discriminatorLoss('ns', r, f, { labelSmoothing: s }), 'labelSmoothing');
  throwsInput(() => discriminatorLoss('hinge', r, f, { labelSmoothing: 0.9 }), 'labelSmoothing');
  throwsInput(() => discriminatorLoss('ns', wide, f), 'realLogits');
  throwsInput(() => discriminatorLoss('ns', r, wide), 'fakeLogits');
  throwsInput(() => discriminatorLoss('ns', r, empty), 'fakeLogits');
  throwsInput(() => discriminatorLoss('ns', ints, f), 'realLogits');
  throwsInput(() => generatorLoss('ns', wide), 'fakeLogits');
  throwsInput(() => gradientPenalty(linearCritic(w), real, shorter, 0), 'fake');
  throwsInput(() => gradientPenalty(linearCritic(w), real, fake, -1), 'seed');
  throwsInput(() => gradientPenalty(linearCritic(w), real, fake, 1.5), 'seed');
  throwsInput(() => gradientPenalty(linearCritic(w), real, fake, 0, -1), 'lambda');
  throwsInput(() => gradientPenalty((x) => tf.reshape(x, [x.shape[0], 4]), real, fake, 0), 'critic');
  throwsInput(() => gradientPenalty((() => 3) as unknown as Critic, real, fake, 0), 'critic');
  throwsInput(() => gradientPenalty('critic' as unknown as Critic, real, fake, 0), 'critic');
  throwsInput(() => randomInterpolates(real, shorter, 0), 'fake');
  tf.dispose([r, f, wide, ints, empty, real, fake, shorter, w]);
});
