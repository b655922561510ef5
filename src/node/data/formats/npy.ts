/**
 * NumPy `.npy` reader and writer, and a loader for datasets saved as `.npy` files.
 *
 * Format (NumPy Enhancement Proposal 1, "A simple file format for NumPy arrays", and
 * numpy/lib/format.py): the magic string "\x93NUMPY", a major and minor version
 * byte, the header length (uint16 LE in v1.0, uint32 LE in v2.0/3.0), then an ASCII
 * (UTF-8 in v3.0) Python dict literal such as
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (60000, 28, 28), }`
 * padded with spaces and ending in '\n', then the raw data.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FileFormatError } from '../../../errors.js';
import { writeFileAtomic } from '../../atomic.js';
import { splitByClass } from '../../../data/split.js';
import type { Dataset, ImageSet } from '../../../data/types.js';
import { datasetFromPath } from '../from-path.js';
import { decodeNpy, encodeNpy, type NpyArray } from '../../../data/npy.js';

export { decodeNpy, encodeNpy, type NpyArray, type NpyData, type NpyDtype } from '../../../data/npy.js';

/**
 * Reads a .npy file (format v1.0, v2.0 or v3.0; dtypes |u1, <i4, <i8, <f4, <f8; C order).
 * @throws FileFormatError naming the file for a missing file, bad magic, unsupported
 *   dtype, Fortran order, or truncated data.
 */
export function readNpy(path: string): NpyArray {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileFormatError(path, code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, expected a .npy file' : `cannot be read (${(e as Error).message})`);
  }
  return decodeNpy(bytes, path);
}

/** Writes an array to a .npy file atomically (see {@link encodeNpy}). */
export function writeNpy(path: string, data: Float32Array | Int32Array | Uint16Array | Uint8Array, shape: readonly number[]): void {
  writeFileAtomic(path, encodeNpy(data, shape));
}

// ---------------------------------------------------------------------------
// Datasets stored as .npy files

/** Largest label accepted; larger values mean the file does not hold class indices. */
const MAX_LABEL = 100_000;
/** Float pixels this close outside [0, 1] are rounding noise and are clamped, not skipped. */
const RANGE_TOLERANCE = 1e-6;

/**
 * Loads a folder of .npy files: `x_train.npy` + `y_train.npy`, with optional
 * `x_test.npy` + `y_test.npy` (if absent, the train pair is split with
 * {@link splitByClass}); or `images.npy` + `labels.npy` (split with splitByClass).
 * Images are [N,H,W] or [N,H,W,C]; uint8/int pixels are divided by 255, float pixels
 * must already be in [0, 1]. Labels are [N], [N,1] or one-hot [N,K].
 * Images with non-finite or out-of-range values are skipped and counted in `skipped`;
 * if most images are out of range the file is on another scale and is rejected.
 */
export function loadNpyFolder(dir: string): Dataset {
  const at = (f: string): string => join(dir, f);
  if (existsSync(at('x_train.npy'))) {
    const train = readNpyPair(at('x_train.npy'), at('y_train.npy'));
    const hasX = existsSync(at('x_test.npy'));
    const hasY = existsSync(at('y_test.npy'));
    if (hasX !== hasY) {
      throw new FileFormatError(at(hasX ? 'y_test.npy' : 'x_test.npy'), `missing: ${hasX ? 'x_test.npy' : 'y_test.npy'} is present, so its partner is needed too`);
    }
    if (!hasX) return splitDataset(dir, train);
    const test = readNpyPair(at('x_test.npy'), at('y_test.npy'));
    if (train.set.imageShape.join() !== test.set.imageShape.join()) {
      throw new FileFormatError(at('x_test.npy'), `images have shape [${test.set.imageShape.join(', ')}] but x_train.npy has [${train.set.imageShape.join(', ')}]`);
    }
    const numClasses = countClasses([train.set, test.set]);
    return datasetFromPath(dir, train.set, test.set, numClasses, train.skipped + test.skipped);
  }
  if (existsSync(at('images.npy'))) return splitDataset(dir, readNpyPair(at('images.npy'), at('labels.npy')));
  throw new FileFormatError(dir, 'no x_train.npy + y_train.npy or images.npy + labels.npy here');
}

/**
 * Loads one images .npy file with its labels from the same folder (`x_*.npy` →
 * `y_*.npy`, `*images*.npy` → `*labels*.npy`), split with {@link splitByClass}.
 */
export function loadNpyFile(imagesPath: string): Dataset {
  const name = basename(imagesPath);
  let labelsName: string | undefined;
  if (/^x([_.-]|\.npy$)/i.test(name)) labelsName = (name[0] === 'X' ? 'Y' : 'y') + name.slice(1);
  else if (/images/i.test(name)) labelsName = name.replace(/images/i, (m) => (m === 'IMAGES' ? 'LABELS' : 'labels'));
  if (!labelsName) {
    throw new FileFormatError(imagesPath, 'cannot tell where its labels are: name the images x_<name>.npy (labels y_<name>.npy) or <name>images.npy (labels <name>labels.npy)');
  }
  let labelsPath = join(dirname(imagesPath), labelsName);
  // numpy users write both y_train.npy and Y_train.npy; accept the other case too.
  if (!existsSync(labelsPath) && labelsName[0] === 'Y') labelsPath = join(dirname(imagesPath), 'y' + labelsName.slice(1));
  return splitDataset(imagesPath, readNpyPair(imagesPath, labelsPath));
}

function splitDataset(name: string, pair: { set: ImageSet; skipped: number }): Dataset {
  const numClasses = countClasses([pair.set]);
  const { train, test } = splitByClass(pair.set, numClasses);
  return datasetFromPath(name, train, test, numClasses, pair.skipped);
}


