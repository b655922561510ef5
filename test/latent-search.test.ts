/**
 * The latent-space search of unrestricted adversarial examples
 * (generative/latent-search.ts, Song et al. 2018): its objective's terms
 * against hand computations, class-balanced pairs, the search on a hand-built
 * generator raising the target's probability, the first successful iterate
 * kept, seeds, tensor hygiene, the acgan and AAE wrappers, bad input.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, tfl } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { InputError } from '../src/errors.js';
import { Classifier } from '../src/models/classifier.js';
import { buildGan } from '../src/generative/gan/architectures.js';
import { buildAae, encodeImages } from '../src/generative/aae/architectures.js';
import {
  aaeLatentGenerator,
  acganLatentGenerator,
  crossEntropyToward,
  initialCodes,
  latentDistancePenalty,
  latentObjective,
  latentSearch,
  searchPairs,
  summarizeLatentSearch,
  validatorPredictions,
  type LatentGenerator,
} from '../src/generative/latent-search.js';

before(async () => {
  await initBackend({ backend: 'wasm' });
});

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);
const isInputError = (argument: string) => (e: unknown) => e instanceof InputError && e.argument === argument;

test('the distance term by hand: (1/m) sum max(|z - z0| - eps, 0) per row', () => {
  const before = tf.memory().numTensors;
  const z = [
    [0.5, -0.2, 1.0],
    [0, 0, 0],
  ];
  const z0 = [
    [0.0, 0.0, 0.0],
    [0.05, -0.3, 2],
  ];
  // Row 0: |0.5| - 0.1 = 0.4, |-0.2| - 0.1 = 0.1, |1| - 0.1 = 0.9 -> 1.4 / 3. Row 1: 0 (inside), 0.2, 1.9 -> 2.1 / 3.
  const got = tf.tidy(() => Array.from(latentDistancePenalty(tf.tensor2d(z), tf.tensor2d(z0), 0.1).dataSync()));
  close(got[0], 1.4 / 3, 1e-6, 'row 0');
  close(got[1], 2.1 / 3, 1e-6, 'row 1');
  // Inside the box it costs nothing; eps 0 is the mean absolute distance.
  assert.deepEqual(tf.tidy(() => Array.from(latentDistancePenalty(tf.tensor2d([[0.05, -0.05]]), tf.tensor2d([[0, 0]]), 0.1).dataSync())), [0]);
  close(tf.tidy(() => latentDistancePenalty(tf.tensor2d(z), tf.tensor2d(z0), 0).dataSync()[0]), 1.7 / 3, 1e-6, 'eps 0');
  assert.equal(tf.memory().numTensors, before);
  tf.tidy(() => {
    assert.throws(() => latentDistancePenalty(tf.zeros([2, 3]) as tf.Tensor2D, tf.zeros([2, 4]) as tf.Tensor2D, 0.1), isInputError('z0'));
    assert.throws(() => latentDistancePenalty(tf.zeros([2, 3]) as tf.Tensor2D, tf.zeros([2, 3]) as tf.Tensor2D, -1), isInputError('latentEps'));
  });
});

test('the objective by hand: CE toward the target + lambda1 distance + lambda2 CE of the auxiliary head toward the source', () => {
  const before = tf.memory().numTensors;
  const logits = [
    [2, 0, -1],
    [0, 1, 3],
  ];
  const aux = [
    [0.5, 0.5, 0],
    [1, -1, 2],
  ];
  const targets = [1, 2];
  const sources = [0, 1];
  const ce = (row: number[], c: number) => Math.log(row.reduce((a, v) => a + Math.exp(v), 0)) - row[c];
  const z = [[0.4, 0], [0, 0]];
  const z0 = [[0, 0], [0, 0.3]];
  const distance = [(0.3 + 0) / 2, (0 + 0.2) / 2];
  const terms = tf.tidy(() => {
    const t = latentObjective(
      { logits: tf.tensor2d(logits), targets: tf.tensor1d(targets, 'int32'), z: tf.tensor2d(z), z0: tf.tensor2d(z0), auxiliaryLogits: tf.tensor2d(aux), sources: tf.tensor1d(sources, 'int32') },
      { lambda1: 10, lambda2: 3, latentEps: 0.1 },
    );
    return [t.attack, t.distance, t.auxiliary!, t.total].map((x) => Array.from(x.dataSync()));
  });
  for (let i = 0; i < 2; i++) {
    close(terms[0][i], ce(logits[i], targets[i]), 1e-5, `attack ${i}`);
    close(terms[1][i], distance[i], 1e-6, `distance ${i}`);
    close(terms[2][i], ce(aux[i], sources[i]), 1e-5, `auxiliary ${i}`);
    close(terms[3][i], ce(logits[i], targets[i]) + 10 * distance[i] + 3 * ce(aux[i], sources[i]), 1e-4, `total ${i}`);
  }
  // Without an auxiliary classifier there is no third term.
  const plain = tf.tidy(() => {
    const t = latentObjective({ logits: tf.tensor2d(logits), targets: tf.tensor1d(targets, 'int32'), z: tf.tensor2d(z), z0: tf.tensor2d(z0), auxiliaryLogits: null, sources: tf.tensor1d(sources, 'int32') }, { lambda1: 10, lambda2: 3, latentEps: 0.1 });
    assert.equal(t.auxiliary, null);
    return Array.from(t.total.dataSync());
  });
  plain.forEach((v, i) => close(v, ce(logits[i], targets[i]) + 10 * distance[i], 1e-4, `total without aux ${i}`));
  close(tf.tidy(() => crossEntropyToward(tf.tensor2d([[0, 0]]), tf.tensor1d([1], 'int32')).dataSync()[0]), Math.LN2, 1e-6, 'CE of two equal logits');
  assert.equal(tf.memory().numTensors, before);
});

test('search pairs: sources cycle class by class, every source meets its targets evenly, never itself; seeded; restricted by sources and targets', () => {
  const K = 4;
  const n = K * (K - 1) * 2;
  const { sources, targets } = searchPairs(n, K, 7);
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    assert.equal(sources[i], i % K);
    assert.notEqual(targets[i], sources[i]);
    counts.set(`${sources[i]}>${targets[i]}`, (counts.get(`${sources[i]}>${targets[i]}`) ?? 0) + 1);
  }
  assert.equal(counts.size, K * (K - 1));
  assert.ok([...counts.values()].every((c) => c === 2), 'each pair twice');
  assert.deepEqual(searchPairs(n, K, 7), { sources, targets }, 'seeded');
  assert.notDeepEqual(searchPairs(n, K, 8).targets, targets);
  const only = searchPairs(6, K, 0, { sources: [2], targets: [0, 2, 3] });
  assert.deepEqual(Array.from(only.sources), [2, 2, 2, 2, 2, 2]);
  assert.ok(Array.from(only.targets).every((t) => t === 0 || t === 3));
  assert.throws(() => searchPairs(4, K, 0, { sources: [4] }), isInputError('sources'));
  assert.throws(() => searchPairs(4, K, 0, { sources: [1, 1] }), isInputError('sources'));
  assert.throws(() => searchPairs(4, K, 0, { sources: [1], targets: [1] }), isInputError('targets'));
  assert.throws(() => searchPairs(0, K, 0), isInputError('n'));
  assert.throws(() => searchPairs(4, K, -1), isInputError('seed'));
});

/**
 * A hand-built generator of 1x2x1 images: pixel j = sigmoid(z_j) (for class
 * 0; class 1 mirrors the image), and an attacked classifier of 2 classes
 * whose logit j is 4 (pixel j - 0.5): the target's pixel must brighten. The
 * auxiliary head reads class 0 when pixel 0 is brighter.
 */
