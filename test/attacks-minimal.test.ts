import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../src/node/backend.js';
import { tf } from '../src/engine/tf.js';
import { Classifier } from '../src/models/classifier.js';
import { take } from '../src/data/split.js';
import type { ImageSet } from '../src/data/types.js';
import { runAttack, type RunAttackOptions } from '../src/attacks/run.js';
import type { Attack, AttackResult } from '../src/attacks/types.js';
import type { AttackInput } from '../src/attacks/validate.js';
import { InputError } from '../src/errors.js';
import { deepfool } from '../src/attacks/deepfool.js';
import { cw } from '../src/attacks/cw.js';
import { pgd } from '../src/attacks/pgd.js';
import { fab, projectToHyperplane } from '../src/attacks/fab.js';
import { trainMnistMlp } from './fixtures/mnist-mlp.js';

/** Runs an attack and checks it leaves no tensor behind. */
async function run(attack: Attack, classifier: Classifier, input: AttackInput, options: RunAttackOptions = {}): Promise<AttackResult> {
  const before = tf.memory().numTensors;
  const result = await runAttack(attack, classifier, input, options);
  assert.equal(tf.memory().numTensors, before, `${attack.name} leaked ${tf.memory().numTensors - before} tensors`);
  return result;
}

// ---- An affine binary classifier with a known DeepFool answer ----

const D = 16;
const W = Float32Array.from({ length: D }, (_, i) => Math.sin(1.3 * i + 0.4) * (1 + (i % 3)));
const B = 0.3;
const l2w = Math.hypot(...W);
const l1w = W.reduce((a, b) => a + Math.abs(b), 0);
const f = (x: ArrayLike<number>) => Array.from(x).reduce((s, v, i) => s + v * W[i], B);

/** logits = [0, w.x + b] on [4, 4, 1] inputs with bounds wide enough that clipping never binds. */
function linearClassifier(): { classifier: Classifier; dispose: () => void } {
  const w = tf.keep(tf.tensor2d(W, [D, 1]));
  const classifier = Classifier.fromFunction(
    (x) =>
      tf.tidy(() => {
        const n = x.shape[0];
        const score = tf.add(tf.matMul(tf.reshape(x, [n, D]), w), B);
        return tf.concat([tf.zeros([n, 1]), score], 1) as tf.Tensor2D;
      }),
    { inputShape: [4, 4, 1], numClasses: 2, bounds: [-10, 10] },
  );
  return { classifier, dispose: () => w.dispose() };
}

/** Points at signed L2 distances from the boundary, labelled by the classifier itself. */
function linearData(): AttackInput & { scores: number[] } {
  const dists = [-2.5, -1.2, -0.6, -0.3, 0.4, 0.9, 1.7, 3.1];
  const images = new Float32Array(dists.length * D);
  const labels = new Int32Array(dists.length);
  const scores: number[] = [];
  dists.forEach((s, k) => {
    // A point with a component along the boundary, moved to signed distance s.
    const base = Array.from({ length: D }, (_, i) => 0.5 * Math.cos(2.1 * i + k));
    const shift = (s - f(base) / l2w) / l2w;
    const x = base.map((v, i) => v + shift * W[i]);
    images.set(x, k * D);
    const score = f(images.subarray(k * D, (k + 1) * D));
    scores.push(score);
    labels[k] = score > 0 ? 1 : 0;
  });
  return { images, labels, count: dists.length, imageShape: [4, 4, 1], scores };
}

let mnistTest: ImageSet;
let mlp: Classifier;

before(async () => {
  await initBackend({ backend: 'wasm' });
  const trained = await trainMnistMlp({ testImages: 30, learningRate: 2e-3 });
  mnistTest = trained.test;
  mlp = Classifier.fromModel(trained.model);
});

