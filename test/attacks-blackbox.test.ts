// Black-box attacks (Square, SimBA, HopSkipJump) against a model whose gradient throws.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../src/node/backend.js';
import { tf } from '../src/engine/tf.js';
import type { ImageSet } from '../src/data/types.js';
import { Classifier } from '../src/models/classifier.js';
import { runAttack, type RunAttackOptions } from '../src/attacks/run.js';
import type { Attack, AttackResult } from '../src/attacks/types.js';
import { pgd } from '../src/attacks/pgd.js';
import { square, squareFraction } from '../src/attacks/square.js';
import { simba } from '../src/attacks/simba.js';
import { hopSkipJump } from '../src/attacks/hopskipjump.js';
import { InputError } from '../src/errors.js';
import { trainMnistMlp } from './fixtures/mnist-mlp.js';

const N = 20;
/** The driver scores each image twice on its own: clean prediction and re-verification. */
const DRIVER_QUERIES = 2;

let data: ImageSet;
let blackBox: Classifier;
/** Images that went through the wrapped model, counted independently of the Classifier. */
let scored = 0;

before(async () => {
  await initBackend({ backend: 'wasm' });
  const trained = await trainMnistMlp({ testImages: N, batchSize: 32, learningRate: 3e-3 });
  data = trained.test;
  const model = trained.model;
  // Forward pass as usual; any gradient through it throws.
  const forward = tf.customGrad((x) => ({
    value: model.apply(x as tf.Tensor, { training: false }) as tf.Tensor2D,
    gradFunc: () => {
      throw new Error('gradient requested from the black-box model');
    },
  }));
  blackBox = Classifier.fromFunction(
    (x) => {
      scored += x.shape[0];
      return forward(x) as tf.Tensor2D;
    },
    { inputShape: [28, 28, 1], numClasses: 10, gradients: false },
  );
});

/** A subset of the test images. */
function first(n: number): ImageSet {
  const size = 28 * 28;
  return { images: data.images.slice(0, n * size), labels: data.labels.slice(0, n), count: n, imageShape: data.imageShape };
}

/** Runs an attack and checks what every black-box run must satisfy: no leak, no gradient, every query counted. */
async function run(attack: Attack, input: ImageSet, options: RunAttackOptions): Promise<AttackResult> {
  const tensors = tf.memory().numTensors;
  const scoredBefore = scored;
  const r = await runAttack(attack, blackBox, input, options);
  assert.equal(tf.memory().numTensors, tensors, `${attack.name} leaked tensors`);
  assert.equal(r.gradients, 0);
  assert.equal(r.queries, scored - scoredBefore, 'queries counted by the Classifier = images the model scored');
  assert.deepEqual(r.rejected, { outOfBounds: 0, outsideBall: 0, nonFinite: 0 });
  return r;
}

/** Independent check (not the driver's): every image in [0, 1] and, for a budget, inside the ball. */
function assertInside(r: AttackResult, input: ImageSet, budget?: { norm: 'linf' | 'l2'; eps: number }): void {
  const d = 28 * 28;
  for (let i = 0; i < input.count; i++) {
    let sq = 0;
    let max = 0;
    for (let k = i * d; k < (i + 1) * d; k++) {
      const a = r.adversarial[k];
      assert.ok(a >= 0 && a <= 1, `image ${i} leaves the bounds: ${a}`);
      const diff = Math.abs(a - input.images[k]);
      sq += diff * diff;
      max = Math.max(max, diff);
    }
    if (budget) {
      const size = budget.norm === 'linf' ? max : Math.sqrt(sq);
      assert.ok(size <= budget.eps + 1e-5, `image ${i}: ${budget.norm} ${size} > eps ${budget.eps}`);
    }
  }
}

/** Attack queries per image (driver's own two excluded), from a run with one image per batch. */
async function perImage(attack: Attack, input: ImageSet, options: RunAttackOptions): Promise<number[]> {
  const counts: number[] = [];
  let last = blackBox.counts.queries;
  const r = await run(attack, input, {
    ...options,
    batchSize: 1,
    onProgress: () => {
      counts.push(blackBox.counts.queries - last - DRIVER_QUERIES);
      last = blackBox.counts.queries;
    },
  });
  assert.equal(counts.length, input.count);
  assert.equal(counts.reduce((a, b) => a + b, 0) + DRIVER_QUERIES * input.count, r.queries);
  return counts;
}

const attackQueriesPerImage = (r: AttackResult) => r.queries / r.count - DRIVER_QUERIES;

/** One line of figures for the TAP output. */
function describe(label: string, r: AttackResult): string {
  const s = r.summary;
  const f = (v: number | null, digits = 3) => (v === null ? '-' : v.toFixed(digits));
  return `${label}: success ${f(s.successRate, 2)} (clean acc ${f(s.cleanAccuracy, 2)}), attack queries/image ${f(attackQueriesPerImage(r), 1)}, median l2 ${f(s.medianL2)}, median linf ${f(s.medianLinf)}, ${f(r.seconds, 1)} s`;
}