function handBuilt(): { generator: LatentGenerator; classifier: Classifier } {
  const generator: LatentGenerator = {
    kind: 'acgan',
    latentDim: 2,
    imageShape: [1, 2, 1],
    numClasses: 2,
    generate: (z, sources) => {
      const image = tf.sigmoid(z);
      const mirrored = tf.reverse(image, 1);
      const flip = tf.reshape(tf.cast(sources, 'float32'), [-1, 1]);
      return tf.reshape(tf.add(tf.mul(image, tf.sub(1, flip)), tf.mul(mirrored, flip)), [-1, 1, 2, 1]) as tf.Tensor4D;
    },
    auxiliaryLogits: (images) => tf.mul(tf.reshape(images, [-1, 2]), 4) as tf.Tensor2D,
  };
  const classifier = Classifier.fromFunction((x) => tf.mul(tf.sub(tf.reshape(x, [-1, 2]), 0.5), 4) as tf.Tensor2D, { inputShape: [1, 2, 1], numClasses: 2 });
  return { generator, classifier };
}

test('the search on a hand-built generator raises the target probability until the model reads the target, keeping the first successful iterate; seeds reproduce; tensors flat', async () => {
  const { generator, classifier } = handBuilt();
  // Searches from class 0 toward 1: pixel 1 must outgrow pixel 0. Start where it clearly does not.
  const z0 = new Float32Array([2, -2, 1, -1, 0.5, 0.4, -1, 1]);
  const input = { sources: new Int32Array([0, 0, 0, 0]), targets: new Int32Array([1, 1, 1, 1]), z0 };
  const before = tf.memory().numTensors;
  const r = await latentSearch(generator, classifier, input, { steps: 300, learningRate: 0.05, lambda1: 0.5, lambda2: 0.1, batchSize: 3 });
  assert.equal(tf.memory().numTensors, before, 'tensors');
  assert.deepEqual(Array.from(r.initialPredictions), [0, 0, 0, 1]);
  assert.deepEqual(Array.from(r.success), [1, 1, 1, 1], 'every search reaches the target');
  assert.equal(r.firstSuccessStep[3], 0, 'z0 already read as the target: kept as it is');
  assert.deepEqual(Array.from(r.z.subarray(6, 8)), [-1, 1]);
  assert.ok(r.firstSuccessStep[0] > r.firstSuccessStep[2], 'the farther start takes longer');
  for (let i = 0; i < 3; i++) {
    const p0 = 1 / (1 + Math.exp(-4 * (sigmoid(z0[2 * i + 1]) - sigmoid(z0[2 * i])))); // the target's probability at z0
    assert.ok(r.targetProbabilities[i] > p0, `search ${i}: ${r.targetProbabilities[i]} > ${p0}`);
    // The first iterate over the line: barely past 1/2.
    assert.ok(r.targetProbabilities[i] >= 0.5 && r.targetProbabilities[i] < 0.6, `search ${i}: ${r.targetProbabilities[i]}`);
  }
  // Batches stop once all their searches succeeded: the batch of one (search 3) made no update.
  assert.equal(r.steps, r.firstSuccessStep[0]);
  assert.deepEqual(r.options, { steps: 300, learningRate: 0.05, lambda1: 0.5, lambda2: 0.1, latentEps: 0.1, batchSize: 3 });
  const again = await latentSearch(generator, classifier, input, { steps: 300, learningRate: 0.05, lambda1: 0.5, lambda2: 0.1, batchSize: 3 });
  assert.deepEqual(again.z, r.z, 'deterministic');
  // The summary and records, against the validator's readings.
  const validity = { images: await validatorPredictions(classifier, r.images, 2), initialImages: await validatorPredictions(classifier, r.initialImages) };
  assert.equal(tf.memory().numTensors, before);
  const { summary, records } = summarizeLatentSearch(r, validity);
  assert.equal(summary.successRate, 1);
  assert.equal(summary.validityRate, 0, 'the same model as validator reads the target: never valid (why the job refuses it)');
  assert.equal(summary.initialSourceRate, 0.75);
  assert.equal(records[3].firstSuccessStep, 0);
  assert.equal(records[0].auxiliaryPrediction, r.auxiliaryPredictions![0]);
  assert.throws(() => summarizeLatentSearch(r, { images: new Int32Array(1), initialImages: validity.initialImages }), isInputError('validity'));
});

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

