/**
 * Certificates (robustness/smoothing.ts, robustness/interval-bounds.ts):
 * Clopper-Pearson and Φ⁻¹ against hand values; on a linear binary classifier
 * the smoothed classifier's certified radius is the distance to the
 * hyperplane up to the sampling bound; interval bounds contain the logits of
 * every sampled point of the ball and of every PGD iterate, equal the exact
 * range for one linear layer, and never verify a point PGD breaks.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, tfl } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { Classifier } from '../src/models/classifier.js';
import { buildModel } from '../src/models/zoo.js';
import { InputError } from '../src/errors.js';
import { clopperPearsonLower, clopperPearsonUpper } from '../src/util/binomial.js';
import { normalQuantile } from '../src/util/normal.js';
import { ABSTAIN, binomialTestTwoSided, certify, certifiedRadius, predictSmoothed } from '../src/robustness/smoothing.js';
import { logitBounds, verifiedAt, worstCaseMargins } from '../src/robustness/interval-bounds.js';
import { attackAndPredict, attackSmoothed, smoothingConsistency } from '../src/robustness/smoothed-attack.js';
import { runAttack } from '../src/attacks/run.js';
import { pgd } from '../src/attacks/pgd.js';
import { Rng, deriveSeed } from '../src/util/rng.js';
import { consistencyLoss, createDefense, defaultDefenseConfig, epsAt, ibpKappaAt, noisyCopies } from '../src/defenses/defenses.js';

before(async () => {
  await initBackend({ backend: 'wasm' });
});

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

/** Φ by Simpson's rule on the density (an independent check of the quantile). */
function normalCdf(z: number): number {
  const steps = 20000;
  const lo = -12;
  const h = (z - lo) / steps;
  const f = (t: number) => Math.exp(-t * t / 2) / Math.sqrt(2 * Math.PI);
  let s = f(lo) + f(z);
  for (let i = 1; i < steps; i++) s += (i % 2 ? 4 : 2) * f(lo + i * h);
  return (s * h) / 3;
}

test('Clopper-Pearson bounds and the normal quantile match hand values', () => {
  // k = n: the lower bound solves p^n = alpha.
  close(clopperPearsonLower(100, 100, 0.001), 0.001 ** (1 / 100), 1e-9, 'k = n');
  close(clopperPearsonUpper(0, 100, 0.001), 1 - 0.001 ** (1 / 100), 1e-9, 'k = 0');
  // The textbook 95% interval of 50 / 100: [0.3983, 0.6017] (each side at 0.025).
  close(clopperPearsonLower(50, 100, 0.025), 0.3983, 1e-4, '50/100 lower');
  close(clopperPearsonUpper(50, 100, 0.025), 0.6017, 1e-4, '50/100 upper');
  close(normalQuantile(0.5), 0, 1e-12, 'median');
  close(normalQuantile(0.975), 1.959963985, 1e-8, '0.975');
  close(normalQuantile(0.999), 3.090232306, 1e-8, '0.999');
  close(normalQuantile(1e-10), -6.361340902, 1e-7, '1e-10');
  for (const p of [0.6, 0.9, 0.99, 0.9999]) close(normalCdf(normalQuantile(p)), p, 1e-8, `Φ(Φ⁻¹(${p}))`);
  // The largest radius n samples can certify: all n copies on the top class (the 3.81σ at 100,000 and 3.20σ at 10,000).
  close(certifiedRadius(100_000, 100_000, 0.001, 1).radius!, 3.81, 0.01, 'n = 100,000');
  close(certifiedRadius(10_000, 10_000, 0.001, 1).radius!, 3.2, 0.01, 'n = 10,000');
  assert.equal(certifiedRadius(5_100, 10_000, 0.001, 1).radius, null, 'pA below 1/2 after the bound: abstain');
  // scipy.stats.binom_test(60, 100) = 0.05689.
  close(binomialTestTwoSided(60, 100), 0.05689, 1e-5, 'binomial test 60/100');
  close(binomialTestTwoSided(40, 100), 0.05689, 1e-5, 'binomial test 40/100');
  assert.equal(binomialTestTwoSided(50, 100), 1);
});

