// advlab's standard-suite attacks against AutoAttack's reference code (fra31/auto-attack):
// the places where an earlier advlab was weaker or counted differently, each on a case with a known answer.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../src/node/backend.js';
import { tf } from '../src/engine/tf.js';
import { Classifier } from '../src/models/classifier.js';
import { runAttack, type RunAttackOptions } from '../src/attacks/run.js';
import type { Attack, AttackResult } from '../src/attacks/types.js';
import type { AttackInput } from '../src/attacks/validate.js';
import { apgd } from '../src/attacks/apgd.js';
import { fab } from '../src/attacks/fab.js';
import { pgd } from '../src/attacks/pgd.js';
import { square, squareFraction } from '../src/attacks/square.js';
import { apgdCheckpoints, ApgdStepState } from '../src/attacks/apgd-schedule.js';
import { buildSuite } from '../src/robustness/suites.js';
import { evaluateRobustness } from '../src/robustness/evaluate.js';
import { ROBUST } from '../src/robustness/schedule.js';
import { InputError } from '../src/errors.js';
import { Rng } from '../src/util/rng.js';

before(async () => {
  await initBackend({ backend: 'wasm' });
});

async function run(attack: Attack<any>, classifier: Classifier, input: AttackInput, options: RunAttackOptions): Promise<AttackResult> {
  const tensors = tf.memory().numTensors;
  const r = await runAttack(attack as Attack, classifier, input, options);
  assert.equal(tf.memory().numTensors, tensors, `${attack.name} left tensors behind`);
  return r;
}

/** `count` copies of a one-pixel image of value `v`, label 0. */
function onePixel(v: number, count: number): AttackInput {
  return { images: new Float32Array(count).fill(v), labels: new Int32Array(count), imageShape: [1, 1, 1], count };
}

/** A classifier of one-pixel images whose logits are `f(x)`, written with tf ops of the pixel value [n, 1]. */
function pixelClassifier(f: (x: tf.Tensor2D) => tf.Tensor2D, numClasses: number): Classifier {
  return Classifier.fromFunction((x) => tf.tidy(() => f(tf.reshape(x, [-1, 1]) as tf.Tensor2D)), { inputShape: [1, 1, 1], numClasses });
}

// ---- APGD's step-size schedule, against a transliteration of autopgd_base.py ----

/**
 * The reference's reviews on a sequence of losses: `losses[i]` is the loss of
 * the iterate after step i, `start` that of the starting point. Returns
 * [iterate count, halved] per review, computed exactly as attack_single_run
 * does (loss_steps with Python's negative indexing, reduced_last_check = 1).
 */
function referenceReviews(steps: number, rho: number, start: number, losses: number[]): [number, boolean][] {
  const lossSteps = new Array(steps).fill(0);
  const at = (j: number) => lossSteps[((j % steps) + steps) % steps];
  let lossBest = start;
  let lossBestLastCheck = lossBest;
  let reducedLastCheck = true;
  let k = Math.max(Math.trunc(0.22 * steps), 1);
  const sizeDecr = Math.max(Math.trunc(0.03 * steps), 1);
  const nIterMin = Math.max(Math.trunc(0.06 * steps), 1);
  let counter3 = 0;
  const out: [number, boolean][] = [];
  for (let i = 0; i < steps; i++) {
    lossSteps[i] = losses[i];
    if (losses[i] > lossBest) lossBest = losses[i];
    counter3++;
    if (counter3 === k) {
      let t = 0;
      for (let c = 0; c < k; c++) if (at(i - c) > at(i - c - 1)) t++;
      const oscillation = t <= k * rho;
      const noImprovement: boolean = !reducedLastCheck && lossBestLastCheck >= lossBest;
      const halved: boolean = oscillation || noImprovement;
      reducedLastCheck = halved;
      lossBestLastCheck = lossBest;
      out.push([i + 1, halved]);
      k = Math.max(k - sizeDecr, nIterMin);
      counter3 = 0;
    }
  }
  return out;
}

