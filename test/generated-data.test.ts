/**
 * Robust training with generated data (Gowal et al. 2021; data/mix.ts,
 * generative/gan/generated-data.ts, jobs/generated-data.ts): every batch of b
 * holds exactly round(f·b) generated images; their labels are the class a
 * conditional generator was asked for, or a labeller's argmax (checked on
 * hand-made tiny generators whose images spell out what they were asked
 * for); seeds reproduce; epochs keep plain training's steps; fraction 0 is
 * plain training; 2 workers equal one within float tolerance; a killed run
 * resumes bit-identically; bad options are named; the CLI records it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf, tfl } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import type { BackendInfo } from '../src/engine/backend.js';
import type { ImageSet } from '../src/data/types.js';
import { batchOrder } from '../src/data/batches.js';
import { GeneratedStream, checkGeneratedMix, generatedSlots, makeMixedBatch, mixedBatchOrder, type GeneratedMix } from '../src/data/mix.js';
import { Rng } from '../src/util/rng.js';
import { checkGeneratedSource, defaultGeneratedCount, generatePool } from '../src/generative/gan/generated-data.js';
import { generatorSpec } from '../src/generative/gan/sample.js';
import { Classifier } from '../src/models/classifier.js';
import { trainClassifier, type TrainOptions, type TrainingDefense } from '../src/models/train.js';
import { buildModel } from '../src/models/zoo.js';
import { dataParallel } from '../src/models/data-parallel.js';
import { clearWorkerModels } from '../src/models/pool-model.js';
import { createDefense, defaultDefenseConfig } from '../src/defenses/defenses.js';
import { pooledTraining } from '../src/defenses/pooled.js';
import { CheckpointFolder } from '../src/node/checkpoint.js';
import { WorkerPool } from '../src/node/worker-pool.js';
import { saveModel } from '../src/node/model-files.js';
import { writeNpy } from '../src/node/data/formats/npy.js';
import { loadBuiltinDataset } from '../src/node/data/builtin.js';
import { take } from '../src/data/split.js';
import { trainRun } from '../src/jobs/train-run.js';
import { checkGeneratedOptions } from '../src/jobs/generated-data.js';
import { InputError } from '../src/errors.js';
import { advlabAsync, compileSchema, readJson } from './fixtures/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'advlab-generated-'));
let backend: BackendInfo;
before(async () => {
  backend = await initBackend({ backend: 'wasm' });
});
after(() => rmSync(dir, { recursive: true, force: true }));

const K = 3;
const SHAPE: [number, number, number] = [4, 4, 1];

/**
 * A class-conditional generator (inputs [z, one-hot class]) whose image for
 * class k has pixel 0 = (k + 1) / 8 and the other pixels (k + 1) / 8 + 0.01 z0:
 * the image says which class it was asked for, and z still matters.
 */
function conditionalGenerator(): tfl.LayersModel {
  const z = tfl.input({ shape: [2], name: 'z' });
  const c = tfl.input({ shape: [K], name: 'class' });
  const fromZ = tfl.layers.dense({ units: 16, useBias: false }).apply(z) as tfl.SymbolicTensor;
  const fromC = tfl.layers.dense({ units: 16, useBias: false }).apply(c) as tfl.SymbolicTensor;
  const sum = tfl.layers.add().apply([fromZ, fromC]) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: [z, c], outputs: tfl.layers.reshape({ targetShape: SHAPE }).apply(sum) as tfl.SymbolicTensor });
  const zKernel = new Float32Array(2 * 16);
  for (let p = 1; p < 16; p++) zKernel[p] = 0.01;
  const cKernel = new Float32Array(K * 16);
  for (let k = 0; k < K; k++) cKernel.fill((k + 1) / 8, k * 16, (k + 1) * 16);
  model.layers[2].setWeights([tf.tensor2d(zKernel, [2, 16])]);
  model.layers[3].setWeights([tf.tensor2d(cKernel, [K, 16])]);
  return model;
}

