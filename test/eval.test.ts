/**
 * The evaluation core: suites, the per-example worst case over stages, the
 * Wilson interval, minimal perturbations, pooled batches.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { WorkerPool } from '../src/node/worker-pool.js';
import { Classifier } from '../src/models/classifier.js';
import { clearWorkerModels } from '../src/models/pool-model.js';
import { runAttack } from '../src/attacks/run.js';
import { findAttack } from '../src/attacks/index.js';
import type { ImageSet } from '../src/data/types.js';
import { buildSuite } from '../src/robustness/suites.js';
import { evaluateRobustness, wilsonInterval } from '../src/robustness/evaluate.js';
import { MISCLASSIFIED, ROBUST, Scheduler, initialState, type PipelineState } from '../src/robustness/schedule.js';
import { minimalNorms, summarizeMinimal } from '../src/robustness/minimal.js';
import type { Suite } from '../src/robustness/types.js';
import { InputError } from '../src/errors.js';
import { trainMnistMlp } from './fixtures/mnist-mlp.js';

let model: Awaited<ReturnType<typeof trainMnistMlp>>['model'];
let data: ImageSet;
let classifier: Classifier;
let pool: WorkerPool;

before(async () => {
  await initBackend({ backend: 'wasm' });
  ({ model, test: data } = await trainMnistMlp({ testImages: 60 }));
  classifier = Classifier.fromModel(model);
  pool = await WorkerPool.start({ size: 2, backend: 'wasm' });
});

after(async () => {
  await pool?.close();
  await clearWorkerModels();
  classifier?.dispose();
  model?.dispose();
});

const input = () => ({ images: data.images, labels: data.labels, imageShape: data.imageShape, count: data.count });

/** FGSM then PGD without random start: both deterministic and per-example, so the ensemble's verdict is exactly the AND of each alone. */
const deterministic: Suite = {
  name: 'custom',
  norm: 'linf',
  stages: [
    { name: 'fgsm', attack: 'fgsm', params: {}, whiteBox: true },
    { name: 'pgd', attack: 'pgd', params: { steps: 10, stepSize: 0.01, randomStart: false }, whiteBox: true },
  ],
};

test('wilsonInterval matches a hand computation and stays in [0, 1]', () => {
  // k = 8, n = 10, z = 1.96: centre (0.8 + 0.19208) / 1.38416 = 0.71676, half 1.41601 * sqrt(0.016 + 0.0096040) = 0.22656.
  const [lo, hi] = wilsonInterval(8, 10);
  assert.ok(Math.abs(lo - 0.4902) < 1e-3 && Math.abs(hi - 0.9433) < 1e-3, `${lo} ${hi}`);
  assert.deepEqual(wilsonInterval(0, 0), [0, 1]);
  const [z0, z1] = wilsonInterval(0, 100);
  assert.equal(z0, 0);
  assert.ok(z1 > 0.03 && z1 < 0.04);
});

test('suites: standard follows AutoAttack; quick is shorter; bad names are clear errors', () => {
  const s = buildSuite({ norm: 'linf', numClasses: 10 });
  assert.deepEqual(s.stages.map((x) => x.name), ['apgd-ce', 'apgd-t', 'fab-t', 'square']);
  assert.equal(s.stages[1].targetClasses, 9);
  assert.equal(s.stages[3].params.queries, 5000);
  assert.equal(s.stages[3].whiteBox, false);
  assert.equal(buildSuite({ norm: 'l2', numClasses: 3 }).stages[1].targetClasses, 2, 'capped at numClasses - 1');
  const q = buildSuite({ suite: 'quick', norm: 'linf', numClasses: 10 });
  assert.deepEqual(q.stages.map((x) => x.name), ['apgd-ce', 'apgd-t']);
  assert.equal(buildSuite({ attacks: ['apgd-ce', 'deepfool', 'square'], norm: 'l2', numClasses: 10 }).name, 'custom');
  assert.throws(() => buildSuite({ suite: 'strong', norm: 'linf', numClasses: 10 }), (e: unknown) => e instanceof InputError && e.argument === 'suite');
  assert.throws(() => buildSuite({ attacks: ['nope'], norm: 'linf', numClasses: 10 }), (e: unknown) => e instanceof InputError && e.argument === 'attacks');
  assert.throws(() => buildSuite({ attacks: ['cw'], norm: 'linf', numClasses: 10 }), /does not support linf/);
  assert.throws(() => buildSuite({ attacks: ['fgsm', 'fgsm'], norm: 'linf', numClasses: 10 }), /twice/);
  assert.throws(() => buildSuite({ norm: 'l1', numClasses: 10 }), /linf or l2/);
});

