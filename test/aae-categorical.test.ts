/**
 * The categorical + style AAE (Makhzani et al. 2015, Figure 8): semi-supervised
 * classification (section 5) and unsupervised clustering (section 6). The
 * error figures against hand computations, the categorical prior, the
 * architecture's two heads, the seeded class-balanced labelled subset, a tiny
 * semi-supervised run that beats chance without leaking tensors, and
 * kill-and-resume ending bit-identical in both modes.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import type { BackendInfo } from '../src/engine/backend.js';
import { loadBuiltinDataset } from '../src/node/data/builtin.js';
import { balancedSubset } from '../src/data/subset.js';
import type { Dataset, ImageSet } from '../src/data/types.js';
import { InputError } from '../src/errors.js';
import { Rng } from '../src/util/rng.js';
import { CLASS_HEAD, buildAae, categoricalCodes, encodeCategorical, encodeImages, reconstructImages, type AaeModels } from '../src/generative/aae/architectures.js';
import { predictedCategories, classificationError, clusteringError } from '../src/generative/aae/clustering.js';
import { sampleCategorical } from '../src/generative/aae/priors.js';
import { categoryBalanceLoss } from '../src/generative/aae/losses.js';
import { trainAae, type AaeTrainOptions } from '../src/generative/aae/train-aae.js';
import { DEFAULT_CLUSTER_BALANCE, aaeRun, labelledSubset } from '../src/jobs/aae-run.js';
import { CheckpointFolder } from '../src/node/checkpoint.js';

/** Clusters more the balance term must use in the collapse test (half the measured gap; see the test). */
const GAP = 4;

let backend: BackendInfo;
let data: Dataset;
let small: ImageSet;

before(async () => {
  backend = await initBackend({ backend: 'wasm' });
  data = loadBuiltinDataset('mnist');
  small = balancedSubset(data.train, 10, 96, 'n', 'train');
});

const weightsOf = (m: { getWeights(): tf.Tensor[] }) => m.getWeights().map((w) => Array.from(w.dataSync()));
const dispose = (m: AaeModels) => [m.encoder, m.decoder, m.discriminator, m.categoryDiscriminator].forEach((x) => x?.dispose());
const isInputError = (argument: string, pattern?: RegExp) => (e: unknown) => e instanceof InputError && e.argument === argument && (!pattern || pattern.test(e.message));

test('clustering error by hand: majority training label per cluster (a tie to the lowest label, an empty cluster), scored on test assignments', () => {
  // 4 clusters, 3 classes. Training images (cluster: labels):
  //   0: 2, 2, 1      -> label 2 (two of three)
  //   1: 0, 1         -> tie between 0 and 1 -> label 0 (the lowest)
  //   2: (none)       -> no label: its test images are errors
  //   3: 1, 1, 1, 0   -> label 1
  const trainClusters = [0, 0, 0, 1, 1, 3, 3, 3, 3];
  const trainLabels = [2, 2, 1, 0, 1, 1, 1, 1, 0];
  // Test images (cluster, label) and whether the mapping gets them right:
  //   (0, 2) yes  (0, 1) no   (1, 0) yes  (1, 1) no   (2, 0) no (empty cluster)
  //   (3, 1) yes  (3, 1) yes  (3, 2) no
  const testClusters = [0, 0, 1, 1, 2, 3, 3, 3];
  const testLabels = [2, 1, 0, 1, 0, 1, 1, 2];
  const r = clusteringError(trainClusters, trainLabels, testClusters, testLabels, 4, 3);
  assert.deepEqual(r.clusterLabels, [2, 0, null, 1]);
  assert.deepEqual(r.trainSizes, [3, 2, 0, 4]);
  assert.deepEqual(r.testSizes, [2, 2, 1, 3]);
  assert.deepEqual([r.clusters, r.images, r.errors, r.emptyClusters], [4, 8, 4, 1]);
  assert.equal(r.error, 4 / 8);
  // Perfect clusters: error 0; one cluster for everything: 1 - the majority's share.
  assert.equal(clusteringError([0, 1, 2], [2, 0, 1], [2, 0, 1], [1, 2, 0], 3, 3).error, 0);
  assert.equal(clusteringError([0, 0, 0, 0], [1, 1, 0, 2], [0, 0, 0], [1, 0, 2], 1, 3).error, 2 / 3);
  assert.throws(() => clusteringError([0, 5], [0, 1], [0], [0], 4, 3), isInputError('trainClusters'));
  assert.throws(() => clusteringError([0], [0], [0], [3], 4, 3), isInputError('testLabels'));
  assert.throws(() => clusteringError([0, 1], [0], [0], [0], 4, 3), isInputError('trainClusters'));
});