/** An unconditional generator: every pixel sigmoid(z0 + 0.5 z1 + 0.1 p) for pixel p. */
function unconditionalGenerator(): tfl.LayersModel {
  const z = tfl.input({ shape: [2], name: 'z' });
  const dense = tfl.layers.dense({ units: 16, activation: 'sigmoid' });
  const model = tfl.model({ inputs: z, outputs: tfl.layers.reshape({ targetShape: SHAPE }).apply(dense.apply(z)) as tfl.SymbolicTensor });
  const kernel = new Float32Array(32);
  kernel.fill(1, 0, 16);
  kernel.fill(0.5, 16, 32);
  dense.setWeights([tf.tensor2d(kernel, [2, 16]), tf.tensor1d(Float32Array.from({ length: 16 }, (_, p) => 0.1 * p))]);
  return model;
}

/** A labeller on the pixel sum s: logits [s, 12 - s, 0.5 s + 3], so its argmax is computable by hand. */
function labellerModel(): tfl.LayersModel {
  const model = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: SHAPE }), tfl.layers.dense({ units: K })] });
  const kernel = new Float32Array(16 * K);
  for (let p = 0; p < 16; p++) kernel.set([1, -1, 0.5], p * K);
  model.layers[1].setWeights([tf.tensor2d(kernel, [16, K]), tf.tensor1d([0, 12, 3])]);
  return model;
}
const labelByHand = (image: Float32Array): number => {
  const s = image.reduce((a, v) => a + v, 0);
  const logits = [s, 12 - s, 0.5 * s + 3];
  return logits.indexOf(Math.max(...logits));
};

/** Real 4x4 images: pixel 0 is 1 (real), pixel 1 the label / 10, pixel 2 the image's index / 1000. */
function realSet(n: number): ImageSet {
  const images = new Float32Array(n * 16);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % K;
    images.set([1, labels[i] / 10, i / 1000], i * 16);
    for (let p = 3; p < 16; p++) images[i * 16 + p] = ((i * 7 + p * 3) % 11) / 20;
  }
  return { images, labels, count: n, imageShape: SHAPE };
}

/** A tiny classifier on the 4x4 images (logits, no batch norm); fixed names, so checkpoints know it again. */
function tinyClassifier(seed = 1): tfl.LayersModel {
  return tfl.sequential({
    name: 'tiny',
    layers: [
      tfl.layers.flatten({ inputShape: SHAPE, name: 'flat' }),
      tfl.layers.dense({ units: 8, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed }), name: 'hidden' }),
      tfl.layers.dense({ units: K, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }), name: 'logits' }),
    ],
  });
}

/** A "defense" that trains on the clean batch and records every batch it is given. */
function recorder(): TrainingDefense & { batches: { x: Float32Array; y: Int32Array }[] } {
  const batches: { x: Float32Array; y: Int32Array }[] = [];
  return {
    batches,
    epsAt: () => 0,
    async perturb(_m, b) {
      batches.push({ x: (await b.x.data()) as Float32Array, y: (await b.y.data()) as Int32Array });
      return tf.clone(b.x);
    },
    loss(model, clean, _p, y, k) {
      const logits = model.apply(clean, { training: true }) as tf.Tensor2D;
      return { loss: tf.losses.softmaxCrossEntropy(tf.oneHot(y, k), logits) as tf.Scalar, logits };
    },
  };
}

const weightsOf = async (m: tfl.LayersModel) => Promise.all(m.weights.map(async (w) => (await w.read().data()) as Float32Array));

