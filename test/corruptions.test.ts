import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { Classifier } from '../src/models/classifier.js';
import { loadBuiltinDataset } from '../src/node/data/builtin.js';
import { balancedSubset } from '../src/data/subset.js';
import type { ImageSet } from '../src/data/types.js';
import { InputError } from '../src/errors.js';
import { Rng } from '../src/util/rng.js';
import {
  CORRUPTIONS,
  CORRUPTION_NAMES,
  addGaussianNoise,
  gaussianBlur,
  gaussianKernel,
  parseCorruptions,
  parseSeverities,
  ringOffset,
  rotateImages,
  translateImages,
  type ImageShape,
} from '../src/robustness/corruptions.js';
import { corruptionAccuracy, type CorruptionProgress } from '../src/robustness/corruption-accuracy.js';

let mnist: ImageSet;

before(async () => {
  await initBackend({ backend: 'cpu' });
  mnist = balancedSubset(loadBuiltinDataset('mnist').test, 10, 50);
});

/** Index of value k of pixel (i, j) of image n. */
function at(shape: ImageShape, n: number, i: number, j: number, k = 0): number {
  const [h, w, c] = shape;
  return ((n * h + i) * w + j) * c + k;
}

function randomImages(count: number, shape: ImageShape, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: count * shape[0] * shape[1] * shape[2] }, () => rng.next());
}

