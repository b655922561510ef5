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
