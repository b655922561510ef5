import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf, tfl, tfc } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { FileFormatError, InputError } from '../src/errors.js';
import { fileIOHandler, loadClassifierModel, loadModel } from '../src/node/model-files.js';
import { countParameters, isGraphModel, type ClassifierModel } from '../src/models/artifacts.js';
import { loadSavedClassifier, resolveModel } from '../src/node/resolve.js';
import { Classifier } from '../src/models/classifier.js';
import { runAttack } from '../src/attacks/run.js';
import { fgsm } from '../src/attacks/fgsm.js';
import { pgd } from '../src/attacks/pgd.js';
import { crossEntropy } from '../src/attacks/losses.js';
import { loadBuiltinDataset } from '../src/node/data/builtin.js';
import { balancedSubset } from '../src/data/subset.js';
import type { ImageSet } from '../src/data/types.js';
import { Rng } from '../src/util/rng.js';
import { CLASSES, PIXELS, linearLogits, writeLinearGraphModel, type LinearGraphModel } from './fixtures/graph-model.js';

const dir = mkdtempSync(join(tmpdir(), 'advlab-graph-'));
let graph: LinearGraphModel;
let mnistTest: ImageSet;
/** mnistTest labelled with the fixture's own predictions, so that every image is attacked (a misclassified one already counts as adversarial and is left as it is). */
let selfLabelled: ImageSet;

before(async () => {
  await initBackend({ backend: 'wasm' });
  graph = writeLinearGraphModel(join(dir, 'graph'), { seed: 3 });
  mnistTest = balancedSubset(loadBuiltinDataset('mnist').test, 10, 20);
  selfLabelled = { ...mnistTest, labels: Int32Array.from(linearLogits(mnistTest.images, graph.w, graph.b), argMax) };
});

function argMax(z: ArrayLike<number>): number {
  let best = 0;
  for (let j = 1; j < z.length; j++) if (z[j] > z[best]) best = j;
  return best;
}

after(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of the fixture in its own folder with model.json rewritten by `edit`. */
function variant(name: string, edit: (json: Record<string, any>) => void): LinearGraphModel {
  const m = writeLinearGraphModel(join(dir, name), { seed: 3 });
  const json = structuredClone(m.modelJson);
  edit(json);
  writeFileSync(m.modelJsonPath, JSON.stringify(json));
  return { ...m, modelJson: json };
}

/** Asserts `fn` rejects with an error of `cls` whose message contains every fragment. */
async function rejectsWith(fn: () => Promise<unknown>, cls: Function, ...fragments: string[]): Promise<void> {
  await assert.rejects(fn, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    for (const f of fragments) assert.ok((e as Error).message.includes(f), `"${(e as Error).message}" lacks "${f}"`);
    return true;
  });
}

/** The same linear model as a Layers model: Flatten, then Dense with the fixture's W and b. */
function equivalentLayersModel(m: LinearGraphModel): tfl.LayersModel {
  const model = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [28, 28, 1] }), tfl.layers.dense({ units: CLASSES })] });
  const weights = [tf.tensor2d(m.w, [PIXELS, CLASSES]), tf.tensor1d(m.b)];
  model.setWeights(weights);
  tf.dispose(weights);
  return model;
}

function randomImages(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * PIXELS }, () => rng.next());
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('loadClassifierModel loads the graph model; its Classifier has input [28, 28, 1], 10 classes and logits x·W+b', async () => {
  const start = tf.memory().numTensors;
  const loaders: [string, () => Promise<ClassifierModel>][] = [
    ['folder', () => loadClassifierModel(graph.dir)],
    ['model.json', () => loadClassifierModel(graph.modelJsonPath)],
    ['tfc.loadGraphModel(fileIOHandler)', () => tfc.loadGraphModel(fileIOHandler(graph.dir))],
  ];
  for (const [how, load] of loaders) {
    const model = await load();
    try {
      assert.ok(isGraphModel(model), 'a GraphModel');
      assert.ok(!(model instanceof tfl.LayersModel));
      assert.equal(countParameters(model), PIXELS * CLASSES + CLASSES, 'float32 weights only, not the int32 reshape target');
      const classifier = Classifier.fromModel(model);
      assert.deepEqual(classifier.inputShape, [28, 28, 1]);
      assert.equal(classifier.numClasses, 10);
      const n = 5;
      const images = randomImages(n, 1);
      const got = tf.tidy(() => classifier.logits(tf.tensor4d(images, [n, 28, 28, 1])).dataSync());
      const expected = linearLogits(images, graph.w, graph.b).flatMap((z) => Array.from(z));
      assert.ok(maxAbsDiff(got, expected) < 1e-5, `max abs error ${maxAbsDiff(got, expected)}`);
      assert.deepEqual(classifier.counts, { queries: n, gradients: 0 });
      classifier.dispose();
    } finally {
      model.dispose();
    }
    assert.equal(tf.memory().numTensors, start, `tensors leaked loading via ${how}`);
  }
});

