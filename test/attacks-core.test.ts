import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { Classifier } from '../src/models/classifier.js';
import { runAttack } from '../src/attacks/run.js';
import { fgsm } from '../src/attacks/fgsm.js';
import { pgd } from '../src/attacks/pgd.js';
import type { Attack } from '../src/attacks/types.js';
import { projectL1 } from '../src/attacks/norms.js';
import { Rng } from '../src/util/rng.js';
import { buildModel } from '../src/models/zoo.js';
import type { ImageSet } from '../src/data/types.js';
import { trainMnistMlp } from './fixtures/mnist-mlp.js';
import { loadBuiltinDataset } from '../src/node/data/builtin.js';
import { take } from '../src/data/split.js';
import { balancedOrder, balancedSubset } from '../src/data/subset.js';
import { trainClassifier } from '../src/models/train.js';

const D = 16; // a 4x4x1 "image"

/** logits = [0, w.x + b]: a linear binary classifier with known gradients. */
function linearBinary(w: Float32Array, b: number, bounds: [number, number] = [0, 1]) {
  const wt = tf.keep(tf.tensor2d(w, [D, 1]));
  const fn = (x: tf.Tensor4D) =>
    tf.tidy(() => {
      const f = tf.add(tf.matMul(tf.reshape(x, [-1, D]), wt), b);
      return tf.concat([tf.zerosLike(f), f], 1) as tf.Tensor2D;
    });
  return { classifier: Classifier.fromFunction(fn, { inputShape: [4, 4, 1], numClasses: 2, bounds }), dispose: () => wt.dispose() };
}

let mnistModel: ReturnType<typeof buildModel>;
let mnistClassifier: Classifier;
let mnistTest: ImageSet;

before(async () => {
  await initBackend({ backend: 'wasm' });
  ({ model: mnistModel, test: mnistTest } = await trainMnistMlp({ testImages: 100 }));
  mnistClassifier = Classifier.fromModel(mnistModel);
});

test('FGSM on a linear binary model equals the closed form clip(x + eps * sign(d loss / dx))', async () => {
  const rng = new Rng(1);
  const w = Float32Array.from({ length: D }, () => rng.normal());
  w[5] = 1e-9; // a tiny gradient component must still move its pixel (exact sign on wasm)
  const { classifier, dispose } = linearBinary(w, 0.1);
  const n = 6;
  const images = Float32Array.from({ length: n * D }, () => rng.next());
  const labels = new Int32Array(n);
  const scores = Array.from({ length: n }, (_, i) => w.reduce((s, wi, k) => s + wi * images[i * D + k], 0.1));
  scores.forEach((f, i) => (labels[i] = f > 0 ? 1 : 0));
  const eps = 0.05;
  const r = await runAttack(fgsm, classifier, { images, labels, count: n, imageShape: [4, 4, 1] }, { eps });
  for (let i = 0; i < n; i++) {
    // d CE / dx = (p1 - y) * w for logits [0, f]: the sign is -sign(w) for label 1, +sign(w) for label 0.
    const s = labels[i] === 1 ? -1 : 1;
    for (let k = 0; k < D; k++) {
      const expected = Math.min(1, Math.max(0, images[i * D + k] + eps * s * Math.sign(w[k])));
      assert.ok(Math.abs(r.adversarial[i * D + k] - expected) < 1e-6, `image ${i} pixel ${k}: ${r.adversarial[i * D + k]} vs ${expected}`);
    }
  }
  assert.equal(r.gradients, n);
  dispose();
});

