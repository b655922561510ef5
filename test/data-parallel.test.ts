/**
 * Data-parallel training steps (models/data-parallel.ts, defenses/pooled.ts):
 * on a model without batch norm a step on 2 workers equals the single-thread
 * step within float tolerance (the shards' gradients are summed in another
 * order than one pass sums them); with 2 workers, repeat runs and a killed
 * and resumed run are bit-identical; the workers hold no more tensors after
 * many steps than after the first; batch norm's moving statistics are the
 * shards' average.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf, tfl } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { WorkerPool } from '../src/node/worker-pool.js';
import { buildModel } from '../src/models/zoo.js';
import { trainClassifier, type TrainOptions } from '../src/models/train.js';
import { dataParallel, worthSharding } from '../src/models/data-parallel.js';
import { clearWorkerModels } from '../src/models/pool-model.js';
import { createDefense, defaultDefenseConfig } from '../src/defenses/defenses.js';
import { pooledTraining } from '../src/defenses/pooled.js';
import { CheckpointFolder } from '../src/node/checkpoint.js';
import { parseAugmentations } from '../src/data/augment.js';
import { loadBuiltinDataset } from '../src/node/data/builtin.js';
import { take } from '../src/data/split.js';
import type { ImageSet } from '../src/data/types.js';
import { buildGan, type GanModels } from '../src/generative/gan/architectures.js';
import { trainGan } from '../src/generative/gan/train-gan.js';
import { buildAae, type AaeModels } from '../src/generative/aae/architectures.js';
import { trainAae, type AaeTrainOptions } from '../src/generative/aae/train-aae.js';
import { balancedSubset } from '../src/data/subset.js';

let pool: WorkerPool;
let train: ImageSet;
const dir = mkdtempSync(join(tmpdir(), 'advlab-data-parallel-'));

before(async () => {
  await initBackend({ backend: 'wasm' });
  pool = await WorkerPool.start({ size: 2, backend: 'wasm', kernels: 'advlab' });
  const data = loadBuiltinDataset('mnist');
  train = take(data.train, Int32Array.from({ length: 192 }, (_, i) => i * 37), 784);
});

after(async () => {
  await pool.close();
  await clearWorkerModels();
  rmSync(dir, { recursive: true, force: true });
});

const smallCnn = () => buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 3 });
const weightsOf = async (m: tfl.LayersModel) => Promise.all(m.weights.map(async (w) => (await w.read().data()) as Float32Array));
const options = (extra: Partial<TrainOptions> = {}): TrainOptions => ({ epochs: 1, batchSize: 64, learningRate: 1e-3, schedule: 'constant', seed: 11, ...extra });

/**
 * How far apart two trainings from the same start ended, relative to how far
 * training moved the weights: |a - b| / |a - start| over all weights (L2).
 * Not per tensor: Adam divides each gradient by its running size, so a
 * gradient that is a sum with heavy cancellation (a first-layer bias over
 * 86,000 positions) keeps little relative precision in float32 and its tiny
 * update can differ by a few thousandths between summation orders.
 */
function stepDifference(start: Float32Array[], a: Float32Array[], b: Float32Array[]): number {
  let diff = 0;
  let step = 0;
  a.forEach((x, i) => {
    for (let k = 0; k < x.length; k++) {
      diff += (x[k] - b[i][k]) ** 2;
      step += (x[k] - start[i][k]) ** 2;
    }
  });
  return Math.sqrt(diff / step);
}