test('semi-supervised error by hand: argmax of the class logits (ties to the lowest class) against the labels', () => {
  // 5 images, 3 classes. Row 2 ties classes 0 and 2 -> 0; row 4 has all equal -> 0.
  const logits = Float32Array.from([
    [0.1, 2.0, -1.0],
    [3.0, 1.0, 0.5],
    [1.5, -2.0, 1.5],
    [-5.0, -4.0, -3.0],
    [0.0, 0.0, 0.0],
  ].flat());
  const predicted = predictedCategories(logits, 3);
  assert.deepEqual(Array.from(predicted), [1, 0, 0, 2, 0]);
  const r = classificationError(predicted, Int32Array.from([1, 1, 2, 2, 0]));
  // Wrong: row 1 (0 for 1) and row 2 (0 for 2).
  assert.deepEqual(r, { images: 5, errors: 2, error: 0.4 });
  assert.throws(() => predictedCategories(logits, 4), isInputError('values'));
  assert.throws(() => classificationError([0, 1], [0]), isInputError('predicted'));
});

test('the categorical prior: one-hot rows, uniform categories, seeded', () => {
  const n = 20000;
  const k = 16;
  const a = sampleCategorical(n, k, new Rng(5));
  const b = sampleCategorical(n, k, new Rng(5));
  assert.deepEqual(a, b);
  const counts = new Array<number>(k).fill(0);
  for (let i = 0; i < n; i++) {
    const row = a.y.subarray(i * k, (i + 1) * k);
    assert.equal(row.reduce((s, v) => s + v, 0), 1);
    assert.equal(row[a.category[i]], 1);
    counts[a.category[i]]++;
  }
  // Each count is Binomial(n, 1/16): mean 1250, sd 34; 5 sd either way.
  for (const c of counts) assert.ok(Math.abs(c - n / k) < 5 * Math.sqrt((n * (k - 1)) / k ** 2), `counts ${counts}`);
  assert.throws(() => sampleCategorical(3, 1, new Rng(0)), isInputError('k'));
});

test('categorical architecture: z and class logits from the encoder, the decoder on [y, z], a category discriminator; helpers leave no tensor', async () => {
  for (const arch of ['mlp', 'conv']) {
    const m = buildAae(arch, { imageShape: [28, 28, 1], latentDim: 3, seed: 2, categories: 16 });
    assert.equal(m.categories, 16);
    assert.deepEqual(m.encoder.outputs.map((o) => o.shape), [[null, 3], [null, 16]]);
    assert.deepEqual(m.decoder.inputs[0].shape, [null, 19]);
    assert.deepEqual(m.categoryDiscriminator!.inputs[0].shape, [null, 16]);
    assert.deepEqual(m.categoryDiscriminator!.outputs[0].shape, [null, 1]);
    assert.ok(m.encoder.getLayer(CLASS_HEAD));
    const before = tf.memory().numTensors;
    const images = small.images.subarray(0, 5 * 784);
    const c = await encodeCategorical(m.encoder, images, [28, 28, 1]);
    assert.deepEqual([c.n, c.z.length, c.logits.length], [5, 15, 80]);
    assert.deepEqual(await encodeImages(m.encoder, images, [28, 28, 1]), c.z, 'encodeImages gives the style codes');
    const rec = await reconstructImages(m, images);
    assert.ok(rec.length === 5 * 784 && rec.every((v) => v >= 0 && v <= 1));
    assert.equal(tf.memory().numTensors, before);
    dispose(m);
  }
  // [y, z] rows: softmax of the logits (each row sums to 1), then z.
  const codes = categoricalCodes(Float32Array.from([0, Math.log(3), 1000, 0]), Float32Array.from([7, 8, 9, 10]), 2, 2);
  assert.deepEqual(Array.from(codes, (v) => Math.round(v * 1e6) / 1e6), [0.25, 0.75, 7, 8, 1, 0, 9, 10]);
  assert.deepEqual(Array.from(categoricalCodes(Float32Array.from([0, 1]), Float32Array.from([5]), 2, 1, false)), [0, 1, 5]);
  assert.throws(() => buildAae('mlp', { imageShape: [28, 28, 1], seed: 0, categories: 1 }), isInputError('categories'));
  assert.throws(() => buildAae('mlp', { imageShape: [28, 28, 1], seed: 0, categories: 10, labelClasses: 10 }), isInputError('categories'));
  const plain = buildAae('mlp', { imageShape: [28, 28, 1], seed: 0 });
  assert.equal(plain.categoryDiscriminator, null);
  await assert.rejects(encodeCategorical(plain.encoder, small.images.subarray(0, 784), [28, 28, 1]), isInputError('encoder'));
  dispose(plain);
});

