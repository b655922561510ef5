// Scoring images that differ from known ones in a window (models/incremental.ts), and Square Attack on it.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../src/node/backend.js';
import { tf } from '../src/engine/tf.js';
import { buildModel } from '../src/models/zoo.js';
import { Classifier } from '../src/models/classifier.js';
import { IncrementalForward } from '../src/models/incremental.js';
import { runAttack } from '../src/attacks/run.js';
import { square } from '../src/attacks/square.js';
import { Rng } from '../src/util/rng.js';

before(async () => {
  await initBackend({ backend: 'wasm' });
});

const logitsOf = (c: Classifier, images: Float32Array, n: number) => tf.tidy(() => c.logits(tf.tensor4d(images, [n, ...c.inputShape])).dataSync() as Float32Array);

test('window queries give the full forward pass bit for bit, at every square size, also after accepted proposals and with preprocessing', async () => {
  const model = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 3 });
  const rng = new Rng(5);
  for (const preprocess of [undefined, { mean: 0.13, std: 0.31 }]) {
    const c = Classifier.fromModel(model, preprocess ? { preprocess } : {});
    const inc = IncrementalForward.of(c)!;
    assert.ok(inc, 'small-cnn (valid convolutions, pooling, then dense layers) is incremental');
    const n = 12;
    const d = 784;
    const base = Float32Array.from({ length: n * d }, () => rng.next());
    const tensors = tf.memory().numTensors;
    assert.deepEqual(await inc.reset(base, n), logitsOf(c, base, n));
    for (const size of [1, 2, 3, 4, 6, 9, 13, 18, 25, 28]) {
      const rows = [0, 5, 11];
      const tops = rows.map(() => rng.int(28 - size + 1));
      const lefts = rows.map(() => rng.int(28 - size + 1));
      const proposals = new Float32Array(rows.length * d);
      rows.forEach((r, j) => {
        proposals.set(base.subarray(r * d, (r + 1) * d), j * d);
        for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) proposals[j * d + (tops[j] + y) * 28 + lefts[j] + x] = rng.next();
      });
      assert.deepEqual(await inc.score(rows, proposals, tops, lefts, size), logitsOf(c, proposals, rows.length), `square of ${size}`);
      // Accept the middle proposal: it is example 5's base from now on.
      inc.accept(1);
      base.set(proposals.subarray(d, 2 * d), 5 * d);
    }
    // A query that changes nothing scores the accepted base itself.
    const unchanged = base.slice(5 * d, 6 * d);
    assert.deepEqual(await inc.score([5], unchanged, [0], [0], 1), logitsOf(c, unchanged, 1));
    assert.equal(tf.memory().numTensors, tensors);
    c.dispose();
  }
  model.dispose();
});

test('models that are not a chain starting with valid convolutions are scored the plain way', () => {
  for (const name of ['mlp', 'lenet', 'resnet'] as const) {
    const model = buildModel(name, { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
    const c = Classifier.fromModel(model);
    assert.equal(IncrementalForward.of(c), null, name);
    c.dispose();
    model.dispose();
  }
  const fn = Classifier.fromFunction((x) => tf.concat([tf.reshape(tf.slice(x, [0, 0, 0, 0], [-1, 1, 1, 1]), [-1, 1]), tf.zeros([x.shape[0], 1])], 1) as tf.Tensor2D, { inputShape: [4, 4, 1], numClasses: 2 });
  assert.equal(IncrementalForward.of(fn), null, 'a function has no layers to look into');
});

test('Square (L-inf) returns the same images and spends the same queries with window queries as with full ones', async () => {
  const model = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 1 });
  const layered = Classifier.fromModel(model);
  // The same network behind a function: IncrementalForward cannot see into it.
  const opaque = Classifier.fromFunction((x) => model.apply(x, { training: false }) as tf.Tensor2D, { inputShape: [28, 28, 1], numClasses: 10 });
  assert.ok(IncrementalForward.of(layered) && !IncrementalForward.of(opaque));
  const rng = new Rng(9);
  const n = 6;
  const images = Float32Array.from({ length: n * 784 }, () => rng.next());
  // Labelled by the model itself, so every image is attacked.
  const z = logitsOf(layered, images, n);
  const labels = Int32Array.from({ length: n }, (_, i) => {
    const row = Array.from(z.subarray(i * 10, (i + 1) * 10));
    return row.indexOf(Math.max(...row));
  });
  const input = { images, labels, imageShape: [28, 28, 1] as [number, number, number], count: n };
  const options = { eps: 0.05, params: { queries: 300, rescaleSchedule: false } };
  const fast = await runAttack(square, layered, input, options);
  const plain = await runAttack(square, opaque, input, options);
  assert.deepEqual(fast.adversarial, plain.adversarial);
  assert.equal(fast.queries, plain.queries);
  assert.deepEqual(fast.success, plain.success);
  layered.dispose();
  opaque.dispose();
  model.dispose();
});