test('mixedBatchOrder: batch sizes of plain training, round(f·b) generated per batch, real images unrepeated within an epoch, the pool used up before any repeats', () => {
  const stream = new GeneratedStream(50, 7);
  for (const f of [0.3, 0.5, 0.7, 0.99]) {
    const plans = mixedBatchOrder(101, 16, f, stream, 1, new Rng(3));
    const plain = batchOrder(101, 16, new Rng(3));
    assert.deepEqual(plans.map((p) => p.real.length + p.generated.length), plain.map((o) => o.length), 'the same steps and sizes as plain training');
    plans.forEach((p) => assert.equal(p.generated.length, Math.round(f * (p.real.length + p.generated.length))));
    const real = plans.flatMap((p) => [...p.real]);
    assert.equal(new Set(real).size, real.length, 'no real image twice in an epoch');
    // The real part is the head of the epoch's permutation, as plain training's shuffle draws it.
    assert.deepEqual(real, [...new Rng(3).permutation(101).subarray(0, real.length)]);
  }
  // Epochs 1-2 at f = 0.7 draw 2 x 70 generated images (6 x 11 + round(3.5)) from a pool of 50: every image once before any twice.
  const g = [1, 2].flatMap((e) => mixedBatchOrder(101, 16, 0.7, stream, e, new Rng(e)).flatMap((p) => [...p.generated]));
  assert.equal(g.length, 140);
  assert.equal(new Set(g.slice(0, 50)).size, 50);
  assert.equal(new Set(g.slice(50, 100)).size, 50);
  assert.deepEqual(new GeneratedStream(50, 7).take(70, 70), Int32Array.from(g.slice(70)), 'epoch 2 needs no state of epoch 1 (resume)');
  assert.notDeepEqual(new GeneratedStream(50, 8).take(0, 50), new GeneratedStream(50, 7).take(0, 50), 'another seed, another order');
  // Fraction 0 is plain training's order.
  assert.deepEqual(mixedBatchOrder(101, 16, 0, stream, 1, new Rng(3)).map((p) => [...p.real]), batchOrder(101, 16, new Rng(3)).map((o) => [...o]));
  // Generated slots are spread: every contiguous half holds half of them (up to one).
  const slots = generatedSlots(64, 45);
  assert.equal(slots.reduce((a, b) => a + b, 0), 45);
  assert.ok(Math.abs(slots.subarray(0, 32).reduce((a, b) => a + b, 0) - 22.5) <= 1);
  // A mixed batch: images and labels from their sets in their slots; indices into the real set, then the pool.
  const real = realSet(10);
  const pool: ImageSet = { ...realSet(6), images: realSet(6).images.map((v) => v / 2) };
  const batch = makeMixedBatch(real, pool, { real: Int32Array.from([4, 1, 7]), generated: Int32Array.from([5, 0]) });
  const mask = generatedSlots(5, 2);
  assert.deepEqual([...batch.indices], [...mask].map((m, k) => (m ? 10 + [5, 0][[...mask].slice(0, k).filter(Boolean).length] : [4, 1, 7][[...mask].slice(0, k).filter((v) => !v).length])));
  const x = batch.x.dataSync();
  const y = batch.y.dataSync();
  [...batch.indices].forEach((i, k) => {
    const [set, j] = i >= 10 ? [pool, i - 10] : [real, i];
    assert.deepEqual(x.subarray(k * 16, (k + 1) * 16), set.images.subarray(j * 16, (j + 1) * 16));
    assert.equal(y[k], set.labels[j]);
  });
  tf.dispose([batch.x, batch.y]);
});

test('conditional generator: each image carries the class it was asked for, classes uniform; seeds reproduce; numTensors unchanged', async () => {
  const gen = conditionalGenerator();
  const spec = generatorSpec(gen, 'cond', null);
  const before = tf.memory().numTensors;
  const pool = await generatePool(gen, spec, { n: 600, seed: 4, classConditional: true, data: { imageShape: SHAPE, numClasses: K }, chunk: 256 });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(pool.labels, 'generator');
  assert.equal(pool.classAgreement, null);
  for (let i = 0; i < 600; i++) {
    const asked = Math.round(pool.set.images[i * 16] * 8) - 1;
    assert.equal(pool.set.labels[i], asked, `image ${i}`);
  }
  assert.deepEqual(pool.classCounts, [0, 1, 2].map((k) => pool.set.labels.filter((l) => l === k).length));
  pool.classCounts.forEach((c) => assert.ok(Math.abs(c - 200) < 50, `uniform classes: ${pool.classCounts}`));
  const again = await generatePool(gen, spec, { n: 600, seed: 4, classConditional: true, data: { imageShape: SHAPE, numClasses: K } });
  assert.deepEqual(again.set.images, pool.set.images, 'the same seed (another chunk size) gives the same images');
  assert.deepEqual(again.set.labels, pool.set.labels);
  assert.equal(again.fingerprint, pool.fingerprint);
  const other = await generatePool(gen, spec, { n: 600, seed: 5, classConditional: true, data: { imageShape: SHAPE, numClasses: K } });
  assert.notEqual(other.fingerprint, pool.fingerprint);
  // A labeller given too labels the images instead, and says how often it agrees with the class asked for.
  const labeller = Classifier.fromModel(labellerModel());
  const relabelled = await generatePool(gen, spec, { n: 600, seed: 4, classConditional: true, labeller, data: { imageShape: SHAPE, numClasses: K } });
  labeller.dispose();
  assert.equal(relabelled.labels, 'labeller');
  let agree = 0;
  for (let i = 0; i < 600; i++) {
    assert.equal(relabelled.set.labels[i], labelByHand(relabelled.set.images.subarray(i * 16, (i + 1) * 16)));
    if (relabelled.set.labels[i] === pool.set.labels[i]) agree++;
  }
  assert.equal(relabelled.classAgreement, agree / 600);
  gen.dispose();
});