function meanAbsChange(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

test('brightness adds exactly delta * (hi - lo), then clips', () => {
  const x = Float32Array.of(0, 0.25, 0.7, 0.95);
  const out = CORRUPTIONS.brightness.apply(x, [2, 2, 1], 2, new Rng(0)); // delta 0.2
  assert.equal(CORRUPTIONS.brightness.severities[1], 0.2);
  assert.deepEqual(Array.from(out), [Math.fround(0.2), Math.fround(0.25 + 0.2), Math.fround(Math.fround(0.7) + 0.2), 1]);
  // In [0, 255] the same severity adds 0.2 * 255 = 51.
  const y = Float32Array.of(0, 100, 210);
  assert.deepEqual(Array.from(CORRUPTIONS.brightness.apply(y, [1, 3, 1], 2, new Rng(0), [0, 255])), [51, 151, 255]);
});

test('contrast scales around each channel mean: (x - m) * factor + m', () => {
  // mean 0.4, factor 0.75 (severity 1): 0 -> 0.1, 0.2 -> 0.25, 0.4 -> 0.4, 1 -> 0.85.
  const out = CORRUPTIONS.contrast.apply(Float32Array.of(0, 0.2, 0.4, 1), [2, 2, 1], 1, new Rng(0));
  [0.1, 0.25, 0.4, 0.85].forEach((e, i) => assert.ok(Math.abs(out[i] - e) < 1e-6, `${i}: ${out[i]} vs ${e}`));
  // Two channels, factor 0.5 (severity 2): channel 0 [0.2, 0.6] (mean 0.4) -> [0.3, 0.5];
  // channel 1 [1, 0] (mean 0.5) -> [0.75, 0.25]. The second image has its own means (0.25 in both channels).
  const two = CORRUPTIONS.contrast.apply(Float32Array.of(0.2, 1, 0.6, 0, 0, 0, 0.5, 0.5), [1, 2, 2], 2, new Rng(0));
  [0.3, 0.75, 0.5, 0.25, 0.125, 0.125, 0.375, 0.375].forEach((e, i) => assert.ok(Math.abs(two[i] - e) < 1e-6, `${i}: ${two[i]} vs ${e}`));
});

test('translation moves a single bright pixel by the given shift and fills with lo', () => {
  const shape: ImageShape = [5, 6, 2];
  const x = new Float32Array(2 * 5 * 6 * 2).fill(-1); // bounds [-1, 1], background lo
  x[at(shape, 0, 1, 2, 1)] = 1;
  x[at(shape, 1, 4, 5, 0)] = 0.5;
  const out = translateImages(x, shape, (n) => (n === 0 ? [2, -1] : [-3, -4]), [-1, 1]);
  const expected = new Float32Array(x.length).fill(-1);
  expected[at(shape, 0, 3, 1, 1)] = 1; // (1, 2) + (2, -1)
  expected[at(shape, 1, 1, 1, 0)] = 0.5; // (4, 5) + (-3, -4)
  assert.deepEqual(out, expected);
  // A pixel shifted off the image is gone; the fill is lo (not 0).
  assert.deepEqual(translateImages(x.subarray(0, 60), shape, [0, 4], [-1, 1]), new Float32Array(60).fill(-1));
});

test('translation severities shift each image by a ring offset at exactly that distance', () => {
  for (const d of [1, 2, 3]) {
    const rng = new Rng(d);
    const seen = new Set<string>();
    for (let i = 0; i < 400 * d; i++) {
      const [dy, dx] = ringOffset(d, rng);
      assert.equal(Math.max(Math.abs(dy), Math.abs(dx)), d);
      seen.add(`${dy},${dx}`);
    }
    assert.equal(seen.size, 8 * d, `all ${8 * d} offsets at distance ${d}`);
  }
  const shape: ImageShape = [28, 28, 1];
  const x = mnist.images.subarray(0, 10 * 784);
  const out = CORRUPTIONS.translation.apply(x, shape, 3, new Rng(7)); // 4 pixels
  const copy = new Rng(7);
  const offsets = Array.from({ length: 10 }, () => ringOffset(4, copy));
  assert.deepEqual(out, translateImages(x, shape, (n) => offsets[n]));
});

test('rotation: 0 degrees is the identity, 90 degrees turns a square image counter-clockwise', () => {
  const shape: ImageShape = [5, 5, 2];
  const x = randomImages(2, shape, 3);
  assert.deepEqual(rotateImages(x, shape, 0), x);
  // Hand check: the pixel at row 1, column 3 (upper right) goes to row 1, column 1 (upper left).
  const one = new Float32Array(50);
  one[at(shape, 0, 1, 3, 1)] = 1;
  const turned = rotateImages(one, shape, 90);
  const expected = new Float32Array(50);
  expected[at(shape, 0, 1, 1, 1)] = 1;
  assert.deepEqual(turned, expected);
  // In general, out(a, b) = in(b, n - 1 - a), exactly; -90 undoes it, 180 flips both axes.
  const r = rotateImages(x, shape, 90);
  for (let n = 0; n < 2; n++)
    for (let a = 0; a < 5; a++)
      for (let b = 0; b < 5; b++)
        for (let k = 0; k < 2; k++) assert.equal(r[at(shape, n, a, b, k)], x[at(shape, n, b, 4 - a, k)]);
  assert.deepEqual(rotateImages(r, shape, -90), x);
  const flipped = rotateImages(x, shape, 180);
  assert.equal(flipped[at(shape, 1, 0, 1, 1)], x[at(shape, 1, 4, 3, 1)]);
  // The centre of an odd-sized image is fixed by any angle.
  const r45 = rotateImages(x, shape, 45);
  assert.equal(r45[at(shape, 0, 2, 2, 0)], x[at(shape, 0, 2, 2, 0)]);
  // Bilinear with lo outside, by hand: turning an all-hi 5x5 image by 45 degrees, the top-left
  // corner (offset (-2, -2) from the centre) samples column 2 at row 2 - 2*sqrt(2) = -0.83,
  // i.e. 0.83 of row -1 (lo = 0) and 0.17 of row 0 (hi = 1): 3 - 2*sqrt(2).
  const ones = rotateImages(new Float32Array(25).fill(1), [5, 5, 1], 45);
  assert.ok(Math.abs(ones[0] - (3 - 2 * Math.SQRT2)) < 1e-6, `corner ${ones[0]}`);
  assert.equal(ones[12], 1);
});

test('rotation severities turn each image by +/- the table angle', () => {
  const shape: ImageShape = [28, 28, 1];
  const x = mnist.images.subarray(0, 20 * 784);
  const out = CORRUPTIONS.rotation.apply(x, shape, 2, new Rng(1)); // 20 degrees
  const plus = rotateImages(x, shape, 20);
  const minus = rotateImages(x, shape, -20);
  let nPlus = 0;
  for (let n = 0; n < 20; n++) {
    const o = out.subarray(n * 784, (n + 1) * 784);
    const isPlus = o.every((v, i) => v === plus[n * 784 + i]);
    const isMinus = o.every((v, i) => v === minus[n * 784 + i]);
    assert.ok(isPlus !== isMinus, `image ${n} is turned by exactly one of +20, -20`);
    if (isPlus) nPlus++;
  }
  assert.ok(nPlus > 0 && nPlus < 20, `both directions occur (${nPlus} of 20 counter-clockwise)`);
});

test('gaussian blur: kernel variance is sigma^2, constants stay, an interior impulse keeps its sum and spreads by sigma', () => {
  for (const sigma of CORRUPTIONS['gaussian-blur'].severities) {
    const k = gaussianKernel(sigma);
    const r = (k.length - 1) / 2;
    let sum = 0;
    let variance = 0;
    k.forEach((v, i) => {
      sum += v;
      variance += v * (i - r) ** 2;
      assert.equal(v, k[k.length - 1 - i], 'symmetric');
    });
    assert.ok(Math.abs(sum - 1) < 1e-12, `sigma ${sigma}: kernel sums to ${sum}`);
    assert.ok(Math.abs(variance - sigma * sigma) < 1e-6, `sigma ${sigma}: kernel variance ${variance}`);
  }
  const shape: ImageShape = [41, 41, 1];
  const constant = new Float32Array(2 * 41 * 41).fill(0.37);
  const impulse = new Float32Array(41 * 41);
  impulse[at(shape, 0, 20, 20)] = 1;
  for (let s = 1; s <= 5; s++) {
    const sigma = CORRUPTIONS['gaussian-blur'].severities[s - 1];
    const c = CORRUPTIONS['gaussian-blur'].apply(constant, shape, s, new Rng(0));
    assert.ok(c.every((v) => Math.abs(v - Math.fround(0.37)) < 1e-6), `severity ${s}: constant image stays constant`);
    const b = CORRUPTIONS['gaussian-blur'].apply(impulse, shape, s, new Rng(0));
    let sum = 0;
    let rowVariance = 0;
    let colVariance = 0;
    for (let i = 0; i < 41; i++)
      for (let j = 0; j < 41; j++) {
        const v = b[at(shape, 0, i, j)];
        sum += v;
        rowVariance += v * (i - 20) ** 2;
        colVariance += v * (j - 20) ** 2;
      }
    assert.ok(Math.abs(sum - 1) < 1e-5, `severity ${s}: impulse sum ${sum}`);
    assert.ok(Math.abs(rowVariance - sigma * sigma) < 1e-4 && Math.abs(colVariance - sigma * sigma) < 1e-4, `severity ${s}: spread ${rowVariance}, ${colVariance} vs ${sigma * sigma}`);
    assert.equal(Math.max(...b), b[at(shape, 0, 20, 20)], 'the peak stays at the centre');
  }
  // Clamped edges, by hand: a 1x5 row [1, 0, 0, 0, 0] gives out[0] = centre tap + every tap left of it = (1 + k[r]) / 2.
  const k = gaussianKernel(1);
  const edge = gaussianBlur(Float32Array.of(1, 0, 0, 0, 0), [1, 5, 1], 1);
  assert.ok(Math.abs(edge[0] - (1 + k[(k.length - 1) / 2]) / 2) < 1e-6, `edge ${edge[0]}`);
});

test('gaussian noise on a mid-grey image has mean ~0 and std ~sigma (no clipping at these sigmas)', () => {
  const shape: ImageShape = [28, 28, 1];
  const n = 40;
  const grey = new Float32Array(n * 784).fill(0.5);
  const check = (out: Float32Array, sigma: number, scale: number, label: string) => {
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < out.length; i++) {
      const d = (out[i] - 0.5 * scale) / scale;
      sum += d;
      sq += d * d;
    }
    const mean = sum / out.length;
    const std = Math.sqrt(sq / out.length - mean * mean);
    assert.ok(Math.abs(mean) < (5 * sigma) / Math.sqrt(out.length), `${label}: mean ${mean}`);
    assert.ok(Math.abs(std / sigma - 1) < 0.03, `${label}: std ${std} vs ${sigma}`);
  };
  check(addGaussianNoise(grey, shape, 0.05, new Rng(1)), 0.05, 1, 'std 0.05');
  for (const s of [1, 2]) {
    const sigma = CORRUPTIONS['gaussian-noise'].severities[s - 1];
    check(CORRUPTIONS['gaussian-noise'].apply(grey, shape, s, new Rng(2)), sigma, 1, `severity ${s}`);
  }
  // In [0, 255] the std scales with the range.
  const grey255 = new Float32Array(n * 784).fill(127.5);
  check(CORRUPTIONS['gaussian-noise'].apply(grey255, shape, 1, new Rng(3), [0, 255]), 0.06, 255, 'severity 1 in [0, 255]');
});

