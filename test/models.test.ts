import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync, existsSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf, tfl } from '../src/engine/tf.js';
import { FileFormatError, InputError } from '../src/errors.js';
import { buildModel, describeZoo, ZOO_NAMES } from '../src/models/zoo.js';
import { loadModel, saveModel } from '../src/node/model-files.js';
import { checkInputShape, modelFromArtifacts, modelToArtifacts } from '../src/models/artifacts.js';

before(async () => {
  await tf.setBackend('cpu');
});

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'advlab-models-'));
}

function weightArrays(model: tfl.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => w.dataSync() as Float32Array);
}

function randomInput(shape: [number, number, number], n: number, seed: number): tf.Tensor {
  return tf.randomUniform([n, ...shape], 0, 1, 'float32', seed);
}

function predict(model: tfl.LayersModel, x: tf.Tensor): Float32Array {
  const y = model.predict(x) as tf.Tensor;
  try {
    return y.dataSync() as Float32Array;
  } finally {
    y.dispose();
  }
}

/** Asserts `fn` rejects with an error of `cls` whose message contains every fragment. */
async function rejectsWith(fn: () => unknown, cls: Function, ...fragments: string[]): Promise<void> {
  await assert.rejects(
    async () => fn(),
    (e: unknown) => {
      assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
      for (const f of fragments) assert.ok((e as Error).message.includes(f), `"${(e as Error).message}" lacks "${f}"`);
      return true;
    },
  );
}

const SHAPES: [number, number, number][] = [
  [28, 28, 1],
  [32, 32, 3],
];

test('zoo: every model builds for 28x28x1 and 32x32x3, outputs [n, 10] logits, and is seeded', () => {
  const start = tf.memory().numTensors;
  for (const name of ZOO_NAMES) {
    for (const shape of SHAPES) {
      const a = buildModel(name, { inputShape: shape, numClasses: 10, seed: 7 });
      const b = buildModel(name, { inputShape: shape, numClasses: 10, seed: 7 });
      const c = buildModel(name, { inputShape: shape, numClasses: 10, seed: 8 });
      try {
        assert.deepEqual(a.outputs[0].shape, [null, 10], `${name} ${shape}`);
        assert.deepEqual(a.inputs[0].shape, [null, ...shape]);
        // Logits, not probabilities: no softmax anywhere.
        assert.ok(a.layers.every((l) => (l.getConfig().activation ?? 'linear') !== 'softmax'));
        const x = randomInput(shape, 1, 1);
        assert.equal(predict(a, x).length, 10);
        x.dispose();
        const wa = weightArrays(a);
        assert.deepEqual(wa, weightArrays(b), `${name}: same seed must give identical weights`);
        const wc = weightArrays(c);
        assert.equal(wa.length, wc.length);
        assert.ok(
          wa.some((w, i) => w.some((v, j) => v !== wc[i][j])),
          `${name}: different seeds must give different weights`,
        );
      } finally {
        a.dispose();
        b.dispose();
        c.dispose();
      }
    }
  }
  assert.equal(tf.memory().numTensors, start);
});

test('zoo: small-cnn is exactly the reference architecture', () => {
  const m = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  try {
    const summary = m.layers.map((l) => [l.getClassName(), l.outputShape]);
    assert.deepEqual(summary, [
      ['InputLayer', [null, 28, 28, 1]],
      ['Conv2D', [null, 26, 26, 32]],
      ['Conv2D', [null, 24, 24, 64]],
      ['MaxPooling2D', [null, 12, 12, 64]],
      ['Flatten', [null, 9216]],
      ['Dense', [null, 128]],
      ['Dense', [null, 10]],
    ]);
  } finally {
    m.dispose();
  }
});