/** f(x) = 1 if w·x + b > 0 else 0, on 2x2x1 inputs; logits [0, w·x + b]. */
const W = [0.8, -0.6, 1.2, 0.4];
const B = -0.3;
const linear = Classifier.fromFunction((x) => tf.tidy(() => {
  const s = tf.add(tf.sum(tf.mul(tf.reshape(x, [-1, 4]), tf.tensor1d(W)), 1, true), B);
  return tf.concat([tf.zerosLike(s), s], 1) as tf.Tensor2D;
}), { inputShape: [2, 2, 1], numClasses: 2, bounds: [-1e3, 1e3] });
const norm = Math.hypot(...W);
/** A point at signed distance d from the hyperplane. */
const at = (d: number) => {
  const base = [0.5, 0.5, 0.5, 0.5];
  const s = base.reduce((a, v, i) => a + v * W[i], B);
  const t = (d * norm - s) / (norm * norm);
  return Float32Array.from(base, (v, i) => v + t * W[i]);
};

test('smoothing a linear classifier: the certified radius is the distance to the hyperplane up to the sampling bound', async () => {
  const sigma = 0.5;
  const n = 20_000;
  const alpha = 0.001;
  const before = tf.memory().numTensors;
  for (const [d, seed] of [[0.2, 1], [0.5, 2], [1.0, 3], [-0.7, 4]] as const) {
    const c = await certify(linear, at(d), { sigma, n, n0: 100, alpha, seed, batchSize: 5000 });
    const distance = Math.abs(d);
    const p = normalCdf(distance / sigma);
    assert.equal(c.prediction, d > 0 ? 1 : 0, `d = ${d}: the class`);
    // Sound: never more than the true radius (this fails with probability alpha).
    assert.ok(c.radius <= distance + 1e-6, `d = ${d}: radius ${c.radius} beyond the distance ${distance}`);
    // Tight: a count 4.5 sd below its mean would be needed to certify less than this.
    const low = Math.floor(n * p - 4.5 * Math.sqrt(n * p * (1 - p)));
    const floor = sigma * normalQuantile(clopperPearsonLower(low, n, alpha));
    assert.ok(c.radius >= floor, `d = ${d}: radius ${c.radius} below ${floor}`);
    close(c.count / n, p, 4.5 * Math.sqrt(p * (1 - p) / n), `d = ${d}: the top class's frequency`);
  }
  // Next to the hyperplane the bound cannot reach 1/2: abstain.
  const near = await certify(linear, at(0.005), { sigma, n, alpha, seed: 5, batchSize: 5000 });
  assert.equal(near.prediction, ABSTAIN);
  assert.equal(near.radius, 0);
  // PREDICT: far from the plane, the class; on it, abstain.
  assert.equal((await predictSmoothed(linear, at(0.6), { sigma, n: 2000, alpha, seed: 6 })).prediction, 1);
  assert.equal((await predictSmoothed(linear, at(0), { sigma, n: 2000, alpha, seed: 7 })).prediction, ABSTAIN);
  // The same seed gives the same counts.
  const again = await certify(linear, at(0.5), { sigma, n, n0: 100, alpha, seed: 2, batchSize: 777 });
  const first = await certify(linear, at(0.5), { sigma, n, n0: 100, alpha, seed: 2, batchSize: 5000 });
  assert.deepEqual(again, first, 'counts do not depend on the batch size');
  assert.equal(tf.memory().numTensors, before, 'tensors');
});