test('a GraphDef without a "format" field (older converters) is still recognised as a graph model', async () => {
  const m = variant('no-format', (json) => delete json.format);
  const start = tf.memory().numTensors;
  const model = await loadClassifierModel(m.dir);
  assert.ok(isGraphModel(model));
  model.dispose();
  assert.equal(tf.memory().numTensors, start);
  await rejectsWith(() => loadModel(m.dir), FileFormatError, m.modelJsonPath, 'graph model', 'modelTopology is a TensorFlow GraphDef', 'not trained');
});

test('FGSM through the graph model equals the closed form clip(x + eps * sign((softmax(xW+b) - onehot(y)) · Wᵀ))', async () => {
  const model = await loadClassifierModel(graph.dir);
  const start = tf.memory().numTensors;
  const classifier = Classifier.fromModel(model);
  const eps = 0.1;
  const logits = linearLogits(mnistTest.images, graph.w, graph.b);
  const labels = selfLabelled.labels;
  const r = await runAttack(fgsm, classifier, selfLabelled, { eps });
  assert.equal(r.gradients, mnistTest.count);
  assert.equal(r.summary.cleanAccuracy, 1);
  let moved = 0;
  for (let i = 0; i < mnistTest.count; i++) {
    const z = logits[i];
    const top = Math.max(...z);
    const e = Array.from(z, (v) => Math.exp(v - top));
    const sum = e.reduce((a, v) => a + v, 0);
    const dz = e.map((v, j) => v / sum - (j === labels[i] ? 1 : 0)); // d CE / d logits
    for (let k = 0; k < PIXELS; k++) {
      let g = 0;
      for (let j = 0; j < CLASSES; j++) g += dz[j] * graph.w[k * CLASSES + j];
      const x = mnistTest.images[i * PIXELS + k];
      const adv = r.adversarial[i * PIXELS + k];
      const clip = (v: number) => Math.min(1, Math.max(0, v));
      if (Math.abs(g) < 1e-5) {
        // float32 and float64 may disagree on the sign of a near-zero gradient: either step (or none) is right.
        assert.ok([clip(x + eps), clip(x - eps), x].some((v) => Math.abs(adv - v) < 1e-6), `image ${i} pixel ${k}`);
        continue;
      }
      const expected = clip(x + eps * Math.sign(g));
      assert.ok(Math.abs(adv - expected) < 1e-6, `image ${i} pixel ${k}: ${adv} vs ${expected} (gradient ${g})`);
      if (expected !== x) moved++;
    }
  }
  assert.ok(moved > mnistTest.count * PIXELS * 0.5, `only ${moved} pixels moved`);
  classifier.dispose();
  assert.equal(tf.memory().numTensors, start);
  model.dispose();
});

test('gradients, FGSM and PGD through the graph model match the equivalent Layers model', async () => {
  const model = await loadClassifierModel(graph.dir);
  const layers = equivalentLayersModel(graph);
  const start = tf.memory().numTensors;
  const viaGraph = Classifier.fromModel(model);
  const viaLayers = Classifier.fromModel(layers);

  const x = tf.tensor4d(mnistTest.images, [mnistTest.count, 28, 28, 1]);
  const labels = tf.tensor1d(selfLabelled.labels, 'int32');
  const a = viaGraph.valueAndGradient(x, (l) => crossEntropy(l, labels));
  const b = viaLayers.valueAndGradient(x, (l) => crossEntropy(l, labels));
  const gradA = a.grad.dataSync();
  assert.ok(maxAbsDiff(gradA, b.grad.dataSync()) < 1e-6, `gradients differ by ${maxAbsDiff(gradA, b.grad.dataSync())}`);
  assert.ok(maxAbsDiff(a.value.dataSync(), b.value.dataSync()) < 1e-5);
  assert.ok(gradA.some((g) => Math.abs(g) > 1e-3), 'a non-trivial gradient');
  tf.dispose([x, labels, a.value, a.grad, a.logits, b.value, b.grad, b.logits]);
  assert.equal(tf.memory().numTensors, start);

  for (const [attack, options] of [
    [fgsm, { eps: 0.1 }],
    [pgd, { eps: 0.1, seed: 2, params: { steps: 10, stepSize: 0.02 } }],
    [pgd, { eps: 1.5, norm: 'l2', params: { steps: 10, stepSize: 0.3 } }],
  ] as const) {
    const rg = await runAttack(attack, viaGraph, selfLabelled, options);
    const rl = await runAttack(attack, viaLayers, selfLabelled, options);
    const what = `${attack.name} ${JSON.stringify(options)}`;
    assert.ok(maxAbsDiff(rg.adversarial, rl.adversarial) < 1e-6, `${what}: adversarial images differ by ${maxAbsDiff(rg.adversarial, rl.adversarial)}`);
    assert.ok(maxAbsDiff(rg.adversarial, mnistTest.images) > 0.01, `${what}: the attack moved the images`);
    assert.deepEqual(Array.from(rg.adversarialPredictions), Array.from(rl.adversarialPredictions), what);
    assert.ok(rg.success.some((s) => s === 1), `${what}: some successes`);
    assert.deepEqual(Array.from(rg.success), Array.from(rl.success), what);
    assert.equal(tf.memory().numTensors, start, `${what} leaked tensors`);
  }
  viaGraph.dispose();
  viaLayers.dispose();
  model.dispose();
  layers.dispose();
});