test('salt-and-pepper hits the table fraction of pixels, all channels, half lo and half hi', () => {
  const shape: ImageShape = [28, 28, 3];
  const n = 50;
  const pixels = n * 28 * 28;
  const grey = new Float32Array(pixels * 3).fill(0.5);
  for (const s of [1, 3, 5]) {
    const fraction = CORRUPTIONS['salt-and-pepper'].severities[s - 1];
    const out = CORRUPTIONS['salt-and-pepper'].apply(grey, shape, s, new Rng(s));
    let salt = 0;
    let pepper = 0;
    for (let p = 0; p < pixels; p++) {
      const v = out.subarray(p * 3, p * 3 + 3);
      if (v[0] === 0.5) assert.ok(v[1] === 0.5 && v[2] === 0.5, 'untouched pixels keep all channels');
      else {
        assert.ok(v.every((u) => u === v[0]) && (v[0] === 0 || v[0] === 1), 'a hit sets every channel to lo or hi');
        if (v[0] === 1) salt++;
        else pepper++;
      }
    }
    const hit = (salt + pepper) / pixels;
    const sd = Math.sqrt((fraction * (1 - fraction)) / pixels);
    assert.ok(Math.abs(hit - fraction) < 5 * sd, `severity ${s}: ${hit} vs ${fraction}`);
    assert.ok(Math.abs(salt / (salt + pepper) - 0.5) < 5 * Math.sqrt(0.25 / (salt + pepper)), `severity ${s}: salt share ${salt / (salt + pepper)}`);
  }
});