test('DeepFool L2 on an affine binary classifier: one step of |f|/||w||_2 along -sign(f) w', async () => {
  const { classifier, dispose } = linearClassifier();
  const data = linearData();
  const r = await run(deepfool, classifier, data, { norm: 'l2' });
  assert.deepEqual(Array.from(r.success), new Array(data.count).fill(1));
  for (let k = 0; k < data.count; k++) {
    const delta = Array.from({ length: D }, (_, i) => r.adversarial[k * D + i] - data.images[k * D + i]);
    const expected = Math.abs(data.scores[k]) / l2w;
    const ratio = Math.hypot(...delta) / expected;
    assert.ok(ratio >= 1 && ratio <= 1.02 + 1e-3, `example ${k}: L2 ${Math.hypot(...delta)} vs |f|/||w|| = ${expected} (ratio ${ratio})`);
    // Exactly (1 + overshoot) * (distance + 1e-4), Foolbox's stabilizing constant, up to float32 rounding.
    assert.ok(Math.abs(Math.hypot(...delta) - 1.02 * (expected + 1e-4)) < 1e-5 * (1 + expected), `example ${k}: L2 ${Math.hypot(...delta)}`);
    // Direction: -sign(f) w / ||w||.
    const cos = (-Math.sign(data.scores[k]) * delta.reduce((s, v, i) => s + v * W[i], 0)) / (Math.hypot(...delta) * l2w);
    assert.ok(cos > 0.99999, `example ${k}: cosine with -sign(f) w is ${cos}`);
  }
  // Exact linearization: one gradient step each (plus nothing: the first check after it stops).
  assert.equal(r.gradients, data.count);
  dispose();
});

test('DeepFool Linf on an affine binary classifier: |f|/||w||_1 along -sign(f) sign(w)', async () => {
  const { classifier, dispose } = linearClassifier();
  const data = linearData();
  const r = await run(deepfool, classifier, data, { norm: 'linf' });
  assert.deepEqual(Array.from(r.success), new Array(data.count).fill(1));
  for (let k = 0; k < data.count; k++) {
    const expected = Math.abs(data.scores[k]) / l1w;
    const ratio = r.norms.linf[k] / expected;
    // (1 + overshoot) * (distance + 1e-4): the constant matters at these small Linf distances.
    assert.ok(ratio >= 1 && ratio <= 1.02 * (1 + 1e-4 / expected) + 1e-5, `example ${k}: Linf ${r.norms.linf[k]} vs |f|/||w||_1 = ${expected} (ratio ${ratio})`);
    assert.ok(Math.abs(r.norms.linf[k] - 1.02 * (expected + 1e-4)) < 1e-5, `example ${k}: Linf ${r.norms.linf[k]}`);
    for (let i = 0; i < D; i++) {
      const di = r.adversarial[k * D + i] - data.images[k * D + i];
      assert.equal(Math.sign(di), -Math.sign(data.scores[k]) * Math.sign(W[i]), `example ${k}, pixel ${i}: wrong sign`);
      assert.ok(Math.abs(Math.abs(di) - r.norms.linf[k]) < 1e-5, `example ${k}, pixel ${i}: |delta| ${Math.abs(di)} != ${r.norms.linf[k]}`);
    }
  }
  dispose();
});

test('DeepFool with an eps cap returns nothing beyond eps', async () => {
  const { classifier, dispose } = linearClassifier();
  const data = linearData();
  // Every example needs at least 0.3 in L2; a cap of 0.5 lets only the two closest through.
  const r = await run(deepfool, classifier, data, { norm: 'l2', eps: 0.5 });
  for (let k = 0; k < data.count; k++) assert.ok(r.norms.l2[k] <= 0.5 + 1e-5, `example ${k}: L2 ${r.norms.l2[k]} > 0.5`);
  const expected = data.scores.map((s) => (Math.abs(s) / l2w) * 1.02 + 1e-4 <= 0.5 ? 1 : 0);
  assert.deepEqual(Array.from(r.success), expected);
  dispose();
});

