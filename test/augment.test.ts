import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { randomShift, parseAugmentations, gaussianNoise, cutout, type Augmentation } from '../src/data/augment.js';
import { InputError } from '../src/errors.js';
import { learningRateAt } from '../src/models/train.js';
import { Rng } from '../src/util/rng.js';

test('random shift moves each image by the drawn offset, zero-filling the border', () => {
  // 2 images of 3x4x2 with distinct values; compare with a hand-written shift.
  const h = 3;
  const w = 4;
  const c = 2;
  const x = Float32Array.from({ length: 2 * h * w * c }, (_, i) => i + 1);
  const original = x.slice();
  const rng = new Rng(11);
  const copy = Rng.fromState(rng.getState());
  randomShift(1).apply(x, 2, [h, w, c], rng);
  for (let n = 0; n < 2; n++) {
    const dy = copy.int(3) - 1;
    const dx = copy.int(3) - 1;
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++)
        for (let k = 0; k < c; k++) {
          const si = i - dy;
          const sj = j - dx;
          const expected = si >= 0 && si < h && sj >= 0 && sj < w ? original[n * h * w * c + (si * w + sj) * c + k] : 0;
          assert.equal(x[n * h * w * c + (i * w + j) * c + k], expected, `n${n} i${i} j${j} k${k} (dy ${dy}, dx ${dx})`);
        }
  }
});

test('augmentation specs parse, and bad ones name the option', () => {
  assert.deepEqual(parseAugmentations('none'), []);
  assert.equal(parseAugmentations('shift')[0].name, 'shift:1');
  assert.equal(parseAugmentations('shift:3')[0].name, 'shift:3');
  assert.throws(() => parseAugmentations('rotate'), /augment: unknown augmentation "rotate"/);
  assert.throws(() => parseAugmentations('shift:0'), /augment: shift needs a positive integer number of pixels, got 0/);
});

test('cosine schedule: full rate at the start, half at the middle, near zero at the end', () => {
  assert.equal(learningRateAt(1e-3, 'cosine', 0, 100), 1e-3);
  assert.ok(Math.abs(learningRateAt(1e-3, 'cosine', 50, 100) - 5e-4) < 1e-12);
  assert.ok(learningRateAt(1e-3, 'cosine', 99, 100) < 1e-6);
  assert.equal(learningRateAt(1e-3, 'constant', 99, 100), 1e-3);
});

/** Applies `augs` in order to a copy of `x` with one Rng seeded `seed`; returns the copy. */
function applyAll(augs: readonly Augmentation[], x: Float32Array, count: number, shape: [number, number, number], seed: number): Float32Array {
  const out = x.slice();
  const rng = new Rng(seed);
  for (const a of augs) a.apply(out, count, shape, rng);
  return out;
}

function sha256(x: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength)).digest('hex');
}

test('shift through the parser is bit-identical to before noise and cutout existed, and draws two ints per image', () => {
  // Golden values recorded with the shift-only implementation: 3 batches of 16 28x28 images, Rng(5).
  const golden: Record<string, [string, number[]]> = {
    shift: ['3a516bac9da6a7d589957d2fa14421388e42faac393abe6ef49f5209ca0a52a0', [2062219626, 4141919958, 4274298110, 896726122]],
    'shift:2': ['2d2b5f25b867b83d48e4168e8abd5a8fafdb7c74be13042e5b8cf27460dd72c5', [2062219626, 4141919958, 4274298110, 896726122]],
    'shift:1,shift:3': ['3308610a35a0bb646ef6888256a6d16e929fff34cb3ed36819c572ae8fbb7dd3', [2880316972, 693302039, 350779782, 3958729013]],
  };
  for (const [spec, [hash, state]] of Object.entries(golden)) {
    const data = new Rng(6);
    const x = Float32Array.from({ length: 16 * 28 * 28 }, () => data.next());
    const rng = new Rng(5);
    for (let b = 0; b < 3; b++) for (const a of parseAugmentations(spec)) a.apply(x, 16, [28, 28, 1], rng);
    assert.equal(sha256(x), hash, spec);
    assert.deepEqual(rng.getState(), state, spec);
  }
  const rng = new Rng(5);
  const copy = new Rng(5);
  parseAugmentations('shift:2')[0].apply(new Float32Array(3 * 4 * 4), 3, [4, 4, 1], rng);
  for (let i = 0; i < 6; i++) copy.int(5);
  assert.deepEqual(rng.getState(), copy.getState());
});

