/**
 * AdvGAN (generative/advgan): the C&W margin and the perturbation hinge
 * against hand computations, the perturbation always inside the Linf ball and
 * the image inside the bounds, and the networks' shapes.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { marginLoss, perturbationHinge, perturbedImages } from '../src/generative/advgan/losses.js';
import { buildAdvGan } from '../src/generative/advgan/architectures.js';
import { InputError } from '../src/errors.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainAdvGan } from '../src/generative/advgan/train-advgan.js';
import { buildModel } from '../src/models/zoo.js';
import { Classifier } from '../src/models/classifier.js';
import { CheckpointFolder } from '../src/node/checkpoint.js';
import { Rng } from '../src/util/rng.js';
import type { ImageSet } from '../src/data/types.js';
import { advganAttack } from '../src/attacks/advgan.js';
import { runAttack } from '../src/attacks/run.js';
import { readOne } from '../src/engine/read.js';
import { DynamicDistillation, type BlackBox } from '../src/generative/advgan/distillation.js';

before(async () => {
  await initBackend({ backend: 'wasm' });
});

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('the C&W margin by hand: untargeted z_y - max other, targeted max other - z_t, floored at -kappa', () => {
  const before = tf.memory().numTensors;
  const z = [
    [2, 5, 1, -1],
    [0.5, 0.2, 3, 3.5],
    [-1, -2, -3, 4],
  ];
  const labels = [1, 2, 3];
  const byHand = (row: number[], c: number, targeted: boolean, kappa: number) => {
    const other = Math.max(...row.filter((_, j) => j !== c));
    return Math.max(targeted ? other - row[c] : row[c] - other, -kappa);
  };
  for (const targeted of [false, true]) {
    for (const kappa of [0, 0.5, 10]) {
      const got = tf.tidy(() => Array.from(marginLoss(tf.tensor2d(z), tf.tensor1d(labels, 'int32'), targeted, kappa).dataSync()));
      got.forEach((g, i) => close(g, byHand(z[i], labels[i], targeted, kappa), 1e-5, `row ${i}, targeted ${targeted}, kappa ${kappa}`));
    }
  }
  // Row 0 untargeted: 5 - 2 = 3; row 1: 3 - 3.5 = -0.5, floored at 0 with kappa 0; row 2: 4 - (-1) = 5.
  assert.deepEqual(tf.tidy(() => Array.from(marginLoss(tf.tensor2d(z), tf.tensor1d(labels, 'int32'), false).dataSync(), (v) => v + 0)), [3, 0, 5]);
  assert.throws(() => marginLoss(tf.zeros([1, 2]) as tf.Tensor2D, tf.tensor1d([0], 'int32'), false, -1), InputError);
  assert.equal(tf.memory().numTensors, before + 2, 'only the two tensors built for the throw remain');
});

test('the perturbation hinge by hand, and the perturbation always inside the ball and the image inside the bounds', () => {
  const delta = tf.tensor4d([0.3, 0.4, 0, 0, 0.1, 0, 0, 0], [2, 2, 2, 1]);
  // Norms 0.5 and 0.1: above the bound 0.2 by 0.3, below by 0.1.
  const h = perturbationHinge(delta, 0.2).dataSync();
  close(h[0], 0.3, 1e-6, 'first');
  close(h[1], 0, 0, 'second');
  const x = tf.tensor4d([0, 0.1, 0.5, 0.95, 1, 0.2, 0.7, 0], [2, 2, 2, 1]);
  // Raw outputs from tiny to huge: eps tanh never reaches eps, the clip keeps [0, 1].
  const raw = tf.tensor4d([-1e6, 3, -0.2, 50, 1e6, -7, 0, -1], [2, 2, 2, 1]);
  const { delta: d, adversarial } = perturbedImages(x, raw, 0.3, [0, 1]);
  const dv = d.dataSync();
  const av = adversarial.dataSync();
  const xv = x.dataSync();
  for (let i = 0; i < dv.length; i++) {
    // At most eps (a saturated tanh is exactly ±1 in float32: the ball's surface).
    assert.ok(Math.abs(dv[i]) <= Math.fround(0.3), `delta ${dv[i]}`);
    assert.ok(av[i] >= 0 && av[i] <= 1, `image ${av[i]}`);
    assert.ok(Math.abs(av[i] - xv[i]) <= Math.fround(0.3) + 1e-7, `moved ${av[i] - xv[i]}`);
  }
  close(dv[2], 0.3 * Math.tanh(-0.2), 1e-6, 'eps tanh');
  tf.dispose([delta, x, raw, d, adversarial]);
});

test('AdvGAN networks: the generator keeps the image shape, the discriminator gives one logit; sizes not divisible by 4 are refused', () => {
  const { generator, discriminator } = buildAdvGan([28, 28, 1], 0);
  try {
    assert.deepEqual(generator.outputs[0].shape, [null, 28, 28, 1]);
    assert.deepEqual(discriminator.outputs[0].shape, [null, 1]);
    const again = buildAdvGan([28, 28, 1], 0);
    assert.deepEqual(again.generator.getWeights()[0].dataSync(), generator.getWeights()[0].dataSync(), 'seeded');
    again.generator.dispose();
    again.discriminator.dispose();
  } finally {
    generator.dispose();
    discriminator.dispose();
  }
  assert.throws(() => buildAdvGan([30, 30, 1], 0), (e: unknown) => e instanceof InputError && e.argument === 'imageShape');
});

/** 48 images of 8x8: a bright left half (class 0) or right half (class 1), with noise. */
function halves(): ImageSet {
  const rng = new Rng(3);
  const count = 48;
  const images = new Float32Array(count * 64);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % 2;
    for (let r = 0; r < 8; r++) for (let c = 0; c < 8; c++) images[i * 64 + r * 8 + c] = Math.min(1, Math.max(0, ((c < 4) === (labels[i] === 0) ? 0.8 : 0.2) + 0.1 * rng.normal()));
  }
  return { images, labels, count, imageShape: [8, 8, 1] };
}

