/**
 * Loader for the IDX format of the original MNIST / Fashion-MNIST files.
 *
 * Format (Y. LeCun, "THE MNIST DATABASE", section "FILE FORMATS FOR THE MNIST DATABASE"):
 * a 4-byte big-endian magic number made of two zero bytes, a data-type code
 * (0x08 = unsigned byte) and the number of dimensions; then one big-endian uint32
 * size per dimension; then the data in row-major (C) order. MNIST images are
 * 0x00000803 [N, rows, cols] and labels 0x00000801 [N]. The files are often gzipped.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { FileFormatError } from '../../../errors.js';
import { splitByClass } from '../../../data/split.js';
import type { Dataset, ImageSet } from '../../../data/types.js';
import { datasetFromPath } from '../from-path.js';

/** An IDX array: its dimensions and its unsigned-byte data, row-major. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** IDX data-type code for unsigned bytes, the only one MNIST-style files use. */
const IDX_UBYTE = 0x08;

/**
 * Reads an IDX file (plain or gzipped; gzip is detected by its magic bytes 1f 8b).
 * Only unsigned-byte data is supported.
 * @throws FileFormatError if the file is missing, not IDX, truncated or has trailing bytes.
 */
export function readIdx(path: string): IdxArray {
  let bytes: Uint8Array = readFileChecked(path);
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new FileFormatError(path, `could not be gunzipped (${(e as Error).message}); the .gz file is corrupt or truncated`);
    }
  }
  if (bytes.length < 4) {
    throw new FileFormatError(path, `truncated: ${bytes.length} bytes is too short for an IDX header`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const magic = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join('');
    throw new FileFormatError(path, `bad magic number 0x${magic}: not an IDX file (expected 0x000008NN, e.g. 0x00000803 for images)`);
  }
  const type = bytes[2];
  const ndim = bytes[3];
  if (type !== IDX_UBYTE) {
    throw new FileFormatError(path, `IDX data type 0x${type.toString(16).padStart(2, '0')} is not supported; only unsigned byte (0x08) is`);
  }
  if (ndim === 0) throw new FileFormatError(path, 'bad IDX header: 0 dimensions');
  const headerLength = 4 + 4 * ndim;
  if (bytes.length < headerLength) {
    throw new FileFormatError(path, `truncated: the IDX header needs ${headerLength} bytes, the file has ${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const size = dims.reduce((a, b) => a * b, 1);
  const available = bytes.length - headerLength;
  if (available < size) {
    throw new FileFormatError(path, `truncated: the header says [${dims.join(', ')}] (${size} data bytes) but only ${available} follow`);
  }
  if (available > size) {
    // Extra bytes mean the header does not describe the data; reading on would misplace pixels.
    throw new FileFormatError(path, `${available - size} unexpected bytes after the data; the header says [${dims.join(', ')}]`);
  }
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerLength, size) };
}

/**
 * Loads a folder of MNIST-style IDX files (each optionally `.gz`):
 * `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
 * `t10k-labels-idx1-ubyte` give the train and test sets as they are. If the folder
 * instead holds a single `*images*idx3*` / `*labels*idx1*` pair, it is split with
 * {@link splitByClass}. Pixels are scaled by 1/255.
 * @throws FileFormatError naming the file at fault.
 */
export function loadIdxFolder(dir: string): Dataset {
  const files = listFiles(dir);
  const std = (re: RegExp): string | undefined => pickOne(dir, files.filter((f) => re.test(f)));
  // Kaggle copies use `.idx3-ubyte` instead of `-idx3-ubyte`, so accept either separator.
  const trainImages = std(/^train-images[-.]idx3-ubyte(\.gz)?$/);
  const trainLabels = std(/^train-labels[-.]idx1-ubyte(\.gz)?$/);
  const testImages = std(/^t10k-images[-.]idx3-ubyte(\.gz)?$/);
  const testLabels = std(/^t10k-labels[-.]idx1-ubyte(\.gz)?$/);
  if (trainImages && trainLabels && testImages && testLabels) {
    const train = readPair(join(dir, trainImages), join(dir, trainLabels));
    const test = readPair(join(dir, testImages), join(dir, testLabels));
    if (train.imageShape.join() !== test.imageShape.join()) {
      throw new FileFormatError(
        join(dir, testImages),
        `images are ${test.imageShape[0]}x${test.imageShape[1]} but ${join(dir, trainImages)} has ${train.imageShape[0]}x${train.imageShape[1]}`,
      );
    }
    return makeDataset(dir, train, test);
  }
  const images = dedupeGz(files.filter((f) => /images.*idx3/i.test(f)));
  const labels = dedupeGz(files.filter((f) => /labels.*idx1/i.test(f)));
  if (images.length === 1 && labels.length === 1) return loadIdxPair(join(dir, images[0]), join(dir, labels[0]), dir);
  throw new FileFormatError(
    dir,
    `expected train-/t10k- images and labels IDX files, or one *images*idx3* + *labels*idx1* pair; ` +
      `found images files [${images.join(', ')}] and labels files [${labels.join(', ')}]`,
  );
}

/**
 * Loads one IDX images file and its labels file from the same folder (the name
 * with `images` → `labels` and `idx3` → `idx1`, gzipped or not), split with
 * {@link splitByClass}.
 */
export function loadIdxFile(imagesPath: string): Dataset {
  const name = basename(imagesPath).replace(/\.gz$/, '');
  if (!/images/i.test(name) || !/idx3/i.test(name)) {
    throw new FileFormatError(imagesPath, 'expected an IDX images file named like *images*idx3* (its labels file is found by name)');
  }
  const base = name.replace(/images/i, (m) => (m === 'IMAGES' ? 'LABELS' : 'labels')).replace(/idx3/i, 'idx1');
  const dir = dirname(imagesPath);
  const candidates = [base, `${base}.gz`].filter((f) => existsSync(join(dir, f)));
  if (candidates.length === 0) {
    throw new FileFormatError(join(dir, base), `missing: the labels for ${imagesPath} should be in this file (optionally .gz)`);
  }
  return loadIdxPair(imagesPath, join(dir, candidates[0]), imagesPath);
}

/** One images/labels pair, split per class. `name` is the path the user gave. */
function loadIdxPair(imagesFile: string, labelsFile: string, name: string): Dataset {
  const all = readPair(imagesFile, labelsFile);
  const numClasses = countClasses([all]);
  const { train, test } = splitByClass(all, numClasses);
  return datasetFromPath(name, train, test, numClasses);
}

/** Reads images + labels, checks their shapes and counts agree, scales pixels to [0, 1]. */
function readPair(imagesFile: string, labelsFile: string): ImageSet {
  const img = readIdx(imagesFile);
  if (img.dims.length !== 3) {
    throw new FileFormatError(imagesFile, `expected an IDX images file (magic 0x00000803, 3 dimensions), found ${img.dims.length} dimension(s)`);
  }
  const lab = readIdx(labelsFile);
  if (lab.dims.length !== 1) {
    throw new FileFormatError(labelsFile, `expected an IDX labels file (magic 0x00000801, 1 dimension), found ${lab.dims.length} dimensions`);
  }
  const [n, rows, cols] = img.dims;
  if (lab.dims[0] !== n) {
    throw new FileFormatError(labelsFile, `has ${lab.dims[0]} labels but ${imagesFile} has ${n} images`);
  }
  if (n === 0 || rows === 0 || cols === 0) throw new FileFormatError(imagesFile, `holds no images (dimensions [${img.dims.join(', ')}])`);
  const images = new Float32Array(img.data.length);
  for (let i = 0; i < images.length; i++) images[i] = img.data[i] / 255;
  // Unsigned bytes are always valid pixels and non-negative labels: nothing can be skipped.
  return { images, labels: Int32Array.from(lab.data), count: n, imageShape: [rows, cols, 1] };
}

/** max label + 1 over all sets, at least 2. */
function countClasses(sets: ImageSet[]): number {
  let max = 0;
  for (const s of sets) for (const l of s.labels) if (l > max) max = l;
  return Math.max(2, max + 1);
}

function makeDataset(name: string, train: ImageSet, test: ImageSet): Dataset {
  return datasetFromPath(name, train, test, countClasses([train, test]));
}


/** Regular files in `dir`, sorted so every choice below is deterministic. */
function listFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new FileFormatError(dir, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : `cannot list folder (${(e as Error).message})`);
  }
  return names.filter((f) => statSync(join(dir, f)).isFile()).sort();
}

/** Drops `x.gz` when `x` is also present (same data, the plain one is faster to read). */
function dedupeGz(files: string[]): string[] {
  const set = new Set(files);
  return files.filter((f) => !(f.endsWith('.gz') && set.has(f.slice(0, -3))));
}

/** The single match after dropping gz duplicates, or undefined; several matches are an error. */
function pickOne(dir: string, matches: string[]): string | undefined {
  const unique = dedupeGz(matches);
  if (unique.length > 1) throw new FileFormatError(dir, `ambiguous IDX files: ${unique.join(', ')}`);
  return unique[0];
}

/** readFileSync with FileFormatError for the usual failures. */
function readFileChecked(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FileFormatError(path, 'no such file');
    if (code === 'EISDIR') throw new FileFormatError(path, 'is a folder, expected a file');
    throw new FileFormatError(path, `cannot be read (${(e as Error).message})`);
  }
}
