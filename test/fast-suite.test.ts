/**
 * The fast suite and its audit: MALT's target order by hand on a linear model;
 * a fully audited fast run never weaker than the reference suite; the sample's
 * misses, the escalation and the exact bound.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { Classifier } from '../src/models/classifier.js';
import type { ImageSet } from '../src/data/types.js';
import { buildSuite, remainderOf } from '../src/robustness/suites.js';
import { evaluateRobustness } from '../src/robustness/evaluate.js';
import { auditEvaluation } from '../src/robustness/audit.js';
import { rankByMalt } from '../src/robustness/targets.js';
import { ROBUST } from '../src/robustness/schedule.js';
import type { Suite } from '../src/robustness/types.js';
import { InputError } from '../src/errors.js';
import { clopperPearsonUpper } from '../src/util/binomial.js';
import { trainMnistMlp } from './fixtures/mnist-mlp.js';

let model: Awaited<ReturnType<typeof trainMnistMlp>>['model'];
let data: ImageSet;
let classifier: Classifier;

before(async () => {
  await initBackend({ backend: 'wasm' });
  ({ model, test: data } = await trainMnistMlp({ testImages: 60 }));
  classifier = Classifier.fromModel(model);
});

after(() => {
  classifier?.dispose();
  model?.dispose();
});

const input = () => ({ images: data.images, labels: data.labels, imageShape: data.imageShape, count: data.count });

/** A small reference suite with the standard one's shape, and a fast suite sharing its first stage. */
const reference: Suite = {
  name: 'standard',
  norm: 'linf',
  stages: [
    { name: 'apgd-ce', attack: 'apgd', params: { steps: 10, loss: 'ce' }, whiteBox: true },
    { name: 'apgd-t', attack: 'apgd', params: { steps: 10, loss: 'dlr' }, targetClasses: 3, whiteBox: true },
    { name: 'square', attack: 'square', params: { queries: 100, rescaleSchedule: false }, whiteBox: false },
  ],
};
const fast: Suite = {
  name: 'fast',
  norm: 'linf',
  stages: [reference.stages[0], { name: 'apgd-t-malt', attack: 'apgd', params: { steps: 10, loss: 'dlr' }, targetClasses: 1, targetOrder: 'malt', whiteBox: true }],
};

test("MALT orders targets by the linearized distance to each boundary: (z_y - z_j) / ||w_y - w_j||_1 on a linear model", async () => {
  // Logits W x + b on 3 pixels, 4 classes; the image x = (0.5, 0.5, 0.5) is class 0.
  // Class 0 is the runner-up by logit but its boundary is far (its weights differ from class 1's by 0.01);
  // class 2 is third by logit but its boundary is the nearest.
  const W = [
    [0, 4, 0.01],
    [0, 4, 0],
    [2.5, 4, 2.5],
    [-3, 0, 0],
  ];
  const b = [-0.605, -0.5, -3.5, 1.2];
  const linear = Classifier.fromFunction(
    (x) => tf.tidy(() => tf.add(tf.matMul(tf.reshape(x, [-1, 3]) as tf.Tensor2D, tf.tensor2d(W), false, true), tf.tensor1d(b)) as tf.Tensor2D),
    { inputShape: [1, 1, 3], numClasses: 4 },
  );
  const x = new Float32Array([0.5, 0.5, 0.5]);
  const z = W.map((w, c) => w.reduce((s, v) => s + v * 0.5, b[c]));
  // z = (1.4, 1.5, 1.0, -0.3): the point is class 1; MALT's distances 10, 0.1, 0.257 put class 2 first.
  const y = z.indexOf(Math.max(...z));
  assert.equal(y, 1);
  const expected = [0, 1, 2, 3]
    .filter((j) => j !== y)
    .map((j) => ({ j, d: (z[y] - z[j]) / W[y].reduce((s, v, p) => s + Math.abs(v - W[j][p]), 0) }))
    .sort((p, q) => p.d - q.d)
    .map((e) => e.j);
  const linfOrder = Array.from(await rankByMalt(linear, x, Int32Array.of(y), 'linf'));
  assert.deepEqual(linfOrder, expected);
  assert.deepEqual(expected, [2, 3, 0]);
  // The logit order differs: MALT is not the logit order in disguise.
  const byLogit = [0, 1, 2, 3].filter((j) => j !== y).sort((p, q) => z[q] - z[p]);
  assert.notDeepEqual(byLogit, expected);
  linear.dispose();
});