test('plain training: steps on 2 workers equal single-thread steps within float tolerance (small-cnn, no batch norm)', async () => {
  const single = smallCnn();
  const parallel = smallCnn();
  const start = await weightsOf(single);
  try {
    // With augmentation, whose draws the data-parallel loop makes while the workers compute: the same batches either way.
    const augment = parseAugmentations('shift:2,noise:0.05');
    const a = await trainClassifier(single, train, options({ augment }));
    const b = await trainClassifier(parallel, train, options({ augment, parallel: dataParallel(pool) }));
    const diff = stepDifference(start, await weightsOf(single), await weightsOf(parallel));
    assert.ok(diff < 1e-4, `the runs differ by ${diff} of their step`);
    assert.ok(Math.abs(a.history[0].loss - b.history[0].loss) < 1e-5, `loss ${a.history[0].loss} vs ${b.history[0].loss}`);
    assert.equal(a.history[0].trainAccuracy, b.history[0].trainAccuracy);
  } finally {
    single.dispose();
    parallel.dispose();
  }
});

test('PGD-AT: the inner attack and the loss gradient in each worker give the single-thread step within float tolerance', async () => {
  const defense = createDefense(defaultDefenseConfig('pgd-at', { eps: 0.1, steps: 3, stepSize: 0.04, epsWarmupEpochs: 0 }));
  const single = smallCnn();
  const parallel = smallCnn();
  const start = await weightsOf(single);
  try {
    await trainClassifier(single, train, options({ defense }));
    await trainClassifier(parallel, train, options({ defense, parallel: pooledTraining(defense, pool) }));
    const diff = stepDifference(start, await weightsOf(single), await weightsOf(parallel));
    assert.ok(diff < 1e-4, `the runs differ by ${diff} of their step`);
  } finally {
    single.dispose();
    parallel.dispose();
  }
});

test('consistency regularization: the noisy copies drawn here, each worker scoring its images\' copies, give the single-thread step within float tolerance', async () => {
  const defense = createDefense(defaultDefenseConfig('consistency', { eps: 0.5, consistency: { lambda: 10, eta: 0.5, copies: 2 } }));
  const single = smallCnn();
  const parallel = smallCnn();
  const start = await weightsOf(single);
  try {
    const a = await trainClassifier(single, train, options({ defense }));
    const b = await trainClassifier(parallel, train, options({ defense, parallel: pooledTraining(defense, pool) }));
    const diff = stepDifference(start, await weightsOf(single), await weightsOf(parallel));
    assert.ok(diff < 1e-4, `the runs differ by ${diff} of their step`);
    assert.ok(Math.abs(a.history[0].loss - b.history[0].loss) < 1e-4, `loss ${a.history[0].loss} vs ${b.history[0].loss}`);
  } finally {
    single.dispose();
    parallel.dispose();
  }
});

test('with 2 workers: repeat runs and a killed-and-resumed run give bit-identical weights; worker tensors stay flat', async () => {
  const runs: Float32Array[][] = [];
  let tensorsAfterFirst: number[] | undefined;
  for (let r = 0; r < 2; r++) {
    const m = smallCnn();
    await trainClassifier(m, train, options({ epochs: 2, parallel: dataParallel(pool), onProgress: (e) => { if (e.type === 'epoch-end' && e.epoch === 1 && r === 0) tensorsAfterFirst = pool.workers.map((w) => w.numTensors); } }));
    runs.push(await weightsOf(m));
    m.dispose();
  }
  assert.deepEqual(runs[1], runs[0], 'a repeat run with the same seed and workers');
  // 6 more steps (and a rebuilt model per run) later, the workers hold what they held after the first epoch, give or take the cached models.
  const now = pool.workers.map((w) => w.numTensors);
  assert.ok(now.every((n, i) => n <= tensorsAfterFirst![i] * 2), `worker tensors ${tensorsAfterFirst} then ${now}`);

  const store = new CheckpointFolder(join(dir, 'resume'));
  const killed = smallCnn();
  await trainClassifier(killed, train, options({ epochs: 2, parallel: dataParallel(pool), checkpoints: store, stopAfterEpochs: 1 }));
  killed.dispose();
  const resumed = smallCnn();
  await trainClassifier(resumed, train, options({ epochs: 2, parallel: dataParallel(pool), checkpoints: store, resume: true }));
  assert.deepEqual(await weightsOf(resumed), runs[0], 'killed after epoch 1 and resumed');
  resumed.dispose();
});