test('noise: sample mean and std on a 0.5 image match N(0.5, sigma^2); only `count` images change', () => {
  const shape: [number, number, number] = [28, 28, 1];
  const size = 28 * 28;
  const count = 10;
  const sigma = 0.1;
  // One extra image past `count` must stay untouched.
  const x = applyAll([gaussianNoise(sigma)], new Float32Array((count + 1) * size).fill(0.5), count, shape, 1);
  const values = x.subarray(0, count * size);
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const std = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (values.length - 1));
  // n = 7840: the standard error of the mean is sigma / 89 ~ 0.0011 and of the std ~ 0.0008.
  assert.ok(Math.abs(mean - 0.5) < 0.005, `mean ${mean}`);
  assert.ok(Math.abs(std - sigma) < 0.005, `std ${std}`);
  assert.ok(x.subarray(count * size).every((v) => v === 0.5));
});

test('noise: each value is 0.5 + sigma * the next normal draw, clipped to [0, 1]', () => {
  const sigma = 1;
  const n = 2 * 5 * 5 * 3;
  const x = applyAll([gaussianNoise(sigma)], new Float32Array(n).fill(0.5), 2, [5, 5, 3], 4);
  const copy = new Rng(4);
  for (let i = 0; i < n; i++) assert.equal(x[i], Math.fround(Math.min(1, Math.max(0, 0.5 + sigma * copy.normal()))), `value ${i}`);
  // With sigma 1, about 31% of the draws land beyond each bound.
  assert.ok(x.every((v) => v >= 0 && v <= 1));
  assert.ok(x.some((v) => v === 0) && x.some((v) => v === 1) && x.some((v) => v > 0 && v < 1));
});

/** An Rng stand-in whose int(n) returns scripted values (and checks n), to place cutout squares by hand. */
function scriptedRng(draws: [n: number, value: number][]): Rng {
  const queue = [...draws];
  return {
    int(n: number): number {
      const next = queue.shift();
      assert.ok(next, 'more draws than scripted');
      assert.equal(n, next[0]);
      return next[1];
    },
  } as unknown as Rng;
}

test('cutout: zeroes exactly the N x N square around the drawn centre, clipped at the border, in every channel', () => {
  const [h, w, c] = [5, 6, 2];
  const size = h * w * c;
  // Image 0: 3x3 centred at (0, 0) -> rows 0-1, cols 0-1. Image 1: centred at (2, 3) -> rows 1-3, cols 2-4.
  // Image 2: centred at (4, 5) -> rows 3-4, cols 4-5.
  const rng = scriptedRng([[h, 0], [w, 0], [h, 2], [w, 3], [h, 4], [w, 5]]);
  const x = Float32Array.from({ length: 3 * size }, (_, i) => 0.25 + (i % 7) / 10);
  const original = x.slice();
  cutout(3).apply(x, 3, [h, w, c], rng);
  const squares = [
    [0, 1, 0, 1],
    [1, 3, 2, 4],
    [3, 4, 4, 5],
  ];
  for (let n = 0; n < 3; n++) {
    const [r0, r1, c0, c1] = squares[n];
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++)
        for (let k = 0; k < c; k++) {
          const at = n * size + (i * w + j) * c + k;
          const inside = i >= r0 && i <= r1 && j >= c0 && j <= c1;
          assert.equal(x[at], inside ? 0 : original[at], `image ${n} (${i}, ${j}, ${k})`);
        }
  }
  // Even sides: the centre is the pixel right of and below the middle, so centre (2, 2) of a 4x4 covers rows and cols 0-3.
  const y = new Float32Array(h * w).fill(1);
  cutout(4).apply(y, 1, [h, w, 1], scriptedRng([[h, 2], [w, 2]]));
  const zeros = Array.from(y.keys()).filter((i) => y[i] === 0);
  assert.deepEqual(zeros, [0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15, 18, 19, 20, 21]);
});

test('cutout: with a real Rng, every image loses exactly the clipped square of its drawn centre', () => {
  const [h, w, c] = [7, 9, 3];
  const side = 4;
  const count = 200;
  const x = new Float32Array(count * h * w * c).fill(1);
  const rng = new Rng(21);
  const copy = Rng.fromState(rng.getState());
  cutout(side).apply(x, count, [h, w, c], rng);
  let clipped = 0;
  for (let n = 0; n < count; n++) {
    const top = copy.int(h) - 2;
    const left = copy.int(w) - 2;
    const rows = Math.min(h, top + side) - Math.max(0, top);
    const cols = Math.min(w, left + side) - Math.max(0, left);
    if (rows * cols < side * side) clipped++;
    const img = x.subarray(n * h * w * c, (n + 1) * h * w * c);
    assert.equal(img.filter((v) => v === 0).length, rows * cols * c, `image ${n}`);
    assert.ok(img.every((v) => v === 0 || v === 1));
  }
  assert.ok(clipped > 20 && clipped < count, `${clipped} of ${count} squares clipped`);
  assert.deepEqual(rng.getState(), copy.getState());
  // A square larger than the image is allowed and blanks all of it.
  const big = applyAll(parseAugmentations('cutout:100'), new Float32Array(2 * 28 * 28).fill(1), 2, [28, 28, 1], 0);
  assert.ok(big.every((v) => v === 0));
});

