// Every zoo model on wasm (with advlab's kernels) against the CPU backend: logits,
// input gradient and every weight gradient, in inference and training mode.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { buildModel, ZOO_NAMES } from '../src/models/zoo.js';
import { Rng } from '../src/util/rng.js';

const TOLERANCE = 1e-4;

/** max |a - b| / max |b|: the error relative to the tensor's scale (elementwise ratios blow up near zero). */
function relativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

interface Computed {
  logits: Float32Array;
  inputGrad: Float32Array;
  weightGrads: Record<string, Float32Array>;
}

function compute(name: string, shape: [number, number, number], weights: Float32Array[], x: Float32Array, labels: Int32Array, training: boolean): Computed {
  const model = buildModel(name, { inputShape: shape, numClasses: 10, seed: 1 });
  const values = model.getWeights().map((w, i) => tf.tensor(weights[i], w.shape));
  model.setWeights(values);
  tf.dispose(values);
  const out = tf.tidy(() => {
    const xt = tf.tensor4d(x, [labels.length, ...shape]);
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
    const loss = (input: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, model.apply(input, { training }) as tf.Tensor) as tf.Scalar;
    const logits = (model.apply(xt, { training }) as tf.Tensor).dataSync() as Float32Array;
    const inputGrad = tf.grad(loss)(xt).dataSync() as Float32Array;
    const { grads } = tf.variableGrads(() => loss(xt));
    const weightGrads = Object.fromEntries(Object.entries(grads).map(([k, g]) => [k.replace(/_\d+$/, ''), g.dataSync() as Float32Array]));
    return { logits, inputGrad, weightGrads };
  });
  model.dispose();
  return out;
}

before(async () => {
  await initBackend({ backend: 'wasm' });
});

for (const name of ZOO_NAMES) {
  for (const shape of [
    [28, 28, 1],
    [16, 16, 3],
  ] as [number, number, number][]) {
    test(`${name} ${shape.join('x')}: logits, input and weight gradients on wasm match CPU within ${TOLERANCE}`, async () => {
      const rng = new Rng(9);
      const probe = buildModel(name, { inputShape: shape, numClasses: 10, seed: 1 });
      const weights = probe.getWeights().map((w) => Float32Array.from(w.dataSync()));
      probe.dispose();
      // Batch 8: batch-norm's training-mode gradient runs through batch statistics, and with
      // a batch of 3 float32 rounding alone moves resnet's input gradient by ~3e-3 (both backends
      // are right to their precision); from batch 8 on it is well conditioned.
      const n = 8;
      const x = Float32Array.from({ length: n * shape[0] * shape[1] * shape[2] }, () => rng.next());
      const labels = Int32Array.from({ length: n }, () => rng.int(10));
      for (const training of name === 'resnet' ? [false, true] : [false]) {
        await tf.setBackend('cpu');
        const cpu = compute(name, shape, weights, x, labels, training);
        await tf.setBackend('wasm');
        const before = tf.memory().numTensors;
        const wasm = compute(name, shape, weights, x, labels, training);
        assert.equal(tf.memory().numTensors, before);
        const mode = training ? 'training' : 'inference';
        assert.ok(relativeError(wasm.logits, cpu.logits) <= TOLERANCE, `${mode} logits ${relativeError(wasm.logits, cpu.logits)}`);
        assert.ok(relativeError(wasm.inputGrad, cpu.inputGrad) <= TOLERANCE, `${mode} input gradient ${relativeError(wasm.inputGrad, cpu.inputGrad)}`);
        const names = Object.keys(cpu.weightGrads);
        assert.ok(names.length >= 4, `${names.length} weight gradients`);
        assert.deepEqual(Object.keys(wasm.weightGrads).sort(), names.sort());
        for (const k of names) {
          const err = relativeError(wasm.weightGrads[k], cpu.weightGrads[k]);
          assert.ok(err <= TOLERANCE, `${mode} gradient of ${k}: ${err}`);
        }
      }
    });
  }
}