test('noisy copies are clipped to the bounds as part of the base classifier: the same counts as a classifier that clips itself', async () => {
  const inUnit = Classifier.fromFunction((x) => tf.tidy(() => linear.logits(x)), { inputShape: [2, 2, 1], numClasses: 2, bounds: [0, 1] });
  const clipsItself = Classifier.fromFunction((x) => tf.tidy(() => linear.logits(tf.clipByValue(x, 0, 1) as tf.Tensor4D)), { inputShape: [2, 2, 1], numClasses: 2, bounds: [0, 1] });
  const image = Float32Array.of(0.05, 0.9, 0.5, 0.2);
  const options = { sigma: 0.5, n: 3000, n0: 50, alpha: 0.001, seed: 11 };
  const clipped = await certify(inUnit, image, options);
  assert.deepEqual(clipped, await certify(clipsItself, image, { ...options, clipNoise: false }));
  // Without the clip the counts are another classifier's.
  assert.notDeepEqual(clipped.count, (await certify(inUnit, image, { ...options, clipNoise: false })).count);
});

test("the attack on a smoothed linear classifier moves the point straight at the hyperplane, by exactly the radius (the closed-form optimum)", async () => {
  // For f(x) = [0, w·x + b] the loss gradient at every noisy copy is a multiple of w: PGD walks along -w for class 1.
  const before = tf.memory().numTensors;
  const unit = Float64Array.from(W, (v) => v / norm);
  for (const [d, radius] of [[0.9, 0.4], [0.3, 0.5], [-0.8, 0.25]] as const) {
    const x = at(d);
    const label = d > 0 ? 1 : 0;
    const adv = await attackSmoothed(linear, x, label, { sigma: 0.5, radius, clipNoise: false, seed: 3 });
    const toward = label === 1 ? -1 : 1;
    for (let i = 0; i < 4; i++) close(adv[i], x[i] + toward * radius * unit[i], 2e-5, `d = ${d}, coordinate ${i}`);
    // Judged by PREDICT: a point left beyond the plane reads the other class, one short of it the same.
    const o = await attackAndPredict(linear, x, label, { sigma: 0.05, radius, clipNoise: false, seed: 3, predictSeed: 4, n: 2000, alpha: 0.001 });
    close(o.distance, radius, 1e-5, 'the re-measured distance');
    assert.equal(o.prediction, Math.abs(d) > radius ? label : 1 - label, `d = ${d}, radius ${radius}`);
  }
  assert.equal(tf.memory().numTensors, before, 'tensors');
});

test('the consistency check by hand: certified never above attacked-not-broken, abstentions apart, a certified image broken is a violation', () => {
  const points = [
    // index, label, CERTIFY's class and radius, PREDICT at the attacked point
    { index: 0, label: 3, certified: 3, radius: 1.2, attacked: 3 }, // certified at 0.5 and 1, survives
    { index: 1, label: 3, certified: 3, radius: 0.7, attacked: -1 }, // certified at 0.5; abstains under attack: not broken
    { index: 2, label: 5, certified: 5, radius: 0.2, attacked: 1 }, // broken, certified only below 0.5
    { index: 3, label: 5, certified: -1, radius: 0, attacked: 5 }, // abstained on the clean image: neither
    { index: 4, label: 2, certified: 7, radius: 0.9, attacked: 7 }, // wrong on the clean image
  ];
  const at05 = smoothingConsistency(points, 0.5);
  assert.deepEqual(at05, { radius: 0.5, images: 5, certifiedAccuracy: 2 / 5, empiricalRobustAccuracy: 2 / 5, abstainedUnderAttack: 1, violations: [] });
  const at1 = smoothingConsistency(points, 1);
  assert.equal(at1.certifiedAccuracy, 1 / 5);
  assert.ok(at1.certifiedAccuracy <= at1.empiricalRobustAccuracy);
  // Image 0 broken by an attack at 1 although certified at 1.2: the check names it.
  const wrong = smoothingConsistency(points.map((p) => (p.index === 0 ? { ...p, attacked: 4 } : p)), 1);
  assert.deepEqual(wrong.violations, [0]);
});

