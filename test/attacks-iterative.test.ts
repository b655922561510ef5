// Iterative gradient attacks: BIM, MI-FGSM and APGD against FGSM and PGD on a small MNIST MLP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../src/node/backend.js';
import { tf } from '../src/engine/tf.js';
import type { ImageSet } from '../src/data/types.js';
import { buildModel } from '../src/models/zoo.js';
import { Classifier } from '../src/models/classifier.js';
import { runAttack, type RunAttackOptions } from '../src/attacks/run.js';
import type { Attack, AttackResult } from '../src/attacks/types.js';
import { fgsm } from '../src/attacks/fgsm.js';
import { pgd } from '../src/attacks/pgd.js';
import { bim } from '../src/attacks/bim.js';
import { mifgsm } from '../src/attacks/mifgsm.js';
import { apgd } from '../src/attacks/apgd.js';
import { dlr, targetedDlr } from '../src/attacks/losses.js';
import { InputError } from '../src/errors.js';
import { trainMnistMlp } from './fixtures/mnist-mlp.js';

let model: ReturnType<typeof buildModel>;
let classifier: Classifier;
let data: ImageSet;
const N = 100;

before(async () => {
  await initBackend({ backend: 'wasm' });
  ({ model, test: data } = await trainMnistMlp({ testImages: N }));
  classifier = Classifier.fromModel(model);
});

after(() => {
  classifier?.dispose();
  model?.dispose();
});

/**
 * Runs an attack and checks what must hold for every result: no tensor left
 * behind, adversarial images inside the bounds, every success inside the eps-ball,
 * nothing rejected by the driver's re-verification.
 */
async function attack(a: Attack<any>, options: RunAttackOptions): Promise<AttackResult> {
  const tensors = tf.memory().numTensors;
  const r = await runAttack(a as Attack, classifier, data, options);
  assert.equal(tf.memory().numTensors, tensors, `${a.name} left tensors behind`);
  const eps = options.eps!;
  const norm = options.norm ?? 'linf';
  assert.deepEqual(r.rejected, { outOfBounds: 0, outsideBall: 0, nonFinite: 0 }, `${a.name}: candidates rejected`);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of r.adversarial) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  assert.ok(lo >= 0 && hi <= 1, `${a.name}: values in [${lo}, ${hi}], outside the bounds [0, 1]`);
  for (let i = 0; i < r.count; i++) {
    if (!r.success[i]) continue;
    if (norm === 'linf') assert.ok(r.norms.linf[i] <= eps + 1e-6, `${a.name}: linf ${r.norms.linf[i]} > ${eps}`);
    else assert.ok(r.norms.l2[i] <= eps * (1 + 1e-5) + 1e-6, `${a.name}: l2 ${r.norms.l2[i]} > ${eps}`);
    if (r.targets) assert.equal(r.adversarialPredictions[i], r.targets[i]);
    else assert.notEqual(r.adversarialPredictions[i], r.labels[i]);
  }
  return r;
}

