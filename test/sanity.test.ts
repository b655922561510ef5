// Sanity checks against false robustness (Athalye et al. 2018; Carlini et al. 2019):
// an honest MNIST MLP passes them; a gradient-masked and a randomized copy of it are caught.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../src/node/backend.js';
import { tf } from '../src/engine/tf.js';
import type { ImageSet } from '../src/data/types.js';
import { buildModel } from '../src/models/zoo.js';
import { Classifier } from '../src/models/classifier.js';
import { runAttack } from '../src/attacks/run.js';
import { apgd } from '../src/attacks/apgd.js';
import {
  runSanityChecks,
  overallVerdict,
  checkMonotoneInEps,
  checkBlackBoxVsWhiteBox,
  checkRandomized,
  checkUnboundedAttack,
  SANITY_CHECK_IDS,
  type SanityInput,
} from '../src/robustness/sanity.js';
import type { SanityCheck } from '../src/robustness/types.js';
import { deriveSeed } from '../src/util/rng.js';
import { InputError } from '../src/errors.js';
import { trainMnistMlp } from './fixtures/mnist-mlp.js';

let model: ReturnType<typeof buildModel>;
let classifier: Classifier;
let data: ImageSet;
const N = 60;
const spec = { inputShape: [28, 28, 1] as const, numClasses: 10, bounds: [0, 1] as const };
const reference = { attack: 'apgd', params: { steps: 20 } };

before(async () => {
  await initBackend({ backend: 'wasm' });
  ({ model, test: data } = await trainMnistMlp({ testImages: N }));
  classifier = Classifier.fromModel(model);
});

after(() => {
  classifier?.dispose();
  model?.dispose();
});

/** The MLP behind tf.round(x * 4) / 4: Round's gradient is zero, the classic shattered-gradient defence. */
function maskedClassifier(): Classifier {
  return Classifier.fromFunction((x) => model.apply(tf.div(tf.round(tf.mul(x, 4)), 4), { training: false }) as tf.Tensor2D, spec);
}

/** The MLP on its input plus fresh Gaussian noise at every call (seeded per call): a randomized defence. */
function randomizedClassifier(): Classifier {
  let calls = 0;
  return Classifier.fromFunction((x) => model.apply(tf.add(x, tf.randomNormal(x.shape, 0, 0.05, 'float32', deriveSeed(7, `noise:${calls++}`))), { training: false }) as tf.Tensor2D, spec);
}

/** Indices of the images a 20-step APGD-CE (the suite's white-box stage) leaves robust at eps. */
async function whiteBoxSurvivors(c: Classifier, eps: number): Promise<Int32Array> {
  const r = await runAttack(apgd, c, data, { eps, params: { steps: 20 }, seed: 1 });
  const out: number[] = [];
  for (let i = 0; i < r.count; i++) if (r.cleanPredictions[i] === r.labels[i] && !r.success[i]) out.push(i);
  return Int32Array.from(out);
}

function input(c: Classifier, extra: Partial<SanityInput> = {}): SanityInput {
  return { classifier: c, sample: data, norm: 'linf', eps: 0.3, seed: 0, reference, ...extra };
}

/** Runs every check, asserting that no tensor is left behind and each check is announced in order. */
async function sanity(i: SanityInput): Promise<Map<string, SanityCheck>> {
  const tensors = tf.memory().numTensors;
  const announced: string[] = [];
  const checks = await runSanityChecks({ ...i, onProgress: (e) => announced.push(e.check) });
  assert.equal(tf.memory().numTensors, tensors, 'sanity checks left tensors behind');
  assert.deepEqual(checks.map((c) => c.id), SANITY_CHECK_IDS);
  assert.deepEqual(announced, SANITY_CHECK_IDS);
  for (const c of checks) assert.ok(c.title && c.message, `${c.id}: no title or message`);
  return new Map(checks.map((c) => [c.id, c]));
}

function summary(checks: Map<string, SanityCheck>): string {
  return [...checks.values()].map((c) => `${c.id} ${c.verdict} ${JSON.stringify(c.figures)}`).join(' | ');
}

