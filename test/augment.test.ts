import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomShift, parseAugmentations } from '../src/data/augment.js';
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