test('linf eps 0.1: BIM and MI-FGSM beat FGSM; APGD-CE beats or matches PGD with the same 20 gradient steps, spending fewer', async (ctx) => {
  const eps = 0.1;
  const f = await attack(fgsm, { eps });
  const b = await attack(bim, { eps });
  const m = await attack(mifgsm, { eps });
  const p = await attack(pgd, { eps, params: { steps: 20, stepSize: (2.5 * eps) / 20 } });
  const a = await attack(apgd, { eps, params: { steps: 20 } });
  const robust = (r: AttackResult) => r.summary.robustAccuracy;
  const clean = f.summary.cleanAccuracy;
  assert.ok(clean > 0.8, `clean accuracy ${clean}`);
  // An eps where the comparison means something: PGD breaks some, not all.
  assert.ok(robust(p) > 0 && robust(p) < clean - 0.2, `pgd robust accuracy ${robust(p)}`);
  assert.ok(robust(b) <= robust(f), `bim ${robust(b)} > fgsm ${robust(f)}`);
  assert.ok(robust(m) <= robust(f), `mifgsm ${robust(m)} > fgsm ${robust(f)}`);
  assert.ok(robust(a) <= robust(p), `apgd ${robust(a)} > pgd ${robust(p)}`);
  // Costs: FGSM one gradient per image; the iterative ones at most their steps.
  assert.equal(f.gradients, N);
  assert.ok(b.gradients >= N && b.gradients <= 10 * N, `bim gradients ${b.gradients}`);
  assert.ok(m.gradients >= N && m.gradients <= 10 * N, `mifgsm gradients ${m.gradients}`);
  assert.ok(p.gradients <= 20 * N, `pgd gradients ${p.gradients}`);
  // APGD: steps per image at most, only on correctly classified images, and early stopping saves most of them.
  const correct = Math.round(clean * N);
  assert.ok(a.gradients >= correct && a.gradients <= 20 * correct, `apgd gradients ${a.gradients}`);
  assert.ok(a.gradients < p.gradients, `apgd gradients ${a.gradients} vs pgd ${p.gradients}`);
  // Images misclassified before the attack are returned untouched.
  const size = 28 * 28;
  for (let i = 0; i < N; i++) {
    if (a.cleanPredictions[i] === a.labels[i]) continue;
    assert.deepEqual(a.adversarial.subarray(i * size, (i + 1) * size), data.images.subarray(i * size, (i + 1) * size));
  }
  ctx.diagnostic(`linf eps ${eps}: clean ${clean} | robust: fgsm ${robust(f)}, bim ${robust(b)}, mifgsm ${robust(m)}, pgd-20 ${robust(p)}, apgd-ce-20 ${robust(a)} | gradients/image: bim ${b.summary.gradientsPerImage}, mifgsm ${m.summary.gradientsPerImage}, pgd ${p.summary.gradientsPerImage}, apgd ${a.summary.gradientsPerImage}`);
});

test('targeted APGD-DLR (APGD-T) reaches random targets; targeted CE, BIM and MI-FGSM reach them too', async (ctx) => {
  const eps = 0.3;
  const t = await attack(apgd, { eps, targeted: 'random', params: { steps: 20, loss: 'dlr' } });
  assert.ok(t.targeted && t.targets);
  assert.ok(t.summary.successRate >= 0.9, `apgd-t success rate ${t.summary.successRate}`);
  const tce = await attack(apgd, { eps, targeted: 'random', params: { steps: 20, loss: 'ce' } });
  assert.ok(tce.summary.successRate >= 0.9, `apgd targeted-ce success rate ${tce.summary.successRate}`);
  const b = await attack(bim, { eps, targeted: 'random' });
  const m = await attack(mifgsm, { eps, targeted: 'least-likely' });
  assert.ok(b.summary.successRate >= 0.5, `bim targeted success rate ${b.summary.successRate}`);
  assert.ok(m.summary.successRate >= 0.5, `mifgsm targeted success rate ${m.summary.successRate}`);
  ctx.diagnostic(`targeted eps ${eps}: success rate apgd-dlr ${t.summary.successRate.toFixed(3)}, apgd-ce ${tce.summary.successRate.toFixed(3)}, bim ${b.summary.successRate.toFixed(3)}, mifgsm (least-likely) ${m.summary.successRate.toFixed(3)}`);
});

test('l2 eps 1: APGD beats or matches PGD at 20 steps; BIM and MI-FGSM stay in the ball', async (ctx) => {
  const eps = 1;
  const p = await attack(pgd, { eps, norm: 'l2', params: { steps: 20, stepSize: (2.5 * eps) / 20 } });
  const a = await attack(apgd, { eps, norm: 'l2', params: { steps: 20 } });
  const b = await attack(bim, { eps, norm: 'l2' });
  const m = await attack(mifgsm, { eps, norm: 'l2' });
  assert.ok(p.summary.robustAccuracy > 0 && p.summary.robustAccuracy < p.summary.cleanAccuracy, `pgd l2 robust ${p.summary.robustAccuracy}`);
  assert.ok(a.summary.robustAccuracy <= p.summary.robustAccuracy, `apgd l2 ${a.summary.robustAccuracy} > pgd l2 ${p.summary.robustAccuracy}`);
  for (const r of [b, m]) assert.ok(r.summary.robustAccuracy < r.summary.cleanAccuracy, `${r.attack} broke nothing`);
  ctx.diagnostic(`l2 eps ${eps}: robust pgd-20 ${p.summary.robustAccuracy}, apgd-ce-20 ${a.summary.robustAccuracy}, bim ${b.summary.robustAccuracy}, mifgsm ${m.summary.robustAccuracy}`);
});