test('the workers hold the same number of tensors after 20 steps as after 2', async () => {
  const m = smallCnn();
  const big = take(train, Int32Array.from({ length: 160 }, (_, i) => i), 784);
  try {
    const counts: number[][] = [];
    await trainClassifier(m, big, options({ epochs: 4, batchSize: 16, parallel: dataParallel(pool), onProgress: (e) => { if (e.type === 'batch' && (e.batch === 2 || e.batch === 10)) counts.push(pool.workers.map((w) => w.numTensors)); } }));
    const first = counts[0];
    for (const c of counts) assert.deepEqual(c, first, `worker tensors over the run: ${JSON.stringify(counts)}`);
  } finally {
    m.dispose();
  }
});

test('batch norm: the moving statistics after a data-parallel step are the shards’ average', async () => {
  const input = tfl.input({ shape: [28, 28, 1] });
  const flat = tfl.layers.flatten().apply(input) as tfl.SymbolicTensor;
  const bn = tfl.layers.batchNormalization({ momentum: 0.5 }).apply(tfl.layers.dense({ units: 4, kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) }).apply(flat)) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: tfl.layers.dense({ units: 10, kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }).apply(bn) as tfl.SymbolicTensor });
  const batch = take(train, Int32Array.from({ length: 64 }, (_, i) => i), 784);
  try {
    // Expected: each half's batch mean of the dense output, blended into the moving mean (0 at the start) with momentum 0.5, averaged.
    const dense = model.layers[2] as tfl.layers.Layer;
    const expected = tf.tidy(() => {
      const h = dense.apply(tf.reshape(tf.tensor4d(batch.images, [64, 28, 28, 1]), [64, 784])) as tf.Tensor2D;
      const halves = [tf.slice(h, [0, 0], [32, 4]), tf.slice(h, [32, 0], [32, 4])].map((s) => tf.mul(tf.mean(s, 0), 0.5));
      return tf.div(tf.add(halves[0], halves[1]), 2);
    });
    const want = (await expected.data()) as Float32Array;
    expected.dispose();
    await trainClassifier(model, batch, options({ batchSize: 64, parallel: dataParallel(pool) }));
    const movingMean = (await model.getLayer(model.layers[3].name).getWeights()[2].data()) as Float32Array;
    for (let i = 0; i < 4; i++) assert.ok(Math.abs(movingMean[i] - want[i]) < 1e-5, `moving mean ${Array.from(movingMean)} vs ${Array.from(want)}`);
  } finally {
    model.dispose();
  }
});

/** A small GAN without batch norm (so shards normalise nothing): plain, or class-conditional with an auxiliary classifier (acgan's losses). */
function noBatchNormGan(conditional: boolean): GanModels {
  const glorot = (seed: number) => tfl.initializers.glorotUniform({ seed });
  const z = tfl.input({ shape: [16] });
  const c = tfl.input({ shape: [10] });
  const gIn = conditional ? (tfl.layers.concatenate().apply([z, c]) as tfl.SymbolicTensor) : z;
  const h = tfl.layers.dense({ units: 32, activation: 'relu', kernelInitializer: glorot(1) }).apply(gIn) as tfl.SymbolicTensor;
  const img = tfl.layers.reshape({ targetShape: [28, 28, 1] }).apply(tfl.layers.dense({ units: 784, activation: 'sigmoid', kernelInitializer: glorot(2) }).apply(h)) as tfl.SymbolicTensor;
  const x = tfl.input({ shape: [28, 28, 1] });
  const f = tfl.layers.dense({ units: 32, activation: 'relu', kernelInitializer: glorot(3) }).apply(tfl.layers.flatten().apply(x)) as tfl.SymbolicTensor;
  const logit = tfl.layers.dense({ units: 1, kernelInitializer: glorot(4) }).apply(f) as tfl.SymbolicTensor;
  const classLogits = conditional ? (tfl.layers.dense({ units: 10, kernelInitializer: glorot(5) }).apply(f) as tfl.SymbolicTensor) : undefined;
  return {
    arch: conditional ? 'acgan' : 'mlp',
    generator: tfl.model({ inputs: conditional ? [z, c] : z, outputs: img }),
    discriminator: tfl.model({ inputs: x, outputs: classLogits ? [logit, classLogits] : logit }),
    conditional,
    categoricalCode: false,
    clusterCode: false,
    discriminatorTakesClass: false,
    auxiliaryClassifier: conditional,
    discriminatorNorm: 'none',
    latentDim: 16,
    numClasses: 10,
    imageShape: [28, 28, 1],
  };
}