test('smoothing rejects bad input with InputErrors naming the argument', async () => {
  const image = at(0.5);
  const bad: [string, () => Promise<unknown>][] = [
    ['sigma', () => certify(linear, image, { sigma: 0, seed: 0, n: 10 })],
    ['alpha', () => certify(linear, image, { sigma: 0.5, seed: 0, n: 10, alpha: 1 })],
    ['n', () => certify(linear, image, { sigma: 0.5, seed: 0, n: 0 })],
    ['image', () => certify(linear, new Float32Array(3), { sigma: 0.5, seed: 0, n: 10 })],
    ['image', () => certify(linear, Float32Array.of(0, NaN, 0, 0), { sigma: 0.5, seed: 0, n: 10 })],
    ['radius', () => attackSmoothed(linear, image, 1, { sigma: 0.5, radius: 0, seed: 0 })],
    ['label', () => attackSmoothed(linear, image, 2, { sigma: 0.5, radius: 0.5, seed: 0 })],
    ['samples', () => attackSmoothed(linear, image, 1, { sigma: 0.5, radius: 0.5, seed: 0, samples: 0 })],
  ];
  for (const [argument, call] of bad) await assert.rejects(call(), (e: unknown) => e instanceof InputError && e.argument === argument, argument);
});

test('interval bounds of one linear layer are the exact range over the ball', () => {
  const input = tfl.input({ shape: [2, 3, 1] });
  const out = tfl.layers.dense({ units: 4, kernelInitializer: tfl.initializers.randomNormal({ seed: 1 }), biasInitializer: 'glorotUniform' }).apply(tfl.layers.flatten().apply(input)) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: out });
  const x = tf.tensor4d(Float32Array.from({ length: 12 }, (_, i) => 0.3 + 0.03 * i), [2, 2, 3, 1]);
  const eps = 0.1;
  const { lower, upper } = logitBounds(model, x, eps);
  const [kernel, bias] = model.getWeights();
  const centre = tf.add(tf.matMul(tf.reshape(x, [2, 6]), kernel), bias);
  const spread = tf.mul(eps, tf.sum(tf.abs(kernel), 0));
  const near = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
  assert.ok(near(lower, tf.sub(centre, spread)) < 1e-5, 'lower');
  assert.ok(near(upper, tf.add(centre, spread)) < 1e-5, 'upper');
  tf.dispose([x, lower, upper, centre, spread]);
  model.dispose();
});