test('FAB projection onto a hyperplane inside the box, by hand', () => {
  const out = new Float32Array(2);
  const close = (got: Float32Array, want: number[]) => want.forEach((v, k) => assert.ok(Math.abs(got[k] - v) < 1e-6, `[${Array.from(got)}] vs [${want}]`));
  // Free: L2 moves along w, Linf moves every coordinate equally.
  projectToHyperplane([0.5, 0.5], [2, 1], 0.5, 0, 1, 'l2', out);
  close(out, [0.2, 0.1]);
  projectToHyperplane([0.5, 0.5], [2, 1], 0.5, 0, 1, 'linf', out);
  close(out, [1 / 6, 1 / 6]);
  // Negative c moves the other way.
  projectToHyperplane([0.5, 0.5], [2, 1], -0.5, 0, 1, 'l2', out);
  close(out, [-0.2, -0.1]);
  // The box binds on coordinate 0 (0.9 + 0.1 = 1): the rest is made up by coordinate 1.
  projectToHyperplane([0.9, 0.5], [1, 1], 0.4, 0, 1, 'l2', out);
  close(out, [0.1, 0.3]);
  projectToHyperplane([0.9, 0.5], [1, 1], 0.4, 0, 1, 'linf', out);
  close(out, [0.1, 0.3]);
  // Out of reach: saturate at the box corner.
  projectToHyperplane([0.9, 0.5], [1, 1], 5, 0, 1, 'l2', out);
  close(out, [0.1, 0.5]);
});

for (const norm of ['l2', 'linf'] as const) {
  test(`FAB ${norm} (targeted) on an affine binary classifier converges to the nearest boundary point`, async () => {
    const { classifier, dispose } = linearClassifier();
    const data = linearData();
    const targets = Array.from(data.labels, (l) => 1 - l);
    const r = await run(fab, classifier, data, { norm, targeted: targets });
    assert.deepEqual(Array.from(r.success), new Array(data.count).fill(1));
    const ratios: number[] = [];
    for (let k = 0; k < data.count; k++) {
      const expected = Math.abs(data.scores[k]) / (norm === 'l2' ? l2w : l1w);
      const got = norm === 'l2' ? r.norms.l2[k] : r.norms.linf[k];
      ratios.push(got / expected);
      assert.ok(got / expected >= 1 - 1e-5 && got / expected <= 1.01, `example ${k}: ${norm} ${got} vs ${expected}`);
    }
    console.log(`fab ${norm} linear: distance / exact in [${Math.min(...ratios).toFixed(5)}, ${Math.max(...ratios).toFixed(5)}]`);
    dispose();
  });
}

test('bad parameters are rejected, naming the parameter', async () => {
  const { classifier, dispose } = linearClassifier();
  const data = linearData();
  const rejects = async (attack: Attack, options: RunAttackOptions, argument: string) => {
    const before = tf.memory().numTensors;
    await assert.rejects(runAttack(attack, classifier, data, options), (e: unknown) => e instanceof InputError && e.argument === argument && e.message.startsWith(`${argument}:`));
    assert.equal(tf.memory().numTensors, before, `a rejected ${attack.name} run (${argument}) leaked tensors`);
  };
  await rejects(deepfool, { params: { candidates: 1 } }, 'candidates');
  await rejects(deepfool, { params: { steps: 0 } }, 'steps');
  await rejects(deepfool, { params: { steps: 2.5 } }, 'steps');
  await rejects(deepfool, { params: { overshoot: -0.1 } }, 'overshoot');
  await rejects(deepfool, { params: { nonsense: 1 } }, 'nonsense');
  await rejects(deepfool, { norm: 'l1' }, 'norm');
  await rejects(deepfool, { targeted: 'random' }, 'targeted');
  await rejects(cw, { params: { binarySteps: 0 } }, 'binarySteps');
  await rejects(cw, { params: { steps: -1 } }, 'steps');
  await rejects(cw, { params: { learningRate: 0 } }, 'learningRate');
  await rejects(cw, { params: { initialConst: 0 } }, 'initialConst');
  await rejects(cw, { params: { confidence: -1 } }, 'confidence');
  await rejects(cw, { params: { abortEarly: 'yes' } }, 'abortEarly');
  await rejects(cw, { norm: 'linf' }, 'norm');
  const targeted = { targeted: Array.from(data.labels, (l) => 1 - l) };
  await rejects(fab, {}, 'targeted');
  await rejects(fab, { ...targeted, norm: 'l1' }, 'norm');
  await rejects(fab, { ...targeted, params: { eta: 0.5 } }, 'eta');
  await rejects(fab, { ...targeted, params: { alphaMax: 2 } }, 'alphaMax');
  await rejects(fab, { ...targeted, params: { beta: -0.5 } }, 'beta');
  await rejects(fab, { ...targeted, params: { restarts: 0.5 } }, 'restarts');
  dispose();
});

