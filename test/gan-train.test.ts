/**
 * The GAN architectures and training loop (src/generative/gan): shapes and
 * output ranges, seeded initial weights, a few steps that move both players,
 * memory hygiene, and a kill-and-resume that ends bit-identical.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf, type tfl } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { loadBuiltinDataset } from '../src/node/data/builtin.js';
import { balancedSubset } from '../src/data/subset.js';
import type { ImageSet } from '../src/data/types.js';
import { InputError } from '../src/errors.js';
import { buildGan, GAN_ARCHS } from '../src/generative/gan/architectures.js';
import { trainGan } from '../src/generative/gan/train-gan.js';
import { CheckpointFolder } from '../src/node/checkpoint.js';

let train: ImageSet;

before(async () => {
  await initBackend({ backend: 'wasm' });
  train = balancedSubset(loadBuiltinDataset('mnist').train, 10, 128, 'n', 'train');
});

const weightsOf = (m: { getWeights(): tf.Tensor[] }) => m.getWeights().map((w) => Array.from(w.dataSync()));

test('every architecture: G maps z (and a class) to images in [0, 1], D maps images (and a class) to one logit (and class logits); same seed, same weights', () => {
  for (const arch of GAN_ARCHS) {
    const a = buildGan(arch, { imageShape: [28, 28, 1], numClasses: 10, seed: 3, latentDim: 16 });
    const b = buildGan(arch, { imageShape: [28, 28, 1], numClasses: 10, seed: 3, latentDim: 16 });
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const z = tf.randomNormal([5, 16], 0, 1, 'float32', 1);
      const c = tf.cast(tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4], 'int32'), 10), 'float32');
      const img = a.generator.predict(a.conditional ? [z, c] : z) as tf.Tensor;
      assert.deepEqual(img.shape, [5, 28, 28, 1], arch);
      assert.ok(tf.min(img).dataSync()[0] >= 0 && tf.max(img).dataSync()[0] <= 1, arch);
      const out = a.discriminator.predict(a.discriminatorTakesClass ? [img, c] : img) as tf.Tensor | tf.Tensor[];
      if (a.auxiliaryClassifier) {
        assert.ok(Array.isArray(out), arch);
        assert.deepEqual(out.map((t) => t.shape), [[5, 1], [5, 10]], arch);
      } else assert.deepEqual((out as tf.Tensor).shape, [5, 1], arch);
    });
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(weightsOf(a.generator), weightsOf(b.generator), arch);
    assert.deepEqual(weightsOf(a.discriminator), weightsOf(b.discriminator), arch);
    for (const m of [a, b]) {
      m.generator.dispose();
      m.discriminator.dispose();
    }
  }
  assert.throws(() => buildGan('dcgan', { imageShape: [30, 30, 1], numClasses: 10, seed: 0 }), (e: unknown) => e instanceof InputError && e.argument === 'imageShape' && /divisible by 4/.test(e.message));
  assert.throws(() => buildGan('vae', { imageShape: [28, 28, 1], numClasses: 10, seed: 0 }), (e: unknown) => e instanceof InputError && e.argument === 'arch');
});

test("batch norm in the conv discriminators by default, none on request; wgan-gp's per-example penalty refuses it", async () => {
  const names = (m: tfl.LayersModel) => m.layers.filter((l) => l.getClassName() === 'BatchNormalization').map((l) => l.name);
  const normed = buildGan('dcgan', { imageShape: [28, 28, 1], numClasses: 10, seed: 1, latentDim: 8 });
  const plain = buildGan('dcgan', { imageShape: [28, 28, 1], numClasses: 10, seed: 1, latentDim: 8, discriminatorNorm: 'none' });
  const mlp = buildGan('mlp', { imageShape: [28, 28, 1], numClasses: 10, seed: 1, latentDim: 8 });
  assert.deepEqual([names(normed.discriminator), normed.discriminatorNorm], [['d_bn2'], 'batch']);
  assert.deepEqual([names(plain.discriminator), plain.discriminatorNorm], [[], 'none']);
  assert.deepEqual([names(mlp.discriminator), mlp.discriminatorNorm], [[], 'none']);
  await assert.rejects(trainGan(normed, train, { epochs: 1, batchSize: 32, loss: 'wgan-gp', seed: 0 }), (e: unknown) => e instanceof InputError && e.argument === 'loss' && /per example/.test(e.message));
  assert.throws(() => buildGan('dcgan', { imageShape: [28, 28, 1], numClasses: 10, seed: 1, discriminatorNorm: 'layer' as never }), (e: unknown) => e instanceof InputError && e.argument === 'discriminatorNorm');
  for (const m of [normed, plain, mlp]) {
    m.generator.dispose();
    m.discriminator.dispose();
  }
});

test('training moves both players, keeps the tensor count, and a run stopped after epoch 1 resumes bit-identical', async () => {
  for (const [arch, loss] of [['dcgan', 'ns'], ['cgan', 'hinge'], ['acgan', 'ns'], ['infogan', 'lsgan'], ['mlp', 'wgan-gp']] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'advlab-gan-'));
    const opts = { epochs: 2, batchSize: 32, loss, seed: 5, criticSteps: loss === 'wgan-gp' ? 2 : undefined } as const;
    const build = () => buildGan(arch, { imageShape: [28, 28, 1], numClasses: 10, seed: 5, latentDim: 16 });
    const full = build();
    const g0 = weightsOf(full.generator);
    const d0 = weightsOf(full.discriminator);
    const before = tf.memory().numTensors;
    const r = await trainGan(full, train, { ...opts, checkpoints: new CheckpointFolder(join(dir, 'a')) });
    assert.equal(tf.memory().numTensors, before, `${arch} ${loss}: tensors`);
    assert.equal(r.history.length, 2);
    for (const h of r.history) for (const v of [h.dLoss, h.gLoss, h.dReal, h.dFake]) assert.ok(Number.isFinite(v), `${arch} ${loss}: ${JSON.stringify(h)}`);
    assert.notDeepEqual(weightsOf(full.generator), g0);
    assert.notDeepEqual(weightsOf(full.discriminator), d0);

    const part = build();
    await trainGan(part, train, { ...opts, checkpoints: new CheckpointFolder(join(dir, 'b')), stopAfterEpochs: 1 });
    part.generator.dispose();
    part.discriminator.dispose();
    const resumed = build();
    const r2 = await trainGan(resumed, train, { ...opts, checkpoints: new CheckpointFolder(join(dir, 'b')), resume: true });
    assert.equal(r2.resumedFromEpoch, 1);
    assert.deepEqual(r2.history.map((h) => [h.dLoss, h.gLoss]), r.history.map((h) => [h.dLoss, h.gLoss]), `${arch} ${loss}`);
    assert.deepEqual(weightsOf(resumed.generator), weightsOf(full.generator), `${arch} ${loss}: generator`);
    assert.deepEqual(weightsOf(resumed.discriminator), weightsOf(full.discriminator), `${arch} ${loss}: discriminator`);
    for (const m of [full, resumed]) {
      m.generator.dispose();
      m.discriminator.dispose();
    }
  }
});

/** Accuracy of D's class head on images x for the classes y. */
function headAccuracy(D: tfl.LayersModel, x: tf.Tensor, y: Int32Array): number {
  return tf.tidy(() => {
    const out = D.apply(x) as tf.Tensor[];
    const predicted = Array.from(tf.argMax(out[1], 1).dataSync());
    return predicted.reduce((a, p, i) => a + (p === y[i] ? 1 : 0), 0) / y.length;
  });
}