test('APGD restarts only add successes (run 1 is the same run) and cost at most restarts * steps gradients per image', async () => {
  const eps = 0.05;
  const one = await attack(apgd, { eps, params: { steps: 10, loss: 'dlr' } });
  const three = await attack(apgd, { eps, params: { steps: 10, loss: 'dlr', restarts: 3 } });
  for (let i = 0; i < N; i++) if (one.success[i]) assert.equal(three.success[i], 1, `image ${i} lost by restarts`);
  assert.ok(three.summary.robustAccuracy <= one.summary.robustAccuracy);
  assert.ok(three.gradients <= 3 * 10 * N && three.gradients >= one.gradients, `gradients ${one.gradients} -> ${three.gradients}`);
  // Same seed, same result.
  const again = await attack(apgd, { eps, params: { steps: 10, loss: 'dlr', restarts: 3 } });
  assert.deepEqual(again.adversarial, three.adversarial);
});

test('bad parameters are InputErrors naming the parameter', async () => {
  const cases: [Attack<any>, RunAttackOptions, string][] = [
    [apgd, { eps: 0.1, params: { steps: 0 } }, 'steps'],
    [apgd, { eps: 0.1, params: { loss: 'foo' } }, 'loss'],
    [apgd, { eps: 0.1, params: { rho: 1.5 } }, 'rho'],
    [apgd, { eps: 0.1, params: { restarts: 0 } }, 'restarts'],
    [apgd, { eps: 0.1, params: { steps: 2.5 } }, 'steps'],
    [apgd, { eps: 0.1, norm: 'l1' }, 'norm'],
    [apgd, { eps: 0.1, params: { stepSize: 0.1 } }, 'stepSize'],
    [bim, { eps: 0.1, params: { steps: 0 } }, 'steps'],
    [bim, { eps: 0.1, params: { stepSize: -0.01 } }, 'stepSize'],
    [mifgsm, { eps: 0.1, params: { decay: -1 } }, 'decay'],
    [mifgsm, { eps: 0.1, norm: 'l1' }, 'norm'],
    [bim, {}, 'eps'],
  ];
  for (const [a, options, argument] of cases) {
    const tensors = tf.memory().numTensors;
    await assert.rejects(
      runAttack(a as Attack, classifier, data, options),
      (e: unknown) => e instanceof InputError && e.argument === argument,
      `${a.name} ${JSON.stringify(options)} should name ${argument}`,
    );
    assert.equal(tf.memory().numTensors, tensors);
  }
});

test('the DLR losses of APGD equal those of losses.ts and can be differentiated in TF.js (TopK has no gradient)', () => {
  const tensors = tf.memory().numTensors;
  tf.tidy(() => {
    const logits = tf.tensor2d([
      [3, 1, 0.5, -2, 0],
      [0, 4, 1, 2, -1],
      [1, 2, 3, 4, 5],
    ]);
    const labels = tf.tensor1d([0, 3, 1], 'int32');
    const targets = tf.tensor1d([2, 0, 4], 'int32');
    const close = (a: tf.Tensor, expected: number[]) => {
      const x = a.dataSync();
      for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - expected[i]) < 1e-5, `${x} vs ${expected}`);
    };
    // By hand. Row 1: y=0, z=(3,1,.5,-2,0): -(3-1)/(3-.5). Row 2: y=3, z=(0,4,1,2,-1): -(2-4)/(4-1).
    // Row 3: y=1, z=(1,2,3,4,5): -(2-5)/(5-3).
    close(dlr(logits, labels), [-2 / 2.5, 2 / 3, 3 / 2]);
    // Targeted, t=(2,0,4): -(z_y - z_t) / (z1 - (z3 + z4) / 2).
    close(targetedDlr(logits, labels, targets), [-(3 - 0.5) / (3 - (0.5 + 0) / 2), -(2 - 0) / (4 - (1 + 0) / 2), -(2 - 5) / (5 - (3 + 2) / 2)]);
    for (const f of [(z: tf.Tensor2D) => dlr(z, labels), (z: tf.Tensor2D) => targetedDlr(z, labels, targets)]) {
      const g = tf.grad((z: tf.Tensor) => tf.sum(f(z as tf.Tensor2D)))(logits);
      const values = g.dataSync();
      assert.ok(values.every(Number.isFinite) && values.some((v) => v !== 0));
    }
  });
  assert.equal(tf.memory().numTensors, tensors);
});