/**
 * C&W with 100 steps, but learningRate 0.1 instead of the default 0.01 and 5
 * binary steps instead of 9 (time). About 80% of MNIST pixels sit exactly at
 * the bounds, where tanh space puts them at w = +-7.25: at 0.01 per Adam step,
 * 100 steps cannot move them (success was 0.58 on these images); at 0.1 they can.
 */
const CW_TEST_PARAMS = { learningRate: 0.1, binarySteps: 5 };

test('C&W L2 finds smaller perturbations than PGD-L2 on an MNIST MLP, and DeepFool small ones too', async () => {
  const t0 = performance.now();
  const c = await run(cw, mlp, mnistTest, { params: CW_TEST_PARAMS });
  const t1 = performance.now();
  const p = await run(pgd, mlp, mnistTest, { norm: 'l2', eps: 2.0, params: { steps: 40, stepSize: 0.1 } });
  const t2 = performance.now();
  const dfL2 = await run(deepfool, mlp, mnistTest, { norm: 'l2' });
  const dfLinf = await run(deepfool, mlp, mnistTest, { norm: 'linf' });
  const t3 = performance.now();
  const line = (name: string, r: AttackResult, ms: number) =>
    `${name}: clean ${r.summary.cleanAccuracy.toFixed(2)}, success ${r.summary.successRate.toFixed(2)}, median L2 ${r.summary.medianL2?.toFixed(3)}, median Linf ${r.summary.medianLinf?.toFixed(3)}, gradients/image ${r.summary.gradientsPerImage.toFixed(1)}${ms ? `, ${(ms / 1000).toFixed(1)} s` : ''}`;
  console.log(line('cw', c, t1 - t0));
  console.log(line('pgd-l2 eps 2', p, t2 - t1));
  console.log(line('deepfool-l2', dfL2, 0));
  console.log(line('deepfool-linf', dfLinf, t3 - t2));
  assert.ok(c.summary.cleanAccuracy >= 0.8, `the MLP should be trained (clean accuracy ${c.summary.cleanAccuracy})`);
  assert.ok(c.summary.successRate >= 0.95, `C&W success rate ${c.summary.successRate}`);
  assert.ok(p.summary.successRate > 0.3, `PGD should succeed on some images (${p.summary.successRate})`);
  assert.ok(c.summary.medianL2! < p.summary.medianL2!, `C&W median L2 ${c.summary.medianL2} should be below PGD's ${p.summary.medianL2}`);
  // Per image, where both succeed, C&W is smaller on most.
  let both = 0;
  let smaller = 0;
  for (let i = 0; i < mnistTest.count; i++) {
    if (c.success[i] && p.success[i]) {
      both++;
      if (c.norms.l2[i] < p.norms.l2[i]) smaller++;
    }
  }
  assert.ok(smaller >= 0.8 * both, `C&W smaller on ${smaller} of ${both} images both broke`);
  // Where nothing succeeded, C&W returns the clean image.
  for (let i = 0; i < mnistTest.count; i++) if (!c.success[i] && c.cleanPredictions[i] === c.labels[i]) assert.equal(c.norms.l2[i], 0);
  assert.ok(dfL2.summary.successRate >= 0.9, `DeepFool L2 success rate ${dfL2.summary.successRate}`);
  assert.ok(dfLinf.summary.successRate >= 0.9, `DeepFool Linf success rate ${dfLinf.summary.successRate}`);
  // DeepFool is close to minimal: within a small factor of C&W, and below PGD's budget.
  assert.ok(dfL2.summary.medianL2! < 2 * c.summary.medianL2!, `DeepFool median L2 ${dfL2.summary.medianL2} vs C&W ${c.summary.medianL2}`);
  assert.ok(dfL2.summary.medianL2! < 2.0, `DeepFool median L2 ${dfL2.summary.medianL2}`);
  assert.ok(dfLinf.summary.medianLinf! < 0.3, `DeepFool median Linf ${dfLinf.summary.medianLinf}`);
  // Every returned image is inside the bounds [0, 1].
  for (const r of [c, dfL2, dfLinf]) assert.ok(r.adversarial.every((v) => v >= 0 && v <= 1));
});