test('PGD is at least as strong as FGSM at the same eps on a trained model; targeted PGD reaches its targets', async () => {
  const eps = 0.1;
  const f = await runAttack(fgsm, mnistClassifier, mnistTest, { eps });
  const p = await runAttack(pgd, mnistClassifier, mnistTest, { eps, params: { steps: 20, stepSize: 0.01 } });
  assert.ok(f.summary.cleanAccuracy > 0.8, `clean ${f.summary.cleanAccuracy}`);
  assert.ok(p.summary.robustAccuracy <= f.summary.robustAccuracy, `PGD ${p.summary.robustAccuracy} vs FGSM ${f.summary.robustAccuracy}`);
  assert.ok(p.summary.robustAccuracy < f.summary.cleanAccuracy);
  for (let i = 0; i < p.count; i++) assert.ok(p.norms.linf[i] <= eps + 1e-6);
  const t = await runAttack(pgd, mnistClassifier, mnistTest, { eps: 0.3, targeted: 'random', seed: 4, params: { steps: 40 } });
  let hits = 0;
  let eligible = 0;
  for (let i = 0; i < t.count; i++) {
    if (t.cleanPredictions[i] !== t.labels[i]) continue;
    eligible++;
    if (t.adversarialPredictions[i] === t.targets![i]) hits++;
    assert.notEqual(t.targets![i], t.labels[i]);
  }
  assert.ok(hits / eligible > 0.9, `targeted success ${hits}/${eligible}`);
});

test('PGD in L2 and L1 stays inside its ball and breaks examples', async () => {
  const l2 = await runAttack(pgd, mnistClassifier, mnistTest, { norm: 'l2', eps: 2, params: { steps: 20, stepSize: 0.2 } });
  const l1 = await runAttack(pgd, mnistClassifier, mnistTest, { norm: 'l1', eps: 15, params: { steps: 20, stepSize: 2 } });
  for (let i = 0; i < mnistTest.count; i++) {
    assert.ok(l2.norms.l2[i] <= 2 * (1 + 1e-5) + 1e-6);
    assert.ok(l1.norms.l1[i] <= 15 * (1 + 1e-5) + 1e-6);
  }
  assert.ok(l2.summary.successRate > 0.3, `l2 ${l2.summary.successRate}`);
  assert.ok(l1.summary.successRate > 0.1, `l1 ${l1.summary.successRate}`);
});

test('projection onto the L1 ball matches a hand computation', () => {
  const v = tf.tensor4d([3, -1, 0.5, 0, 0.2, 0.1, -0.1, 0], [2, 2, 2, 1]);
  const p = projectL1(v, 2);
  // Example 1: |v| = (3, 1, 0.5, 0), theta = 1 gives (2, 0, 0, 0), L1 = 2. Example 2 is inside (0.4 <= 2).
  assert.deepEqual(Array.from(p.dataSync()).map((x) => Math.round(x * 1e6) / 1e6), [2, -0, 0, 0, 0.2, 0.1, -0.1, 0]);
  tf.dispose([v, p]);
});

test('a candidate outside the ball or the bounds is not a success, even when it fools the model', async () => {
  const w = new Float32Array(D).fill(1);
  const { classifier, dispose } = linearBinary(w, -8); // label 1 iff sum(x) > 8
  const images = new Float32Array(D).fill(0.6); // sum 9.6: class 1
  const labels = Int32Array.from([1]);
  const cheat = (delta: number, value?: number): Attack => ({
    name: 'cheat', title: 'test', paper: '-', kind: 'fixed-budget', access: 'gradient', norms: ['linf'], targeted: 'both', params: [],
    attackBatch: (ctx) => (value === undefined ? tf.sub(ctx.x, delta) : tf.fill(ctx.x.shape, value)) as tf.Tensor4D,
  });
  const input = { images, labels, count: 1, imageShape: [4, 4, 1] as const };
  const far = await runAttack(cheat(0.2), classifier, input, { eps: 0.1 }); // fools (sum 6.4) but |delta| = 0.2 > eps
  assert.equal(far.success[0], 0);
  assert.equal(far.rejected.outsideBall, 1);
  assert.deepEqual(Array.from(far.adversarial), Array.from(images), 'a rejected candidate is replaced by the clean image');
  const outside = await runAttack(cheat(0, -0.05), classifier, input, { eps: 1 }); // fools but below the bounds
  assert.equal(outside.success[0], 0);
  assert.equal(outside.rejected.outOfBounds, 1);
  const nan = await runAttack(cheat(0, NaN), classifier, input, { eps: 1 });
  assert.equal(nan.success[0], 0);
  assert.equal(nan.rejected.nonFinite, 0, 'NaN does not fool the model, so nothing is rejected');
  const honest = await runAttack(cheat(0.1), classifier, input, { eps: 0.1 }); // sum 8.0: not > 8 → class 0
  assert.equal(honest.success[0], 1);
  assert.equal(honest.summary.robustAccuracy, 0);
  dispose();
});