test('loadSavedClassifier checks a graph model against the dataset, without leaking on refusal', async () => {
  const start = tf.memory().numTensors;
  const model = await loadSavedClassifier(graph.dir, { imageShape: [28, 28, 1], numClasses: 10 });
  assert.ok(isGraphModel(model));
  model.dispose();
  await rejectsWith(() => loadSavedClassifier(graph.dir, { imageShape: [28, 28, 1], numClasses: 5 }), InputError, `model: the model in ${graph.dir} outputs shape [batch, 10] but the dataset has 5 classes`);
  await rejectsWith(() => loadSavedClassifier(graph.dir, { imageShape: [32, 32, 3], numClasses: 10 }), InputError, 'dataset: the model expects inputs of shape [28, 28, 1] but got images of shape [32, 32, 3]');
  // Without a signature every leaf node is an output: a dangling Softmax makes two.
  const twoOutputs = variant('two-outputs', (json) => {
    delete json.signature;
    json.modelTopology.node.push({ name: 'probs', op: 'Softmax', input: ['StatefulPartitionedCall/sequential/dense/BiasAdd'], attr: { T: { type: 'DT_FLOAT' } } });
  });
  await rejectsWith(() => loadSavedClassifier(twoOutputs.dir, { imageShape: [28, 28, 1], numClasses: 10 }), InputError, `the graph model in ${twoOutputs.dir} has 2 outputs`);
  // An op tfjs does not know fails when the graph runs: found at load time, not mid-attack.
  const unknownOp = variant('unknown-op', (json) => (json.modelTopology.node[7].op = 'NoSuchOp'));
  await rejectsWith(() => loadSavedClassifier(unknownOp.dir, { imageShape: [28, 28, 1], numClasses: 10 }), InputError, `the graph model in ${unknownOp.dir} does not run`, 'NoSuchOp');
  // A graph fixed to batches of one would fail on the attack's first batch.
  const batchOfOne = variant('batch-of-one', (json) => (json.modelTopology.node[0].attr.shape.shape.dim[0].size = '1'));
  await rejectsWith(() => loadSavedClassifier(batchOfOne.dir, { imageShape: [28, 28, 1], numClasses: 10 }), InputError, `the graph model in ${batchOfOne.dir} does not run on a batch of images of shape [28, 28, 1]`);
  assert.equal(tf.memory().numTensors, start);
});

test('advlab attack --model <graph-model folder> (fgsm, --n 20) writes a sane result.json', () => {
  // A nearest-centroid classifier (logit_c = x·m_c - |m_c|²/2, m_c the class mean of
  // the training split) is accurate enough for the clean accuracy to mean something.
  const train = loadBuiltinDataset('mnist').train;
  const w = new Float32Array(PIXELS * CLASSES);
  const counts = new Float64Array(CLASSES);
  for (let i = 0; i < train.count; i++) {
    const c = train.labels[i];
    counts[c]++;
    for (let k = 0; k < PIXELS; k++) w[k * CLASSES + c] += train.images[i * PIXELS + k];
  }
  const b = new Float32Array(CLASSES);
  for (let k = 0; k < PIXELS; k++) {
    for (let c = 0; c < CLASSES; c++) {
      w[k * CLASSES + c] /= counts[c];
      b[c] -= (w[k * CLASSES + c] * w[k * CLASSES + c]) / 2;
    }
  }
  const m = writeLinearGraphModel(join(dir, 'centroids'), { w, b });
  const out = join(dir, 'attack-out');
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'attack', '--model', m.dir, '--attack', 'fgsm', '--eps', '0.1', '--n', '20', '--out', out, '--no-progress'], {
    encoding: 'utf8',
    env: { ...process.env, ADVLAB_BACKEND: 'wasm' },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`model: ${m.dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(7850 parameters\\)`));
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as Record<string, any>;
  assert.equal(result.count, 20);
  const predicted = linearLogits(mnistTest.images, w, b).map(argMax);
  const correct = predicted.filter((p, i) => p === mnistTest.labels[i]).length;
  assert.equal(result.cleanAccuracy, correct / 20, 'clean accuracy is that of x·W+b computed here');
  assert.ok(result.cleanAccuracy >= 0.6, `clean accuracy ${result.cleanAccuracy}`);
  assert.equal(result.correct, correct);
  assert.ok(result.robustAccuracy <= result.cleanAccuracy && result.successes > 0, `robust ${result.robustAccuracy}, successes ${result.successes}`);
  assert.equal(result.gradients, 20);
  assert.ok(result.perturbation.linf.max <= 0.1 + 1e-6);
});