test("unconditional generator: each image is labelled with the labeller's argmax; numTensors unchanged", async () => {
  const gen = unconditionalGenerator();
  const model = labellerModel();
  const labeller = Classifier.fromModel(model);
  const spec = generatorSpec(gen, 'uncond', null);
  const before = tf.memory().numTensors;
  const pool = await generatePool(gen, spec, { n: 500, seed: 1, classConditional: false, labeller, data: { imageShape: SHAPE, numClasses: K } });
  assert.equal(tf.memory().numTensors, before);
  for (let i = 0; i < 500; i++) assert.equal(pool.set.labels[i], labelByHand(pool.set.images.subarray(i * 16, (i + 1) * 16)), `image ${i}`);
  assert.ok(pool.classCounts.filter((c) => c > 0).length >= 2, `the labels vary: ${pool.classCounts}`);
  assert.equal(pool.labels, 'labeller');
  labeller.dispose();
  model.dispose();
  gen.dispose();
});

test('trainClassifier with generated data: every batch holds round(f·b) generated images with their labels and the rest real ones; an epoch keeps the steps of plain training', async () => {
  const real = realSet(50);
  const gen = conditionalGenerator();
  const pool = await generatePool(gen, generatorSpec(gen, 'cond', null), { n: 40, seed: 2, classConditional: true, data: { imageShape: SHAPE, numClasses: K } });
  gen.dispose();
  for (const fraction of [0.7, 0.25]) {
    const rec = recorder();
    const model = tinyClassifier();
    const events: string[] = [];
    await trainClassifier(model, real, { epochs: 2, batchSize: 16, learningRate: 1e-2, seed: 3, defense: rec, generated: { pool: pool.set, fraction }, onProgress: (e) => e.type === 'epoch-start' && events.push(`${e.batches}`) });
    model.dispose();
    assert.deepEqual(events, ['4', '4'], 'ceil(50 / 16) steps per epoch, as without generated data');
    assert.equal(rec.batches.length, 8);
    for (const [e, epochBatches] of [rec.batches.slice(0, 4), rec.batches.slice(4)].entries()) {
      const seenReal = new Set<number>();
      for (const { x, y } of epochBatches) {
        const b = y.length;
        let generated = 0;
        for (let k = 0; k < b; k++) {
          const image = x.subarray(k * 16, (k + 1) * 16);
          if (image[0] === 1) {
            assert.equal(y[k], Math.round(image[1] * 10), 'a real image keeps its label');
            const id = Math.round(image[2] * 1000);
            assert.ok(!seenReal.has(id), `real image ${id} twice in epoch ${e + 1}`);
            seenReal.add(id);
          } else {
            generated++;
            assert.equal(y[k], Math.round(image[0] * 8) - 1, 'a generated image is labelled with the class it was asked for');
          }
        }
        assert.equal(generated, Math.round(fraction * b), `batch of ${b} at f = ${fraction}`);
      }
    }
  }
});