test('a fully audited fast run breaks every point the reference suite breaks (never weaker), for far fewer gradients', async () => {
  const eps = 0.08;
  const ref = await evaluateRobustness(classifier, input(), { suite: reference, eps, batchSize: 16 });
  const tensors = tf.memory().numTensors;
  const quick = await evaluateRobustness(classifier, input(), { suite: fast, eps, batchSize: 16 });
  const audited = await auditEvaluation(classifier, input(), fast, quick, { reference, sample: 'full', eps, batchSize: 16 });
  assert.equal(tf.memory().numTensors, tensors);
  assert.deepEqual(audited.audit.stages, ['apgd-t', 'square'], 'the shared APGD-CE stage is not run again');
  for (let i = 0; i < data.count; i++) {
    if (ref.brokenBy[i] >= 0) assert.notEqual(audited.evaluation.brokenBy[i], ROBUST, `point ${i}: broken by the reference, robust after the audit`);
  }
  assert.ok(audited.evaluation.summary.robustAccuracy <= ref.summary.robustAccuracy);
  assert.equal(audited.audit.full, true);
  assert.equal(audited.audit.gapUpperPoints, 0);
  assert.equal(audited.evaluation.summary.stages.length, 4);
  assert.deepEqual(audited.suite.stages.map((s) => s.name), ['apgd-ce', 'apgd-t-malt', 'audit/apgd-t', 'audit/square']);
  assert.ok(quick.summary.gradients < ref.summary.gradients, `fast ${quick.summary.gradients} vs reference ${ref.summary.gradients} gradients`);
  // The audit's stages are the reference's, with its seeds: on the points they attack, the same verdicts.
  assert.ok(ref.summary.stages[1].broken + ref.summary.stages[2].broken >= audited.audit.misses);
});

test('a sampled audit: misses counted and broken, the exact bound without escalation, every point re-checked with it', async () => {
  const eps = 0.08;
  // A fast suite that is too weak on purpose (APGD-CE with 2 steps), so the audit must find misses.
  const weak: Suite = { name: 'fast', norm: 'linf', stages: [{ name: 'apgd-ce-2', attack: 'apgd', params: { steps: 2, loss: 'ce' }, whiteBox: true }] };
  const quick = await evaluateRobustness(classifier, input(), { suite: weak, eps, batchSize: 16 });
  const robust = quick.brokenBy.filter((b) => b === ROBUST).length;
  assert.ok(robust > 12, `${robust} robust after the weak suite`);
  const sampled = await auditEvaluation(classifier, input(), weak, quick, { reference, sample: 8, escalate: false, eps, batchSize: 16, seed: 1 });
  const a = sampled.audit;
  assert.equal(a.sampled, 8);
  assert.equal(a.robustBefore, robust);
  assert.deepEqual(a.stages, ['apgd-ce', 'apgd-t', 'square']);
  assert.ok(a.misses > 0, 'the weak suite misses points the reference breaks');
  assert.equal(a.missed.length, a.misses);
  for (const i of a.missed) assert.notEqual(sampled.evaluation.brokenBy[i], ROBUST, 'a miss is counted as broken');
  assert.equal(a.escalated, false);
  assert.equal(a.missRateUpper, clopperPearsonUpper(a.misses, 8));
  assert.equal(a.gapUpperPoints, Math.ceil(a.missRateUpper * robust - 1e-9));
  assert.equal(sampled.evaluation.summary.robustCount, robust - a.misses);
  // With escalation, the misses send the remainder to every robust point: then no bound is left.
  const escalated = await auditEvaluation(classifier, input(), weak, quick, { reference, sample: 8, eps, batchSize: 16, seed: 1 });
  assert.equal(escalated.audit.escalated, true);
  assert.equal(escalated.audit.escalatedPoints, robust - 8);
  assert.equal(escalated.audit.gapUpperPoints, 0);
  const full = await auditEvaluation(classifier, input(), weak, quick, { reference, sample: 'full', eps, batchSize: 16 });
  assert.deepEqual(escalated.evaluation.brokenBy.map((b) => (b === ROBUST ? 1 : 0)), full.evaluation.brokenBy.map((b) => (b === ROBUST ? 1 : 0)), 'escalated = fully audited');
  await assert.rejects(auditEvaluation(classifier, input(), weak, quick, { reference, sample: 0, eps }), (e: unknown) => e instanceof InputError && e.argument === 'audit');
});

test('the built-in fast suite and its remainder against the standard suite', () => {
  const f = buildSuite({ suite: 'fast', norm: 'linf', numClasses: 10 });
  assert.deepEqual(f.stages.map((s) => s.name), ['apgd-ce', 'apgd-t-malt']);
  assert.equal(f.stages[1].targetOrder, 'malt');
  const rest = remainderOf(buildSuite({ suite: 'standard', norm: 'linf', numClasses: 10 }), f);
  assert.deepEqual(rest.stages.map((s) => s.name), ['apgd-t', 'fab-t', 'square']);
});