test('the honest MLP at linf eps 0.3: no check warns; the unbounded attack breaks everything and every gradient is finite and non-zero', async (ctx) => {
  const survivors = await whiteBoxSurvivors(classifier, 0.3);
  const checks = await sanity(input(classifier, { whiteBoxSurvivors: survivors, sweep: { eps: [0.1, 0.2, 0.3], robustAccuracy: [0.3, 0.05, 0], count: N } }));
  for (const c of checks.values()) assert.notEqual(c.verdict, 'warn', `${c.id}: ${c.message}`);
  assert.equal(overallVerdict([...checks.values()]), 'pass');
  assert.equal(checks.get('monotone-in-eps')!.verdict, 'pass');
  const unbounded = checks.get('unbounded-attack')!;
  assert.equal(unbounded.verdict, 'pass');
  assert.equal(unbounded.figures.eps, 1);
  assert.ok((unbounded.figures.attacked as number) >= 0.8 * N, `attacked ${unbounded.figures.attacked}`);
  assert.equal(checks.get('more-steps')!.verdict, 'pass');
  assert.equal(checks.get('more-steps')!.figures.paramsLonger, JSON.stringify({ steps: 80, restarts: 3, loss: 'ce', rho: 0.75 }));
  const g = checks.get('gradients')!;
  assert.equal(g.verdict, 'pass');
  assert.equal(g.figures.marginZeroFraction, 0);
  assert.equal(g.figures.nonFinite, false);
  assert.equal(checks.get('randomized')!.verdict, 'pass');
  ctx.diagnostic(summary(checks));
});

test('the Square probe finds nothing the white-box attack missed on the honest MLP at eps 0.08 (survivors exist)', async (ctx) => {
  const survivors = await whiteBoxSurvivors(classifier, 0.08);
  assert.ok(survivors.length >= 5, `only ${survivors.length} survivors: the probe would test nothing`);
  const tensors = tf.memory().numTensors;
  const c = await checkBlackBoxVsWhiteBox(input(classifier, { eps: 0.08, whiteBoxSurvivors: survivors }));
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(c.verdict, 'pass', c.message);
  assert.equal(c.figures.probed, survivors.length);
  ctx.diagnostic(`${survivors.length} survivors: ${JSON.stringify(c.figures)}`);
});

test('a gradient-masked MLP (round(4x)/4): gradients, unbounded-attack and black-box-vs-white-box warn', async (ctx) => {
  const masked = maskedClassifier();
  const survivors = await whiteBoxSurvivors(masked, 0.3);
  const checks = await sanity(input(masked, { whiteBoxSurvivors: survivors }));
  const g = checks.get('gradients')!;
  assert.equal(g.verdict, 'warn', g.message);
  assert.equal(g.figures.marginZeroFraction, 1);
  const unbounded = checks.get('unbounded-attack')!;
  assert.equal(unbounded.verdict, 'warn', unbounded.message);
  const bb = checks.get('black-box-vs-white-box')!;
  assert.equal(bb.verdict, 'warn', bb.message);
  assert.equal(bb.figures.source, 'square');
  // The masked model is still deterministic.
  assert.equal(checks.get('randomized')!.verdict, 'pass');
  assert.equal(overallVerdict([...checks.values()]), 'warn');
  ctx.diagnostic(`${survivors.length} white-box survivors | ${summary(checks)}`);
});

test('a randomized MLP (fresh input noise at every call): randomized warns; the deterministic one passes', async () => {
  const tensors = tf.memory().numTensors;
  const noisy = await checkRandomized(input(randomizedClassifier()));
  assert.equal(noisy.verdict, 'warn', noisy.message);
  assert.equal(noisy.figures.differingExamples, N);
  assert.equal((await checkRandomized(input(classifier))).verdict, 'pass');
  assert.equal(tf.memory().numTensors, tensors);
});