test('AdvGAN training: finite losses, perturbations inside the ball, the generator learns to fool the model; a killed run resumes bit-identically; tensors flat', async () => {
  const train = halves();
  const targetModel = buildModel('mlp', { inputShape: [8, 8, 1], numClasses: 2, seed: 1 });
  const target = Classifier.fromModel(targetModel);
  const dir = mkdtempSync(join(tmpdir(), 'advgan-'));
  const options = { eps: 0.3, epochs: 3, batchSize: 16, seed: 2 };
  const before = tf.memory().numTensors;
  try {
    const full = buildAdvGan([8, 8, 1], 0);
    const r = await trainAdvGan(full, target, train, { ...options, checkpoints: new CheckpointFolder(join(dir, 'a')) });
    assert.equal(r.history.length, 3);
    for (const h of r.history) {
      for (const v of [h.dLoss, h.gLoss, h.advLoss, h.hingeLoss, h.meanL2]) assert.ok(Number.isFinite(v), JSON.stringify(h));
      assert.ok(h.meanL2 <= 0.3 * 8 + 1e-5, 'an L2 norm inside the Linf ball');
    }
    assert.ok(r.history[2].trainSuccess > r.history[0].trainSuccess || r.history[2].trainSuccess === 1, `success ${r.history.map((h) => h.trainSuccess)}`);
    const part = buildAdvGan([8, 8, 1], 0);
    await trainAdvGan(part, target, train, { ...options, checkpoints: new CheckpointFolder(join(dir, 'b')), stopAfterEpochs: 1 });
    part.generator.dispose();
    part.discriminator.dispose();
    const resumed = buildAdvGan([8, 8, 1], 0);
    const rr = await trainAdvGan(resumed, target, train, { ...options, checkpoints: new CheckpointFolder(join(dir, 'b')), resume: true });
    assert.equal(rr.resumedFromEpoch, 1);
    assert.deepEqual(rr.history, r.history.map((h, i) => ({ ...h, seconds: rr.history[i].seconds })));
    const weights = (m: typeof full) => m.generator.getWeights().map((w) => Array.from(w.dataSync()));
    assert.deepEqual(weights(resumed), weights(full), 'bit-identical generator');
    // The trained generator as an attack: one forward pass, re-verified by the driver, inside the requested ball.
    const images = { images: train.images, labels: train.labels, count: train.count, imageShape: train.imageShape };
    const viaDriver = await runAttack(advganAttack(full.generator, { eps: 0.3, targetClass: null }), target, images, { eps: 0.2 });
    assert.equal(viaDriver.rejected.outsideBall, 0);
    for (const v of viaDriver.norms.linf) assert.ok(v <= 0.2 + 1e-6, `linf ${v}`);
    assert.equal(viaDriver.gradients, 0, 'no gradient of the attacked model');
    assert.ok(viaDriver.summary.successRate >= 0);
    for (const m of [full, resumed]) {
      m.generator.dispose();
      m.discriminator.dispose();
    }
    assert.equal(tf.memory().numTensors, before, 'tensors');
    // Bad input names the option.
    const g = buildAdvGan([8, 8, 1], 0);
    await assert.rejects(trainAdvGan(g, target, train, { ...options, eps: 2 }), (e: unknown) => e instanceof InputError && e.argument === 'eps');
    await assert.rejects(trainAdvGan(g, target, train, { ...options, targetClass: 5 }), (e: unknown) => e instanceof InputError && e.argument === 'targetClass');
    g.generator.dispose();
    g.discriminator.dispose();
  } finally {
    target.dispose();
    targetModel.dispose();
  }
});