test('GANs: discriminator and generator steps on 2 workers equal single-thread ones within float tolerance (no batch norm; ns, wgan-gp with its penalty, acgan\'s class losses)', async () => {
  for (const [loss, conditional] of [['ns', false], ['wgan-gp', false], ['ns', true]] as const) {
    const single = noBatchNormGan(conditional);
    const parallel = noBatchNormGan(conditional);
    const start = [...(await weightsOf(single.generator)), ...(await weightsOf(single.discriminator))];
    const gan = { epochs: 1, batchSize: 64, loss, seed: 5, criticSteps: 2 };
    const what = `${loss}${conditional ? ' conditional' : ''}`;
    try {
      const a = await trainGan(single, train, gan);
      const b = await trainGan(parallel, train, { ...gan, pool });
      const diff = stepDifference(start, [...(await weightsOf(single.generator)), ...(await weightsOf(single.discriminator))], [...(await weightsOf(parallel.generator)), ...(await weightsOf(parallel.discriminator))]);
      assert.ok(diff < 1e-4, `${what}: the runs differ by ${diff} of their step`);
      for (const key of ['dLoss', 'gLoss', 'dReal', 'dFake'] as const) {
        assert.ok(Math.abs(a.history[0][key] - b.history[0][key]) < 1e-4 * Math.max(1, Math.abs(a.history[0][key])), `${what}: ${key} ${a.history[0][key]} vs ${b.history[0][key]}`);
      }
    } finally {
      for (const m of [single, parallel]) {
        m.generator.dispose();
        m.discriminator.dispose();
      }
    }
  }
});

test('GANs with batch norm (scgan) on 2 workers: repeat runs are bit-identical', async () => {
  const runs: Float32Array[][] = [];
  for (let r = 0; r < 2; r++) {
    const models = buildGan('scgan', { imageShape: [28, 28, 1], numClasses: 10, seed: 4, latentDim: 16 });
    await trainGan(models, train, { epochs: 1, batchSize: 64, loss: 'ns', seed: 5, pool });
    runs.push([...(await weightsOf(models.generator)), ...(await weightsOf(models.discriminator))]);
    models.generator.dispose();
    models.discriminator.dispose();
  }
  assert.deepEqual(runs[1], runs[0]);
});

const aaeNets = (m: AaeModels) => [m.encoder, m.decoder, m.discriminator, ...(m.categoryDiscriminator ? [m.categoryDiscriminator] : [])];
const aaeWeights = async (m: AaeModels) => (await Promise.all(aaeNets(m).map(weightsOf))).flat();
const disposeAae = (m: AaeModels) => aaeNets(m).forEach((n) => n.dispose());