test('targeted C&W reaches the targets', async () => {
  const subset = take(mnistTest, Int32Array.from({ length: 20 }, (_, i) => i));
  const r = await run(cw, mlp, subset, { targeted: 'random', seed: 3, params: { ...CW_TEST_PARAMS, initialConst: 1e-2 } });
  console.log(`cw targeted: success ${r.summary.successRate.toFixed(2)}, median L2 ${r.summary.medianL2?.toFixed(3)}, gradients/image ${r.summary.gradientsPerImage.toFixed(1)}`);
  assert.ok(r.summary.successRate >= 0.9, `targeted C&W success rate ${r.summary.successRate}`);
  for (let i = 0; i < subset.count; i++) {
    assert.notEqual(r.targets![i], r.labels[i]);
    if (r.success[i]) assert.equal(r.adversarialPredictions[i], r.targets![i]);
  }
});

test('targeted FAB (linf and l2) reaches the targets on the MNIST MLP with small perturbations', async () => {
  const subset = take(mnistTest, Int32Array.from({ length: 20 }, (_, i) => i));
  const t0 = performance.now();
  const l2 = await run(fab, mlp, subset, { norm: 'l2', targeted: 'random', seed: 3 });
  const linf = await run(fab, mlp, subset, { norm: 'linf', targeted: 'random', seed: 3 });
  console.log(`fab targeted l2: success ${l2.summary.successRate.toFixed(2)}, median L2 ${l2.summary.medianL2?.toFixed(3)}; linf: success ${linf.summary.successRate.toFixed(2)}, median Linf ${linf.summary.medianLinf?.toFixed(3)}; gradients/image ${l2.summary.gradientsPerImage.toFixed(1)}; ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  assert.ok(l2.summary.successRate >= 0.9, `FAB l2 success rate ${l2.summary.successRate}`);
  assert.ok(linf.summary.successRate >= 0.9, `FAB linf success rate ${linf.summary.successRate}`);
  for (const r of [l2, linf]) {
    for (let i = 0; i < subset.count; i++) if (r.success[i]) assert.equal(r.adversarialPredictions[i], r.targets![i]);
    assert.ok(r.adversarial.every((v) => v >= 0 && v <= 1));
  }
  // Same targets as the targeted C&W test (same seed): FAB's L2 is in the same range.
  const c = await run(cw, mlp, subset, { targeted: 'random', seed: 3, params: { ...CW_TEST_PARAMS, initialConst: 1e-2 } });
  assert.deepEqual(Array.from(c.targets!), Array.from(l2.targets!));
  console.log(`cw targeted (same targets): median L2 ${c.summary.medianL2?.toFixed(3)}`);
  assert.ok(l2.summary.medianL2! < 1.5 * c.summary.medianL2!, `FAB median L2 ${l2.summary.medianL2} vs C&W ${c.summary.medianL2}`);
  assert.ok(linf.summary.medianLinf! < 0.3, `FAB median Linf ${linf.summary.medianLinf}`);
});
