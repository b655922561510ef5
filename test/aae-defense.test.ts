/**
 * The AAE as a defense: the detector's ROC AUC and threshold against hand
 * computations, the gradient gate (blocked, BPDA) against the gradients it
 * stands for, the per-example worst case over threat models, and
 * `advlab eval --defense aae:<run>` end to end on tiny models.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf, tfl } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { modelFromArtifacts, modelToArtifacts } from '../src/models/artifacts.js';
import { GradientGate } from '../src/models/gradient-gate.js';
import { buildAae } from '../src/generative/aae/architectures.js';
import { purifiedModel, reconstructionErrors, parseDefenseSpec, type AaePurifier } from '../src/defenses/aae-purifier.js';
import { cleanThreshold, detectionFigures, quantile, rocAuc } from '../src/robustness/detection.js';
import { threatModelSuite, worstOverThreatModels } from '../src/robustness/defense-eval.js';
import { MISCLASSIFIED, ROBUST } from '../src/robustness/schedule.js';
import type { Evaluation } from '../src/robustness/evaluate.js';
import type { EpsilonResult, Suite } from '../src/robustness/types.js';
import { readNpy } from '../src/node/data/formats/npy.js';
import { InputError } from '../src/errors.js';
import { advlab, compileSchema, readJson } from './fixtures/cli.js';

before(async () => {
  await initBackend({ backend: 'wasm' });
});

test('rocAuc is the Mann-Whitney probability, ties counting half', () => {
  assert.equal(rocAuc([0.1, 0.2], [0.3, 0.9]), 1);
  assert.equal(rocAuc([0.3, 0.9], [0.1, 0.2]), 0);
  assert.equal(rocAuc([0.5, 0.5], [0.5]), 0.5);
  // Pairs (positive above negative): 0.8 beats all three (3); 0.4 beats 0.1 and 0.35 and ties 0.4 (2.5): 5.5 of 6.
  assert.ok(Math.abs(rocAuc([0.1, 0.4, 0.35], [0.8, 0.4]) - 5.5 / 6) < 1e-12);
  assert.throws(() => rocAuc([], [1]), (e: unknown) => e instanceof InputError && e.argument === 'negatives');
  assert.throws(() => rocAuc([1], [NaN]), (e: unknown) => e instanceof InputError && e.argument === 'positives');
});

test('quantile, clean threshold and detection rate match hand computations', () => {
  assert.equal(quantile([4, 1, 3, 2, 5], 0.5), 3);
  // (1 - 0.05) * 4 = 3.8: 4 + 0.8 * (5 - 4).
  assert.ok(Math.abs(cleanThreshold([1, 2, 3, 4, 5], 0.05) - 4.8) < 1e-12);
  assert.deepEqual(detectionFigures([1, 2, 3], [2.5, 4, 5, 0.5], 2.9), { adversarial: 4, rocAuc: (2 + 3 + 3 + 0) / 12, detectionRate: 0.5 });
  assert.deepEqual(detectionFigures([1, 2], [], 1.5), { adversarial: 0, rocAuc: null, detectionRate: null });
  assert.throws(() => cleanThreshold([1], 0), (e: unknown) => e instanceof InputError && e.argument === 'falsePositiveRate');
});

/** A tiny classifier on 4x4 images and an untrained AAE of the same shape. */
function tinyParts(): { classifier: tfl.LayersModel; purifier: AaePurifier } {
  const x = tfl.input({ shape: [4, 4, 1] });
  const flat = tfl.layers.flatten().apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }).apply(flat) as tfl.SymbolicTensor;
  const classifier = tfl.model({ inputs: x, outputs: out });
  const aae = buildAae('mlp', { imageShape: [4, 4, 1], latentDim: 2, seed: 0 });
  aae.discriminator.dispose();
  return { classifier, purifier: { path: 'tiny', encoder: aae.encoder, decoder: aae.decoder, imageShape: [4, 4, 1], dispose: () => (aae.encoder.dispose(), aae.decoder.dispose()) } };
}