/** The AAE modes: plain, supervised prior, semi-supervised (noise on the category discriminator), clustering with the batch-level balance term. */
const aaeCases = (): [string, () => AaeModels, AaeTrainOptions][] => {
  const base = { epochs: 1, batchSize: 64, seed: 7 };
  const labelled = balancedSubset(train, 10, 30, 'n', 'train');
  return [
    ['gaussian', () => buildAae('mlp', { imageShape: [28, 28, 1], latentDim: 4, seed: 1 }), { ...base, prior: 'gaussian' }],
    ['supervised mixture prior', () => buildAae('mlp', { imageShape: [28, 28, 1], latentDim: 2, seed: 1, labelClasses: 10 }), { ...base, prior: 'mixture', supervisedPrior: true }],
    ['semi-supervised with noise', () => buildAae('mlp', { imageShape: [28, 28, 1], latentDim: 2, seed: 1, categories: 10 }), { ...base, prior: 'gaussian', labelled, categoryNoise: 0.3, labelledAugment: parseAugmentations('shift:2') }],
    ['clustering with balance', () => buildAae('mlp', { imageShape: [28, 28, 1], latentDim: 2, seed: 1, categories: 16 }), { ...base, prior: 'gaussian', categoryBalance: 1 }],
  ];
};

test('AAEs: every phase on 2 workers equals the single-thread phase within float tolerance (all modes, the balance term split exactly)', async () => {
  for (const [what, build, opts] of aaeCases()) {
    const single = build();
    const parallel = build();
    const start = await aaeWeights(single);
    try {
      const a = await trainAae(single, train, opts);
      const b = await trainAae(parallel, train, { ...opts, pool });
      const diff = stepDifference(start, await aaeWeights(single), await aaeWeights(parallel));
      assert.ok(diff < 1e-4, `${what}: the runs differ by ${diff} of their step`);
      for (const [key, x] of Object.entries(a.history[0])) {
        const y = (b.history[0] as unknown as Record<string, unknown>)[key];
        if (key === 'seconds' || x === null) {
          assert.equal(x === null, y === null, `${what}: ${key}`);
          continue;
        }
        assert.ok(Math.abs((x as number) - (y as number)) < 1e-4 * Math.max(1, Math.abs(x as number)), `${what}: ${key} ${x} vs ${y}`);
      }
    } finally {
      disposeAae(single);
      disposeAae(parallel);
    }
  }
});

test('AAEs on 2 workers: repeat runs and a killed-and-resumed run are bit-identical; trainer and worker tensors stay flat', async () => {
  const [, build, one] = aaeCases()[2];
  const opts = { ...one, epochs: 2, pool };
  const runs: Float32Array[][] = [];
  const workerTensors: number[][] = [];
  for (let r = 0; r < 2; r++) {
    const m = build();
    const before = tf.memory().numTensors;
    await trainAae(m, train, { ...opts, onProgress: (e) => { if (e.type === 'batch') workerTensors.push(pool.workers.map((w) => w.numTensors)); } });
    assert.equal(tf.memory().numTensors, before, 'trainer tensors');
    runs.push(await aaeWeights(m));
    disposeAae(m);
  }
  assert.deepEqual(runs[1], runs[0], 'a repeat run with the same seed and workers');
  // From the second step on (the workers' models are built by then), the count does not move.
  for (const c of workerTensors.slice(1)) assert.deepEqual(c, workerTensors[1], `worker tensors over the runs: ${JSON.stringify(workerTensors)}`);

  const store = new CheckpointFolder(join(dir, 'aae-resume'));
  const killed = build();
  await trainAae(killed, train, { ...opts, checkpoints: store, stopAfterEpochs: 1 });
  disposeAae(killed);
  const resumed = build();
  await trainAae(resumed, train, { ...opts, checkpoints: store, resume: true });
  assert.deepEqual(await aaeWeights(resumed), runs[0], 'killed after epoch 1 and resumed');
  disposeAae(resumed);
});

test('auto workers split batches only for models with a convolution', () => {
  const cnn = smallCnn();
  const mlp = buildModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
  try {
    assert.equal(worthSharding([cnn]), true);
    assert.equal(worthSharding([mlp]), false);
  } finally {
    cnn.dispose();
    mlp.dispose();
  }
});
