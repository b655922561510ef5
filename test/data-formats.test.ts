import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { encode as encodePngFile } from 'fast-png';
import { decodeImage } from '../src/data/decode-image.js';
import { encode as encodeJpeg } from 'jpeg-js';
import { FileFormatError, InputError } from '../src/errors.js';
import type { ImageSet } from '../src/data/types.js';
import {
  CIFAR10_CLASSES,
  decodeNpy,
  encodeNpy,
  loadCifarFolder,
  loadDatasetFromPath,
  loadIdxFolder,
  loadImageFolder,
  loadNpyFolder,
  readCifarBatch,
  readIdx,
  readNpy,
  writeNpy,
} from '../src/node/data/formats/index.js';

// ---------------------------------------------------------------------------
// Fixtures: 3 classes x 5 images, interleaved (labels 0,1,2,0,1,2,...), so the
// per-class split (first floor(0.8 * 5) = 4 of each class → train) is visible.

const CLASSES = 3;
const PER_CLASS = 5;
const N = CLASSES * PER_CLASS;
const H = 4;
const W = 4;

const tempDirs: string[] = [];
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'advlab-formats-'));
  tempDirs.push(dir);
  return dir;
}

/** Pixel k of image i with c channels: distinct, known, in 0..255. */
function pixel(i: number, k: number): number {
  return (i * 17 + k * 3) % 256;
}
function labelOf(i: number): number {
  return i % CLASSES;
}
function rawImages(n = N, c = 1): Uint8Array {
  const out = new Uint8Array(n * H * W * c);
  for (let i = 0; i < n; i++) for (let k = 0; k < H * W * c; k++) out[i * H * W * c + k] = pixel(i, k);
  return out;
}
function rawLabels(n = N): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => labelOf(i));
}

/** File indices of train / test records under the shared per-class split. */
function expectedSplit(labels: ArrayLike<number>, numClasses: number): { train: number[]; test: number[] } {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]].push(i);
  const train: number[] = [];
  const test: number[] = [];
  for (const idx of byClass) {
    const t = Math.floor(0.8 * idx.length);
    train.push(...idx.slice(0, t));
    test.push(...idx.slice(t));
  }
  return { train, test };
}

/** Asserts `set` holds exactly the images `indices` of `raw` (uint8) scaled by 1/255. */
function assertImages(set: ImageSet, raw: Uint8Array, indices: number[], size: number): void {
  assert.equal(set.count, indices.length);
  assert.equal(set.images.length, indices.length * size);
  indices.forEach((src, k) => {
    assert.equal(set.labels[k], labelOf(src), `label of record ${k}`);
    for (let j = 0; j < size; j++) {
      assert.ok(Math.abs(set.images[k * size + j] - raw[src * size + j] / 255) < 1e-6, `pixel ${j} of record ${k}`);
    }
  });
}

function idxBytes(magicType: number, dims: number[], data: Uint8Array): Uint8Array {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = magicType;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, data]);
}
function writeIdxPair(dir: string, prefix: string, n: number, gz: boolean, offset = 0): void {
  const images = rawImages(n + offset).subarray(offset * H * W);
  const labels = rawLabels(n + offset).subarray(offset);
  const put = (name: string, bytes: Uint8Array): void => writeFileSync(join(dir, gz ? `${name}.gz` : name), gz ? gzipSync(bytes) : bytes);
  put(`${prefix}-images-idx3-ubyte`, idxBytes(8, [n, H, W], images));
  put(`${prefix}-labels-idx1-ubyte`, idxBytes(8, [n], labels));
}

// ---------------------------------------------------------------------------
// IDX

test('IDX: readIdx reads plain and gzipped files identically', () => {
  const dir = tmp();
  const data = rawImages(2);
  writeFileSync(join(dir, 'a'), idxBytes(8, [2, H, W], data));
  writeFileSync(join(dir, 'a.gz'), gzipSync(idxBytes(8, [2, H, W], data)));
  for (const f of ['a', 'a.gz']) {
    const r = readIdx(join(dir, f));
    assert.deepEqual(r.dims, [2, H, W]);
    assert.deepEqual(Array.from(r.data), Array.from(data));
  }
});