test('monotone-in-eps: a fall passes, a rise of 10 examples warns, a rise of one example (or 0.5% of a large sample) passes', () => {
  const eps = [0.1, 0.2, 0.3];
  const verdict = (robustAccuracy: number[], count: number, e = eps) => checkMonotoneInEps({ eps: e, robustAccuracy, count }).verdict;
  assert.equal(verdict([0.9, 0.5, 0.1], 100), 'pass');
  assert.equal(verdict([0.5, 0.6, 0.1], 100), 'warn');
  assert.equal(verdict([0.5, 0.51, 0.2], 100), 'pass');
  assert.equal(verdict([0.5, 0.52, 0.2], 100), 'warn');
  // A rise over two small steps still counts: against the lowest value at any smaller eps.
  assert.equal(verdict([0.5, 0.49, 0.51], 100), 'warn');
  // With 1,000 examples the slack is 0.5% = 5 examples.
  assert.equal(verdict([0.5, 0.505, 0.2], 1000), 'pass');
  assert.equal(verdict([0.5, 0.506, 0.2], 1000), 'warn');
  // Given out of order, the eps are sorted first: this is a fall.
  assert.equal(verdict([0.1, 0.9, 0.5], 100, [0.3, 0.1, 0.2]), 'pass');
  assert.equal(checkMonotoneInEps({ eps: [0.3], robustAccuracy: [0.2], count: 100 }).verdict, 'skipped');
  assert.equal(checkMonotoneInEps(undefined).verdict, 'skipped');
  assert.throws(() => checkMonotoneInEps({ eps: [0.1, 0.2], robustAccuracy: [0.5], count: 100 }), (e: unknown) => e instanceof InputError && e.argument === 'sweep');
});

test("black-box-vs-white-box from the suite's own black-box stages: more than 1% and at least 2 images warn", async () => {
  const verdict = async (broken: number, count: number) => (await checkBlackBoxVsWhiteBox(input(classifier, { blackBox: { broken, count, whiteBoxRobust: 10 } }))).verdict;
  assert.equal(await verdict(0, 100), 'pass');
  assert.equal(await verdict(1, 100), 'pass');
  assert.equal(await verdict(2, 100), 'warn');
  assert.equal(await verdict(1, 50), 'pass'); // 2%, but a single image
  assert.equal(await verdict(10, 1000), 'pass'); // exactly 1%
  assert.equal(await verdict(11, 1000), 'warn');
  assert.equal((await checkBlackBoxVsWhiteBox(input(classifier))).verdict, 'skipped');
  assert.equal((await checkBlackBoxVsWhiteBox(input(classifier, { whiteBoxSurvivors: new Int32Array(0) }))).verdict, 'skipped');
});

test('checks that do not apply are skipped: no gradients, a reference with nothing to raise, no correctly classified image', async () => {
  const noGradients = Classifier.fromFunction((x) => model.apply(x, { training: false }) as tf.Tensor2D, { ...spec, gradients: false });
  const checks = await sanity(input(noGradients));
  for (const id of ['monotone-in-eps', 'unbounded-attack', 'black-box-vs-white-box', 'more-steps', 'gradients']) assert.equal(checks.get(id)!.verdict, 'skipped', `${id}: ${checks.get(id)!.message}`);
  assert.equal(checks.get('randomized')!.verdict, 'pass');
  assert.equal(overallVerdict([...checks.values()]), 'pass');

  const fgsm = await sanity(input(classifier, { reference: { attack: 'fgsm', params: {} } }));
  assert.equal(fgsm.get('more-steps')!.verdict, 'skipped');
  assert.equal(fgsm.get('unbounded-attack')!.verdict, 'pass', fgsm.get('unbounded-attack')!.message);

  // Every label moved off the prediction: nothing is classified correctly.
  const predictions = tf.tidy(() => classifier.predict(tf.tensor4d(data.images, [N, 28, 28, 1])).dataSync() as Int32Array);
  const wrong = { ...data, labels: predictions.map((p) => (p + 1) % 10) };
  assert.equal((await checkUnboundedAttack(input(classifier, { sample: wrong }))).verdict, 'skipped');
});

test('bad input is an InputError naming the argument, before any work', async () => {
  const cases: [Partial<SanityInput>, string][] = [
    [{ reference: { attack: 'nope', params: {} } }, 'reference'],
    [{ reference: { attack: 'apgd', params: { steps: 0 } } }, 'steps'],
    [{ whiteBoxSurvivors: Int32Array.from([0, N]) }, 'whiteBoxSurvivors'],
    [{ sweep: { eps: [0.1, 0.2], robustAccuracy: [0.5], count: N } }, 'sweep'],
    [{ eps: 2 }, 'eps'],
    [{ seed: -1 }, 'seed'],
  ];
  for (const [extra, argument] of cases) {
    const tensors = tf.memory().numTensors;
    await assert.rejects(runSanityChecks(input(classifier, extra)), (e: unknown) => e instanceof InputError && e.argument === argument, `${JSON.stringify(extra)} should name ${argument}`);
    assert.equal(tf.memory().numTensors, tensors);
  }
});