test('the worst case over stages is exactly the AND of each stage alone (deterministic stages)', async () => {
  const eps = 0.08;
  const tensors = tf.memory().numTensors;
  const ev = await evaluateRobustness(classifier, input(), { suite: deterministic, eps, batchSize: 16 });
  assert.equal(tf.memory().numTensors, tensors);
  const fgsm = await runAttack(findAttack('fgsm')!, classifier, input(), { eps, batchSize: 16 });
  const pgd = await runAttack(findAttack('pgd')!, classifier, input(), { eps, batchSize: 16, params: deterministic.stages[1].params });
  let robust = 0;
  for (let i = 0; i < data.count; i++) {
    const correct = fgsm.cleanPredictions[i] === data.labels[i];
    const alive = correct && !fgsm.success[i] && !pgd.success[i];
    if (alive) robust++;
    const expected = !correct ? MISCLASSIFIED : fgsm.success[i] ? 0 : pgd.success[i] ? 1 : ROBUST;
    assert.equal(ev.brokenBy[i], expected, `example ${i}`);
  }
  assert.equal(ev.summary.robustCount, robust);
  assert.ok(robust > 0 && robust < data.count, `eps chosen so that some but not all survive (${robust})`);
  assert.ok(ev.summary.stages[1].broken > 0, 'PGD breaks what FGSM missed');
  assert.equal(ev.summary.stages[1].attacked, data.count - ev.summary.stages[0].broken - ev.brokenBy.filter((b) => b === MISCLASSIFIED).length, 'PGD ran only on the points FGSM left');
  assert.equal(ev.summary.robustAccuracy, ev.summary.stages[1].robustAccuracyAfter);
  // Broken examples carry a valid adversarial image the model misclassifies, within eps.
  const size = 784;
  for (let i = 0; i < data.count; i++) {
    const adv = ev.adversarial!.subarray(i * size, (i + 1) * size);
    const clean = data.images.subarray(i * size, (i + 1) * size);
    let linf = 0;
    for (let j = 0; j < size; j++) linf = Math.max(linf, Math.abs(adv[j] - clean[j]));
    assert.ok(linf <= eps * (1 + 1e-5) + 1e-6);
    if (ev.brokenBy[i] >= 0) assert.notEqual(ev.finalPredictions[i], data.labels[i]);
    else assert.equal(linf, 0);
  }
  // Per class sums back to the total.
  assert.equal(ev.summary.perClass.reduce((a, c) => a + c.robustAccuracy * c.count, 0), robust);
});

test('allPoints measures each stage alone without changing the verdict', async () => {
  const eps = 0.08;
  const fast = await evaluateRobustness(classifier, input(), { suite: deterministic, eps, batchSize: 16 });
  const all = await evaluateRobustness(classifier, input(), { suite: deterministic, eps, batchSize: 16, allPoints: true });
  assert.deepEqual(all.brokenBy, fast.brokenBy);
  const pgd = await runAttack(findAttack('pgd')!, classifier, input(), { eps, batchSize: 16, params: deterministic.stages[1].params });
  assert.equal(all.summary.stages[1].standaloneRobustAccuracy, pgd.summary.robustAccuracy);
  assert.ok(all.summary.stages[1].attacked > fast.summary.stages[1].attacked);
});