/** max label + 1 over all sets, at least 2. */
function countClasses(sets: ImageSet[]): number {
  let max = 0;
  for (const s of sets) for (const l of s.labels) if (l > max) max = l;
  return Math.max(2, max + 1);
}

/** Reads an images file and its labels file into an ImageSet of the valid records. */
function readNpyPair(imagesFile: string, labelsFile: string): { set: ImageSet; skipped: number } {
  if (!existsSync(labelsFile)) throw new FileFormatError(labelsFile, `missing: the labels for ${imagesFile} should be in this file`);
  const x = readNpy(imagesFile);
  const imageShape = imageShapeOf(x.shape, imagesFile);
  const labels = readLabels(readNpy(labelsFile), labelsFile);
  const n = x.shape[0];
  if (labels.length !== n) throw new FileFormatError(labelsFile, `has ${labels.length} labels but ${imagesFile} has ${n} images`);
  return toUnitRange(x, labels, imageShape, imagesFile);
}

/** [N,H,W] → [H,W,1]; [N,H,W,C] → [H,W,C]; anything else is an error. */
function imageShapeOf(shape: number[], file: string): [number, number, number] {
  if (shape.length === 4 && shape[3] > 4 && (shape[1] === 1 || shape[1] === 3)) {
    throw new FileFormatError(file, `shape (${shape.join(', ')}) looks channels-first (NCHW); advlab needs [N,H,W,C], use np.transpose(a, (0, 2, 3, 1))`);
  }
  if (shape.length !== 3 && shape.length !== 4) {
    throw new FileFormatError(file, `images must have shape [N,H,W] or [N,H,W,C], found (${shape.join(', ')})`);
  }
  if (shape.some((d) => d === 0)) throw new FileFormatError(file, `holds no images (shape (${shape.join(', ')}))`);
  return [shape[1], shape[2], shape.length === 4 ? shape[3] : 1];
}

/** Labels as class indices from [N], [N,1] or one-hot [N,K]. */
function readLabels(y: NpyArray, file: string): Int32Array {
  const { shape, data } = y;
  const oneHot = shape.length === 2 && shape[1] > 1;
  if (!(shape.length === 1 || (shape.length === 2 && (shape[1] === 1 || oneHot)))) {
    throw new FileFormatError(file, `labels must have shape [N], [N,1] or one-hot [N,K], found (${shape.join(', ')})`);
  }
  const n = shape[0];
  const labels = new Int32Array(n);
  if (oneHot) {
    const k = shape[1];
    for (let i = 0; i < n; i++) {
      let hot = -1;
      for (let j = 0; j < k; j++) {
        const v = data[i * k + j];
        if (v === 1 && hot < 0) hot = j;
        else if (v !== 0) {
          hot = -2;
          break;
        }
      }
      if (hot < 0) throw new FileFormatError(file, `labels of shape (${n}, ${k}) must be one-hot rows; row ${i} is not`);
      labels[i] = hot;
    }
    return labels;
  }
  for (let i = 0; i < n; i++) {
    const v = data[i];
    if (!Number.isInteger(v) || v < 0 || v > MAX_LABEL) {
      throw new FileFormatError(file, `label ${v} at index ${i} is not a class index (an integer in 0..${MAX_LABEL})`);
    }
    labels[i] = v;
  }
  return labels;
}

/**
 * Scales pixels to [0, 1] (integers / 255, 16-bit ones / 65535, floats as they are), keeping only images
 * whose values are all finite and in range. Most images out of range means the
 * whole file is on another scale, which is an error rather than something to skip.
 */
function toUnitRange(
  x: NpyArray,
  allLabels: Int32Array,
  imageShape: [number, number, number],
  file: string,
): { set: ImageSet; skipped: number } {
  const isFloat = x.dtype === '<f4' || x.dtype === '<f8';
  const hi = isFloat ? 1 : x.dtype === '<u2' ? 65535 : 255;
  const tol = isFloat ? RANGE_TOLERANCE : 0;
  const scale = 1 / hi;
  const n = x.shape[0];
  const size = imageShape[0] * imageShape[1] * imageShape[2];
  const src = x.data;
  const images = new Float32Array(n * size);
  const labels = new Int32Array(n);
  let kept = 0;
  let outOfRange = 0;
  let nonFinite = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const base = i * size;
    let finite = true;
    let inRange = true;
    for (let j = 0; j < size; j++) {
      const v = src[base + j];
      if (!Number.isFinite(v)) {
        finite = false;
        continue;
      }
      if (v < min) min = v;
      if (v > max) max = v;
      if (v < -tol || v > hi + tol) inRange = false;
    }
    if (!finite) nonFinite++;
    else if (!inRange) outOfRange++;
    else {
      const out = kept * size;
      for (let j = 0; j < size; j++) images[out + j] = Math.min(1, Math.max(0, src[base + j] * scale));
      labels[kept++] = allLabels[i];
    }
  }
  const expected = isFloat ? 'float pixels must be in [0, 1]' : 'integer pixels must be in 0..255';
  if (outOfRange > 0 && outOfRange * 2 >= n) {
    throw new FileFormatError(file, `pixel values range from ${min} to ${max}; ${expected} (${outOfRange} of ${n} images are out of range)`);
  }
  if (kept === 0) throw new FileFormatError(file, `no valid images: ${nonFinite} have non-finite values, ${outOfRange} are out of range (${expected})`);
  const set: ImageSet = {
    images: kept === n ? images : images.slice(0, kept * size),
    labels: kept === n ? labels : labels.slice(0, kept),
    count: kept,
    imageShape,
  };
  return { set, skipped: n - kept };
}