test('the class head learns: acgan the labels of real images, infogan the codes of its samples without reading a label', async () => {
  // A high rate, so a few steps show the head learning.
  const opts = { epochs: 4, batchSize: 32, loss: 'ns', seed: 4, learningRate: 1e-3 } as const;
  const acgan = buildGan('acgan', { imageShape: [28, 28, 1], numClasses: 10, seed: 4, latentDim: 16 });
  const realX = tf.tensor4d(train.images, [train.count, 28, 28, 1]);
  const realY = Int32Array.from(train.labels);
  const before = headAccuracy(acgan.discriminator, realX, realY);
  await trainGan(acgan, train, opts);
  const after = headAccuracy(acgan.discriminator, realX, realY);
  assert.ok(after >= 0.5 && after > before + 0.3, `acgan head on the real images: ${before} -> ${after}`);

  // InfoGAN on the same images with every label corrupted: labels are never read.
  const unlabelled: ImageSet = { ...train, labels: new Int32Array(train.count).fill(99) };
  await assert.rejects(trainGan(buildGan('acgan', { imageShape: [28, 28, 1], numClasses: 10, seed: 4, latentDim: 16 }), unlabelled, opts), (e: unknown) => e instanceof InputError && e.argument === 'train');
  const infogan = buildGan('infogan', { imageShape: [28, 28, 1], numClasses: 10, seed: 4, latentDim: 16 });
  const codes = Int32Array.from({ length: 200 }, (_, i) => i % 10);
  const fakes = () => infogan.generator.predict([tf.randomNormal([200, 16], 0, 1, 'float32', 9), tf.cast(tf.oneHot(tf.tensor1d(codes, 'int32'), 10), 'float32')]) as tf.Tensor;
  const q0 = tf.tidy(() => headAccuracy(infogan.discriminator, fakes(), codes));
  // The codes take longer: the generator must first make them distinguishable.
  await trainGan(infogan, unlabelled, { ...opts, epochs: 8 });
  const q1 = tf.tidy(() => headAccuracy(infogan.discriminator, fakes(), codes));
  assert.ok(q1 >= 0.5 && q1 > q0 + 0.3, `infogan code head on its samples: ${q0} -> ${q1}`);
  realX.dispose();
  for (const m of [acgan, infogan]) {
    m.generator.dispose();
    m.discriminator.dispose();
  }
});