test('bad input is rejected early, naming the argument', async () => {
  const ok = { images: mnistTest.images.slice(0, 784 * 2), labels: mnistTest.labels.slice(0, 2), count: 2, imageShape: [28, 28, 1] as const };
  const cases: [Parameters<typeof runAttack>[2], Parameters<typeof runAttack>[3], RegExp][] = [
    [ok, { eps: -0.1 }, /eps: must be >= 0, got -0.1/],
    [ok, { eps: 1.5 }, /eps: 1.5 exceeds the largest linf distance .* in bounds \[0, 1\] \(1\)/],
    [ok, { eps: NaN }, /eps: expected a number/],
    [ok, {}, /eps: this attack needs a budget eps/],
    [ok, { eps: 0.1, norm: 'l3' as never }, /norm: pgd supports linf, l2, l1, not l3/],
    [{ ...ok, imageShape: [28, 28, 3] }, { eps: 0.1 }, /images: expected images of shape \[28, 28, 1\]/],
    [{ ...ok, labels: Int32Array.from([1, 10]) }, { eps: 0.1 }, /labels: label 10 at index 1 is outside \[0, 9\]/],
    [{ ...ok, labels: Int32Array.from([1]) }, { eps: 0.1 }, /labels: expected 2 labels/],
    [{ ...ok, images: Float32Array.from(ok.images, (v, i) => (i === 5 ? NaN : v)) }, { eps: 0.1 }, /images: non-finite value NaN in image 0/],
    [{ ...ok, images: Float32Array.from(ok.images, (v) => v * 255) }, { eps: 0.1 }, /images: value [\d.]+ in image 0 is outside the classifier's bounds \[0, 1\]/],
    [ok, { eps: 0.1, params: { steps: 0 } }, /steps: must be >= 1, got 0/],
    [ok, { eps: 0.1, params: { momentum: 0.9 } }, /momentum: not a parameter of pgd/],
    [ok, { eps: 0.1, targeted: Int32Array.from([ok.labels[0], 3]) }, /targeted: target \d for image 0 is its true label/],
    [ok, { eps: 0.1, batchSize: 0 }, /batchSize: expected a positive integer/],
  ];
  const before = tf.memory().numTensors;
  for (const [input, options, message] of cases) await assert.rejects(runAttack(pgd, mnistClassifier, input, options), message);
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => Classifier.fromModel(mnistModel, { bounds: [1, 0] }), /bounds: expected \[min, max\] with finite min < max/);
  assert.throws(() => Classifier.fromModel(mnistModel, { preprocess: { mean: [0.1, 0.2], std: 0.3 } }), /preprocess.mean: expected 1 or 1 values/);
});

test('preprocessing lives inside the classifier: eps stays in input scale', async () => {
  // A model that expects normalized inputs (x - 0.5) / 0.25, wrapped with that preprocessing,
  // sees exactly what the plain model sees on raw inputs scaled accordingly.
  const mean = 0.5;
  const std = 0.25;
  const normalized = Classifier.fromFunction((x) => mnistClassifier.logits(tf.add(tf.mul(x, std), mean) as tf.Tensor4D), { inputShape: [28, 28, 1], numClasses: 10, preprocess: { mean, std } });
  const a = await runAttack(fgsm, normalized, mnistTest, { eps: 0.1 });
  const b = await runAttack(fgsm, mnistClassifier, mnistTest, { eps: 0.1 });
  assert.deepEqual(Array.from(a.cleanPredictions), Array.from(b.cleanPredictions));
  let maxDiff = 0;
  for (let i = 0; i < a.adversarial.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.adversarial[i] - b.adversarial[i]));
  assert.ok(maxDiff < 1e-5, `max difference ${maxDiff}`);
  normalized.dispose();
});

