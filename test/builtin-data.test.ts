import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadBuiltinDataset, _parseRecordsForTest } from '../src/node/data/builtin.js';
import { balancedOrder, balancedSubset } from '../src/data/subset.js';
import { splitByClass } from '../src/data/split.js';
import { loadDataset } from '../src/node/data/load.js';
import { batchOrder } from '../src/data/batches.js';
import { Rng } from '../src/util/rng.js';

function classCounts(labels: Int32Array, k = 10): number[] {
  const c = new Array(k).fill(0);
  labels.forEach((l) => c[l]++);
  return c;
}

test('mnist: 7,996 train / 2,004 test, floor(0.8 n_c) per class, classes in order', () => {
  const d = loadBuiltinDataset('mnist');
  const total = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];
  assert.equal(d.train.count, 7996);
  assert.equal(d.test.count, 2004);
  assert.deepEqual(classCounts(d.train.labels), total.map((n) => Math.floor(0.8 * n)));
  assert.deepEqual(classCounts(d.test.labels), total.map((n) => n - Math.floor(0.8 * n)));
  assert.deepEqual(d.train.imageShape, [28, 28, 1]);
  assert.equal(d.train.images.length, 7996 * 784);
  // Classes are concatenated in order 0..9, no shuffling.
  for (let i = 1; i < d.train.count; i++) assert.ok(d.train.labels[i] >= d.train.labels[i - 1]);
  let min = Infinity;
  let max = -Infinity;
  for (const v of d.test.images) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  assert.ok(min >= 0 && max <= 1 && max > 0.9, `range [${min}, ${max}]`);
});

test('fashion-mnist: 2 malformed records skipped and counted; 56,000 / 14,000 split', () => {
  const d = loadBuiltinDataset('fashion-mnist');
  assert.equal(d.skipped, 2);
  assert.equal(d.train.count, 56000);
  assert.equal(d.test.count, 14000);
  assert.deepEqual(classCounts(d.test.labels), new Array(10).fill(1400));
  assert.equal(d.classNames[9], 'Ankle boot');
  let max = 0;
  for (let i = 0; i < 784 * 100; i++) max = Math.max(max, d.train.images[i]);
  assert.ok(max <= 1 && max > 0.5);
});

test('record validation: wrong length, NaN, Infinity and out-of-range records are skipped, valid ones kept', () => {
  const good = new Array(784).fill(0.5);
  const nan = [...good];
  nan[3] = NaN;
  const inf = [...good];
  inf[700] = Infinity;
  const big = [...good];
  big[0] = 1.5;
  const neg = [...good];
  neg[10] = -0.1;
  const text = [...good] as unknown[];
  text[5] = '0.5';
  const { images, skipped } = _parseRecordsForTest([good, nan, good.slice(1), inf, big, neg, text, [], good], 1, 'x.json');
  assert.equal(skipped, 7);
  assert.equal(images.length, 2 * 784);
  assert.ok(images.every((v) => v === 0.5));
  // Flat layout: a trailing partial record counts as one malformed record.
  const flat = _parseRecordsForTest([...good, ...good, 0.1, 0.2], 1, 'x.json');
  assert.equal(flat.images.length, 2 * 784);
  assert.equal(flat.skipped, 1);
  // 0..255 scale.
  const scaled = _parseRecordsForTest([new Array(784).fill(255)], 255, 'x.json');
  assert.equal(scaled.images[0], 1);
  assert.throws(() => _parseRecordsForTest({}, 1, 'x.json'), /x\.json: expected a "data" array/);
});

test('balanced prefix: position k*10 + c holds the k-th test image of class c', () => {
  const d = loadBuiltinDataset('mnist');
  const order = balancedOrder(d.test.labels, 10);
  const firstOfClass = classCounts(d.test.labels).map((_, c) => d.test.labels.indexOf(c));
  for (let k = 0; k < 3; k++) for (let c = 0; c < 10; c++) assert.equal(order[k * 10 + c], firstOfClass[c] + k);
  const sub = balancedSubset(d.test, 10, 100);
  assert.deepEqual(classCounts(sub.labels), new Array(10).fill(10));
  assert.deepEqual(Array.from(sub.images.subarray(0, 784)), Array.from(d.test.images.subarray(0, 784)));
  // Every image appears once even past the smallest class (class 5 has 173 test images).
  assert.equal(new Set(order).size, d.test.count);
  assert.throws(() => balancedSubset(d.test, 10, 0), /n: expected a positive integer/);
  assert.throws(() => balancedSubset(d.test, 10, 5000), /n: asked for 5000 images but the test split has only 2004/);
});

test('splitByClass on a small set: floor(0.8 n_c) of each class, file order kept', () => {
  const labels = Int32Array.from([1, 0, 1, 0, 0, 1, 0, 0, 1]); // class 0: 5 images, class 1: 4
  const images = Float32Array.from(labels.keys());
  const { train, test } = splitByClass({ images, labels, count: 9, imageShape: [1, 1, 1] }, 2);
  assert.deepEqual(Array.from(train.images), [1, 3, 4, 6, 0, 2, 5]);
  assert.deepEqual(Array.from(test.images), [7, 8]);
});

test('seeded batch order: same seed same order, all indices once', () => {
  const a = batchOrder(103, 10, new Rng(7)).map((b) => Array.from(b));
  const b = batchOrder(103, 10, new Rng(7)).map((b) => Array.from(b));
  const c = batchOrder(103, 10, new Rng(8)).map((b) => Array.from(b));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.equal(a.length, 11);
  assert.deepEqual(a.flat().sort((x, y) => x - y), Array.from({ length: 103 }, (_, i) => i));
});

test('an unknown dataset name is a clear error', () => {
  assert.throws(() => loadDataset('cifar-100'), /dataset: "cifar-100" is neither a built-in dataset \(mnist, fashion-mnist\) nor an existing file or folder/);
});

test('Rng: reproducible, restorable from its state, rejects bad seeds', () => {
  const r = new Rng(42);
  r.next();
  const s = r.getState();
  const a = [r.next(), r.next(), r.normal()];
  const q = Rng.fromState(s);
  assert.deepEqual([q.next(), q.next(), q.normal()], a);
  assert.throws(() => new Rng(-1), /seed: expected an integer in \[0, 2\^32\)/);
  assert.throws(() => new Rng(1.5), /seed/);
  let sum = 0;
  const g = new Rng(1);
  for (let i = 0; i < 10000; i++) sum += g.next();
  assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02);
});