test('the labelled subset is class-balanced and seeded; too few or too many labels are refused naming labels', () => {
  const a = labelledSubset(data.train, 10, 100, 0);
  const counts = new Array<number>(10).fill(0);
  for (const l of a.labels) counts[l]++;
  assert.deepEqual(counts, new Array(10).fill(10));
  assert.deepEqual(labelledSubset(data.train, 10, 100, 0).images, a.images, 'same seed, same images');
  assert.notDeepEqual(labelledSubset(data.train, 10, 100, 1).images, a.images, 'another seed, other images');
  assert.notDeepEqual(a.images, balancedSubset(data.train, 10, 100, 'n', 'train').images, 'not just the first images of each class');
  assert.throws(() => labelledSubset(data.train, 10, 9, 0), isInputError('labels', /at least one labelled image per class/));
  assert.throws(() => labelledSubset(small, 10, 97, 0), isInputError('labels', /only 96/));
});

/**
 * Semi-supervised training on 300 images with 100 labels for 3 epochs of 6
 * steps, scored on the whole test split (2,004 images). Chance is 90% error.
 * The run is seeded and deterministic on one backend: on wasm its test error
 * is 46.3%, 34.6% and 29.1% after epochs 1, 2 and 3, falling with the
 * classification loss (1.93, 1.10, 0.52). The bound asserted is 50%: over 20
 * points above the figure reached, room for another backend's rounding (or
 * a retuned default) to move it, yet it fails a class head that learned
 * nothing from the labels (90%) or collapsed onto a few classes (60% and up
 * with half the classes merged).
 */
test('a tiny semi-supervised run (300 images, 100 labels, 3 epochs) beats chance on the test split and keeps the tensor count', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'advlab-aae-semi-'));
  const before = tf.memory().numTensors;
  const r = await aaeRun({ dataset: 'mnist', out, labels: 100, trainSize: 300, epochs: 3, batchSize: 50, latentDim: 4 }, backend);
  assert.equal(tf.memory().numTensors, before, 'tensors');
  const errors = r.history.map((h) => h.monitor!.testError);
  t.diagnostic(`test error per epoch: ${errors.map((e) => (100 * e).toFixed(2)).join(', ')}%; classification loss ${r.history.map((h) => h.classification!.toFixed(3)).join(', ')}`);
  const c = r.test.classification!;
  assert.ok(Number.isFinite(c.error) && c.images === data.test.count, JSON.stringify(c));
  assert.equal(c.error, errors[2], 'the final figure is the last epoch\'s');
  assert.ok(c.error < 0.5, `test error ${c.error}`);
  assert.deepEqual([r.options.labels, r.models.categories, r.test.clustering], [100, 10, null]);
  for (const h of r.history) for (const v of [h.catDLoss, h.catGLoss, h.catDPrior, h.catDCode, h.classification]) assert.ok(Number.isFinite(v), JSON.stringify(h));
});