test('same seed gives the same output, a different seed a different one; deterministic corruptions ignore the seed', () => {
  const shape: ImageShape = [28, 28, 1];
  const x = mnist.images.subarray(0, 20 * 784);
  for (const name of CORRUPTION_NAMES) {
    const c = CORRUPTIONS[name];
    const a = c.apply(x, shape, 3, new Rng(5));
    const b = c.apply(x, shape, 3, new Rng(5));
    const other = c.apply(x, shape, 3, new Rng(6));
    assert.deepEqual(a, b, `${name}: same seed`);
    if (c.random) assert.notDeepEqual(a, other, `${name}: different seed`);
    else assert.deepEqual(a, other, `${name}: no randomness`);
    // Batch by batch with one Rng equals all at once.
    const rng = new Rng(5);
    const parts = [c.apply(x.subarray(0, 7 * 784), shape, 3, rng), c.apply(x.subarray(7 * 784), shape, 3, rng)];
    const joined = new Float32Array(x.length);
    joined.set(parts[0]);
    joined.set(parts[1], 7 * 784);
    assert.deepEqual(joined, a, `${name}: batching`);
  }
});

test('damage grows with severity for every corruption, and outputs stay in bounds (50 mnist test images)', () => {
  const shape: ImageShape = [28, 28, 1];
  // The same images in bounds [-1, 1]: outputs must respect those bounds too.
  const scaled = mnist.images.map((v) => 2 * v - 1);
  for (const name of CORRUPTION_NAMES) {
    let previous = 0;
    const changes: number[] = [];
    for (let s = 1; s <= 5; s++) {
      const out = CORRUPTIONS[name].apply(mnist.images, shape, s, new Rng(0));
      assert.equal(out.length, mnist.images.length);
      assert.ok(out.every((v) => v >= 0 && v <= 1), `${name} ${s}: in [0, 1]`);
      const change = meanAbsChange(out, mnist.images);
      changes.push(change);
      assert.ok(change > previous, `${name}: mean |change| ${changes.map((v) => v.toFixed(4)).join(' < ')}`);
      previous = change;
      const outScaled = CORRUPTIONS[name].apply(scaled, shape, s, new Rng(0), [-1, 1]);
      assert.ok(outScaled.every((v) => v >= -1 && v <= 1), `${name} ${s}: in [-1, 1]`);
    }
  }
});