test('the gradient gate: plain blocks gradients, bpda passes the classifier gradient at the purified image, and both survive serialization', async () => {
  const { classifier, purifier } = tinyParts();
  const before = tf.memory().numTensors;
  const x = tf.randomUniform([3, 4, 4, 1], 0, 1, 'float32', 7) as tf.Tensor4D;
  const purified = tf.tidy(() => tf.sigmoid(purifier.decoder.apply(purifier.encoder.apply(x)) as tf.Tensor));
  const reference = classifier.apply(purified) as tf.Tensor;
  const bpdaReference = tf.grad((p: tf.Tensor) => tf.sum(tf.mul(classifier.apply(p) as tf.Tensor, tf.tensor1d([1, -2, 0.5]))))(purified);
  for (const gradients of ['plain', 'bpda', 'full'] as const) {
    const model = purifiedModel(classifier, purifier, gradients);
    const rebuilt = await modelFromArtifacts(await modelToArtifacts(model));
    for (const m of [model, rebuilt]) {
      tf.tidy(() => {
        const logits = m.apply(x) as tf.Tensor;
        assert.ok(tf.max(tf.abs(tf.sub(logits, reference))).dataSync()[0] < 1e-6, `${gradients}: the forward pass is classifier(purify(x))`);
        const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(m.apply(t) as tf.Tensor, tf.tensor1d([1, -2, 0.5]))))(x);
        const norm = tf.sum(tf.abs(g)).dataSync()[0];
        if (gradients === 'plain') assert.equal(norm, 0, 'plain: no gradient reaches the input');
        else if (gradients === 'bpda') assert.ok(tf.max(tf.abs(tf.sub(g, bpdaReference))).dataSync()[0] < 1e-6, 'bpda: the identity backward pass');
        else {
          assert.ok(norm > 0);
          assert.ok(tf.max(tf.abs(tf.sub(g, bpdaReference))).dataSync()[0] > 1e-4, 'full: through the autoencoder, not the identity');
        }
      });
    }
    rebuilt.dispose();
  }
  tf.dispose([x, purified, reference, bpdaReference]);
  assert.equal(tf.memory().numTensors, before, 'tensors');
  // The reconstruction error is the per-image mean squared error of sigmoid(decoder(encoder(x))).
  const images = new Float32Array(2 * 16).map((_, i) => (i % 5) / 4);
  const errors = await reconstructionErrors(purifier, images);
  const expected = tf.tidy(() => {
    const t = tf.tensor4d(images, [2, 4, 4, 1]);
    return Array.from(tf.mean(tf.square(tf.sub(tf.sigmoid(purifier.decoder.apply(purifier.encoder.apply(t)) as tf.Tensor), t)), [1, 2, 3]).dataSync());
  });
  errors.forEach((e, i) => assert.ok(Math.abs(e - expected[i]) < 1e-6));
  assert.equal(tf.memory().numTensors, before, 'tensors');
  assert.throws(() => new GradientGate({ mode: 'open' as 'block' }), (e: unknown) => e instanceof InputError && e.argument === 'mode');
  assert.throws(() => parseDefenseSpec('magnet:runs/x'), (e: unknown) => e instanceof InputError && e.argument === 'defense');
  classifier.dispose();
  purifier.dispose();
});

test('worstOverThreatModels: broken if any threat model broke it, robust only if none did', () => {
  const suite: Suite = { name: 'custom', norm: 'linf', stages: [{ name: 'a', attack: 'pgd', params: {}, whiteBox: true }, { name: 'b', attack: 'square', params: {}, whiteBox: false }] };
  const merged = threatModelSuite(suite, ['plain', 'bpda']);
  assert.deepEqual(merged.stages.map((s) => s.name), ['plain/a', 'plain/b', 'bpda/a', 'bpda/b']);
  const labels = Int32Array.from([0, 1, 2, 0, 1]);
  const clean = Int32Array.from([0, 1, 0, 0, 1]);
  const stage = (broken: number) => ({ broken, attacked: 4, gradients: 10, queries: 20, seconds: 1, batches: 1 });
  const evaluation = (brokenBy: number[], final: number[]): Evaluation => ({
    summary: {} as unknown as EpsilonResult,
    cleanPredictions: clean,
    finalPredictions: Int32Array.from(final),
    brokenBy: Int8Array.from(brokenBy),
    adversarial: Float32Array.from(final, (f) => f * 10),
    state: { count: 5, next: new Int32Array(5), brokenBy: Int8Array.from(brokenBy), finalPredictions: Int32Array.from(final), brokenStages: new Uint32Array(5), stages: [stage(0), stage(0)] },
  });
  // Example 2 is misclassified; plain breaks 1 (stage b); bpda breaks 0 and 1 (stage a) and 3 (stage b); only 4 survives both.
  const plain = evaluation([ROBUST, 1, MISCLASSIFIED, ROBUST, ROBUST], [0, 2, 0, 0, 1]);
  const bpda = evaluation([0, 0, MISCLASSIFIED, 1, ROBUST], [1, 0, 0, 2, 1]);
  const worst = worstOverThreatModels([plain, bpda], merged, labels, { eps: 0.3 });
  assert.deepEqual(Array.from(worst.brokenBy), [2, 1, MISCLASSIFIED, 3, ROBUST]);
  assert.deepEqual(Array.from(worst.finalPredictions), [1, 2, 0, 2, 1]);
  assert.deepEqual(Array.from(worst.adversarial!), [10, 20, 0, 20, 10]);
  assert.equal(worst.summary.robustCount, 1);
  assert.equal(worst.summary.robustAccuracy, 1 / 5);
  assert.deepEqual(worst.summary.stages.map((s) => [s.name, s.broken, s.gradients]), [['plain/a', 0, 10], ['plain/b', 1, 10], ['bpda/a', 1, 10], ['bpda/b', 1, 10]]);
});