test('the wrapped model gives no gradients: tf.grad through it and valueAndGradient both throw', () => {
  const x = tf.zeros([1, 28, 28, 1]) as tf.Tensor4D;
  assert.throws(() => tf.grad((input: tf.Tensor) => tf.sum(blackBox.logits(input as tf.Tensor4D)))(x), /gradient requested from the black-box model/);
  assert.throws(() => blackBox.valueAndGradient(x, (logits) => tf.sum(logits, 1) as tf.Tensor1D), InputError);
  x.dispose();
});

test('a gradient attack (PGD) on the black-box classifier is rejected with a clear error', async () => {
  await assert.rejects(runAttack(pgd, blackBox, data, { eps: 0.3 }), (e: unknown) => {
    assert.ok(e instanceof InputError);
    assert.match((e as Error).message, /pgd needs gradients, which this classifier does not give; use square, simba or hopskipjump/);
    return true;
  });
});

test('Square (linf, eps 0.3, 1,000 queries) fools the black-box model with few queries, inside the ball', async (t) => {
  const r = await run(square, data, { eps: 0.3, params: { queries: 1000 }, seed: 1 });
  t.diagnostic(describe('square linf 0.3', r));
  assert.ok(r.summary.cleanAccuracy >= 0.75, `clean accuracy ${r.summary.cleanAccuracy}`);
  assert.ok(r.summary.successRate >= 0.9, `success ${r.summary.successRate}`);
  // Early stopping: successful images stop being queried, far below the budget on average.
  assert.ok(attackQueriesPerImage(r) <= 1000);
  assert.ok(attackQueriesPerImage(r) < 300, `queries per image ${attackQueriesPerImage(r)}`);
  assertInside(r, data, { norm: 'linf', eps: 0.3 });
  assert.ok(r.summary.medianLinf! > 0.29, 'the linf attack uses its budget');
});

test('Square l2 and targeted runs stay inside the ball and succeed often', async (t) => {
  const l2 = await run(square, data, { norm: 'l2', eps: 2.5, params: { queries: 500, pInit: 0.1 }, seed: 1 });
  t.diagnostic(describe('square l2 2.5', l2));
  assert.ok(l2.summary.successRate >= 0.5, `l2 success ${l2.summary.successRate}`);
  assertInside(l2, data, { norm: 'l2', eps: 2.5 });
  const targeted = await run(square, data, { eps: 0.3, targeted: 'random', params: { queries: 600 }, seed: 1 });
  t.diagnostic(describe('square linf 0.3 targeted', targeted));
  assert.ok(targeted.summary.successRate >= 0.7, `targeted success ${targeted.summary.successRate}`);
  assertInside(targeted, data, { norm: 'linf', eps: 0.3 });
  for (let i = 0; i < N; i++) if (targeted.success[i]) assert.equal(targeted.adversarialPredictions[i], targeted.targets![i]);
});

test('SimBA (pixel basis): linf 0.3 succeeds; an l2 budget is kept by stopping when a step would exceed it', async (t) => {
  const r = await run(simba, data, { norm: 'linf', eps: 0.3, params: { maxQueries: 2000 }, seed: 1 });
  t.diagnostic(describe('simba linf 0.3', r));
  assert.ok(r.summary.successRate >= 0.9, `success ${r.summary.successRate}`);
  assert.ok(attackQueriesPerImage(r) <= 2000);
  assertInside(r, data, { norm: 'linf', eps: 0.3 });
  // Pixel steps of 0.2 (< eps): no coordinate moves further.
  assert.ok(r.summary.medianLinf! <= 0.2 + 1e-6);

  // L2 eps 1.5 with steps of 0.2 fits at most 56 accepted steps: images stop early, all inside the ball.
  const tight = await run(simba, data, { norm: 'l2', eps: 1.5, params: { maxQueries: 2000 }, seed: 1 });
  t.diagnostic(describe('simba l2 1.5', tight));
  assertInside(tight, data, { norm: 'l2', eps: 1.5 });
  assert.ok(attackQueriesPerImage(tight) < 500, `queries per image ${attackQueriesPerImage(tight)}`);
  assert.ok(tight.summary.successRate > 0 && tight.summary.successRate < r.summary.successRate);

  const targeted = await run(simba, first(10), { norm: 'l2', eps: 6, targeted: 'random', params: { maxQueries: 2000 }, seed: 1 });
  t.diagnostic(describe('simba l2 6 targeted (10 images)', targeted));
  assert.ok(targeted.summary.successRate >= 0.7, `targeted success ${targeted.summary.successRate}`);
  assertInside(targeted, first(10), { norm: 'l2', eps: 6 });
});

