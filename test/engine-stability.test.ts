// Issue: no tensor or wasm-memory leak over a long attack loop (the shape of PGD).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { buildModel } from '../src/models/zoo.js';
import { Rng } from '../src/util/rng.js';

test('1,000 signed-gradient attack steps on small-cnn leak no tensors and do not grow the wasm heap', async () => {
  await initBackend({ backend: 'wasm' });
  const model = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
  const rng = new Rng(3);
  const x0 = tf.tensor4d(Float32Array.from({ length: 2 * 784 }, () => rng.next()), [2, 28, 28, 1]);
  const y = tf.oneHot(tf.tensor1d([3, 7], 'int32'), 10);
  const loss = (x: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, model.apply(x) as tf.Tensor) as tf.Scalar;
  const grad = tf.grad(loss);
  const heap = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
  let x: tf.Tensor = x0.clone();
  const step = () => {
    const next = tf.tidy(() => {
      const g = grad(x);
      // x + step * sign(g), projected onto the 0.3 L-inf ball around x0 and clipped to [0, 1].
      const moved = tf.add(x, tf.mul(0.01, tf.sign(g)));
      return tf.clipByValue(tf.minimum(tf.maximum(moved, tf.sub(x0, 0.3)), tf.add(x0, 0.3)), 0, 1);
    });
    x.dispose();
    x = next;
  };
  for (let i = 0; i < 50; i++) step(); // warm-up: the heap may grow to its working size
  const tensors = tf.memory().numTensors;
  const bytes = tf.memory().numBytes;
  const heapAfterWarmup = heap();
  for (let i = 0; i < 1000; i++) step();
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(tf.memory().numBytes, bytes);
  assert.equal(heap(), heapAfterWarmup, 'the wasm heap grew');
  // The loop did attack: the images moved, within the ball and the bounds.
  const delta = tf.tidy(() => tf.max(tf.abs(tf.sub(x, x0))).dataSync()[0]);
  assert.ok(delta > 0.1 && delta <= 0.3 + 1e-6, `max |delta| ${delta}`);
  tf.dispose([x, x0, y]);
  model.dispose();
});