test('graph models refused by the Layers loader, and broken graph model files, give clear errors and leak nothing', async () => {
  const start = tf.memory().numTensors;
  const notTrainable = ['this is a TF.js graph model (format is "graph-model")', 'attacked and evaluated', 'not trained'];
  await rejectsWith(() => loadModel(graph.dir), FileFormatError, graph.modelJsonPath, ...notTrainable);
  await rejectsWith(() => resolveModel(graph.dir, { imageShape: [28, 28, 1], numClasses: 10 }, 0), FileFormatError, graph.modelJsonPath, ...notTrainable);

  const missing = variant('missing-weights', () => {});
  rmSync(missing.weightsPath);
  await rejectsWith(() => loadClassifierModel(missing.dir), FileFormatError, missing.weightsPath, 'weights file not found', `listed in ${missing.modelJsonPath}`);

  const truncated = variant('truncated', () => {});
  const bytes = 8 + 4 * (PIXELS * CLASSES + CLASSES);
  truncateSync(truncated.weightsPath, bytes - 4);
  await rejectsWith(() => loadClassifierModel(truncated.dir), FileFormatError, truncated.weightsPath, `truncated: expected ${bytes} bytes, found ${bytes - 4}`);

  const invalid = variant('invalid-json', () => {});
  writeFileSync(invalid.modelJsonPath, '{"format": "graph-model", ');
  await rejectsWith(() => loadClassifierModel(invalid.dir), FileFormatError, invalid.modelJsonPath, 'invalid JSON');

  const noNodes = variant('no-nodes', (json) => (json.modelTopology = { versions: {} }));
  await rejectsWith(() => loadClassifierModel(noNodes.dir), FileFormatError, noNodes.modelJsonPath, 'not a TF.js graph model', 'no node list');

  const badNode = variant('bad-node', (json) => delete json.modelTopology.node[2].op);
  await rejectsWith(() => loadClassifierModel(badNode.dir), FileFormatError, 'modelTopology.node[2] needs a name and an op');

  const danglingInput = variant('dangling-input', (json) => (json.modelTopology.node[7].input = ['no/such/node']));
  await rejectsWith(() => loadClassifierModel(danglingInput.dir), FileFormatError, danglingInput.modelJsonPath, 'not a TF.js graph model', 'modelTopology.node[7] ("Identity") has input "no/such/node", which is no node of the graph');

  // The bias weight renamed: its Const node has no weight any more.
  const renamed = variant('renamed-weight', (json) => (json.weightsManifest[0].weights[2].name = 'other'));
  await rejectsWith(() => loadClassifierModel(renamed.dir), FileFormatError, renamed.modelJsonPath, 'weights do not fit the model', 'no weight for Const node "StatefulPartitionedCall/sequential/dense/BiasAdd/ReadVariableOp"');

  // Same byte count, transposed shape.
  const transposed = variant('transposed', (json) => (json.weightsManifest[0].weights[1].shape = [CLASSES, PIXELS]));
  await rejectsWith(() => loadClassifierModel(transposed.dir), FileFormatError, 'weights do not fit the model', 'has shape [784, 10] but its weight has shape [10, 784]');

  const stringWeight = variant('string-weight', (json) => (json.weightsManifest[0].weights[0].dtype = 'string'));
  await rejectsWith(() => loadClassifierModel(stringWeight.dir), FileFormatError, 'unsupported dtype "string" (supported: float32, int32, bool)');

  const unknownFormat = variant('unknown-format', (json) => (json.format = 'saved-model'));
  await rejectsWith(() => loadClassifierModel(unknownFormat.dir), FileFormatError, 'format is "saved-model", expected "layers-model" or "graph-model"');
  assert.equal(tf.memory().numTensors, start);
});