for (const gz of [false, true]) {
  test(`IDX folder with train + t10k files (${gz ? 'gzipped' : 'plain'}) keeps the given split`, () => {
    const dir = tmp();
    writeIdxPair(dir, 'train', 12, gz);
    writeIdxPair(dir, 't10k', 3, gz, 12);
    const ds = loadIdxFolder(dir);
    const raw = rawImages();
    assert.deepEqual(ds.train.imageShape, [H, W, 1]);
    assertImages(ds.train, raw, [...Array(12).keys()], H * W);
    assertImages(ds.test, raw, [12, 13, 14], H * W);
    assert.equal(ds.numClasses, 3);
    assert.deepEqual(ds.classNames, ['0', '1', '2']);
    assert.equal(ds.skipped, 0);
    assert.equal(ds.name, dir);
    assert.equal(ds.source, resolve(dir));
  });
}

test('IDX folder with a single images/labels pair is split per class', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'my-images-idx3-ubyte'), idxBytes(8, [N, H, W], rawImages()));
  writeFileSync(join(dir, 'my-labels-idx1-ubyte.gz'), gzipSync(idxBytes(8, [N], rawLabels())));
  const ds = loadDatasetFromPath(dir);
  const { train, test: testIdx } = expectedSplit(rawLabels(), 3);
  assert.equal(ds.train.count, CLASSES * Math.floor(0.8 * PER_CLASS));
  assertImages(ds.train, rawImages(), train, H * W);
  assertImages(ds.test, rawImages(), testIdx, H * W);
  // A single IDX images file finds its labels by name.
  const single = loadDatasetFromPath(join(dir, 'my-images-idx3-ubyte'));
  assert.deepEqual(Array.from(single.train.labels), Array.from(ds.train.labels));
});

test('IDX errors: truncated, bad magic, count mismatch', () => {
  const dir = tmp();
  const full = idxBytes(8, [N, H, W], rawImages());
  writeFileSync(join(dir, 'cut-images-idx3-ubyte'), full.subarray(0, full.length - 5));
  assert.throws(() => readIdx(join(dir, 'cut-images-idx3-ubyte')), /cut-images-idx3-ubyte: truncated/);
  writeFileSync(join(dir, 'cut.gz'), gzipSync(full).subarray(0, 30));
  assert.throws(() => readIdx(join(dir, 'cut.gz')), /cut\.gz: could not be gunzipped.*truncated/);
  writeFileSync(join(dir, 'bad'), Buffer.from('PK\x03\x04 not idx at all'));
  assert.throws(() => readIdx(join(dir, 'bad')), (e: Error) => e instanceof FileFormatError && /bad: bad magic number 0x504b0304/.test(e.message));

  const d2 = tmp();
  writeFileSync(join(d2, 'x-images-idx3-ubyte'), full);
  writeFileSync(join(d2, 'x-labels-idx1-ubyte'), idxBytes(8, [N - 1], rawLabels(N - 1)));
  assert.throws(() => loadIdxFolder(d2), /x-labels-idx1-ubyte: has 14 labels but .*x-images-idx3-ubyte has 15 images/);
});

// ---------------------------------------------------------------------------
// CIFAR-10

/** One CIFAR record per image, planes R, G, B (CHW) of 32x32. */
function cifarBatch(labels: number[], seed: number): Uint8Array {
  const out = new Uint8Array(labels.length * 3073);
  labels.forEach((l, r) => {
    out[r * 3073] = l;
    for (let k = 0; k < 3072; k++) out[r * 3073 + 1 + k] = (seed + r * 7 + k) % 251;
  });
  return out;
}