test('SimBA-DCT runs inside the ball (l2 and linf)', async (t) => {
  const input = first(10);
  const l2 = await run(simba, input, { norm: 'l2', eps: 4, params: { maxQueries: 1500, basis: 'dct' }, seed: 1 });
  t.diagnostic(describe('simba-dct l2 4 (10 images)', l2));
  assert.ok(l2.summary.successRate >= 0.6, `dct l2 success ${l2.summary.successRate}`);
  assertInside(l2, input, { norm: 'l2', eps: 4 });
  const linf = await run(simba, input, { norm: 'linf', eps: 0.2, params: { maxQueries: 300, basis: 'dct' }, seed: 1 });
  t.diagnostic(describe('simba-dct linf 0.2 (10 images)', linf));
  assertInside(linf, input, { norm: 'linf', eps: 0.2 });
});

test('HopSkipJump (decision-only, l2) finds small adversarial perturbations for every image within the budget', async (t) => {
  const r = await run(hopSkipJump, data, { params: { maxQueries: 1500 }, seed: 1 });
  t.diagnostic(describe('hopskipjump l2', r));
  assert.equal(r.eps, null);
  assert.equal(r.summary.successRate, 1, `success ${r.summary.successRate}`);
  assert.ok(attackQueriesPerImage(r) <= 1500);
  assertInside(r, data);
  // A blended-noise start is ~6-8 away; the boundary walk must get well below that.
  assert.ok(r.summary.medianL2! < 3, `median L2 ${r.summary.medianL2}`);

  // With an eps cap, images stop once within it, and those that never get there come back clean.
  const capped = await run(hopSkipJump, first(10), { eps: 2.5, params: { maxQueries: 1500 }, seed: 1 });
  t.diagnostic(describe('hopskipjump l2 capped at 2.5 (10 images)', capped));
  assertInside(capped, first(10), { norm: 'l2', eps: 2.5 });
  assert.ok(capped.summary.successRate >= 0.5, `capped success ${capped.summary.successRate}`);

  const linf = await run(hopSkipJump, first(6), { norm: 'linf', params: { maxQueries: 800 }, seed: 1 });
  t.diagnostic(describe('hopskipjump linf (6 images)', linf));
  assert.equal(linf.summary.successRate, 1);
  assert.ok(linf.summary.medianLinf! < 0.3, `median linf ${linf.summary.medianLinf}`);
});

test('per-image query budgets hold (one image per batch)', async (t) => {
  const input = first(4);
  // A small eps keeps Square from succeeding: each image spends exactly its budget.
  const sq = await perImage(square, input, { eps: 0.02, params: { queries: 40 } });
  assert.deepEqual(sq, [41, 41, 41, 41]); // the start, then 40 random-search queries
  const sb = await perImage(simba, input, { norm: 'linf', eps: 0.05, params: { maxQueries: 60 } });
  for (const q of sb) assert.ok(q <= 60 && q > 1, `simba ${q}`);
  const hsj = await perImage(hopSkipJump, input, { params: { maxQueries: 300 } });
  for (const q of hsj) assert.ok(q <= 300 && q > 100, `hopskipjump ${q}`);
  t.diagnostic(`queries per image: square ${sq.join(', ')}; simba ${sb.join(', ')}; hopskipjump ${hsj.join(', ')}`);
});

test('the same seed gives identical adversarial images; another seed gives others', async () => {
  const input = first(5);
  const cases: [Attack, RunAttackOptions][] = [
    [square, { eps: 0.1, params: { queries: 100 } }],
    [simba, { norm: 'l2', eps: 2, params: { maxQueries: 200 } }],
    [simba, { norm: 'l2', eps: 2, params: { maxQueries: 100, basis: 'dct' } }],
    [hopSkipJump, { params: { maxQueries: 400 } }],
  ];
  for (const [attack, options] of cases) {
    const a = await run(attack, input, { ...options, seed: 7 });
    const b = await run(attack, input, { ...options, seed: 7 });
    const c = await run(attack, input, { ...options, seed: 8 });
    assert.deepEqual(a.adversarial, b.adversarial, `${attack.name} is not reproducible`);
    assert.equal(a.queries, b.queries);
    assert.notDeepEqual(a.adversarial, c.adversarial, `${attack.name} ignores the seed`);
  }
});

test('Square schedule: p halves at the paper’s fractions of the budget', () => {
  assert.equal(squareFraction(0.8, 0, 10000, true), 0.8);
  assert.equal(squareFraction(0.8, 11, 10000, true), 0.4);
  assert.equal(squareFraction(0.8, 600, 10000, true), 0.05);
  assert.equal(squareFraction(0.8, 9999, 10000, true), 0.8 / 512);
  // Rescaled for other budgets: 6% of a 1,000-query run is the 600/10,000 step.
  assert.equal(squareFraction(0.8, 60, 1000, true), 0.05);
});