test('augmentations are deterministic for a seed and differ between seeds', () => {
  const shape: [number, number, number] = [28, 28, 1];
  const data = new Rng(2);
  const x = Float32Array.from({ length: 8 * 28 * 28 }, () => data.next());
  const augs = parseAugmentations('shift:2,noise:0.1,cutout:8');
  assert.deepEqual(augs.map((a) => a.name), ['shift:2', 'noise:0.1', 'cutout:8']);
  const a = applyAll(augs, x, 8, shape, 3);
  assert.deepEqual(a, applyAll(parseAugmentations('shift:2,noise:0.1,cutout:8'), x, 8, shape, 3));
  assert.notDeepEqual(a, applyAll(augs, x, 8, shape, 4));
});

test('augmentations apply in the order written, sharing one Rng', () => {
  const shape: [number, number, number] = [12, 12, 1];
  const x = new Float32Array(4 * 144).fill(0.5);
  const noiseThenCut = applyAll(parseAugmentations('noise:0.05,cutout:5'), x, 4, shape, 8);
  const cutThenNoise = applyAll(parseAugmentations('cutout:5, noise:0.05'), x, 4, shape, 8);
  assert.deepEqual(noiseThenCut, applyAll([gaussianNoise(0.05), cutout(5)], x, 4, shape, 8));
  assert.deepEqual(cutThenNoise, applyAll([cutout(5), gaussianNoise(0.05)], x, 4, shape, 8));
  // sigma 0.05 keeps the 0.5 background above 0.25 (5 sigma) and a blanked square below it:
  // cutout last leaves exact black squares (at least 3x3 each), noise last puts noise on them.
  const dark = (v: Float32Array) => v.filter((e) => e > 0 && e < 0.25).length;
  const zeros = (v: Float32Array) => v.filter((e) => e === 0).length;
  assert.ok(zeros(noiseThenCut) >= 4 * 9 && dark(noiseThenCut) === 0, `noise, cutout: ${zeros(noiseThenCut)} zeros, ${dark(noiseThenCut)} dark`);
  assert.ok(dark(cutThenNoise) >= 4 * 9 / 4, `cutout, noise: ${dark(cutThenNoise)} dark`);
});

test('bad augmentation specs are InputErrors naming the option', () => {
  const bad: [string, RegExp][] = [
    ['noise:-0.1', /noise needs a standard deviation in \(0, 1\] \(input scale\), got -0.1/],
    ['noise:0', /noise needs a standard deviation in \(0, 1\].*got 0/],
    ['noise:1.5', /noise needs a standard deviation in \(0, 1\].*got 1.5/],
    ['noise:NaN', /"noise:NaN" needs a number after ":"/],
    ['noise:abc', /"noise:abc" needs a number after ":"/],
    ['noise', /"noise" needs a number after ":"/],
    ['noise:', /"noise:" needs a number after ":"/],
    ['cutout:0', /cutout needs a positive integer square side in pixels, got 0/],
    ['cutout:-8', /cutout needs a positive integer square side in pixels, got -8/],
    ['cutout:2.5', /cutout needs a positive integer square side in pixels, got 2.5/],
    ['cutout', /"cutout" needs a number after ":"/],
    ['shift:-1', /shift needs a positive integer number of pixels, got -1/],
    ['shift:', /"shift:" needs a number after ":"/],
    ['shift:1:2', /unknown augmentation "shift:1:2"/],
    ['blur:3', /unknown augmentation "blur:3"; expected none, or a comma-separated list of shift, shift:N, noise:SIGMA, cutout:N/],
    ['shift,,noise:0.1', /unknown augmentation ""/],
    ['none,shift', /unknown augmentation "none"/],
    ['toString', /unknown augmentation "toString"/],
  ];
  for (const [spec, message] of bad) {
    assert.throws(
      () => parseAugmentations(spec),
      (e: unknown) => e instanceof InputError && e.argument === 'augment' && message.test(e.message),
      spec,
    );
  }
  assert.throws(() => parseAugmentations('noise:2', '--augment'), (e: unknown) => e instanceof InputError && e.argument === '--augment');
  assert.throws(() => gaussianNoise(NaN), /augment: noise needs a standard deviation.*got NaN/);
  assert.deepEqual(parseAugmentations(' none '), []);
  assert.deepEqual(parseAugmentations('noise:1,cutout:30').map((a) => a.name), ['noise:1', 'cutout:30']);
});