test('CIFAR-10: CHW records become HWC, batches concatenated, meta names read', () => {
  const dir = tmp();
  const sub = join(dir, 'cifar-10-batches-bin');
  mkdirSync(sub);
  writeFileSync(join(sub, 'data_batch_1.bin'), cifarBatch([0, 1, 2], 0));
  writeFileSync(join(sub, 'data_batch_3.bin'), cifarBatch([9, 4], 100));
  writeFileSync(join(sub, 'test_batch.bin'), cifarBatch([5], 50));
  const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
  writeFileSync(join(sub, 'batches.meta.txt'), names.join('\n') + '\n\n');
  const ds = loadDatasetFromPath(dir);
  assert.deepEqual(ds.train.imageShape, [32, 32, 3]);
  assert.deepEqual(Array.from(ds.train.labels), [0, 1, 2, 9, 4]);
  assert.deepEqual(Array.from(ds.test.labels), [5]);
  assert.deepEqual(ds.classNames, names);
  assert.equal(ds.numClasses, 10);
  // Record 1 of batch 1, pixel (row 2, col 5), channel G → byte 1 + 1024 + 2*32 + 5.
  const p = 2 * 32 + 5;
  const expected = (0 + 1 * 7 + 1024 + p) % 251;
  assert.ok(Math.abs(ds.train.images[1 * 3072 + p * 3 + 1] - expected / 255) < 1e-6);
  // Record 0 of batch 3 is train record 3; blue plane.
  assert.ok(Math.abs(ds.train.images[3 * 3072 + p * 3 + 2] - ((100 + 2048 + p) % 251) / 255) < 1e-6);
});

test('CIFAR-10: default class names, split when only train batches, bad length', () => {
  const dir = tmp();
  const labels = Array.from({ length: 10 }, (_, i) => i % 2);
  writeFileSync(join(dir, 'data_batch_2.bin'), cifarBatch(labels, 3));
  const ds = loadCifarFolder(dir);
  assert.deepEqual(ds.classNames, [...CIFAR10_CLASSES]);
  assert.equal(ds.train.count, 8);
  assert.equal(ds.test.count, 2);
  writeFileSync(join(dir, 'test_batch.bin'), cifarBatch([1, 2], 0).subarray(0, 3073 + 100));
  assert.throws(() => loadCifarFolder(dir), /test_batch\.bin: length 3173 is not a positive multiple of 3073/);
  writeFileSync(join(dir, 'bad.bin'), cifarBatch([10], 0));
  assert.throws(() => readCifarBatch(join(dir, 'bad.bin')), /bad\.bin: record 0 has label 10/);
});

// ---------------------------------------------------------------------------
// NumPy

test('npy: encodeNpy / readNpy round trip for each written dtype, 64-byte aligned header', () => {
  const dir = tmp();
  const cases: [Float32Array | Int32Array | Uint8Array, number[], string][] = [
    [Float32Array.from([0, 0.5, 1, -2.25, 1e-8, 3]), [2, 3], '<f4'],
    [Int32Array.from([-5, 0, 7, 2147483647]), [4], '<i4'],
    [Uint8Array.from([0, 1, 254, 255, 9, 8, 7, 6]), [2, 2, 2], '|u1'],
    [new Float32Array(0), [0, 3], '<f4'],
  ];
  for (const [data, shape, dtype] of cases) {
    const bytes = encodeNpy(data, shape);
    const headerEnd = bytes.length - data.byteLength;
    assert.equal(headerEnd % 64, 0);
    assert.equal(bytes[headerEnd - 1], 0x0a);
    const file = join(dir, `${dtype.slice(1)}.npy`);
    writeNpy(file, data, shape);
    const r = readNpy(file);
    assert.equal(r.dtype, dtype);
    assert.deepEqual(r.shape, shape);
    assert.deepEqual(Array.from(r.data), Array.from(data));
  }
  assert.throws(() => encodeNpy(new Uint8Array(5), [2, 3]), (e: Error) => e instanceof InputError && /shape: \[2, 3\] holds 6 values but data has 5/.test(e.message));
});

