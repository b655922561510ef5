/**
 * The metric classifiers advlab ships (src/node/metric-classifier.ts):
 * the weights match their recorded hash, the model reproduces its recorded
 * test accuracy, corrupt weights are refused, and the Inception Score of real
 * test images under it is what a generator is measured against.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { loadBuiltinDataset } from '../src/node/data/builtin.js';
import { loadModel } from '../src/node/model-files.js';
import { accuracy } from '../src/models/evaluate.js';
import { FileFormatError } from '../src/errors.js';
import { METRIC_CLASSIFIERS_DIR, shippedMetricClassifier } from '../src/node/metric-classifier.js';
import { inceptionScoreFromLogits, classCoverage, argmaxRows } from '../src/generative/metrics/index.js';

before(async () => {
  await initBackend({ backend: 'wasm' });
});

test('the shipped mnist metric classifier: hash checked, recorded test accuracy reproduced, real test images score a high Inception Score', async () => {
  const shipped = shippedMetricClassifier('mnist');
  assert.ok(shipped, 'assets/metric-classifiers/mnist ships');
  assert.equal(shipped.provenance.model, 'lenet');
  const model = await loadModel(shipped.path);
  const test = loadBuiltinDataset('mnist').test;
  assert.equal(test.count, shipped.provenance.testSize);
  assert.equal(await accuracy(model, test), shipped.provenance.testAccuracy);
  const logits = tf.tidy(() => model.predict(tf.tensor4d(test.images, [test.count, 28, 28, 1])) as tf.Tensor2D);
  const data = logits.dataSync() as Float32Array;
  logits.dispose();
  const is = inceptionScoreFromLogits({ data, n: test.count, d: 10 });
  const coverage = classCoverage(argmaxRows({ data, n: test.count, d: 10 }), 10);
  console.log(`# real mnist test images under the shipped lenet: Inception Score ${is.mean.toFixed(2)}, coverage KL ${coverage.klFromUniform.toFixed(4)}`);
  // Ten classes, nearly balanced, classified confidently: close to the maximum of 10.
  assert.ok(is.mean > 8.5 && is.mean <= 10, `IS ${is.mean}`);
  assert.ok(coverage.klFromUniform < 0.01);
  model.dispose();
  assert.equal(shippedMetricClassifier('no-such-dataset'), null);
});

test('the shipped fashion-mnist metric classifier: hash checked, recorded test accuracy reproduced', async () => {
  const shipped = shippedMetricClassifier('fashion-mnist');
  assert.ok(shipped, 'assets/metric-classifiers/fashion-mnist ships');
  const model = await loadModel(shipped.path);
  const test = loadBuiltinDataset('fashion-mnist').test;
  assert.equal(await accuracy(model, test), shipped.provenance.testAccuracy);
  model.dispose();
});

test('corrupt shipped weights are refused, naming the file', () => {
  const root = mkdtempSync(join(tmpdir(), 'advlab-mc-'));
  cpSync(join(METRIC_CLASSIFIERS_DIR, 'mnist'), join(root, 'mnist'), { recursive: true });
  const weights = join(root, 'mnist', 'model', 'weights.bin');
  const bytes = readFileSync(weights);
  bytes[100] ^= 1;
  writeFileSync(weights, bytes);
  assert.throws(() => shippedMetricClassifier('mnist', root), (e: unknown) => e instanceof FileFormatError && /corrupt shipped metric classifier/.test((e as Error).message) && (e as Error).message.includes(weights));
});