test('advlab eval --defense aae: both threat models, the worst case as headline, masking flagged, the detector scored', () => {
  const dir = mkdtempSync(join(tmpdir(), 'advlab-aae-defense-'));
  const model = join(dir, 'mlp');
  const aae = join(dir, 'aae');
  let r = advlab(['train', '--model', 'mlp', '--dataset', 'mnist', '--epochs', '1', '--out', model, '--no-progress']);
  assert.equal(r.code, 0, r.stderr);
  r = advlab(['aae', '--dataset', 'mnist', '--train-n', '400', '--batch-size', '50', '--latent', '8', '--epochs', '2', '--out', aae, '--no-progress']);
  assert.equal(r.code, 0, r.stderr);
  const out = join(dir, 'eval');
  const n = 32;
  r = advlab([
    'eval', '--model', model, '--defense', `aae:${aae}`, '--attacks', 'pgd', '--eps', '0.3', '--n', String(n), '--batch-size', '16',
    '--corruptions', 'none', '--minimal', 'none', '--sanity-sample', '16', '--out', out, '--no-progress',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ {2}plain: robust accuracy /m);
  assert.match(r.stdout, /^ {2}bpda: robust accuracy /m);
  assert.match(r.stdout, /^detector \(reconstruction error\): ROC AUC /m);
  const result = readJson(join(out, 'result.json'));
  const validate = compileSchema('schemas/eval.result.schema.json');
  assert.ok(validate(result), JSON.stringify(validate.errors));
  assert.equal(validate({ ...result, defense: { ...result.defense, kind: 'magnet' } }), false);
  assert.equal(result.options.defense, `aae:${aae}`);
  assert.deepEqual(result.suite.stages.map((s: { name: string }) => s.name), ['plain/pgd', 'bpda/pgd']);
  const [plain, bpda] = result.defense.threatModels;
  assert.deepEqual([plain.name, bpda.name], ['plain', 'bpda']);
  // The per-example worst case: never above either threat model, never below what the union bound allows.
  assert.ok(result.robustAccuracy <= Math.min(plain.robustAccuracy, bpda.robustAccuracy) + 1e-12);
  assert.ok(result.robustAccuracy >= plain.robustAccuracy + bpda.robustAccuracy - result.cleanAccuracy - 1e-12);
  const brokenBy = readNpy(join(out, 'broken-by.npy')).data as Int32Array;
  assert.equal(Array.from(brokenBy).filter((b) => b === ROBUST).length / n, result.robustAccuracy);
  // As deployed, the purifier gives zero gradients: the sanity checks say so.
  const gradients = result.sanity.checks.find((c: { id: string }) => c.id === 'gradients');
  assert.equal(gradients.verdict, 'warn', gradients.message);
  assert.match(gradients.message, /zero/);
  const d = result.defense.detector;
  assert.equal(d.attack.on, 'the bare classifier');
  assert.ok(d.againstPgd.adversarial > 0, 'PGD fools the bare classifier');
  assert.ok(d.againstPgd.rocAuc >= 0 && d.againstPgd.rocAuc <= 1);
  assert.ok(d.bareAccuracyUnderPgd < result.cleanAccuracy);

  const bad = advlab(['eval', '--model', model, '--defense', 'magnet:x', '--eps', '0.3', '--out', join(dir, 'bad'), '--no-progress']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^advlab: --defense: expected aae:<folder of an advlab aae run>, got "magnet:x"$/m);
  const missing = advlab(['eval', '--model', model, '--defense', `aae:${join(dir, 'none')}`, '--eps', '0.3', '--out', join(dir, 'bad'), '--no-progress']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^advlab: --defense: .* is not an advlab aae run folder/m);
});