test('fraction 0 trains exactly as plain training; a run with generated data stopped after epoch 1 and resumed equals the uninterrupted one; other generated data is refused on resume', async () => {
  const real = realSet(60);
  const pool: ImageSet = { ...realSet(30), images: realSet(30).images.map((v) => 1 - v) };
  const opts: TrainOptions = { epochs: 2, batchSize: 16, learningRate: 1e-2, seed: 9 };
  const plain = tinyClassifier();
  await trainClassifier(plain, real, opts);
  const zero = tinyClassifier();
  await trainClassifier(zero, real, { ...opts, generated: { pool, fraction: 0 } });
  assert.deepEqual(await weightsOf(zero), await weightsOf(plain));

  const mix: GeneratedMix = { pool, fraction: 0.6 };
  const full = tinyClassifier();
  await trainClassifier(full, real, { ...opts, generated: mix });
  assert.notDeepEqual(await weightsOf(full), await weightsOf(plain));
  const store = new CheckpointFolder(join(dir, 'resume'));
  const killed = tinyClassifier();
  await trainClassifier(killed, real, { ...opts, generated: mix, checkpoints: store, stopAfterEpochs: 1 });
  const resumed = tinyClassifier();
  const before = tf.memory().numTensors;
  await trainClassifier(resumed, real, { ...opts, generated: mix, checkpoints: store, resume: true });
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(await weightsOf(resumed), await weightsOf(full));
  const refused = (e: unknown) => e instanceof InputError && e.argument === 'resume' && /generated data/.test(e.message);
  await assert.rejects(trainClassifier(tinyClassifier(), real, { ...opts, generated: { pool, fraction: 0.5 }, checkpoints: store, resume: true }), refused);
  await assert.rejects(trainClassifier(tinyClassifier(), real, { ...opts, generated: { pool: { ...pool, labels: pool.labels.map((l) => (l + 1) % K) }, fraction: 0.6 }, checkpoints: store, resume: true }), refused);
  await assert.rejects(trainClassifier(tinyClassifier(), real, { ...opts, checkpoints: store, resume: true }), refused);
  for (const m of [plain, zero, full, killed, resumed]) m.dispose();
});

test('2 workers equal one within float tolerance with generated data (plain and PGD-AT); repeat runs on 2 workers are bit-identical', async () => {
  const pool2 = await WorkerPool.start({ size: 2, backend: 'wasm', kernels: 'advlab' });
  try {
    const data = loadBuiltinDataset('mnist');
    const real = take(data.train, Int32Array.from({ length: 128 }, (_, i) => i * 37), 784);
    // Stand-in generated images: other training images with their labels (the mixing, not the images, is under test).
    const mix: GeneratedMix = { pool: take(data.train, Int32Array.from({ length: 96 }, (_, i) => i * 41 + 5), 784), fraction: 0.7 };
    const cnn = () => buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 3 });
    const opts: TrainOptions = { epochs: 1, batchSize: 64, learningRate: 1e-3, schedule: 'constant', seed: 11, generated: mix };
    const defense = createDefense(defaultDefenseConfig('pgd-at', { eps: 0.1, steps: 2, stepSize: 0.08, epsWarmupEpochs: 0 }));
    for (const [name, extra, parallel] of [
      ['plain', {}, dataParallel(pool2)],
      ['pgd-at', { defense }, pooledTraining(defense, pool2)],
    ] as const) {
      const single = cnn();
      const split = cnn();
      const start = await weightsOf(single);
      const a = await trainClassifier(single, real, { ...opts, ...extra });
      const b = await trainClassifier(split, real, { ...opts, ...extra, parallel });
      const w1 = await weightsOf(single);
      const w2 = await weightsOf(split);
      let diff = 0;
      let step = 0;
      w1.forEach((x, i) => x.forEach((v, k) => ((diff += (v - w2[i][k]) ** 2), (step += (v - start[i][k]) ** 2))));
      assert.ok(Math.sqrt(diff / step) < 1e-4, `${name}: the runs differ by ${Math.sqrt(diff / step)} of their step`);
      assert.equal(a.history[0].trainAccuracy, b.history[0].trainAccuracy, name);
      const again = cnn();
      await trainClassifier(again, real, { ...opts, ...extra, parallel });
      assert.deepEqual(await weightsOf(again), w2, `${name}: repeat run on 2 workers`);
      for (const m of [single, split, again]) m.dispose();
    }
  } finally {
    await pool2.close();
    await clearWorkerModels();
  }
});