test('semi-supervised and clustering runs stopped after epoch 1 resume bit-identical (both discriminators, all five optimizers, the labelled batches)', async () => {
  const labelled = balancedSubset(data.train, 10, 20, 'n', 'train');
  const cases: [string, number, Partial<AaeTrainOptions>][] = [
    ['semi-supervised', 10, { labelled }],
    // The balance term and the discriminator noise on (the noise is drawn from the run's Rng, which the checkpoint carries).
    ['clustering', 16, { categoryBalance: 1, categoryNoise: 0.3 }],
  ];
  for (const [what, categories, extra] of cases) {
    const dir = mkdtempSync(join(tmpdir(), 'advlab-aae-cat-'));
    const opts: AaeTrainOptions = { epochs: 2, batchSize: 32, prior: 'gaussian', seed: 3, ...extra };
    const build = () => buildAae('mlp', { imageShape: [28, 28, 1], latentDim: 2, seed: 3, categories });
    const full = build();
    const w0 = weightsOf(full.categoryDiscriminator!);
    const before = tf.memory().numTensors;
    const r = await trainAae(full, small, { ...opts, checkpoints: new CheckpointFolder(join(dir, 'a')) });
    assert.equal(tf.memory().numTensors, before, `${what}: tensors`);
    assert.notDeepEqual(weightsOf(full.categoryDiscriminator!), w0, `${what}: the category discriminator trained`);
    for (const h of r.history) {
      assert.ok([h.catDLoss, h.catGLoss, h.catDPrior, h.catDCode].every(Number.isFinite), `${what}: ${JSON.stringify(h)}`);
      assert.equal(h.classification === null, !extra.labelled, what);
    }

    const part = build();
    await trainAae(part, small, { ...opts, checkpoints: new CheckpointFolder(join(dir, 'b')), stopAfterEpochs: 1 });
    dispose(part);
    const resumed = build();
    const r2 = await trainAae(resumed, small, { ...opts, checkpoints: new CheckpointFolder(join(dir, 'b')), resume: true });
    assert.equal(r2.resumedFromEpoch, 1);
    const figures = (h: typeof r.history) => h.map(({ seconds: _s, ...rest }) => rest);
    assert.deepEqual(figures(r2.history), figures(r.history), what);
    for (const p of ['encoder', 'decoder', 'discriminator', 'categoryDiscriminator'] as const) assert.deepEqual(weightsOf(resumed[p]!), weightsOf(full[p]!), `${what}: ${p}`);
    dispose(full);
    dispose(resumed);
  }
});

test('bad categorical training options are InputErrors naming the option', async () => {
  const plain = buildAae('mlp', { imageShape: [28, 28, 1], latentDim: 2, seed: 1 });
  const semi = buildAae('mlp', { imageShape: [28, 28, 1], latentDim: 2, seed: 1, categories: 10 });
  const four = buildAae('mlp', { imageShape: [28, 28, 1], latentDim: 2, seed: 1, categories: 4 });
  const base: AaeTrainOptions = { epochs: 1, batchSize: 32, prior: 'gaussian', seed: 0 };
  const bad: [AaeModels, Partial<AaeTrainOptions>, string][] = [
    [plain, { labelled: small }, 'labelled'],
    [semi, { prior: 'mixture' }, 'prior'],
    [four, { labelled: small }, 'labelled'],
    [semi, { labelled: { ...small, count: 0, images: new Float32Array(0), labels: new Int32Array(0) } }, 'labelled'],
    [semi, { labelled: small, classificationLearningRate: 0 }, 'classificationLearningRate'],
    [four, { categoryBalance: -1 }, 'categoryBalance'],
    [four, { categoryNoise: Number.NaN }, 'categoryNoise'],
    [plain, { categoryBalance: 1 }, 'categoryBalance'],
    [plain, { categoryNoise: 0.3 }, 'categoryNoise'],
    [four, { decayEpoch: 0 }, 'decayEpoch'],
  ];
  const tensors = tf.memory().numTensors;
  for (const [models, options, argument] of bad) {
    await assert.rejects(trainAae(models, small, { ...base, ...options }), isInputError(argument), `${argument}: ${JSON.stringify(Object.keys(options))}`);
  }
  assert.equal(tf.memory().numTensors, tensors, 'rejected calls leak nothing');
  [plain, semi, four].forEach(dispose);
});

