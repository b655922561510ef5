/**
 * runAttack with a WorkerPool: batches attacked in worker threads must give
 * exactly the images, verdicts and costs of a run in this thread (same batch
 * boundaries, same per-batch seeds, same backend and kernels).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { WorkerPool } from '../src/node/worker-pool.js';
import { Classifier } from '../src/models/classifier.js';
import { clearWorkerModels } from '../src/models/pool-model.js';
import { runAttack, type RunAttackOptions } from '../src/attacks/run.js';
import { findAttack } from '../src/attacks/index.js';
import type { AttackResult } from '../src/attacks/types.js';
import type { ImageSet } from '../src/data/types.js';
import { InputError } from '../src/errors.js';
import { trainMnistMlp } from './fixtures/mnist-mlp.js';

let pool: WorkerPool;
let model: Awaited<ReturnType<typeof trainMnistMlp>>['model'];
let data: ImageSet;
let classifier: Classifier;

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

function assertSame(a: AttackResult, b: AttackResult) {
  assert.deepEqual(b.adversarial, a.adversarial, 'adversarial images');
  assert.deepEqual(b.success, a.success, 'success mask');
  assert.deepEqual(b.adversarialPredictions, a.adversarialPredictions);
  assert.deepEqual(b.targets, a.targets);
  assert.equal(b.gradients, a.gradients, 'gradient count');
  assert.equal(b.queries, a.queries, 'query count');
}

async function both(name: string, options: RunAttackOptions) {
  const attack = findAttack(name)!;
  const local = await runAttack(attack, classifier, input(), { batchSize: 16, seed: 5, ...options });
  const tensors = tf.memory().numTensors;
  const pooled = await runAttack(attack, classifier, input(), { batchSize: 16, seed: 5, ...options, pool });
  assert.equal(tf.memory().numTensors, tensors, 'a pooled run leaks no tensors in the main thread');
  return { local, pooled };
}

test('pooled PGD with a random start equals the unpooled run exactly', async () => {
  const { local, pooled } = await both('pgd', { eps: 0.1, params: { steps: 10, stepSize: 0.02, randomStart: true } });
  assert.ok(local.summary.successRate > 0, 'the attack has work to do');
  assertSame(local, pooled);
});

test('pooled targeted APGD with random targets equals the unpooled run', async () => {
  const { local, pooled } = await both('apgd', { eps: 0.1, targeted: 'random', params: { steps: 10 } });
  assertSame(local, pooled);
});

test('pooled Square (random proposals, scores only) equals the unpooled run', async () => {
  const { local, pooled } = await both('square', { eps: 0.2, params: { queries: 50 } });
  assert.ok(local.queries > 0);
  assertSame(local, pooled);
});

test('preprocessing and bounds reach the workers', async () => {
  const scaled = Classifier.fromModel(model, { bounds: [0, 255], preprocess: { mean: 0, std: 255 } });
  try {
    const x = { ...input(), images: data.images.map((v) => v * 255) };
    const attack = findAttack('fgsm')!;
    const local = await runAttack(attack, scaled, x, { batchSize: 16, eps: 25 });
    const pooled = await runAttack(attack, scaled, x, { batchSize: 16, eps: 25, pool });
    assert.ok(local.summary.successRate > 0);
    assertSame(local, pooled);
  } finally {
    scaled.dispose();
  }
});

test('a pool with a classifier made from a function is a clear error', async () => {
  const fn = Classifier.fromFunction((x) => tf.concat([tf.reshape(tf.slice(x, [0, 0, 0, 0], [-1, 1, 1, 1]), [-1, 1]), tf.zeros([x.shape[0], 1])], 1) as tf.Tensor2D, {
    inputShape: [28, 28, 1],
    numClasses: 2,
  });
  await assert.rejects(runAttack(findAttack('fgsm')!, fn, { ...input(), labels: new Int32Array(data.count) }, { eps: 0.1, pool }), (e: unknown) => e instanceof InputError && /pool/.test(e.message));
  fn.dispose();
});