test('bad input is refused naming the argument', async () => {
  const real = realSet(20);
  const named = (argument: string, message: RegExp) => (e: unknown) => e instanceof InputError && e.argument === argument && message.test(e.message);
  const pool = realSet(10);
  for (const fraction of [-0.1, 1, 1.5, NaN]) assert.throws(() => checkGeneratedMix({ pool, fraction }, real, K), named('generatedFraction', /expected a share of each batch in \[0, 1\)/));
  assert.throws(() => checkGeneratedMix({ pool: { ...pool, imageShape: [2, 8, 1] }, fraction: 0.5 }, real, K), named('generated', /shape \[2, 8, 1\] do not match the training images' \[4, 4, 1\]/));
  assert.throws(() => checkGeneratedMix({ pool: { ...pool, labels: pool.labels.map(() => 5) }, fraction: 0.5 }, real, K), named('generated', /labelled 5, outside the model's 3 classes/));
  await assert.rejects(trainClassifier(tinyClassifier(), real, { epochs: 1, batchSize: 8, learningRate: 1e-3, seed: 0, generated: { pool, fraction: 1 } }), named('generatedFraction', /got 1/));

  const cond = conditionalGenerator();
  const uncond = unconditionalGenerator();
  const condSpec = generatorSpec(cond, 'cond', null);
  const uncondSpec = generatorSpec(uncond, 'uncond', null);
  const data = { imageShape: SHAPE, numClasses: K };
  assert.throws(() => checkGeneratedSource(condSpec, { n: 10, classConditional: true, data: { imageShape: [8, 8, 1], numClasses: K } }), named('generated', /makes images of shape \[4, 4, 1\] but the training images are \[8, 8, 1\]/));
  assert.throws(() => checkGeneratedSource(condSpec, { n: 10, classConditional: true, data: { imageShape: SHAPE, numClasses: 10 } }), named('generated', /class input has 3 classes but the dataset has 10/));
  assert.throws(() => checkGeneratedSource(uncondSpec, { n: 10, classConditional: true, data }), named('generated', /no class input/));
  assert.throws(() => checkGeneratedSource(uncondSpec, { n: 10, classConditional: false, data }), named('generatedLabeller', /required for a generator that is not class-conditional/));
  const wrong = Classifier.fromModel(tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: SHAPE }), tfl.layers.dense({ units: 5 })] }));
  assert.throws(() => checkGeneratedSource(uncondSpec, { n: 10, classConditional: false, labeller: wrong, data }), named('generatedLabeller', /gives 5 classes but the dataset has 3/));
  for (const n of [0, 2.5, 1e9]) assert.throws(() => checkGeneratedSource(condSpec, { n, classConditional: true, data }), named('generatedN', /expected an integer in \[1, /));
  assert.equal(defaultGeneratedCount(1000, [28, 28, 1]), 10000);
  assert.equal(defaultGeneratedCount(56000, [28, 28, 1]), Math.floor(2 ** 28 / (4 * 784)), 'capped at 256 MiB');

  assert.throws(() => checkGeneratedOptions({ generatedFraction: 0.5 }), named('generatedFraction', /only applies with --generated/));
  assert.throws(() => checkGeneratedOptions({ generatedLabeller: 'x' }), named('generatedLabeller', /only applies with --generated/));
  assert.throws(() => checkGeneratedOptions({ generated: 'g', generatedFraction: 1 }), named('generatedFraction', /\[0, 1\)/));
  assert.throws(() => checkGeneratedOptions({ generated: 'g', generatedN: 0 }), named('generatedN', /positive integer/));
  cond.dispose();
  uncond.dispose();
});