/** Hand-written .npy bytes (the way numpy would), for dtypes advlab does not write. */
function npyBytes(descr: string, shape: string, data: Uint8Array, fortran = 'False', major = 1): Uint8Array {
  let dict = `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
  const prefix = major === 1 ? 10 : 12;
  while ((prefix + dict.length + 1) % 64 !== 0) dict += ' ';
  dict += '\n';
  const head = Buffer.alloc(prefix);
  Buffer.from('\x93NUMPY', 'latin1').copy(head);
  head[6] = major;
  if (major === 1) head.writeUInt16LE(dict.length, 8);
  else head.writeUInt32LE(dict.length, 8);
  return Buffer.concat([head, Buffer.from(dict, 'latin1'), data]);
}

test('npy: reads <i8, <f8, <u1 and v2.0 headers', () => {
  const i8 = Buffer.alloc(24);
  [3n, -1n, 9007199254740991n].forEach((v, i) => i8.writeBigInt64LE(v, 8 * i));
  const a = decodeNpy(npyBytes('<i8', '(3,)', i8));
  assert.equal(a.dtype, '<i8');
  assert.deepEqual(Array.from(a.data), [3, -1, 9007199254740991]);
  const f8 = Buffer.alloc(16);
  f8.writeDoubleLE(0.125, 0);
  f8.writeDoubleLE(-7.5, 8);
  const b = decodeNpy(npyBytes('<f8', '(1, 2)', f8, 'False', 2));
  assert.equal(b.dtype, '<f8');
  assert.deepEqual(b.shape, [1, 2]);
  assert.deepEqual(Array.from(b.data), [0.125, -7.5]);
  const c = decodeNpy(npyBytes('<u1', '()', Uint8Array.from([42])));
  assert.equal(c.dtype, '|u1');
  assert.deepEqual(c.shape, []);
  assert.deepEqual(Array.from(c.data), [42]);
});

test('npy errors: fortran order, dtype, truncation, bad magic', () => {
  const dir = tmp();
  const f = join(dir, 'fortran.npy');
  writeFileSync(f, npyBytes('<f4', '(2, 2)', new Uint8Array(16), 'True'));
  assert.throws(() => readNpy(f), /fortran\.npy: fortran_order is True/);
  writeFileSync(join(dir, 'be.npy'), npyBytes('>f4', '(1,)', new Uint8Array(4)));
  assert.throws(() => readNpy(join(dir, 'be.npy')), /be\.npy: dtype '>f4' is not supported \(big-endian/);
  writeFileSync(join(dir, 'short.npy'), npyBytes('<f4', '(10,)', new Uint8Array(12)));
  assert.throws(() => readNpy(join(dir, 'short.npy')), /short\.npy: truncated/);
  writeFileSync(join(dir, 'junk.npy'), Buffer.from('hello world, not numpy'));
  assert.throws(() => readNpy(join(dir, 'junk.npy')), /junk\.npy: not a \.npy file/);
});

test('npy folder: x_train/y_train + x_test/y_test, float NHWC images', () => {
  const dir = tmp();
  const C = 3;
  const raw = rawImages(N, C);
  const floats = Float32Array.from(raw, (v) => v / 255);
  const size = H * W * C;
  writeNpy(join(dir, 'x_train.npy'), floats.slice(0, 12 * size), [12, H, W, C]);
  writeNpy(join(dir, 'x_test.npy'), floats.slice(12 * size), [3, H, W, C]);
  // y_train as int64 (numpy's default), y_test as one-hot float32.
  const y = Buffer.alloc(12 * 8);
  for (let i = 0; i < 12; i++) y.writeBigInt64LE(BigInt(labelOf(i)), 8 * i);
  writeFileSync(join(dir, 'y_train.npy'), npyBytes('<i8', '(12,)', y));
  const oneHot = new Float32Array(3 * 3);
  for (let i = 0; i < 3; i++) oneHot[i * 3 + labelOf(12 + i)] = 1;
  writeNpy(join(dir, 'y_test.npy'), oneHot, [3, 3]);
  const ds = loadDatasetFromPath(dir);
  assert.deepEqual(ds.train.imageShape, [H, W, C]);
  assertImages(ds.train, raw, [...Array(12).keys()], size);
  assertImages(ds.test, raw, [12, 13, 14], size);
  assert.equal(ds.numClasses, 3);
  assert.equal(ds.skipped, 0);
});

test('npy folder: images.npy + labels.npy (uint8 [N,H,W]) is split per class', () => {
  const dir = tmp();
  writeNpy(join(dir, 'images.npy'), rawImages(), [N, H, W]);
  writeNpy(join(dir, 'labels.npy'), Int32Array.from(rawLabels()), [N]);
  const ds = loadNpyFolder(dir);
  const { train, test: testIdx } = expectedSplit(rawLabels(), 3);
  assert.deepEqual(ds.train.imageShape, [H, W, 1]);
  assertImages(ds.train, rawImages(), train, H * W);
  assertImages(ds.test, rawImages(), testIdx, H * W);
  // x_train without x_test is split too; a single images file finds its labels.
  const d2 = tmp();
  writeNpy(join(d2, 'x_train.npy'), rawImages(), [N, H, W]);
  writeNpy(join(d2, 'y_train.npy'), rawLabels(), [N, 1]);
  assert.equal(loadDatasetFromPath(d2).test.count, 3);
  assert.equal(loadDatasetFromPath(join(d2, 'x_train.npy')).train.count, 12);
});

test('npy folder: NaN and out-of-range float images are skipped and counted', () => {
  const dir = tmp();
  const x = Float32Array.from(rawImages(), (v) => v / 255);
  x[0 * 16 + 3] = NaN; // image 0 (class 0)
  x[4 * 16 + 1] = Infinity; // image 4 (class 1)
  x[8 * 16 + 2] = 1.5; // image 8 (class 2)
  x[9 * 16 + 2] = 1 + 1e-7; // rounding noise: kept, clamped to 1
  writeNpy(join(dir, 'images.npy'), x, [N, H, W]);
  writeNpy(join(dir, 'labels.npy'), rawLabels(), [N]);
  const ds = loadNpyFolder(dir);
  assert.equal(ds.skipped, 3);
  assert.equal(ds.train.count + ds.test.count, N - 3);
  for (const set of [ds.train, ds.test]) for (const v of set.images) assert.ok(v >= 0 && v <= 1);
  // Each class has 4 valid images left → 3 train + 1 test.
  assert.equal(ds.train.count, 9);
});

test('npy errors: float images on a 0..255 scale, count mismatch, bad labels, missing labels, NCHW', () => {
  const dir = tmp();
  writeNpy(join(dir, 'images.npy'), Float32Array.from(rawImages()), [N, H, W]);
  writeNpy(join(dir, 'labels.npy'), rawLabels(), [N]);
  assert.throws(() => loadNpyFolder(dir), /images\.npy: pixel values range from 0 to 2\d\d; float pixels must be in \[0, 1\]/);

  writeNpy(join(dir, 'images.npy'), rawImages(), [N, H, W]);
  writeNpy(join(dir, 'labels.npy'), rawLabels(N - 2), [N - 2]);
  assert.throws(() => loadNpyFolder(dir), /labels\.npy: has 13 labels but .*images\.npy has 15 images/);

  writeNpy(join(dir, 'labels.npy'), Float32Array.from(rawLabels(), (v, i) => (i === 6 ? 0.5 : v)), [N]);
  assert.throws(() => loadNpyFolder(dir), /labels\.npy: label 0\.5 at index 6 is not a class index/);

  const d2 = tmp();
  writeNpy(join(d2, 'x_train.npy'), rawImages(), [N, H, W]);
  assert.throws(() => loadNpyFolder(d2), /y_train\.npy: missing/);
  writeNpy(join(d2, 'y_train.npy'), rawLabels(), [N]);
  writeNpy(join(d2, 'x_test.npy'), rawImages(2), [2, H, W]);
  assert.throws(() => loadNpyFolder(d2), /y_test\.npy: missing/);

  const d3 = tmp();
  writeNpy(join(d3, 'images.npy'), new Uint8Array(N * 3 * 8 * 8), [N, 3, 8, 8]);
  writeNpy(join(d3, 'labels.npy'), rawLabels(), [N]);
  assert.throws(() => loadNpyFolder(d3), /images\.npy: shape \(15, 3, 8, 8\) looks channels-first/);
});

// ---------------------------------------------------------------------------
// Image folder

function writePng(file: string, w: number, h: number, rgba: (p: number) => [number, number, number, number]): void {
  const png = new PNG({ width: w, height: h });
  for (let p = 0; p < w * h; p++) png.data.set(rgba(p), 4 * p);
  writeFileSync(file, PNG.sync.write(png));
}

test('image folder: grayscale PNGs → 1 channel, sorted classes and files, split per class', () => {
  const dir = tmp();
  const names = ['zebra', 'ant', 'moth'];
  for (const n of names) mkdirSync(join(dir, n));
  mkdirSync(join(dir, '.hidden'));
  writeFileSync(join(dir, 'ant', 'notes.txt'), 'ignored');
  // Sorted classes: ant=0, moth=1, zebra=2. Value = 10*class + file index, written in reverse name order.
  const sorted = [...names].sort();
  sorted.forEach((n, c) => {
    for (let i = PER_CLASS - 1; i >= 0; i--) {
      const v = 10 * c + i;
      writePng(join(dir, n, `img${i}.png`), W, H, (p) => [v + p, v + p, v + p, 255]);
    }
  });
  const ds = loadDatasetFromPath(dir);
  assert.deepEqual(ds.classNames, ['ant', 'moth', 'zebra']);
  assert.equal(ds.numClasses, 3);
  assert.deepEqual(ds.train.imageShape, [H, W, 1]);
  assert.equal(ds.train.count, 12);
  assert.equal(ds.test.count, 3);
  assert.deepEqual(Array.from(ds.train.labels), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
  // Train record 5 = class 1, file img1.png; pixel 7.
  assert.ok(Math.abs(ds.train.images[5 * 16 + 7] - (10 + 1 + 7) / 255) < 1e-6);
  // Test record 2 = class 2, img4.png.
  assert.ok(Math.abs(ds.test.images[2 * 16] - (20 + 4) / 255) < 1e-6);
});

test('image folder: colour PNG + JPEG → 3 channels; size mismatch and bad files are errors', () => {
  const dir = tmp();
  mkdirSync(join(dir, 'a'));
  mkdirSync(join(dir, 'b'));
  writePng(join(dir, 'a', '1.png'), W, H, (p) => [p, 2 * p, 3 * p, 255]);
  writePng(join(dir, 'a', '2.png'), W, H, () => [9, 9, 9, 255]);
  const jpg = encodeJpeg({ width: W, height: H, data: new Uint8Array(W * H * 4).fill(200) }, 95);
  writeFileSync(join(dir, 'b', '1.jpg'), jpg.data);
  const ds = loadImageFolder(dir);
  assert.deepEqual(ds.train.imageShape, [H, W, 3]);
  assert.equal(ds.train.count + ds.test.count, 3);
  // a/1.png is the first record of class a (train); pixel 5 → (5, 10, 15).
  assert.deepEqual(Array.from(ds.train.images.subarray(15, 18), (v) => Math.round(v * 255)), [5, 10, 15]);

  writePng(join(dir, 'b', '2.png'), W + 1, H, () => [0, 0, 0, 255]);
  assert.throws(() => loadImageFolder(dir), /b[\\/]2\.png: is 5x4 but .*a[\\/]1\.png is 4x4; all images must have the same size/);

  const d2 = tmp();
  mkdirSync(join(d2, 'a'));
  writeFileSync(join(d2, 'a', 'x.png'), 'not really a png');
  assert.throws(() => loadImageFolder(d2), /x\.png: is not a PNG or JPEG file/);
});

// ---------------------------------------------------------------------------
// Detection

test('loadDatasetFromPath: missing path and unknown layouts are clear errors', () => {
  const missing = join(tmp(), 'nope');
  assert.throws(() => loadDatasetFromPath(missing), (e: Error) => e instanceof FileFormatError && e.message === `${missing}: no such file or folder`);
  const dir = tmp();
  writeFileSync(join(dir, 'readme.txt'), 'hi');
  assert.throws(() => loadDatasetFromPath(dir), /no dataset found in this folder\.\nSupported layouts:[^]*x_train\.npy[^]*idx3[^]*data_batch_1\.bin[^]*sub-folder per class/);
  assert.throws(() => loadDatasetFromPath(join(dir, 'readme.txt')), /readme\.txt: is not a dataset file/);
});

test('decodeImage (pure JS, any platform) reads every PNG colour type and bit depth as pngjs does, and 1-bit packed rows', () => {
  const w = 5, h = 3;
  const rgba = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    rgba[4 * i] = (i * 37) % 256;
    rgba[4 * i + 1] = (i * 91) % 256;
    rgba[4 * i + 2] = (i * 13) % 256;
    rgba[4 * i + 3] = 255 - i * 7;
  }
  for (const [colorType, bitDepth] of [[0, 8], [0, 16], [2, 8], [2, 16], [4, 8], [6, 8], [6, 16]] as const) {
    const png = new PNG({ width: w, height: h });
    png.data = rgba;
    const bytes = PNG.sync.write(png, { colorType, bitDepth, inputColorType: 6, inputHasAlpha: true });
    const expected = PNG.sync.read(bytes);
    const got = decodeImage(bytes, 'x.png');
    assert.deepEqual([got.width, got.height], [w, h]);
    assert.deepEqual(Array.from(got.data), Array.from(expected.data), `colour type ${colorType}, ${bitDepth} bits`);
  }
  // Rows below 8 bits are packed and start on a byte: 9 pixels of 1 bit take 2 bytes.
  const bits = [1, 0, 1, 1, 0, 0, 1, 0, 1];
  const packed = new Uint8Array(2);
  bits.forEach((b, i) => (packed[i >> 3] |= b ? 0x80 >> (i & 7) : 0));
  const g = decodeImage(encodePngFile({ width: 9, height: 1, data: packed, channels: 1, depth: 1 }), 'bits.png');
  assert.deepEqual(Array.from({ length: 9 }, (_, i) => g.data[4 * i]), bits.map((b) => b * 255));
  assert.throws(() => decodeImage(new Uint8Array([1, 2, 3, 4]), 'junk.png'), (e: unknown) => e instanceof FileFormatError && /unrecognised magic bytes/.test(e.message));
});

test('npy: <u2 round-trips, and 16-bit pixels of a dataset are scaled by 65535', () => {
  const data = Uint16Array.from([0, 1, 1000, 65535]);
  const back = decodeNpy(encodeNpy(data, [2, 2]));
  assert.equal(back.dtype, '<u2');
  assert.deepEqual(back.shape, [2, 2]);
  assert.deepEqual(Array.from(back.data), Array.from(data));
  const dir = mkdtempSync(join(tmpdir(), 'advlab-npy-u2-'));
  try {
    writeFileSync(join(dir, 'images.npy'), encodeNpy(Uint16Array.from({ length: 40 * 4 }, (_, i) => (i % 4) * 21845), [40, 2, 2, 1]));
    writeFileSync(join(dir, 'labels.npy'), encodeNpy(Int32Array.from({ length: 40 }, (_, i) => i % 2), [40]));
    const d = loadNpyFolder(dir);
    assert.deepEqual(Array.from(d.train.images.subarray(0, 4)), [0, 1 / 3, 2 / 3, 1].map(Math.fround));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