test('interval bounds of small-cnn contain the logits of random, corner and PGD points of the ball; verified points survive PGD', async () => {
  const model = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 2 });
  const classifier = Classifier.fromModel(model);
  const rng = new Rng(3);
  const n = 6;
  const images = Float32Array.from({ length: n * 784 }, () => rng.next());
  const x = tf.tensor4d(images, [n, 28, 28, 1]);
  const labels = tf.tidy(() => tf.argMax(classifier.logits(x), 1)) as tf.Tensor1D;
  const before = tf.memory().numTensors;
  for (const eps of [1e-5, 0.02]) {
    const { lower, upper } = logitBounds(model, x, eps);
    const margins = worstCaseMargins(model, x, labels, eps);
    const [lo, hi, worst, y] = [lower.dataSync(), upper.dataSync(), margins.dataSync(), labels.dataSync()];
    const inside = (points: Float32Array, what: string) => {
      const logits = tf.tidy(() => classifier.logits(tf.tensor4d(points, [n, 28, 28, 1])).dataSync());
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < 10; k++) {
          const v = logits[i * 10 + k];
          assert.ok(v >= lo[i * 10 + k] - 1e-4 && v <= hi[i * 10 + k] + 1e-4, `${what} eps ${eps}: logit ${v} outside [${lo[i * 10 + k]}, ${hi[i * 10 + k]}]`);
          assert.ok(v - logits[i * 10 + y[i]] <= worst[i * 10 + k] + 1e-4, `${what} eps ${eps}: margin above its bound`);
        }
      }
    };
    for (let s = 0; s < 20; s++) {
      const corner = s % 2 === 0;
      inside(Float32Array.from(images, (v) => Math.min(1, Math.max(0, v + (corner ? (rng.next() < 0.5 ? -eps : eps) : (2 * rng.next() - 1) * eps)))), corner ? 'corner' : 'uniform');
    }
    // PGD iterates: every step of an untargeted Linf PGD (checked after each step).
    let adv: tf.Tensor4D = tf.clone(x);
    for (let step = 0; step < 10; step++) {
      const next = tf.tidy(() => {
        const { grad } = classifier.valueAndGradient(adv as tf.Tensor4D, (z) => tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 10), z, undefined, undefined, tf.Reduction.NONE) as tf.Tensor1D);
        const moved = tf.add(adv, tf.mul(eps / 4, tf.sign(grad)));
        return tf.clipByValue(tf.minimum(tf.maximum(moved, tf.sub(x, eps)), tf.add(x, eps)), 0, 1) as tf.Tensor4D;
      });
      adv.dispose();
      adv = next;
      inside(adv.dataSync() as Float32Array, `PGD step ${step + 1}`);
    }
    adv.dispose();
    // Verified points: PGD-20 with restarts does not break them.
    const verified = await verifiedAt(model, x, labels, eps);
    const attack = await runAttack(pgd, classifier, { images, labels: y as Int32Array, count: n, imageShape: [28, 28, 1] }, { eps, norm: 'linf', seed: 1, params: { steps: 20, restarts: 2 } });
    verified.forEach((v, i) => assert.ok(!(v && attack.success[i]), `eps ${eps}: image ${i} verified but broken by PGD`));
    if (eps === 1e-5) assert.ok(verified.some(Boolean), 'some points verified at a tiny eps');
    tf.dispose([lower, upper, margins]);
  }
  assert.equal(tf.memory().numTensors, before, 'tensors');
  tf.dispose([x, labels]);
  model.dispose();
});

test('interval bounds name the layer they cannot pass', () => {
  const input = tfl.input({ shape: [4, 4, 1] });
  const h = tfl.layers.conv2d({ filters: 2, kernelSize: 3, activation: 'softmax' }).apply(input) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 3 }).apply(tfl.layers.flatten().apply(h)) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: out });
  assert.throws(() => logitBounds(model, tf.zeros([1, 4, 4, 1]) as tf.Tensor4D, 0.1), (e: unknown) => e instanceof InputError && /softmax/.test(e.message));
  model.dispose();
});