test('verdicts and adversarial images do not depend on the pool, the batch size or a resume (random starts included)', async () => {
  const suite = buildSuite({ suite: 'quick', norm: 'linf', numClasses: 10 });
  suite.stages = suite.stages.map((s) => ({ ...s, params: { ...s.params, steps: 10 } }));
  const local = await evaluateRobustness(classifier, input(), { suite, eps: 0.1, batchSize: 16, seed: 3 });
  const pooled = await evaluateRobustness(classifier, input(), { suite, eps: 0.1, batchSize: 7, seed: 3, pool });
  const whole = await evaluateRobustness(classifier, input(), { suite, eps: 0.1, batchSize: 128, seed: 3 });
  for (const other of [pooled, whole]) {
    assert.deepEqual(other.brokenBy, local.brokenBy);
    assert.deepEqual(other.adversarial, local.adversarial);
    assert.equal(other.summary.gradients, local.summary.gradients);
  }
  assert.ok(local.brokenBy.some((b) => b === 1), 'the targeted stage broke something');
  // Stopped after its third batch (a kill), then resumed from what onProgress handed out.
  let saved: { state: PipelineState; adversarial: Float32Array | null } | undefined;
  let batches = 0;
  const stop = new Error('stop');
  await assert.rejects(
    evaluateRobustness(classifier, input(), {
      suite,
      eps: 0.1,
      batchSize: 16,
      seed: 3,
      onProgress: ({ state, adversarial }) => {
        saved = structuredClone({ state, adversarial });
        if (++batches === 3) throw stop;
      },
    }),
    (e) => e === stop,
  );
  assert.ok(saved && saved.state.next.some((k) => k > 0) && saved.state.next.some((k) => k === 0), 'stopped midway');
  const resumed = await evaluateRobustness(classifier, input(), { suite, eps: 0.1, batchSize: 16, seed: 3, resume: saved });
  assert.deepEqual(resumed.brokenBy, local.brokenBy);
  assert.deepEqual(resumed.adversarial, local.adversarial);
  assert.deepEqual(resumed.summary.stages.map((s) => s.attacked), local.summary.stages.map((s) => s.attacked));
});

test('the scheduler fills batches across the set, keeps every worker busy on a short tail, and never sends a tiny batch while others run', () => {
  const suite: Suite = {
    name: 'custom',
    norm: 'linf',
    stages: [
      { name: 'a', attack: 'pgd', params: {}, whiteBox: true },
      { name: 't', attack: 'apgd', params: {}, targetClasses: 3, whiteBox: true },
    ],
  };
  const labels = new Int32Array(100);
  const clean = new Int32Array(100);
  clean[7] = 1; // misclassified: never scheduled
  const scheduler = new Scheduler(suite, initialState(suite, labels, clean), { batchSize: 128 });
  // 99 points, fewer than a batch, and nothing can join them: split over 2 free workers.
  const first = scheduler.take(2)!;
  const second = scheduler.take(1)!;
  assert.deepEqual([first.points.length, second.points.length], [50, 49]);
  assert.ok(!first.points.includes(7) && !second.points.includes(7));
  assert.equal(scheduler.take(1), null, 'no point left to hand out');
  // Stage a breaks the even points; the odd ones move on to stage t, rank 2.
  scheduler.complete(first, first.points.map((i) => ({ broken: i % 2 === 0, prediction: 3 })), { gradients: 500, queries: 600, seconds: 1 });
  // 25 points at stage t while 49 more can still arrive there: below minBatch (32), wait.
  assert.equal(scheduler.take(1), null);
  scheduler.complete(second, second.points.map((i) => ({ broken: i % 2 === 0, prediction: 3 })), { gradients: 490, queries: 600, seconds: 1 });
  const t = scheduler.take(1)!;
  assert.equal(t.stage, 1);
  assert.equal(t.points.length, 49);
  assert.ok(t.ranks.every((r) => r === 2));
  scheduler.complete(t, t.points.map((i) => ({ broken: i === 1, prediction: 4 })), { gradients: 0, queries: 0, seconds: 0 });
  const next = scheduler.take(1)!;
  assert.ok(!next.points.includes(1) && next.ranks.every((r) => r === 3));
  const state = scheduler.state;
  // A stage with a smaller largest batch is cut to it.
  const capped = new Scheduler({ ...suite, stages: [{ ...suite.stages[0], maxBatch: 8 }, suite.stages[1]] }, initialState(suite, labels, clean), { batchSize: 128 });
  assert.equal(capped.take(2)!.points.length, 8);
  assert.equal(state.brokenBy[0], 0);
  assert.equal(state.brokenBy[1], 1);
  assert.equal(state.finalPredictions[1], 4);
  assert.equal(state.brokenBy[7], MISCLASSIFIED);
  assert.deepEqual(state.stages[0], { broken: 50, attacked: 99, gradients: 990, queries: 1200, seconds: 2, batches: 2 });
});

