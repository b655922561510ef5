import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/node/backend.js';
import { tf } from '../src/engine/tf.js';
import { loadBuiltinDataset } from '../src/node/data/builtin.js';
import { take } from '../src/data/split.js';
import { balancedOrder } from '../src/data/subset.js';
import { buildModel } from '../src/models/zoo.js';
import { trainClassifier, type TrainEvent } from '../src/models/train.js';
import { accuracy } from '../src/models/evaluate.js';
import type { ImageSet } from '../src/data/types.js';
import { randomShift } from '../src/data/augment.js';
import { writeNpy } from '../src/node/data/formats/npy.js';
import { trainRun } from '../src/jobs/train-run.js';
import { resolveModel } from '../src/node/resolve.js';
import { CheckpointFolder } from '../src/node/checkpoint.js';

let train: ImageSet;
let testSet: ImageSet;

before(async () => {
  await initBackend({ backend: 'wasm' });
  const d = loadBuiltinDataset('mnist');
  train = take(d.train, balancedOrder(d.train.labels, 10).subarray(0, 600));
  testSet = take(d.test, balancedOrder(d.test.labels, 10).subarray(0, 200));
});

function weightsOf(model: ReturnType<typeof buildModel>): Float32Array[] {
  return model.getWeights().map((w) => w.dataSync() as Float32Array);
}

const opts = { epochs: 3, batchSize: 50, learningRate: 1e-3, seed: 5, augment: [randomShift(1)] };

test('a run stopped after epoch 1 and resumed ends with exactly the weights of an uninterrupted run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'advlab-train-'));
  const full = buildModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  const fullResult = await trainClassifier(full, train, { ...opts, checkpoints: new CheckpointFolder(join(dir, 'a')) });
  const expected = weightsOf(full);

  const first = buildModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  await trainClassifier(first, train, { ...opts, checkpoints: new CheckpointFolder(join(dir, 'b')), stopAfterEpochs: 1 });
  first.dispose();
  // A new process would rebuild the model from the same seed, then restore the checkpoint.
  const resumed = buildModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  const events: TrainEvent[] = [];
  const resumedResult = await trainClassifier(resumed, train, { ...opts, checkpoints: new CheckpointFolder(join(dir, 'b')), resume: true, onProgress: (e) => events.push(e) });
  assert.deepEqual(events[0], { type: 'resumed', epoch: 1 });
  assert.equal(resumedResult.resumedFromEpoch, 1);
  assert.equal(resumedResult.history.length, 3);
  assert.deepEqual(
    resumedResult.history.map((h) => h.loss),
    fullResult.history.map((h) => h.loss),
  );
  const got = weightsOf(resumed);
  assert.equal(got.length, expected.length);
  got.forEach((w, i) => assert.deepEqual(w, expected[i], `weight ${i} differs`));
  // Only the latest checkpoint is kept, no temp files.
  assert.deepEqual(readdirSync(join(dir, 'b')).sort(), ['epoch-3', 'latest.json']);
  assert.ok(!readdirSync(join(dir, 'b', 'epoch-3')).some((f) => f.endsWith('.tmp')));
  full.dispose();
  resumed.dispose();
});

test('training learns: mlp on 600 mnist images beats chance by far, loss falls', async () => {
  const model = buildModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 2 });
  const r = await trainClassifier(model, train, { ...opts, epochs: 4, test: testSet });
  assert.ok(r.history[3].loss < r.history[0].loss);
  const acc = await accuracy(model, testSet);
  assert.ok(acc > 0.7, `accuracy ${acc}`);
  assert.equal(r.history[3].testAccuracy, acc);
  model.dispose();
});

test('a conv net trains on wasm (Conv2DBackpropFilter is supplied by advlab)', async () => {
  const model = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 3 });
  const small = take(train, Int32Array.from({ length: 64 }, (_, i) => i));
  const r = await trainClassifier(model, small, { epochs: 2, batchSize: 32, learningRate: 1e-3, seed: 0 });
  assert.ok(Number.isFinite(r.history[1].loss));
  assert.ok(r.history[1].loss < r.history[0].loss);
  model.dispose();
});