test('runAttack leaves numTensors unchanged and counts gradients', async () => {
  const before = tf.memory().numTensors;
  const r = await runAttack(pgd, mnistClassifier, mnistTest, { eps: 0.05, params: { steps: 5 }, batchSize: 32 });
  assert.equal(tf.memory().numTensors, before);
  assert.ok(r.gradients <= 5 * mnistTest.count && r.gradients >= mnistTest.count);
  assert.ok(r.queries > 0);
});

test('onCount reports the running totals from inside the attack, ending at what runAttack reports', async () => {
  const seen: { queries: number; gradients: number }[] = [];
  const classifier = Classifier.fromModel(mnistModel, { onCount: (c) => seen.push(c) });
  const r = await runAttack(pgd, classifier, take(mnistTest, Int32Array.from({ length: 8 }, (_, i) => i), 784), { eps: 0.05, params: { steps: 5 } });
  assert.ok(seen.length >= 5, `${seen.length} calls`);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i].queries >= seen[i - 1].queries && seen[i].gradients >= seen[i - 1].gradients);
  assert.equal(seen.at(-1)!.gradients, r.gradients);
  assert.equal(seen.at(-1)!.queries, r.queries);
  classifier.dispose();
});

test('valueAndGradient returns live per-example losses and the matching gradient', () => {
  const before = tf.memory().numTensors;
  const x = tf.tensor4d(mnistTest.images.slice(0, 3 * 784), [3, 28, 28, 1]);
  const labels = tf.tensor1d(mnistTest.labels.slice(0, 3), 'int32');
  const { value, grad, logits } = mnistClassifier.valueAndGradient(x, (logits) => tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 10), logits, undefined, undefined, tf.Reduction.NONE) as tf.Tensor1D);
  assert.equal(value.shape[0], 3);
  const v = value.dataSync();
  assert.ok(v.every((l) => Number.isFinite(l) && l >= 0));
  // The gradient of the first example alone equals its row of the batched gradient.
  const first = tf.slice(x, [0, 0, 0, 0], [1, 28, 28, 1]);
  const single = mnistClassifier.valueAndGradient(first, (logits) => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.slice(labels, [0], [1]), 10), logits, undefined, undefined, tf.Reduction.NONE) as tf.Tensor1D);
  assert.ok(Math.abs(single.value.dataSync()[0] - v[0]) < 1e-5);
  const g0 = grad.dataSync().slice(0, 784);
  const gs = single.grad.dataSync();
  for (let i = 0; i < 784; i++) assert.ok(Math.abs(g0[i] - gs[i]) < 1e-6);
  // The logits returned are those of the same forward pass.
  const direct = tf.tidy(() => mnistClassifier.logits(x));
  const [la, lb] = [logits.dataSync(), direct.dataSync()];
  for (let i = 0; i < la.length; i++) assert.ok(Math.abs(la[i] - lb[i]) < 1e-5, `logit ${i}: ${la[i]} vs ${lb[i]}`);
  tf.dispose([x, labels, first, value, grad, logits, direct, single.value, single.grad, single.logits]);
  assert.equal(tf.memory().numTensors, before);
});

test('on a trained CNN (lenet), PGD is at least as strong as FGSM at the same eps', async () => {
  const d = loadBuiltinDataset('mnist');
  const cnn = buildModel('lenet', { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
  await trainClassifier(cnn, take(d.train, balancedOrder(d.train.labels, 10).subarray(0, 1000)), { epochs: 2, batchSize: 50, learningRate: 2e-3, seed: 0 });
  const classifier = Classifier.fromModel(cnn);
  const images = balancedSubset(d.test, 10, 50);
  const before = tf.memory().numTensors;
  for (const eps of [0.05, 0.1]) {
    const f = await runAttack(fgsm, classifier, images, { eps });
    const p = await runAttack(pgd, classifier, images, { eps, params: { steps: 20, stepSize: eps / 8 } });
    assert.ok(f.summary.cleanAccuracy > 0.7, `clean ${f.summary.cleanAccuracy}`);
    assert.ok(p.summary.robustAccuracy <= f.summary.robustAccuracy, `eps ${eps}: PGD ${p.summary.robustAccuracy} vs FGSM ${f.summary.robustAccuracy}`);
  }
  assert.equal(tf.memory().numTensors, before);
  classifier.dispose();
  cnn.dispose();
});