/** A tiny NPY dataset of 4x4 images in 3 classes (class k: a bright row k), and the tiny generators saved as an advlab gan run folder and a bare generator folder. */
async function tinyInputs(): Promise<{ data: string; cganRun: string; bareGenerator: string; labeller: string }> {
  const root = join(dir, 'inputs');
  if (existsSync(join(root, 'labeller', 'model.json'))) return { data: join(root, 'data'), cganRun: join(root, 'cgan'), bareGenerator: join(root, 'bare'), labeller: join(root, 'labeller') };
  const n = 120;
  const x = new Float32Array(n * 16);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % K;
    for (let p = 0; p < 16; p++) x[i * 16 + p] = (Math.floor(p / 4) === y[i] ? 0.8 : 0) + ((i * 5 + p * 3) % 7) / 40;
  }
  writeNpy(join(root, 'data', 'images.npy'), x, [n, 4, 4, 1]);
  writeNpy(join(root, 'data', 'labels.npy'), y, [n]);
  const cgan = conditionalGenerator();
  await saveModel(cgan, join(root, 'cgan', 'generator'));
  writeFileSync(join(root, 'cgan', 'result.json'), JSON.stringify({ command: 'gan', generator: { arch: 'cgan', conditional: true, latentDim: 2, numClasses: K }, dataset: { trainSize: 500 } }));
  await saveModel(cgan, join(root, 'bare'));
  cgan.dispose();
  const labeller = labellerModel();
  await saveModel(labeller, join(root, 'labeller'));
  labeller.dispose();
  return { data: join(root, 'data'), cganRun: join(root, 'cgan'), bareGenerator: join(root, 'bare'), labeller: join(root, 'labeller') };
}

test('trainRun with --generated: records the generated data, resumes bit-identically from its seed; a bare generator folder with a one-hot input needs its run folder or a labeller; numTensors unchanged', async () => {
  const inputs = await tinyInputs();
  const common = { model: 'mlp', dataset: inputs.data, epochs: 2, batchSize: 16, seed: 2, workers: 1, generated: inputs.cganRun, generatedFraction: 0.5 } as const;
  const before = tf.memory().numTensors;
  const events: string[] = [];
  const full = await trainRun({ ...common, out: join(dir, 'run-full'), onProgress: (e) => (e.type === 'generating' || e.type === 'generated') && events.push(e.type) }, backend);
  assert.equal(tf.memory().numTensors, before);
  const g = full.generated!;
  assert.equal(g.n, 10 * full.dataset.trainSize, 'default: 10x the real training set');
  assert.deepEqual({ arch: g.arch, labels: g.labels, labeller: g.labeller, fraction: g.fraction, perBatch: g.perBatch, classAgreement: g.classAgreement }, { arch: 'cgan', labels: 'generator', labeller: null, fraction: 0.5, perBatch: 8, classAgreement: null });
  assert.equal(g.classCounts.reduce((a, b) => a + b, 0), g.n);
  assert.deepEqual({ generatorTrainSize: g.generatorTrainSize, realTrainSize: g.realTrainSize }, { generatorTrainSize: 500, realTrainSize: full.dataset.trainSize }, 'the generator saw more real images than this run: recorded');
  assert.equal(events[0], 'generating');
  assert.equal(events[events.length - 1], 'generated');
  const validate = compileSchema('schemas/train.result.schema.json');
  assert.ok(validate(readJson(join(dir, 'run-full', 'result.json'))), JSON.stringify(validate.errors));

  await trainRun({ ...common, out: join(dir, 'run-killed'), stopAfterEpochs: 1 }, backend);
  const resumed = await trainRun({ ...common, out: join(dir, 'run-killed'), resume: true }, backend);
  assert.equal(resumed.resumedFromEpoch, 1);
  assert.equal(resumed.generated!.sha256, g.sha256, 'the pool regenerated from the seed');
  assert.deepEqual(readFileSync(join(dir, 'run-killed', 'model', 'weights.bin')), readFileSync(join(dir, 'run-full', 'model', 'weights.bin')));

  const named = (argument: string, message: RegExp) => (e: unknown) => e instanceof InputError && e.argument === argument && message.test(e.message);
  await assert.rejects(trainRun({ ...common, generated: inputs.bareGenerator, out: join(dir, 'run-bare') }, backend), named('generated', /no advlab gan result\.json beside it/));
  await assert.rejects(trainRun({ ...common, generated: join(dir, 'nowhere'), out: join(dir, 'run-nowhere') }, backend), named('generated', /does not exist/));
  await assert.rejects(trainRun({ ...common, generatedLabeller: 'assets/models/mnist-small-cnn', out: join(dir, 'run-mismatch') }, backend), named('generatedLabeller', /shape/));
  // With a labeller, the bare folder's images are pseudo-labelled.
  const bare = await trainRun({ ...common, epochs: 1, generated: inputs.bareGenerator, generatedLabeller: inputs.labeller, generatedN: 50, out: join(dir, 'run-bare-labelled') }, backend);
  assert.deepEqual({ arch: bare.generated!.arch, labels: bare.generated!.labels, n: bare.generated!.n, generatorTrainSize: bare.generated!.generatorTrainSize }, { arch: null, labels: 'labeller', n: 50, generatorTrainSize: null });
  assert.equal(tf.memory().numTensors, before);
});