test('trainClassifier leaves tf.memory().numTensors as it found it', async () => {
  const model = buildModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 4 });
  const before = tf.memory().numTensors;
  const dir = mkdtempSync(join(tmpdir(), 'advlab-train-'));
  await trainClassifier(model, train, { ...opts, epochs: 2, test: testSet, checkpoints: new CheckpointFolder(dir )});
  await trainClassifier(model, train, { ...opts, epochs: 3, checkpoints: new CheckpointFolder(dir), resume: true });
  await accuracy(model, testSet);
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
});

test('bad training options are rejected naming the option', async () => {
  const model = buildModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 4 });
  await assert.rejects(trainClassifier(model, train, { ...opts, epochs: 0 }), /epochs: expected a positive integer, got 0/);
  await assert.rejects(trainClassifier(model, train, { ...opts, batchSize: 2.5 }), /batchSize: expected a positive integer/);
  await assert.rejects(trainClassifier(model, train, { ...opts, learningRate: NaN }), /learningRate: expected a positive number, got NaN/);
  await assert.rejects(trainClassifier(model, train, { ...opts, resume: true }), /resume: needs a checkpoint store \(checkpoints\)/);
  const other = buildModel('lenet', { inputShape: [28, 28, 1], numClasses: 10, seed: 4 });
  const dir = mkdtempSync(join(tmpdir(), 'advlab-train-'));
  await trainClassifier(model, train, { ...opts, epochs: 1, checkpoints: new CheckpointFolder(dir )});
  await assert.rejects(trainClassifier(other, train, { ...opts, checkpoints: new CheckpointFolder(dir), resume: true }), /written for a different model/);
  // Same weight shapes, another activation: only the topology hash tells them apart.
  const smooth = buildModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 4, activation: 'softplus' });
  await assert.rejects(trainClassifier(smooth, train, { ...opts, checkpoints: new CheckpointFolder(dir), resume: true }), /written for a different model \(its layers, activation or width differ\)/);
  smooth.dispose();
  assert.ok(existsSync(join(dir, 'latest.json')));
  model.dispose();
  other.dispose();
});

test('trainRun and resolveModel leave numTensors unchanged; resolveModel rejects a mismatched saved model', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'advlab-run-'));
  const n = 40;
  const x = new Float32Array(n * 36);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 2;
    for (let p = 0; p < 36; p++) x[i * 36 + p] = ((i * 7 + p * 3) % 11) / 10;
  }
  writeNpy(join(dir, 'data', 'images.npy'), x, [n, 6, 6, 1]);
  writeNpy(join(dir, 'data', 'labels.npy'), y, [n]);
  const backend = (await initBackend({ backend: 'wasm' }));
  const before = tf.memory().numTensors;
  const result = await trainRun({ model: 'small-cnn', dataset: join(dir, 'data'), out: join(dir, 'run'), epochs: 1, batchSize: 8 }, backend);
  assert.equal(result.dataset.numClasses, 2);
  assert.equal(tf.memory().numTensors, before);
  const { model } = await resolveModel(join(dir, 'run'), { imageShape: [6, 6, 1], numClasses: 2 }, 0);
  model.dispose();
  await assert.rejects(resolveModel(join(dir, 'run'), { imageShape: [6, 6, 1], numClasses: 3 }, 0), /model: the model in .* outputs shape \[batch, 2\] but the dataset has 3 classes/);
  await assert.rejects(resolveModel(join(dir, 'run'), { imageShape: [28, 28, 1], numClasses: 2 }, 0), /dataset: the model expects inputs of shape \[6, 6, 1\]/);
  assert.equal(tf.memory().numTensors, before);
});