test('IBP training: the schedules by hand, and the loss is kappa CE(clean) + (1 - kappa) CE(worst-case margins)', () => {
  const c = defaultDefenseConfig('ibp', { eps: 0.3, epsWarmupEpochs: 2, ibp: { flatEpochs: 1, kappa: 0.5, epsScale: 1.1 } });
  const per = 10;
  // Epoch 1 flat: eps 0, kappa 1; then 20 steps of ramp to 0.33 and kappa 0.5; then constant.
  assert.equal(epsAt(c, 0, per), 0);
  assert.equal(epsAt(c, 9, per), 0);
  assert.equal(ibpKappaAt(c, 9, per), 1);
  close(epsAt(c, 10, per), 0.33 / 20, 1e-12, 'first ramp step');
  close(ibpKappaAt(c, 19, per), 1 - 0.5 * (10 / 20), 1e-12, 'kappa half-way');
  close(epsAt(c, 29, per), 0.33, 1e-12, 'end of the ramp');
  close(epsAt(c, 500, per), 0.33, 1e-12, 'after');
  close(ibpKappaAt(c, 500, per), 0.5, 1e-12, 'kappa after');

  const input = tfl.input({ shape: [2, 2, 1] });
  const h = tfl.layers.dense({ units: 5, activation: 'relu', kernelInitializer: tfl.initializers.randomNormal({ seed: 3 }) }).apply(tfl.layers.flatten().apply(input)) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.randomNormal({ seed: 4 }), biasInitializer: 'randomNormal' }).apply(h) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: out });
  const x = tf.tensor4d([0.2, 0.5, 0.7, 0.4, 0.9, 0.1, 0.3, 0.6], [2, 2, 2, 1]);
  const y = tf.tensor1d([2, 0], 'int32');
  const at = { eps: 0.05, step: 19, stepsPerEpoch: per };
  const defense = createDefense(c);
  const { loss } = tf.tidy(() => defense.loss(model, x, x, y, 3, at));
  // By hand: the hidden box through relu, then the margins through rows W_j - W_y.
  const [w1, b1, w2, b2] = model.getWeights().map((t) => t.arraySync() as number[][] | number[]);
  const xs = x.arraySync().map((im) => im.flat(2));
  let expected = 0;
  const kappa = 0.75;
  xs.forEach((v, n) => {
    const yn = [2, 0][n];
    const lo = v.map((t) => Math.max(0, t - at.eps));
    const hi = v.map((t) => Math.min(1, t + at.eps));
    const hLo: number[] = [];
    const hHi: number[] = [];
    const hMid: number[] = [];
    for (let j = 0; j < 5; j++) {
      let a = (b1 as number[])[j];
      let b = a;
      let m = a;
      for (let i = 0; i < 4; i++) {
        const w = (w1 as number[][])[i][j];
        a += w * (w > 0 ? lo[i] : hi[i]);
        b += w * (w > 0 ? hi[i] : lo[i]);
        m += w * v[i];
      }
      hLo.push(Math.max(0, a));
      hHi.push(Math.max(0, b));
      hMid.push(Math.max(0, m));
    }
    const logits = [0, 1, 2].map((k) => (b2 as number[])[k] + hMid.reduce((s, t, j) => s + t * (w2 as number[][])[j][k], 0));
    const ce = (z: number[]) => Math.log(z.reduce((s, t) => s + Math.exp(t), 0)) - z[yn];
    const margins = [0, 1, 2].map((k) => {
      if (k === yn) return 0;
      let m = (b2 as number[])[k] - (b2 as number[])[yn];
      for (let j = 0; j < 5; j++) {
        const d = (w2 as number[][])[j][k] - (w2 as number[][])[j][yn];
        m += d * (d > 0 ? hHi[j] : hLo[j]);
      }
      return m;
    });
    expected += (kappa * ce(logits) + (1 - kappa) * ce(margins)) / 2;
  });
  close(loss.dataSync()[0], expected, 1e-5, 'IBP loss');
  tf.dispose([loss, x, y]);
  model.dispose();
});

test('certifying and predicting images on 2 workers gives the results of one thread (per-image seeds)', async () => {
  const { WorkerPool } = await import('../src/node/worker-pool.js');
  const { clearWorkerModels } = await import('../src/models/pool-model.js');
  const { certifyImages, predictImages } = await import('../src/robustness/smoothing.js');
  const model = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 5 });
  const classifier = Classifier.fromModel(model);
  const rng = new Rng(9);
  const images = Float32Array.from({ length: 5 * 784 }, () => rng.next());
  const pool = await WorkerPool.start({ size: 2, backend: 'wasm', kernels: 'advlab' });
  try {
    const options = { sigma: 0.25, seed: 4, n0: 20, n: 300, alpha: 0.01, batchSize: 100 };
    const progress: number[] = [];
    const alone = await certifyImages(classifier, images, 5, options);
    const split = await certifyImages(classifier, images, 5, { ...options, pool, onProgress: (d) => progress.push(d) });
    assert.deepEqual(split, alone);
    assert.deepEqual(progress, [4, 5]);
    for (const c of alone) assert.ok(c.prediction === ABSTAIN || (c.prediction === c.selected && c.radius > 0), JSON.stringify(c));
    // PREDICT too, and each image's is the one-image call's with its seed.
    const predicted = await predictImages(classifier, images, 5, { ...options, pool });
    assert.deepEqual(predicted, await predictImages(classifier, images, 5, options));
    assert.deepEqual(predicted[3], await predictSmoothed(classifier, images.slice(3 * 784, 4 * 784), { ...options, seed: deriveSeed(4, 'smoothing:3') }));
  } finally {
    await pool.close();
    await clearWorkerModels();
    model.dispose();
  }
});