test('APGD checkpoints are the reference formula: 100 steps 22, 41, 57, 70, 80, 87, 93, 99; 50 steps 11, 21, 30, 38, 45', () => {
  assert.deepEqual(apgdCheckpoints(100), [22, 41, 57, 70, 80, 87, 93, 99]);
  assert.deepEqual(apgdCheckpoints(50), [11, 21, 30, 38, 45]);
  assert.deepEqual(apgdCheckpoints(20), [4, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  assert.deepEqual(apgdCheckpoints(1), []);
  for (const steps of [1, 2, 3, 7, 20, 50, 100, 1000]) {
    const reference = referenceReviews(steps, 0.75, 0, new Array(steps).fill(0)).map(([i]) => i).filter((i) => i < steps);
    assert.deepEqual(apgdCheckpoints(steps), reference, `steps ${steps}`);
  }
});

test('APGD halving decisions equal the reference on random loss sequences (ties, plateaus, the first review)', () => {
  const rng = new Rng(11);
  let reviews = 0;
  let halvings = 0;
  for (let trial = 0; trial < 400; trial++) {
    const steps = [100, 50, 20, 7][trial % 4];
    // Few distinct values: ties and plateaus, which decide <= against < and >= against >.
    const levels = 1 + rng.int(6);
    const drift = rng.next() < 0.5 ? 0 : 0.02;
    const losses = Array.from({ length: steps }, (_, i) => rng.int(levels) / levels - 0.5 + drift * i);
    const start = rng.int(levels) / levels - 0.5;
    const expected = referenceReviews(steps, 0.75, start, losses).filter(([i]) => i < steps);
    const state = new ApgdStepState(0.3, start);
    const checkpoints = apgdCheckpoints(steps);
    const got: [number, boolean][] = [];
    let last = 0;
    for (let i = 0; i < steps; i++) {
      state.observe(losses[i]);
      if (checkpoints.includes(i + 1)) {
        got.push([i + 1, state.review(i + 1 - last, 0.75)]);
        last = i + 1;
      }
    }
    assert.deepEqual(got, expected, `trial ${trial}: ${steps} steps, start ${start}, losses ${losses.join(' ')}`);
    reviews += got.length;
    halvings += got.filter(([, h]) => h).length;
  }
  // Both outcomes occur, so the comparison decides something.
  assert.ok(halvings > 0 && halvings < reviews, `${halvings} halvings in ${reviews} reviews`);
});

test('the step halves when exactly rho of the interval increased the loss (<=), and never for "no improvement" at the first review', () => {
  // 16 steps in the interval, 12 = 0.75 * 16 increases: the reference halves.
  const s = new ApgdStepState(0.5, 0);
  const losses = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 11, 11, 11, 11, 12];
  for (const l of losses) s.observe(l);
  assert.equal(s.review(16, 0.75), true);
  assert.equal(s.step, 0.5);
  // A loss that never improves on the start, but rises at every step: no halving at the first review.
  const flat = new ApgdStepState(0.5, 10);
  for (let i = 0; i < 22; i++) flat.observe(i % 2 ? 1 : 2 + i / 100);
  assert.equal(flat.review(22, 0.4), false, 'first review: reduced_last_check starts true');
  for (let i = 0; i < 19; i++) flat.observe(i % 2 ? 1 : 3 + i / 100);
  assert.equal(flat.review(19, 0.4), true, 'second review: no improvement since the first');
});

// ---- Targeted stages count any misclassified iterate ----

/**
 * Target 1 can never win (z1 = x - 2 < 0.5 = z0); class 2 wins only for x < 0.25
 * (z2 = 10 relu(0.3 - x)); class 3 never. From x = 0.5 at eps 0.3 APGD's start
 * is 0.2 or 0.8: at 0.2 it is in class 2, where the targeted cross-entropy is
 * low and its gradient points back up, and the highest-loss point, x = 0.8, is
 * class 0 again.
 */
const thirdClassBand = () =>
  pixelClassifier((x) => {
    const n = x.shape[0];
    return tf.concat([tf.fill([n, 1], 0.5), tf.sub(x, 2), tf.mul(10, tf.relu(tf.sub(0.3, x))), tf.fill([n, 1], -5)], 1) as tf.Tensor2D;
  }, 4);

test('APGD-T keeps an iterate that lands in a third class (the target is out of reach in the ball)', async () => {
  const classifier = thirdClassBand();
  const data = onePixel(0.5, 16);
  const options = { eps: 0.3, targeted: new Int32Array(16).fill(1), params: { steps: 20, loss: 'ce' } } as const;
  const any = await run(apgd, classifier, data, { ...options, criterion: 'misclassification' });
  const reach = await run(apgd, classifier, data, { ...options, criterion: 'target' });
  const broken = Array.from(any.success).filter(Boolean).length;
  // About half the seeds start below the clean point, in class 2.
  assert.ok(broken >= 3 && broken <= 13, `${broken} of 16 broken`);
  for (let i = 0; i < 16; i++) {
    if (any.success[i]) {
      assert.equal(any.adversarialPredictions[i], 2, 'broken into the third class');
      assert.ok(any.adversarial[i] < 0.25 && any.norms.linf[i] <= 0.3 + 1e-6);
    }
  }
  // Counting only target hits (what advlab did before) finds nothing: the returned best-loss point is class 0.
  assert.equal(Array.from(reach.success).filter(Boolean).length, 0);
  assert.ok(Array.from(reach.adversarialPredictions).every((p) => p === 0));
  classifier.dispose();
});

/** z = [0.5, 4x - 2.5, 4x - 2.4, -5]: the target 1 is always 0.1 below class 2, which beats class 0 from x = 0.725. */
const targetShadowed = () =>
  pixelClassifier((x) => {
    const n = x.shape[0];
    return tf.concat([tf.fill([n, 1], 0.5), tf.sub(tf.mul(4, x), 2.5), tf.sub(tf.mul(4, x), 2.4), tf.fill([n, 1], -5)], 1) as tf.Tensor2D;
  }, 4);

test('FAB-T linearizes target against the true class and keeps a misclassified iterate within eps', async () => {
  const classifier = targetShadowed();
  const data = onePixel(0.5, 4);
  const options = { eps: 0.3, targeted: new Int32Array(4).fill(1), params: { steps: 10 } } as const;
  const any = await run(fab, classifier, data, { ...options, criterion: 'misclassification' });
  // The boundary z1 = z0 is at x = 0.75: the first step lands at 0.5 + 1.05 * 0.25, in class 2, and later
  // steps close in on the boundary from there.
  for (let i = 0; i < 4; i++) {
    assert.equal(any.success[i], 1);
    assert.equal(any.adversarialPredictions[i], 2);
    assert.ok(any.norms.linf[i] >= 0.25 && any.norms.linf[i] <= 1.05 * 0.25 + 1e-6, `linf ${any.norms.linf[i]}`);
  }
  // Target hits only: the target never wins, nothing is broken.
  const reach = await run(fab, classifier, data, { ...options, criterion: 'target' });
  assert.equal(Array.from(reach.success).filter(Boolean).length, 0);
  classifier.dispose();
});

test('the standard suite counts APGD-T and FAB-T iterates in a third class as broken', async () => {
  const data = onePixel(0.5, 6);
  for (const [make, stage] of [
    [thirdClassBand, 'apgd-t'],
    [targetShadowed, 'fab-t'],
  ] as const) {
    const classifier = make();
    // Rank 2 of the clean logits is class 2 for both models; rank 3 is the unreachable class 1.
    const suite = buildSuite({ attacks: [stage], norm: 'linf', numClasses: 4 });
    const ev = await evaluateRobustness(classifier, data, { suite, eps: 0.3, batchSize: 6, keepImages: false });
    assert.ok(ev.brokenBy.some((b) => b !== ROBUST), `${stage} broke nothing`);
    classifier.dispose();
  }
});

// ---- Square: AutoAttack's schedule and query count ----

test("Square's p schedule without rescaling is the reference's p_selection at raw iterations (AutoAttack)", () => {
  const reference = (it: number) => {
    const p = 0.8;
    if (10 < it && it <= 50) return p / 2;
    if (50 < it && it <= 200) return p / 4;
    if (200 < it && it <= 500) return p / 8;
    if (500 < it && it <= 1000) return p / 16;
    if (1000 < it && it <= 2000) return p / 32;
    if (2000 < it && it <= 4000) return p / 64;
    if (4000 < it && it <= 6000) return p / 128;
    if (6000 < it && it <= 8000) return p / 256;
    if (8000 < it) return p / 512;
    return p;
  };
  for (let it = 0; it < 5000; it++) assert.equal(squareFraction(0.8, it, 5000, false), reference(it), `iteration ${it}`);
  // With rescaling (the class's default), iteration 2,500 of 5,000 is iteration 5,000 of 10,000: p / 128, not p / 64.
  assert.equal(squareFraction(0.8, 2500, 5000, true), 0.8 / 128);
  assert.equal(squareFraction(0.8, 2500, 5000, false), 0.8 / 64);
  assert.equal(squareFraction(0.8, 600, 10000, true), 0.05);
  assert.equal(squareFraction(0.8, 60, 1000, true), 0.05);
});

test('Square spends 1 + queries per unbroken image, and the suite runs it with the raw schedule', async () => {
  // Class 0 always wins by 100: nothing can be broken.
  const classifier = Classifier.fromFunction((x) => tf.tidy(() => tf.concat([tf.fill([x.shape[0], 1], 100), tf.zeros([x.shape[0], 1])], 1) as tf.Tensor2D), {
    inputShape: [4, 4, 1],
    numClasses: 2,
    gradients: false,
  });
  const data: AttackInput = { images: new Float32Array(3 * 16).fill(0.5), labels: new Int32Array(3), imageShape: [4, 4, 1], count: 3 };
  const r = await run(square, classifier, data, { eps: 0.1, params: { queries: 7 } });
  // The driver's clean pass and its re-verification add one query each per image.
  assert.equal(r.queries, 3 * (1 + 7) + 2 * 3);
  const stage = buildSuite({ suite: 'standard', norm: 'linf', numClasses: 10 }).stages.find((s) => s.name === 'square')!;
  assert.deepEqual(stage.params, { queries: 5000, rescaleSchedule: false });
  classifier.dispose();
});

// ---- Names that mean what the anchors mean ----

test('restarts is the total number of runs (n_restarts); 0 is refused with the reason', async () => {
  const classifier = thirdClassBand();
  const data = onePixel(0.5, 4);
  const never = { targeted: new Int32Array(4).fill(1), criterion: 'target' as const, eps: 0.3 };
  const one = await run(apgd, classifier, data, { ...never, params: { steps: 10, restarts: 1 } });
  const three = await run(apgd, classifier, data, { ...never, params: { steps: 10, restarts: 3 } });
  // Unbreakable toward the target: every run spends all its steps (the last iterate is only scored).
  assert.equal(one.gradients, 4 * 10);
  assert.equal(three.gradients, 3 * 4 * 10);
  for (const a of [apgd, fab, pgd] as Attack<any>[]) {
    await assert.rejects(
      runAttack(a as Attack, classifier, data, { eps: 0.3, targeted: new Int32Array(4).fill(1), params: { restarts: 0 } }),
      (e: unknown) => e instanceof InputError && e.argument === 'restarts' && /total runs|>= 1/.test(e.message),
    );
  }
  classifier.dispose();
});

test("PGD's default step is relative to eps (2.5 eps / steps): at eps 2/255 it stays below the budget", async () => {
  // Linear in x, misclassified once x moves by 0.3 eps: PGD without a random start stops at its first step.
  const eps = 2 / 255;
  const classifier = pixelClassifier((x) => tf.concat([tf.fill([x.shape[0], 1], 0), tf.mul(1000, tf.sub(x, 0.5 + 0.3 * eps))], 1) as tf.Tensor2D, 2);
  const data = onePixel(0.5, 2);
  const r = await run(pgd, classifier, data, { eps, params: { steps: 4, randomStart: false } });
  for (let i = 0; i < 2; i++) {
    assert.equal(r.success[i], 1);
    assert.ok(Math.abs(r.norms.linf[i] - (2.5 * eps) / 4) < 1e-6, `step ${r.norms.linf[i]}, expected ${(2.5 * eps) / 4}`);
  }
  classifier.dispose();
});