test('bad input is an InputError naming the argument', () => {
  const shape: ImageShape = [2, 2, 1];
  const x = new Float32Array(8).fill(0.5);
  const c = CORRUPTIONS['gaussian-noise'];
  const inputError = (argument: string, pattern?: RegExp) => (e: unknown) => e instanceof InputError && e.argument === argument && (!pattern || pattern.test(e.message));
  assert.throws(() => c.apply(x.subarray(0, 7), shape, 1, new Rng(0)), inputError('images', /multiple of 2 x 2 x 1 = 4/));
  for (const s of [0, 6, 2.5, NaN]) assert.throws(() => c.apply(x, shape, s, new Rng(0)), inputError('severity'), `severity ${s}`);
  const nan = x.slice();
  nan[5] = NaN;
  assert.throws(() => c.apply(nan, shape, 1, new Rng(0)), inputError('images', /non-finite value NaN in image 1/));
  const outside = x.slice();
  outside[0] = 1.5;
  assert.throws(() => CORRUPTIONS.brightness.apply(outside, shape, 1, new Rng(0)), inputError('images', /outside the bounds/));
  assert.throws(() => c.apply(x, shape, 1, new Rng(0), [1, 0]), inputError('bounds'));
  assert.throws(() => c.apply(x, [2, 0, 1], 1, new Rng(0)), inputError('imageShape'));
  assert.throws(() => translateImages(x, shape, [0.5, 0]), inputError('offset'));

  assert.deepEqual(parseCorruptions('all'), [...CORRUPTION_NAMES]);
  assert.deepEqual(parseCorruptions(' contrast, brightness,contrast'), ['contrast', 'brightness']);
  assert.throws(() => parseCorruptions('brightness,fog'), inputError('corruptions', /unknown corruption "fog".*gaussian-noise, salt-and-pepper, gaussian-blur, brightness, contrast, rotation, translation/));
  assert.throws(() => parseCorruptions('brightness,', '--corruptions'), inputError('--corruptions', /empty corruption name/));
  assert.deepEqual(parseSeverities('all'), [1, 2, 3, 4, 5]);
  assert.deepEqual(parseSeverities('5, 1'), [5, 1]);
  assert.throws(() => parseSeverities('1,6'), inputError('severities', /"6" is not a severity/));
  assert.throws(() => parseSeverities('1.5'), inputError('severities'));
});

/**
 * A classifier of constant-valued 2x2 images: class 1 if the mean is above 0.5.
 * logits = [0.5 - mean, mean - 0.5].
 */
function brightnessClassifier(): Classifier {
  return Classifier.fromFunction(
    (x) =>
      tf.tidy(() => {
        const m = tf.mean(x, [1, 2, 3]);
        return tf.stack([tf.sub(0.5, m), tf.sub(m, 0.5)], 1) as tf.Tensor2D;
      }),
    { inputShape: [2, 2, 1], numClasses: 2 },
  );
}