test('targeted stages attack the runner-up classes, and a miss of the target that still misclassifies counts', async () => {
  const suite: Suite = { name: 'custom', norm: 'linf', stages: [{ name: 'apgd-t', attack: 'apgd', params: { steps: 10, loss: 'dlr' }, targetClasses: 2, whiteBox: true }] };
  const ev = await evaluateRobustness(classifier, input(), { suite, eps: 0.1, batchSize: 32 });
  const correct = ev.brokenBy.filter((b) => b !== MISCLASSIFIED).length;
  // Rank 2 runs on every correct point, rank 3 only on those rank 2 left.
  assert.ok(ev.summary.stages[0].attacked >= correct && ev.summary.stages[0].attacked <= 2 * correct);
  assert.ok(ev.summary.stages[0].broken > 0);
});

test('minimal perturbations: a monotone curve from clean accuracy down, that the quick suite does not exceed', async () => {
  const m = await minimalNorms(classifier, input(), { attacks: ['deepfool'], norm: 'linf', batchSize: 32 });
  const s = summarizeMinimal(m, ['deepfool'], 'linf', [0, 0.05, 0.1, 0.2]);
  const correct = Array.from(m.norms).filter((v) => !Number.isNaN(v)).length;
  assert.equal(s.attacked, correct);
  assert.equal(s.curve[0].accuracy, correct / data.count, 'at eps 0 the curve is clean accuracy');
  for (let i = 1; i < s.curve.length; i++) assert.ok(s.curve[i].accuracy <= s.curve[i - 1].accuracy);
  assert.ok(s.found > 0 && s.median !== null && s.median > 0);
  assert.equal(s.histogram.counts.reduce((a, b) => a + b, 0), s.found);
  // Both are upper bounds on the true robust accuracy; a strong suite at eps finds at least what DeepFool's minimal norms imply.
  const ev = await evaluateRobustness(classifier, input(), { suite: buildSuite({ suite: 'quick', norm: 'linf', numClasses: 10 }), eps: 0.1, batchSize: 32 });
  assert.ok(ev.summary.robustAccuracy <= s.curve[2].accuracy + 1e-12, `${ev.summary.robustAccuracy} <= ${s.curve[2].accuracy}`);
});

test('bad input: eps out of range, a pool with a function classifier', async () => {
  await assert.rejects(evaluateRobustness(classifier, input(), { suite: deterministic, eps: -1 }), (e: unknown) => e instanceof InputError && e.argument === 'eps');
  await assert.rejects(evaluateRobustness(classifier, input(), { suite: deterministic, eps: 0.1, batchSize: 0 }), (e: unknown) => e instanceof InputError && e.argument === 'batchSize');
  const fn = Classifier.fromFunction((x) => tf.reshape(tf.slice(x, [0, 0, 0, 0], [-1, 1, 1, 10]), [-1, 10]) as tf.Tensor2D, { inputShape: [28, 28, 10], numClasses: 10 });
  const x = { images: new Float32Array(4 * 28 * 28 * 10), labels: new Int32Array(4), imageShape: [28, 28, 10] as [number, number, number], count: 4 };
  await assert.rejects(evaluateRobustness(fn, x, { suite: deterministic, eps: 0.1, batchSize: 2, pool }), /pool/);
  fn.dispose();
});