test('a strong pull toward z0 (lambda1) keeps the codes near it and the model from the target', async () => {
  const { generator, classifier } = handBuilt();
  const input = { sources: new Int32Array([0]), targets: new Int32Array([1]), z0: new Float32Array([2, -2]) };
  const free = await latentSearch(generator, classifier, input, { steps: 150, learningRate: 0.05, lambda1: 0, lambda2: 0 });
  const held = await latentSearch(generator, classifier, input, { steps: 150, learningRate: 0.05, lambda1: 100, lambda2: 0 });
  assert.equal(free.success[0], 1);
  assert.equal(held.success[0], 0);
  assert.ok(held.latentLinf[0] < 0.2, `held within about eps: ${held.latentLinf[0]}`);
  assert.equal(held.firstSuccessStep[0], -1);
});

test('acgan and AAE wrappers: shapes, the auxiliary head, short searches on untrained models with flat tensors; refused models', async () => {
  const gan = buildGan('acgan', { imageShape: [8, 8, 1], numClasses: 3, latentDim: 4, seed: 1 });
  const model = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [8, 8, 1] }), tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) })] });
  const classifier = Classifier.fromModel(model);
  const aae = buildAae('mlp', { imageShape: [8, 8, 1], latentDim: 2, seed: 3 });
  const before = tf.memory().numTensors;
  try {
    const g = acganLatentGenerator(gan.generator, gan.discriminator);
    assert.deepEqual([g.kind, g.latentDim, g.numClasses, [...g.imageShape], !!g.auxiliaryLogits], ['acgan', 4, 3, [8, 8, 1], true]);
    const pairs = searchPairs(6, 3, 0);
    const z0 = initialCodes(6, 4, 0);
    assert.deepEqual(initialCodes(6, 4, 0), z0, 'seeded codes');
    assert.notDeepEqual(initialCodes(6, 4, 1), z0);
    const weights = gan.discriminator.getWeights().map((w) => Array.from(w.dataSync()));
    const r = await latentSearch(g, classifier, { ...pairs, z0 }, { steps: 4, batchSize: 4 });
    assert.equal(r.count, 6);
    assert.equal(r.auxiliaryPredictions!.length, 6);
    assert.ok(r.images.every((v) => v >= 0 && v <= 1));
    assert.deepEqual(gan.discriminator.getWeights().map((w) => Array.from(w.dataSync())), weights, 'inference mode: batch norm statistics untouched');
    assert.equal(tf.memory().numTensors, before, 'tensors after the acgan search');

    const a = aaeLatentGenerator(aae.decoder);
    assert.deepEqual([a.kind, a.latentDim, a.numClasses, !!a.auxiliaryLogits], ['aae', 2, null, false]);
    const images = new Float32Array(6 * 64).map((_, i) => (i % 7) / 7);
    const codes = await encodeImages(aae.encoder, images, [8, 8, 1]);
    const ra = await latentSearch(a, classifier, { ...pairs, z0: codes }, { steps: 3 });
    assert.equal(ra.auxiliaryPredictions, null);
    assert.equal(ra.options.lambda2, null);
    await assert.rejects(latentSearch(a, classifier, { ...pairs, z0: codes }, { lambda2: 1 }), isInputError('lambda2'));
    assert.equal(tf.memory().numTensors, before, 'tensors after the AAE search');

    const dcgan = buildGan('dcgan', { imageShape: [8, 8, 1], numClasses: 3, latentDim: 4, seed: 1 });
    const cgan = buildGan('cgan', { imageShape: [8, 8, 1], numClasses: 3, latentDim: 4, seed: 1 });
    try {
      assert.throws(() => acganLatentGenerator(dcgan.generator, dcgan.discriminator), isInputError('generator'));
      assert.throws(() => acganLatentGenerator(cgan.generator, cgan.discriminator), isInputError('discriminator'));
      assert.throws(() => aaeLatentGenerator(aae.encoder), isInputError('decoder'));
    } finally {
      for (const m of [dcgan, cgan]) {
        m.generator.dispose();
        m.discriminator.dispose();
      }
    }
  } finally {
    gan.generator.dispose();
    gan.discriminator.dispose();
    for (const m of [aae.encoder, aae.decoder, aae.discriminator]) m.dispose();
    classifier.dispose();
    model.dispose();
  }
});