test('corruptionAccuracy matches a hand count on a tiny model and leaves no tensors behind', async () => {
  const classifier = brightnessClassifier();
  const values = [0.05, 0.25, 0.42, 0.7];
  const images = new Float32Array(16);
  values.forEach((v, n) => images.fill(v, n * 4, n * 4 + 4));
  const labels = Int32Array.of(0, 0, 0, 1);
  const before = tf.memory().numTensors;
  const events: CorruptionProgress[] = [];
  const result = await corruptionAccuracy(classifier, images, labels, [2, 2, 1], {
    corruptions: ['brightness', 'contrast'],
    severities: [1, 3, 5],
    batchSize: 3,
    onProgress: (e) => events.push(e),
  });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(result.clean, 1);
  assert.equal(result.count, 4);
  // Brightness +0.1: means .15 .35 .52 .8 -> 0 0 1 1 (3 right); +0.3: .35 .55 .72 1 -> 0 1 1 1 (2);
  // +0.5: .55 .75 .92 1 -> all 1 (1). Contrast leaves constant images unchanged (4 right).
  assert.deepEqual(
    result.results.map((r) => [r.corruption, r.severity, r.parameter, r.correct, r.count, r.accuracy]),
    [
      ['brightness', 1, 0.1, 3, 4, 0.75],
      ['brightness', 3, 0.3, 2, 4, 0.5],
      ['brightness', 5, 0.5, 1, 4, 0.25],
      ['contrast', 1, 0.75, 4, 4, 1],
      ['contrast', 3, 0.4, 4, 4, 1],
      ['contrast', 5, 0.15, 4, 4, 1],
    ],
  );
  assert.ok(Math.abs(result.meanAccuracy.brightness! - 0.5) < 1e-12);
  assert.equal(result.meanAccuracy.contrast, 1);
  assert.ok(Math.abs(result.overallMeanAccuracy - 0.75) < 1e-12);
  assert.deepEqual(
    events.map((e) => [e.done, e.total, e.corruption, e.severity]),
    [[1, 7, 'clean', null], [2, 7, 'brightness', 1], [3, 7, 'brightness', 3], [4, 7, 'brightness', 5], [5, 7, 'contrast', 1], [6, 7, 'contrast', 3], [7, 7, 'contrast', 5]],
  );
  assert.equal(classifier.counts.queries, 7 * 4);
  classifier.dispose();
});

test('corruptionAccuracy: results do not depend on the batch size; bad arguments are InputErrors', async () => {
  const classifier = Classifier.fromFunction((x) => tf.tidy(() => tf.reshape(tf.slice(x, [0, 13, 10, 0], [-1, 2, 5, 1]), [-1, 10]) as tf.Tensor2D), {
    inputShape: [28, 28, 1],
    numClasses: 10,
  });
  const x = mnist.images.subarray(0, 20 * 784);
  const labels = mnist.labels.subarray(0, 20);
  const before = tf.memory().numTensors;
  const options = { corruptions: ['gaussian-noise', 'rotation', 'translation'], severities: [2, 4], seed: 9 };
  const a = await corruptionAccuracy(classifier, x, labels, [28, 28, 1], { ...options, batchSize: 20 });
  const b = await corruptionAccuracy(classifier, x, labels, [28, 28, 1], { ...options, batchSize: 6 });
  assert.deepEqual(a, b);
  assert.equal(a.results.length, 6);
  assert.equal(tf.memory().numTensors, before);
  const inputError = (argument: string) => (e: unknown) => e instanceof InputError && e.argument === argument;
  await assert.rejects(corruptionAccuracy(classifier, x, labels, [28, 28, 3]), inputError('imageShape'));
  await assert.rejects(corruptionAccuracy(classifier, x, labels.subarray(0, 19), [28, 28, 1]), inputError('labels'));
  await assert.rejects(corruptionAccuracy(classifier, x, Int32Array.from(labels).fill(10, 3, 4), [28, 28, 1]), inputError('labels'));
  await assert.rejects(corruptionAccuracy(classifier, x, labels, [28, 28, 1], { corruptions: ['fog'] }), inputError('corruptions'));
  await assert.rejects(corruptionAccuracy(classifier, x, labels, [28, 28, 1], { severities: [0] }), inputError('severities'));
  await assert.rejects(corruptionAccuracy(classifier, x, labels, [28, 28, 1], { batchSize: 0 }), inputError('batchSize'));
  await assert.rejects(corruptionAccuracy(classifier, new Float32Array(0), new Int32Array(0), [28, 28, 1]), inputError('images'));
  assert.equal(tf.memory().numTensors, before);
});
