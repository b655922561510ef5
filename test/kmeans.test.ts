/**
 * k-means (the self-conditioned GAN's pseudo-classes) on cases with known
 * answers, and the categorical draws the generator takes its clusters with.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { kMeans } from '../src/generative/kmeans.js';
import { clusterTrainingSet } from '../src/generative/gan/clustering.js';
import { InputError } from '../src/errors.js';
import { Rng, cumulativeProbabilities, isDistribution } from '../src/util/rng.js';

before(async () => {
  await initBackend({ backend: 'wasm' });
});

/** n points around each of the centres, spread `spread` (uniform), row-major. */
function blobs(centres: number[][], n: number, spread: number, seed: number): { points: Float32Array; truth: Int32Array } {
  const rng = new Rng(seed);
  const d = centres[0].length;
  const points = new Float32Array(centres.length * n * d);
  const truth = new Int32Array(centres.length * n);
  // Interleaved, so the input order says nothing about the clusters.
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < centres.length; c++) {
      const p = i * centres.length + c;
      truth[p] = c;
      for (let j = 0; j < d; j++) points[p * d + j] = centres[c][j] + (rng.next() * 2 - 1) * spread;
    }
  }
  return { points, truth };
}

test('k-means finds well-separated blobs exactly, with centroids at their means and the inertia of the hand sum; seeded', () => {
  const centres = [[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]];
  const { points, truth } = blobs(centres, 50, 1, 1);
  const tensors = tf.memory().numTensors;
  const r = kMeans(points, 3, { k: 4, seed: 3 });
  assert.equal(tf.memory().numTensors, tensors, 'tensors');
  assert.ok(r.converged);
  // The same partition up to a renaming of the clusters.
  const rename = new Map<number, number>();
  for (let i = 0; i < truth.length; i++) {
    const seen = rename.get(r.assignments[i]);
    if (seen === undefined) rename.set(r.assignments[i], truth[i]);
    else assert.equal(seen, truth[i], `point ${i}`);
  }
  assert.equal(rename.size, 4);
  assert.deepEqual(r.sizes, [50, 50, 50, 50]);
  let inertia = 0;
  for (let c = 0; c < 4; c++) {
    const members = [...Array(truth.length).keys()].filter((i) => r.assignments[i] === c);
    for (let j = 0; j < 3; j++) {
      const mean = members.reduce((s, i) => s + points[i * 3 + j], 0) / members.length;
      assert.ok(Math.abs(r.centroids[c * 3 + j] - mean) < 1e-5, `centroid ${c}[${j}]`);
    }
    for (const i of members) for (let j = 0; j < 3; j++) inertia += (points[i * 3 + j] - r.centroids[c * 3 + j]) ** 2;
  }
  assert.ok(Math.abs(r.inertia - inertia) < 1e-6 * inertia);
  const again = kMeans(points, 3, { k: 4, seed: 3 });
  assert.deepEqual(Array.from(again.assignments), Array.from(r.assignments));
});

test('k-means: k = the number of distinct points leaves no error; duplicates and a tiny cluster keep every cluster non-empty', () => {
  const points = Float32Array.from([0, 0, 1, 1, 5, 5, 9, 9]);
  const r = kMeans(points, 2, { k: 4, seed: 0 });
  assert.equal(r.inertia, 0);
  assert.deepEqual([...r.sizes].sort(), [1, 1, 1, 1]);
  // Many copies of one point and one outlier, three clusters: none ends empty.
  const dup = new Float32Array(2 * 21);
  dup[40] = 100;
  dup[41] = 100;
  const d = kMeans(dup, 2, { k: 3, seed: 1 });
  assert.ok(d.sizes.every((s) => s > 0), JSON.stringify(d.sizes));
  assert.equal(d.sizes.reduce((a, b) => a + b, 0), 21);
});

test('k-means refuses bad input, naming the argument', () => {
  const bad: [() => unknown, string][] = [
    [() => kMeans(new Float32Array(6), 4, { k: 1, seed: 0 }), 'points'],
    [() => kMeans(new Float32Array(0), 2, { k: 1, seed: 0 }), 'points'],
    [() => kMeans(Float32Array.from([0, NaN]), 1, { k: 1, seed: 0 }), 'points'],
    [() => kMeans(new Float32Array(4), 0, { k: 1, seed: 0 }), 'd'],
    [() => kMeans(new Float32Array(4), 2, { k: 3, seed: 0 }), 'k'],
    [() => kMeans(new Float32Array(4), 2, { k: 0, seed: 0 }), 'k'],
  ];
  for (const [f, argument] of bad) assert.throws(f, (e: unknown) => e instanceof InputError && e.argument === argument, argument);
});

test("clusterTrainingSet relabels the images with their clusters, and its purity is the hand count of majority labels", () => {
  const { points, truth } = blobs([[0, 0, 0, 0], [1, 1, 1, 1]], 10, 0.1, 2);
  // Labels that disagree with the blobs on 3 images of 20: purity 17/20.
  const labels = Int32Array.from(truth);
  labels[0] = 1;
  labels[1] = 0;
  labels[2] = 1;
  const set = { images: points, labels, count: 20, imageShape: [2, 2, 1] as [number, number, number] };
  const { train, summary } = clusterTrainingSet(set, 2, 5, 2);
  assert.equal(summary.labelPurity, 17 / 20);
  assert.deepEqual(summary.sizes, [10, 10]);
  assert.deepEqual(summary.prior, [0.5, 0.5]);
  assert.ok(train.labels.every((c, i) => (c === train.labels[0]) === (truth[i] === truth[0])));
  assert.equal(set.labels[0], 1, 'the input set is left as it was');
});

test('Rng.categorical draws each index with its probability; a zero-probability index never; isDistribution checks length, signs and sum', () => {
  const p = [0.5, 0, 0.3, 0.2];
  const c = cumulativeProbabilities(p);
  const rng = new Rng(9);
  const counts = [0, 0, 0, 0];
  const n = 20000;
  for (let i = 0; i < n; i++) counts[rng.categorical(c)]++;
  assert.equal(counts[1], 0);
  // Binomial standard error at n = 20000 is < 0.0036; 5 of them.
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(counts[i] / n - p[i]) < 0.018, `index ${i}: ${counts[i] / n}`);
  assert.ok(isDistribution(p, 4));
  for (const [q, k] of [[p, 3], [[0.5, 0.6], 2], [[1.5, -0.5], 2], [[NaN, 1], 2], [[], 0], ['ab', 2]] as const) assert.equal(isDistribution(q, k), false, JSON.stringify(q));
});