test('consistency regularization: the loss by hand (CE on every copy + lambda mean KL(avg || p_i) + eta H(avg)); copies image-major, clipped', () => {
  const before = tf.memory().numTensors;
  // 2 images x 3 copies, 3 classes.
  const logits = [
    [2, 0, -1], [1.5, 0.5, 0], [0, 0, 0],
    [-1, 3, 0.5], [0.2, 0.1, 2], [-2, 1, 1],
  ];
  const labels = [0, 1];
  const w = { lambda: 7, eta: 0.3, copies: 3 };
  const softmax = (z: number[]) => {
    const e = z.map((v) => Math.exp(v - Math.max(...z)));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
  let ce = 0;
  let kl = 0;
  let ent = 0;
  for (let i = 0; i < 2; i++) {
    const ps = logits.slice(3 * i, 3 * i + 3).map(softmax);
    const avg = [0, 1, 2].map((c) => (ps[0][c] + ps[1][c] + ps[2][c]) / 3);
    for (const p of ps) {
      ce += -Math.log(p[labels[i]]) / 6;
      kl += avg.reduce((a, q, c) => a + q * Math.log(q / p[c]), 0) / 6;
    }
    ent += -avg.reduce((a, q) => a + q * Math.log(q), 0) / 2;
  }
  const expected = ce + w.lambda * kl + w.eta * ent;
  const got = tf.tidy(() => consistencyLoss(tf.tensor2d(logits), tf.tensor1d(labels, 'int32'), 3, w).loss.dataSync()[0]);
  close(got, expected, 1e-5, 'consistency loss');
  // Identical copies: no KL; lambda and the copies then do not matter beyond CE and entropy.
  const same = [[1, 2, 0], [1, 2, 0]];
  const p = softmax(same[0]);
  const only = tf.tidy(() => consistencyLoss(tf.tensor2d(same), tf.tensor1d([1], 'int32'), 3, { lambda: 100, eta: 0.5, copies: 2 }).loss.dataSync()[0]);
  close(only, -Math.log(p[1]) + 0.5 * -p.reduce((a, q) => a + q * Math.log(q), 0), 1e-5, 'identical copies');
  // The copies: image i's rows are i * m ... i * m + m - 1, inside the bounds, spread sigma around the image where the clip does not bite.
  const x = tf.tensor4d([0.5, 0.5, 0.5, 0.5, 0, 1, 0, 1], [2, 2, 2, 1]);
  const copies = noisyCopies(x, 400, 0.1, 3, [0, 1]);
  const v = copies.dataSync();
  assert.deepEqual(copies.shape, [800, 2, 2, 1]);
  assert.ok(v.every((t) => t >= 0 && t <= 1));
  let sum = 0;
  let sq = 0;
  for (let r = 0; r < 400; r++) for (let j = 0; j < 4; j++) { sum += v[r * 4 + j]; sq += (v[r * 4 + j] - 0.5) ** 2; }
  close(sum / 1600, 0.5, 0.01, 'first image copies centred on it');
  close(Math.sqrt(sq / 1600), 0.1, 0.01, 'spread sigma');
  for (let r = 400; r < 800; r++) assert.ok(v[r * 4] <= 0.5 && v[r * 4 + 1] >= 0.5, 'second image: its own copies, clipped at 0 and 1');
  tf.dispose([x, copies]);
  assert.equal(tf.memory().numTensors, before, 'tensors');
});