test('advlab train --generated (CLI): a tiny PGD-AT run with an unconditional generator and a labeller completes and records it; bad options exit 2 naming the option', async () => {
  const out = join(dir, 'cli');
  const [ok, ...bad] = await Promise.all([
    advlabAsync(['train', '--model', 'mlp', '--dataset', 'mnist', '--train-n', '300', '--epochs', '1', '--out', out, '--no-progress', '--defense', 'pgd-at', '--defense-steps', '2', '--no-eval', '--workers', '1',
      '--generated', 'assets/models/mnist-scgan-generator', '--generated-labeller', 'assets/models/mnist-small-cnn', '--generated-n', '200', '--generated-fraction', '0.5']),
    advlabAsync(['train', '--model', 'mlp', '--epochs', '1', '--out', join(dir, 'bad1'), '--no-progress', '--generated', 'assets/models/mnist-scgan-generator', '--generated-fraction', '1']),
  ]);
  const [noLabeller, orphan] = await Promise.all([
    advlabAsync(['train', '--model', 'mlp', '--train-n', '300', '--epochs', '1', '--out', join(dir, 'bad2'), '--no-progress', '--generated', 'assets/models/mnist-scgan-generator']),
    advlabAsync(['train', '--model', 'mlp', '--epochs', '1', '--out', join(dir, 'bad3'), '--no-progress', '--generated-n', '10']),
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^generated: 200 images from assets\/models\/mnist-scgan-generator, labelled by assets\/models\/mnist-small-cnn; 32 of every 64 in a batch/m);
  const result = readJson(join(out, 'result.json'));
  const validate = compileSchema('schemas/train.result.schema.json');
  assert.ok(validate(result), JSON.stringify(validate.errors));
  assert.equal(result.defense.name, 'pgd-at');
  assert.deepEqual({ n: result.generated.n, fraction: result.generated.fraction, labels: result.generated.labels, labeller: result.generated.labeller, arch: result.generated.arch }, { n: 200, fraction: 0.5, labels: 'labeller', labeller: 'assets/models/mnist-small-cnn', arch: null });
  // scgan's mnist digits, read by the shipped classifier: every digit turns up.
  assert.ok(result.generated.classCounts.every((c: number) => c > 0), `${result.generated.classCounts}`);

  const cases: [typeof ok, RegExp][] = [
    [bad[0], /^advlab: --generated-fraction: expected a share of each batch in \[0, 1\), got 1$/],
    [noLabeller, /^advlab: --generated-labeller: required for a generator that is not class-conditional/],
    [orphan, /^advlab: --generated-n: only applies with --generated$/],
  ];
  for (const [r, message] of cases) {
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.split('\n')[0], message);
  }
  assert.ok(!existsSync(join(dir, 'bad1')) && !existsSync(join(dir, 'bad3')), 'bad options write nothing');
});