test('the balance term by hand: KL(batch mean of q(y|x) || uniform), 0 when balanced, log K when all in one category, finite with an empty category', () => {
  const value = (rows: number[][]) => {
    const q = tf.tensor2d(rows);
    const l = categoryBalanceLoss(q);
    const v = l.dataSync()[0];
    tf.dispose([q, l]);
    return v;
  };
  const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-6, `${what}: ${a} vs ${b}`);
  // Two one-hot rows on different categories of K = 2: mean (1/2, 1/2), KL 0.
  close(value([[1, 0], [0, 1]]), 0, 'balanced one-hot rows');
  // Both on category 0 of K = 4: mean (1, 0, 0, 0), KL = log 4 + 1 log 1 + 0 = log 4 (empty categories add 0).
  close(value([[1, 0, 0, 0], [1, 0, 0, 0]]), Math.log(4), 'collapsed');
  // Soft rows: mean of (0.5, 0.25, 0.25) and (0.1, 0.6, 0.3) = (0.3, 0.425, 0.275);
  // KL = log 3 + 0.3 log 0.3 + 0.425 log 0.425 + 0.275 log 0.275.
  close(value([[0.5, 0.25, 0.25], [0.1, 0.6, 0.3]]), Math.log(3) + 0.3 * Math.log(0.3) + 0.425 * Math.log(0.425) + 0.275 * Math.log(0.275), 'soft rows');
  // Uniform rows are balanced too: the term asks for a balanced marginal, the category discriminator for one-hot rows.
  close(value([[0.25, 0.25, 0.25, 0.25]]), 0, 'uniform rows');
  // The gradient at a collapsed batch is finite and pushes mass off the full category.
  const q = tf.tensor2d([[1, 0, 0], [1, 0, 0]]);
  const g = tf.grad((x: tf.Tensor) => categoryBalanceLoss(x))(q);
  const gv = Array.from(g.dataSync());
  assert.ok(gv.every(Number.isFinite), `gradient ${gv}`);
  assert.ok(gv[0] > gv[1], `more loss from category 0 than from an empty one: ${gv}`);
  tf.dispose([q, g]);
  const bad = tf.tensor2d([[1], [0]]);
  assert.throws(() => categoryBalanceLoss(bad), isInputError('probabilities'));
  bad.dispose();
});

/**
 * The bug this guards against: the section 6 game as written, with Adam on
 * the encoder, sends every image to one category within the first epoch
 * (on mnist's 7,996 images: 1 of 16 clusters used at every epoch, 88.7%
 * error). Here 1,000 training images, 2 epochs of 10 steps, 16 clusters:
 * without the balance term the images fall in few clusters; with the
 * default weight of the clustering mode they spread over many more
 * (seeded, on wasm: 2 clusters used without, 11 with). The asserted
 * margin, 4 more clusters, is under half of that gap: room for another
 * backend's rounding, yet a return of the collapse fails it.
 */
test('clustering: the balance term keeps the class head from collapsing onto a few categories', async (t) => {
  const train = balancedSubset(data.train, 10, 1000, 'n', 'train');
  const used: number[] = [];
  for (const categoryBalance of [0, DEFAULT_CLUSTER_BALANCE]) {
    const m = buildAae('mlp', { imageShape: [28, 28, 1], latentDim: 8, seed: 0, categories: 16 });
    await trainAae(m, train, { epochs: 2, batchSize: 100, prior: 'gaussian', seed: 0, categoryBalance });
    const clusters = predictedCategories((await encodeCategorical(m.encoder, train.images, [28, 28, 1])).logits, 16);
    used.push(new Set(clusters).size);
    dispose(m);
  }
  t.diagnostic(`clusters used of 16: ${used[0]} without the balance term, ${used[1]} with weight ${DEFAULT_CLUSTER_BALANCE}`);
  assert.ok(used[1] >= used[0] + GAP, `clusters used: ${used}`);
});