test('bad input names its argument', async () => {
  const { generator, classifier } = handBuilt();
  const ok = { sources: new Int32Array([0, 1]), targets: new Int32Array([1, 0]), z0: new Float32Array(4) };
  const cases: [string, Partial<typeof ok>, object][] = [
    ['targets', { targets: new Int32Array([1]) }, {}],
    ['targets', { targets: new Int32Array([0, 0]) }, {}],
    ['sources', { sources: new Int32Array([0, 5]) }, {}],
    ['sources', { sources: new Int32Array(0), targets: new Int32Array(0), z0: new Float32Array(0) }, {}],
    ['z0', { z0: new Float32Array(3) }, {}],
    ['z0', { z0: new Float32Array([0, NaN, 0, 0]) }, {}],
    ['steps', {}, { steps: -1 }],
    ['steps', {}, { steps: 1.5 }],
    ['learningRate', {}, { learningRate: 0 }],
    ['lambda1', {}, { lambda1: -1 }],
    ['lambda2', {}, { lambda2: Infinity }],
    ['latentEps', {}, { latentEps: NaN }],
    ['batchSize', {}, { batchSize: 0 }],
  ];
  const before = tf.memory().numTensors;
  for (const [argument, input, options] of cases) await assert.rejects(latentSearch(generator, classifier, { ...ok, ...input }, options), isInputError(argument), argument);
  const wrongShape = Classifier.fromFunction((x) => tf.reshape(x, [-1, 2]) as tf.Tensor2D, { inputShape: [2, 1, 1], numClasses: 2 });
  await assert.rejects(latentSearch(generator, wrongShape, ok), isInputError('classifier'));
  await assert.rejects(validatorPredictions(classifier, new Float32Array(3)), isInputError('images'));
  assert.throws(() => initialCodes(0, 2, 0), isInputError('n'));
  assert.throws(() => initialCodes(2, 2, 1.5), isInputError('seed'));
  assert.equal(tf.memory().numTensors, before, 'nothing left behind by refused calls');
});