test("the generator step draws its classes from generatorClassPrior: with all mass on class 0 the other classes' input weights never move", async () => {
  const rows = (m: ReturnType<typeof buildGan>) => {
    // g_project's kernel: [latentDim + K, units]; the rows after the latent ones take the one-hot class.
    const kernel = m.generator.getLayer('g_project').getWeights()[0];
    const all = kernel.arraySync() as number[][];
    return { class0: all[16], others: all.slice(17) };
  };
  const opts = { epochs: 1, batchSize: 32, loss: 'ns', seed: 6 } as const;
  const prior = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  for (const [generatorClassPrior, othersMove] of [[prior, false], [undefined, true]] as const) {
    const m = buildGan('scgan', { imageShape: [28, 28, 1], numClasses: 10, seed: 6, latentDim: 16 });
    const r0 = rows(m);
    // The discriminator step sees every class (the real batch's); only the generator step updates G.
    await trainGan(m, train, { ...opts, ...(generatorClassPrior ? { generatorClassPrior } : {}) });
    const r1 = rows(m);
    assert.notDeepEqual(r1.class0, r0.class0, 'class 0 is drawn');
    assert.equal(JSON.stringify(r1.others) !== JSON.stringify(r0.others), othersMove, generatorClassPrior ? 'prior on class 0' : 'uniform');
    m.generator.dispose();
    m.discriminator.dispose();
  }
  const dcgan = buildGan('dcgan', { imageShape: [28, 28, 1], numClasses: 10, seed: 6, latentDim: 16 });
  const scgan = buildGan('scgan', { imageShape: [28, 28, 1], numClasses: 10, seed: 6, latentDim: 16 });
  await assert.rejects(trainGan(dcgan, train, { ...opts, generatorClassPrior: prior }), (e: unknown) => e instanceof InputError && e.argument === 'generatorClassPrior');
  await assert.rejects(trainGan(scgan, train, { ...opts, generatorClassPrior: [0.5, 0.5] }), (e: unknown) => e instanceof InputError && e.argument === 'generatorClassPrior' && /10 non-negative/.test(e.message));
  await assert.rejects(trainGan(scgan, train, { ...opts, generatorClassPrior: [0.5, 0.6, 0, 0, 0, 0, 0, 0, 0, 0] }), (e: unknown) => e instanceof InputError && e.argument === 'generatorClassPrior');
  for (const m of [dcgan, scgan]) {
    m.generator.dispose();
    m.discriminator.dispose();
  }
});

test("the generator's weight average: after one step it is d w0 + (1 - d) w1 with the ramped decay d = min(decay, 1/10) (Yazici et al. 2019); it resumes bit-identical and leaves no tensor behind", async () => {
  const small = balancedSubset(train, 10, 32, 'n', 'train');
  const build = () => buildGan('dcgan', { imageShape: [28, 28, 1], numClasses: 10, seed: 2, latentDim: 8 });
  const opts = { epochs: 1, batchSize: 32, loss: 'ns', seed: 2 } as const;
  const start = build();
  const w0 = weightsOf(start.generator);
  const plain = build();
  await trainGan(plain, small, opts);
  const w1 = weightsOf(plain.generator);
  const averaged = build();
  const before = tf.memory().numTensors;
  await trainGan(averaged, small, { ...opts, emaDecay: 0.75 });
  assert.equal(tf.memory().numTensors, before, 'tensors');
  const avg = weightsOf(averaged.generator);
  let worst = 0;
  // The first update's decay is (1 + 0) / (10 + 0) = 0.1 < 0.75.
  avg.forEach((w, i) => w.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - (0.1 * w0[i][j] + 0.9 * w1[i][j]))))));
  assert.ok(worst < 1e-5, `largest difference from the hand average: ${worst}`);
  assert.notDeepEqual(avg, w1);
  // The discriminator trained the same: the average does not feed back into training.
  assert.deepEqual(weightsOf(averaged.discriminator), weightsOf(plain.discriminator));

  // Stopped after epoch 1 of 2 and resumed: the same average as the uninterrupted run.
  const dir = mkdtempSync(join(tmpdir(), 'advlab-gan-ema-'));
  const two = { ...opts, epochs: 2, emaDecay: 0.9 };
  const full = build();
  await trainGan(full, small, two);
  const part = build();
  await trainGan(part, small, { ...two, checkpoints: new CheckpointFolder(dir), stopAfterEpochs: 1 });
  const resumed = build();
  await trainGan(resumed, small, { ...two, checkpoints: new CheckpointFolder(dir), resume: true });
  assert.deepEqual(weightsOf(resumed.generator), weightsOf(full.generator));
  await assert.rejects(trainGan(build(), small, { ...two, epochs: 3, emaDecay: undefined, checkpoints: new CheckpointFolder(dir), resume: true }), (e: unknown) => e instanceof InputError && e.argument === 'resume');
  await assert.rejects(trainGan(build(), small, { ...two, emaDecay: 1 }), (e: unknown) => e instanceof InputError && e.argument === 'emaDecay');
  for (const m of [start, plain, averaged, full, part, resumed]) {
    m.generator.dispose();
    m.discriminator.dispose();
  }
});