test('AdvGAN black-box mode (dynamic distillation): only labels reach the trainer, every query is counted, the surrogate learns the model, a killed run resumes to the same generator and count', async () => {
  const train = halves();
  const targetModel = buildModel('mlp', { inputShape: [8, 8, 1], numClasses: 2, seed: 1 });
  const target = Classifier.fromModel(targetModel);
  let asked = 0;
  // The black box: the model's predicted class, nothing else; `asked` counts behind the trainer's back.
  const blackBox: BlackBox = {
    labels: async (x) => {
      asked += x.shape[0];
      return (await readOne(tf.tidy(() => target.predict(x)))) as Int32Array;
    },
    bounds: [0, 1],
    numClasses: 2,
    inputShape: [8, 8, 1],
  };
  const dir = mkdtempSync(join(tmpdir(), 'advgan-bb-'));
  const options = { eps: 0.3, epochs: 2, batchSize: 16, seed: 3 };
  const run = async (folder: string, extra: { stopAfterEpochs?: number; resume?: boolean } = {}) => {
    const surrogate = buildModel('small-cnn', { inputShape: [8, 8, 1], numClasses: 2, seed: 4 });
    const distillation = new DynamicDistillation(surrogate, blackBox, { seed: 5, staticEpochs: 3, batchSize: 16 });
    const models = buildAdvGan([8, 8, 1], 0);
    try {
      const r = await trainAdvGan(models, distillation.classifier, train, { ...options, ...extra, distillation, checkpoints: new CheckpointFolder(join(dir, folder)) });
      return { r, queries: distillation.queries, weights: models.generator.getWeights().map((w) => Array.from(w.dataSync())) };
    } finally {
      distillation.dispose();
      surrogate.dispose();
      models.generator.dispose();
      models.discriminator.dispose();
    }
  };
  const before = tf.memory().numTensors;
  try {
    const whole = await run('whole');
    // Static phase: every training image once; then one query per perturbed image in every generator step.
    assert.equal(whole.queries, train.count * (1 + options.epochs));
    assert.equal(asked, whole.queries, 'the count is the black box\'s own');
    const last = whole.r.history[1].blackBox!;
    assert.equal(last.queries, whole.queries);
    assert.ok(last.staticAgreement > 0.7, `the surrogate learned the model: ${last.staticAgreement}`);
    assert.ok(last.surrogateAgreement >= 0 && last.surrogateAgreement <= 1);
    asked = 0;
    await run('part', { stopAfterEpochs: 1 });
    const resumed = await run('part', { resume: true });
    assert.equal(resumed.r.resumedFromEpoch, 1);
    assert.equal(resumed.queries, whole.queries, 'the resumed run counts the queries made before the kill');
    assert.equal(asked, whole.queries, 'and does not repeat them');
    assert.deepEqual(resumed.weights, whole.weights, 'bit-identical generator');
    assert.equal(tf.memory().numTensors, before, 'tensors');
    // A white-box resume of a black-box checkpoint is refused.
    const g = buildAdvGan([8, 8, 1], 0);
    await assert.rejects(trainAdvGan(g, target, train, { ...options, checkpoints: new CheckpointFolder(join(dir, 'whole')), resume: true }), (e: unknown) => e instanceof InputError && e.argument === 'resume');
    g.generator.dispose();
    g.discriminator.dispose();
  } finally {
    target.dispose();
    targetModel.dispose();
  }
});