test('zoo: unknown names and bad options are rejected; describeZoo lists every model', () => {
  assert.throws(
    () => buildModel('vgg', { inputShape: [28, 28, 1], numClasses: 10, seed: 0 }),
    (e: unknown) => e instanceof InputError && e.argument === 'model' && /unknown model "vgg".*mlp, small-cnn, lenet, resnet/.test(e.message),
  );
  assert.throws(() => buildModel('lenet', { inputShape: [8, 8, 1], numClasses: 10, seed: 0 }), /inputShape.*at least 12x12/);
  assert.throws(() => buildModel('mlp', { inputShape: [28, 28, 1], numClasses: 1, seed: 0 }), /numClasses/);
  assert.throws(() => buildModel('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: -1 }), /seed/);
  assert.deepEqual(
    describeZoo().map((d) => d.name),
    [...ZOO_NAMES],
  );
  assert.ok(describeZoo().every((d) => d.description.length > 10));
});

test('io: save -> load gives identical logits for every zoo model, atomically, without leaking tensors', async () => {
  for (const [i, name] of ZOO_NAMES.entries()) {
    const shape = SHAPES[i % 2];
    const root = tempDir();
    const dir = join(root, 'nested', name); // saveModel creates missing folders
    const start = tf.memory().numTensors;
    const model = buildModel(name, { inputShape: shape, numClasses: 10, seed: 3 });
    const x = randomInput(shape, 2, 5);
    const afterBuild = tf.memory().numTensors;
    try {
      const expected = predict(model, x);
      const info = await saveModel(model, dir);
      assert.equal(tf.memory().numTensors, afterBuild, `${name}: save leaked tensors`);
      assert.deepEqual(readdirSync(dir).sort(), ['model.json', 'weights.bin']); // no .tmp left
      assert.equal(info.modelJsonPath, join(dir, 'model.json'));
      const json = JSON.parse(readFileSync(info.modelJsonPath, 'utf8'));
      assert.equal(json.format, 'layers-model');
      assert.equal(json.convertedBy, null);
      assert.match(json.generatedBy, /TensorFlow\.js/);
      assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
      assert.equal(readFileSync(info.weightsPath).byteLength, info.weightBytes);

      // Both a folder and a model.json path are accepted.
      for (const path of [dir, info.modelJsonPath]) {
        const loaded = await loadModel(path);
        try {
          assert.deepEqual(predict(loaded, x), expected, `${name}: logits differ after load`);
          checkInputShape(loaded, shape);
        } finally {
          loaded.dispose();
        }
      }
      assert.equal(tf.memory().numTensors, afterBuild, `${name}: load leaked tensors`);
    } finally {
      x.dispose();
      model.dispose();
      rmSync(root, { recursive: true, force: true });
    }
    assert.equal(tf.memory().numTensors, start);
  }
});

test('io: in-memory artifacts round trip (for checkpoints)', async () => {
  const start = tf.memory().numTensors;
  const model = buildModel('resnet', { inputShape: [28, 28, 1], numClasses: 10, seed: 11 });
  const x = randomInput([28, 28, 1], 2, 9);
  const artifacts = await modelToArtifacts(model);
  assert.ok(artifacts.weightData instanceof ArrayBuffer);
  const copy = await modelFromArtifacts(artifacts);
  const again = await modelFromArtifacts(artifacts); // artifacts are reusable
  assert.deepEqual(predict(copy, x), predict(model, x));
  assert.deepEqual(weightArrays(again), weightArrays(model));
  for (const t of [copy, again, model]) t.dispose();
  x.dispose();
  assert.equal(tf.memory().numTensors, start);
});

// ---------------------------------------------------------------------------
// A model as `tensorflowjs_converter --input_format keras` writes it: Keras
// topology under model_config, several weight groups, one split into shards.

const W1 = [
  [1, -1, 0.5],
  [2, 0, -0.5],
  [-1, 1, 1],
  [0.25, 0.5, -2],
]; // dense: 4 -> 3, relu
const B1 = [0.5, -1, 0.25];
const W2Q = [
  [0, 4],
  [2, 1],
  [3, 6],
]; // dense_1: 3 -> 2, uint8-quantized: value = q * 0.5 - 1
const W2 = W2Q.map((r) => r.map((q) => q * 0.5 - 1));
const B2 = [0.125, -0.5];

function kerasDense(name: string, units: number, activation: string, inputDim?: number) {
  return {
    class_name: 'Dense',
    config: {
      name,
      trainable: true,
      dtype: 'float32',
      ...(inputDim != null ? { batch_input_shape: [null, inputDim] } : {}),
      units,
      activation,
      use_bias: true,
      kernel_initializer: { class_name: 'GlorotUniform', config: { seed: null } },
      bias_initializer: { class_name: 'Zeros', config: {} },
      kernel_regularizer: null,
      bias_regularizer: null,
      activity_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
    },
  };
}

function f32bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

/** Writes the converter-format model into a fresh folder and returns it. */
function writeKerasModel(): string {
  const dir = tempDir();
  const modelJson = {
    format: 'layers-model',
    generatedBy: 'keras v2.11.0',
    convertedBy: 'TensorFlow.js Converter v4.22.0',
    modelTopology: {
      keras_version: '2.11.0',
      backend: 'tensorflow',
      model_config: {
        class_name: 'Sequential',
        config: {
          name: 'sequential',
          layers: [kerasDense('dense', 3, 'relu', 4), kerasDense('dense_1', 2, 'linear')],
        },
      },
      training_config: null,
    },
    weightsManifest: [
      {
        paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'],
        weights: [
          { name: 'dense/kernel', shape: [4, 3], dtype: 'float32' },
          { name: 'dense/bias', shape: [3], dtype: 'float32' },
        ],
      },
      {
        paths: ['group2-shard1of1.bin'],
        weights: [
          { name: 'dense_1/kernel', shape: [3, 2], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1 } },
          { name: 'dense_1/bias', shape: [2], dtype: 'float32' },
        ],
      },
    ],
  };
  writeFileSync(join(dir, 'model.json'), JSON.stringify(modelJson));
  // Group 1 is one byte stream split mid-tensor, as the converter's fixed-size shards are.
  const g1 = new Uint8Array([...f32bytes(W1.flat()), ...f32bytes(B1)]);
  writeFileSync(join(dir, 'group1-shard1of2.bin'), g1.subarray(0, 28));
  writeFileSync(join(dir, 'group1-shard2of2.bin'), g1.subarray(28));
  writeFileSync(join(dir, 'group2-shard1of1.bin'), new Uint8Array([...W2Q.flat(), ...f32bytes(B2)]));
  return dir;
}

function handLogits(x: number[]): number[] {
  const h = B1.map((b, j) => Math.max(0, b + x.reduce((s, xi, i) => s + xi * W1[i][j], 0)));
  return B2.map((b, j) => b + h.reduce((s, hi, i) => s + hi * W2[i][j], 0));
}

test('io: loads a Keras-converter model (sharded groups, uint8 quantization) with the right logits', async () => {
  const dir = writeKerasModel();
  const start = tf.memory().numTensors;
  try {
    const model = await loadModel(dir);
    const xs = [
      [1, 2, 3, 4],
      [-1, 0.5, 0, 2],
    ];
    const x = tf.tensor2d(xs);
    const got = Array.from(predict(model, x));
    assert.deepEqual(got, xs.flatMap(handLogits));
    assert.deepEqual(model.inputs[0].shape, [null, 4]);
    assert.throws(() => checkInputShape(model, [28, 28, 1]), /dataset: the model expects inputs of shape \[4\] but got images of shape \[28, 28, 1\]/);
    x.dispose();
    model.dispose();
    assert.equal(tf.memory().numTensors, start);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------
// Errors name the file and the problem.

test('io errors: missing folder, missing model.json, invalid JSON, not a Layers model', async () => {
  const dir = tempDir();
  try {
    await rejectsWith(() => loadModel(join(dir, 'nope')), FileFormatError, join(dir, 'nope'), 'not found');
    await rejectsWith(() => loadModel(dir), FileFormatError, join(dir, 'model.json'), 'not found');
    const file = join(dir, 'model.json');
    writeFileSync(file, '{"modelTopology": ');
    await rejectsWith(() => loadModel(dir), FileFormatError, file, 'not a TF.js Layers model', 'invalid JSON');
    writeFileSync(file, JSON.stringify({ modelTopology: { class_name: 'Sequential', config: { layers: [] } } }));
    await rejectsWith(() => loadModel(file), FileFormatError, file, 'not a TF.js Layers model', 'missing weightsManifest');
    writeFileSync(file, JSON.stringify({ weightsManifest: [] }));
    await rejectsWith(() => loadModel(file), FileFormatError, file, 'missing modelTopology');
    writeFileSync(file, JSON.stringify({ format: 'graph-model', modelTopology: {}, weightsManifest: [] }));
    await rejectsWith(() => loadModel(file), FileFormatError, file, 'format is "graph-model"');
    writeFileSync(file, JSON.stringify({ modelTopology: { class_name: 'NoSuchLayer', config: {} }, weightsManifest: [] }));
    await rejectsWith(() => loadModel(file), FileFormatError, file, 'not a TF.js Layers model');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('io errors: truncated, too long, and missing weight files', async () => {
  const saved = tempDir();
  const model = buildModel('mlp', { inputShape: [4, 4, 1], numClasses: 3, seed: 1 });
  const { weightsPath, weightBytes } = await saveModel(model, saved);
  model.dispose();
  const keras = writeKerasModel();
  const start = tf.memory().numTensors;
  try {
    truncateSync(weightsPath, weightBytes - 10);
    await rejectsWith(() => loadModel(saved), FileFormatError, weightsPath, `truncated: expected ${weightBytes} bytes, found ${weightBytes - 10}`);
    appendFileSync(weightsPath, new Uint8Array(20));
    await rejectsWith(() => loadModel(saved), FileFormatError, weightsPath, `expected ${weightBytes} bytes, found ${weightBytes + 10}`);

    // Sharded group: the total over its shards is checked.
    const shard2 = join(keras, 'group1-shard2of2.bin');
    truncateSync(shard2, 4);
    await rejectsWith(() => loadModel(keras), FileFormatError, shard2, 'truncated: expected 60 bytes, found 32', '2 shards');
    rmSync(shard2);
    await rejectsWith(() => loadModel(keras), FileFormatError, shard2, 'not found');
    assert.equal(tf.memory().numTensors, start);
  } finally {
    rmSync(saved, { recursive: true, force: true });
    rmSync(keras, { recursive: true, force: true });
  }
});

test('io errors: weights that do not fit the topology are reported and nothing leaks', async () => {
  const dir = writeKerasModel();
  const file = join(dir, 'model.json');
  const start = tf.memory().numTensors;
  try {
    const json = JSON.parse(readFileSync(file, 'utf8'));
    json.weightsManifest[0].weights[0].shape = [3, 4]; // same byte count, wrong shape
    writeFileSync(file, JSON.stringify(json));
    await rejectsWith(() => loadModel(dir), FileFormatError, file, 'weights do not fit the model');
    json.weightsManifest[0].weights[0].shape = [4, 3];
    json.weightsManifest[0].weights[0].dtype = 'string';
    writeFileSync(file, JSON.stringify(json));
    await rejectsWith(() => loadModel(dir), FileFormatError, file, 'unsupported dtype "string"');
    json.weightsManifest[0].weights[0].dtype = 'float32';
    json.weightsManifest[0].paths[0] = '../elsewhere.bin';
    writeFileSync(file, JSON.stringify(json));
    await rejectsWith(() => loadModel(dir), FileFormatError, file, 'points outside the model folder');
    assert.equal(tf.memory().numTensors, start);
    assert.ok(!existsSync(join(dir, 'weights.bin')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('checkInputShape: names the argument and both shapes', () => {
  const model = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
  try {
    checkInputShape(model, [28, 28, 1]);
    assert.throws(
      () => checkInputShape(model, [32, 32, 3]),
      (e: unknown) =>
        e instanceof InputError &&
        e.argument === 'dataset' &&
        e.message.includes('[28, 28, 1]') &&
        e.message.includes('[32, 32, 3]'),
    );
    assert.throws(() => checkInputShape(model, [28, 28, 3], '--data'), /InputError: --data: the model expects .*\[28, 28, 1\].*\[28, 28, 3\]/);
  } finally {
    model.dispose();
  }
});

// ---------------------------------------------------------------------------
// Zoo options for adversarial training (issue 7): `activation` and `width`.
// (Imports here because this part of the file is append-only; ES imports are hoisted.)
import { initBackend } from '../src/node/backend.js';
import { ZOO_ACTIVATIONS } from '../src/models/zoo.js';
import { Rng } from '../src/util/rng.js';

/** Recorded from the zoo before the options existed: 28x28x1, 10 classes, seed 0. */
const DEFAULT_BUILDS: Record<string, { params: number; first: number[]; sum: number }> = {
  mlp: { params: 235146, first: [0.012431045062839985, 0.010440174490213394, 0.07241567224264145, 0.035779278725385666], sum: -1.000098008533854 },
  'small-cnn': { params: 1199882, first: [0.02326194755733013, 0.019536474719643593, 0.1355098932981491, 0.06695299595594406], sum: 4.622165513501159 },
  lenet: { params: 61706, first: [0.03030437044799328, 0.02545103244483471, 0.1765347421169281, 0.0872226357460022], sum: 26.463082430720306 },
  resnet: { params: 78426, first: [0.8968303203582764, 0.7532001733779907, 0.3644689917564392, -0.410687118768692], sum: 647.243244460792 },
};

function weightSum(model: tfl.LayersModel): number {
  let sum = 0;
  for (const w of weightArrays(model)) for (const v of w) sum += v;
  return sum;
}

test('zoo options: the defaults build exactly the models from before the options (seed 0)', () => {
  for (const name of ZOO_NAMES) {
    const implicit = buildModel(name, { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
    const explicit = buildModel(name, { inputShape: [28, 28, 1], numClasses: 10, seed: 0, activation: 'relu', width: 1 });
    try {
      const expected = DEFAULT_BUILDS[name];
      assert.equal(implicit.countParams(), expected.params, name);
      assert.deepEqual(Array.from(weightArrays(implicit)[0].slice(0, 4)), expected.first, name);
      assert.equal(weightSum(implicit), expected.sum, name);
      // Same layers, names and configs (saved model.json files stay loadable and identical).
      assert.deepEqual(explicit.toJSON(null, false), implicit.toJSON(null, false), name);
      assert.deepEqual(weightArrays(explicit), weightArrays(implicit), name);
    } finally {
      implicit.dispose();
      explicit.dispose();
    }
  }
  const resnet = buildModel('resnet', { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
  try {
    assert.deepEqual(
      resnet.layers.filter((l) => l.getClassName() === 'ReLU').map((l) => l.name),
      ['stem_relu', 'stage1_relu1', 'stage1_out', 'stage2_relu1', 'stage2_out', 'stage3_relu1', 'stage3_out'],
    );
  } finally {
    resnet.dispose();
  }
});

/** small-cnn's parameters on 28x28x1 with 10 classes at width k, counted by hand layer by layer. */
function smallCnnParams(k: number): number {
  const conv1 = 3 * 3 * 1 * (32 * k) + 32 * k; // 3x3 kernel over 1 channel, plus bias
  const conv2 = 3 * 3 * (32 * k) * (64 * k) + 64 * k;
  const fc1 = 12 * 12 * (64 * k) * (128 * k) + 128 * k; // 28 -> 26 -> 24 -> pool 12
  const logits = 128 * k * 10 + 10;
  return conv1 + conv2 + fc1 + logits;
}

test('zoo options: width 2 doubles every hidden layer; small-cnn has the hand-counted parameters', () => {
  assert.equal(smallCnnParams(1), 1199882);
  // 640 + 73,856 + 4,718,848 + 2,570: the dense layer after the convolutions grows ~4x (both its sides double).
  assert.equal(smallCnnParams(2), 4795914);
  const wide = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 1, width: 2 });
  try {
    assert.deepEqual(
      wide.layers.map((l) => [l.name, l.outputShape]),
      [
        ['input', [null, 28, 28, 1]],
        ['conv1', [null, 26, 26, 64]],
        ['conv2', [null, 24, 24, 128]],
        ['pool', [null, 12, 12, 128]],
        ['flatten', [null, 18432]],
        ['fc1', [null, 256]],
        ['logits', [null, 10]],
      ],
    );
    assert.equal(wide.countParams(), 4795914);
  } finally {
    wide.dispose();
  }
  const three = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 1, width: 3 });
  assert.equal(three.countParams(), smallCnnParams(3));
  three.dispose();

  // Every model: each hidden conv/dense layer has twice the filters or units, the logits do not change.
  const size = (l: tfl.layers.Layer) => (l.getConfig().filters ?? l.getConfig().units) as number | undefined;
  for (const name of ZOO_NAMES) {
    const one = buildModel(name, { inputShape: [32, 32, 3], numClasses: 10, seed: 1 });
    const two = buildModel(name, { inputShape: [32, 32, 3], numClasses: 10, seed: 1, width: 2 });
    try {
      assert.deepEqual(two.layers.map((l) => l.name), one.layers.map((l) => l.name), name);
      assert.equal(two.weights.length, one.weights.length, name);
      assert.ok(two.countParams() > 2 * one.countParams(), `${name}: ${two.countParams()} vs ${one.countParams()}`);
      for (const [i, l] of one.layers.entries()) {
        if (size(l) === undefined) continue;
        assert.equal(size(two.layers[i]), l.name === 'logits' ? 10 : 2 * size(l)!, `${name} ${l.name}`);
      }
    } finally {
      one.dispose();
      two.dispose();
    }
  }
});

test('zoo options: every activation builds every model with finite logits, the same initial weights, and saves', async () => {
  const start = tf.memory().numTensors;
  const shape: [number, number, number] = [16, 16, 3];
  const x = randomInput(shape, 2, 5);
  for (const name of ZOO_NAMES) {
    const relu = buildModel(name, { inputShape: shape, numClasses: 10, seed: 3 });
    const reluLogits = predict(relu, x);
    for (const activation of ZOO_ACTIVATIONS) {
      const m = buildModel(name, { inputShape: shape, numClasses: 10, seed: 3, activation });
      try {
        const logits = predict(m, x);
        assert.equal(logits.length, 20);
        assert.ok(logits.every(Number.isFinite), `${name} ${activation}: ${logits}`);
        // The activation never touches the seeded initialization.
        assert.deepEqual(weightArrays(m), weightArrays(relu), `${name} ${activation}`);
        const used = new Set(m.layers.map((l) => (l.getClassName() === 'ReLU' ? 'relu' : l.getConfig().activation)).filter((a) => a !== undefined && a !== 'linear'));
        assert.deepEqual([...used], [activation === 'silu' ? 'swish' : activation], `${name} ${activation}`);
        if (activation !== 'relu') assert.ok(logits.some((v, i) => v !== reluLogits[i]), `${name} ${activation} gives relu's logits`);
        const loaded = await modelFromArtifacts(await modelToArtifacts(m));
        assert.deepEqual(predict(loaded, x), logits, `${name} ${activation} after save/load`);
        loaded.dispose();
      } finally {
        m.dispose();
      }
    }
    relu.dispose();
  }
  x.dispose();
  assert.equal(tf.memory().numTensors, start);
});

test('zoo options: a bad activation or width is an InputError naming the option', () => {
  const opts = { inputShape: [28, 28, 1] as [number, number, number], numClasses: 10, seed: 0 };
  assert.throws(
    () => buildModel('mlp', { ...opts, activation: 'tanh' as never }),
    (e: unknown) => e instanceof InputError && e.argument === 'activation' && e.message === 'activation: unknown activation "tanh"; expected one of relu, softplus, swish, silu, gelu, elu',
  );
  for (const width of [0, -1, 1.5, NaN, Infinity]) {
    assert.throws(
      () => buildModel('small-cnn', { ...opts, width }),
      (e: unknown) => e instanceof InputError && e.argument === 'width' && e.message === `width: expected an integer >= 1, got ${width}`,
      String(width),
    );
  }
});

/** max |a - b| / max |b|, as in test/zoo-parity.test.ts. */
function relativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

interface StepResult {
  logits: Float32Array;
  inputGrad: Float32Array;
  weightGrads: Float32Array[];
  stepped: Float32Array[];
}

/**
 * Inference logits, then in training mode the input gradient, every weight gradient and
 * the weights after one optimizer step on the batch, on the current backend.
 */
function oneTrainStep(name: string, activation: (typeof ZOO_ACTIVATIONS)[number], shape: [number, number, number], weights: Float32Array[], x: Float32Array, labels: Int32Array): StepResult {
  const model = buildModel(name, { inputShape: shape, numClasses: 10, seed: 1, activation });
  const values = model.getWeights().map((w, i) => tf.tensor(weights[i], w.shape));
  model.setWeights(values);
  tf.dispose(values);
  // SGD rather than the trainer's Adam: Adam's first step is ~lr * sign(g), which turns float
  // rounding in near-zero gradients into full-size differences; the gradients themselves are compared.
  const optimizer = tf.train.sgd(0.1);
  // The input as a variable: one backward pass gives the input and the weight gradients (the CPU backend is slow).
  const initial = tf.tensor4d(x, [labels.length, ...shape]);
  const input = tf.variable(initial, true, `input_${name}_${activation}`);
  initial.dispose();
  try {
    return tf.tidy(() => {
      const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
      const logits = (model.apply(input) as tf.Tensor).dataSync() as Float32Array;
      const trainable = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { grads } = tf.variableGrads(
        () => tf.losses.softmaxCrossEntropy(y, model.apply(input, { training: true }) as tf.Tensor) as tf.Scalar,
        [input, ...trainable],
      );
      const inputGrad = grads[input.name].dataSync() as Float32Array;
      const weightGrads = trainable.map((v) => grads[v.name].dataSync() as Float32Array);
      optimizer.applyGradients(Object.fromEntries(trainable.map((v) => [v.name, grads[v.name]])));
      const stepped = model.getWeights().map((w) => w.dataSync() as Float32Array);
      return { logits, inputGrad, weightGrads, stepped };
    });
  } finally {
    input.dispose();
    optimizer.dispose();
    model.dispose();
  }
}

test('zoo options on wasm with advlab kernels: one training step per activation matches CPU', async () => {
  const TOLERANCE = 1e-4;
  await initBackend({ backend: 'wasm' });
  try {
    // small-cnn puts the activation inside conv2d and dense layers, resnet in standalone layers after batch norm.
    for (const [name, shape] of [
      ['small-cnn', [10, 10, 1]],
      ['resnet', [8, 8, 3]],
    ] as [string, [number, number, number]][]) {
      const rng = new Rng(9);
      // Batch 8: batch norm's training-mode gradient is well conditioned from there on (see zoo-parity).
      const n = 8;
      const x = Float32Array.from({ length: n * shape[0] * shape[1] * shape[2] }, () => rng.next());
      const labels = Int32Array.from({ length: n }, () => rng.int(10));
      for (const activation of ZOO_ACTIVATIONS) {
        await tf.setBackend('cpu');
        const probe = buildModel(name, { inputShape: shape, numClasses: 10, seed: 1, activation, width: 1 });
        const weights = probe.getWeights().map((w) => Float32Array.from(w.dataSync()));
        probe.dispose();
        const cpu = oneTrainStep(name, activation, shape, weights, x, labels);
        await tf.setBackend('wasm');
        const before = tf.memory().numTensors;
        const wasm = oneTrainStep(name, activation, shape, weights, x, labels);
        assert.equal(tf.memory().numTensors, before, `${name} ${activation}: leaked tensors on wasm`);
        const check = (what: string, a: Float32Array, b: Float32Array) => {
          const err = relativeError(a, b);
          assert.ok(err <= TOLERANCE, `${name} ${activation} ${what}: ${err}`);
        };
        check('logits', wasm.logits, cpu.logits);
        check('input gradient', wasm.inputGrad, cpu.inputGrad);
        assert.ok(cpu.inputGrad.some((v) => v !== 0), `${name} ${activation}: zero input gradient`);
        cpu.weightGrads.forEach((g, i) => check(`weight gradient ${i}`, wasm.weightGrads[i], g));
        cpu.stepped.forEach((w, i) => check(`weight ${i} after the step`, wasm.stepped[i], w));
        assert.ok(cpu.stepped.some((w, i) => w.some((v, j) => v !== weights[i][j])), `${name} ${activation}: the step changed nothing`);
      }
    }
  } finally {
    await tf.setBackend('cpu');
  }
});
