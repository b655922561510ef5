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
import { FileFormatError, InputError } from '../../../errors.js';
import { writeFileAtomic } from '../../atomic.js';
import { splitByClass } from '../../../data/split.js';
import type { Dataset, ImageSet } from '../../../data/types.js';
import { datasetFromPath } from '../from-path.js';

/** The dtypes advlab reads, in their canonical little-endian spelling. */
export type NpyDtype = '|u1' | '<i4' | '<i8' | '<f4' | '<f8';
/** Data of a .npy array; `<i8` is read into a Float64Array (exact up to 2^53). */
export type NpyData = Uint8Array | Int32Array | Float32Array | Float64Array;

/** A decoded .npy array, C order. */
export interface NpyArray {
  shape: number[];
  dtype: NpyDtype;
  data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const ITEM_SIZE: Record<NpyDtype, number> = { '|u1': 1, '<i4': 4, '<i8': 8, '<f4': 4, '<f8': 8 };
/** `<u1` and `|u1` are the same thing; numpy writes `|u1` because bytes have no byte order. */
const DTYPE_ALIASES: Record<string, NpyDtype> = {
  '|u1': '|u1', '<u1': '|u1', '=u1': '|u1', u1: '|u1',
  '<i4': '<i4', '<i8': '<i8', '<f4': '<f4', '<f8': '<f8',
};
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** numpy aligns the data to 64 bytes; we do the same when writing. */
const ALIGN = 64;

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

/**
 * Decodes the bytes of a .npy file. `file` is only used in error messages.
 * @throws FileFormatError as {@link readNpy}.
 */
export function decodeNpy(bytes: Uint8Array, file = '<npy bytes>'): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new FileFormatError(file, bytes.length < 10 ? `truncated: ${bytes.length} bytes is too short for a .npy header` : 'not a .npy file (bad magic; expected "\\x93NUMPY")');
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerStart: number;
  let headerLength: number;
  if (major === 1) {
    headerStart = 10;
    headerLength = view.getUint16(8, true);
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new FileFormatError(file, 'truncated .npy header');
    headerStart = 12;
    headerLength = view.getUint32(8, true);
  } else {
    throw new FileFormatError(file, `unsupported .npy format version ${major}.${bytes[7]} (1.0, 2.0 and 3.0 are supported)`);
  }
  const dataStart = headerStart + headerLength;
  if (bytes.length < dataStart) throw new FileFormatError(file, `truncated: the .npy header says ${headerLength} bytes but the file ends first`);
  const header = Buffer.from(bytes.buffer, bytes.byteOffset + headerStart, headerLength).toString(major === 3 ? 'utf8' : 'latin1');
  const { dtype, shape } = parseHeader(header, file);
  const count = shape.reduce((a, b) => a * b, 1);
  const need = count * ITEM_SIZE[dtype];
  const available = bytes.length - dataStart;
  if (available < need) {
    throw new FileFormatError(file, `truncated: shape (${shape.join(', ')}) of ${dtype} needs ${need} data bytes but only ${available} follow the header`);
  }
  if (available > need) {
    throw new FileFormatError(file, `${available - need} unexpected bytes after the data of shape (${shape.join(', ')}) ${dtype}`);
  }
  return { shape, dtype, data: decodeData(bytes.subarray(dataStart, dataStart + need), dtype, count, file) };
}

/** Parses the header dict literal; only the three keys numpy writes matter. */
function parseHeader(header: string, file: string): { dtype: NpyDtype; shape: number[] } {
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header);
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header);
  const shapeMatch = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeMatch) {
    throw new FileFormatError(file, `malformed .npy header (needs 'descr', 'fortran_order' and 'shape'): ${header.trim().slice(0, 200)}`);
  }
  if (fortran[1] === 'True') {
    throw new FileFormatError(file, 'fortran_order is True (column-major data); only C-order arrays are supported, save with np.ascontiguousarray(a)');
  }
  const dtype = Object.hasOwn(DTYPE_ALIASES, descr[1]) ? DTYPE_ALIASES[descr[1]] : undefined;
  if (!dtype) {
    const hint = descr[1].startsWith('>') ? ' (big-endian; convert with a.astype(a.dtype.newbyteorder("<")))' : '';
    throw new FileFormatError(file, `dtype '${descr[1]}' is not supported${hint}; supported: |u1, <i4, <i8, <f4, <f8`);
  }
  const shape: number[] = [];
  for (const part of shapeMatch[1].split(',')) {
    const s = part.trim().replace(/L$/, ''); // Python 2 wrote long ints as 123L
    if (s === '') continue;
    if (!/^\d+$/.test(s)) throw new FileFormatError(file, `malformed shape in .npy header: (${shapeMatch[1]})`);
    shape.push(Number(s));
  }
  return { dtype, shape };
}

/** Copies the raw little-endian bytes into a fresh, aligned typed array. */
function decodeData(raw: Uint8Array, dtype: NpyDtype, count: number, file: string): NpyData {
  if (dtype === '|u1') return new Uint8Array(raw);
  // A copy gives an aligned buffer: typed arrays cannot view unaligned offsets.
  const buf = new Uint8Array(raw).buffer;
  if (dtype === '<i8') {
    const out = new Float64Array(count);
    const view = new DataView(buf);
    for (let i = 0; i < count; i++) {
      const v = view.getBigInt64(8 * i, true);
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new FileFormatError(file, `int64 value ${v} at index ${i} does not fit a JavaScript number exactly`);
      }
      out[i] = Number(v);
    }
    return out;
  }
  if (LITTLE_ENDIAN_HOST) {
    if (dtype === '<i4') return new Int32Array(buf);
    if (dtype === '<f4') return new Float32Array(buf);
    return new Float64Array(buf);
  }
  const view = new DataView(buf);
  if (dtype === '<i4') return Int32Array.from({ length: count }, (_, i) => view.getInt32(4 * i, true));
  if (dtype === '<f4') return Float32Array.from({ length: count }, (_, i) => view.getFloat32(4 * i, true));
  return Float64Array.from({ length: count }, (_, i) => view.getFloat64(8 * i, true));
}

/**
 * Encodes an array as a .npy file (format v1.0, or v2.0 if the header needs it),
 * C order, little-endian: Float32Array → `<f4`, Int32Array → `<i4`, Uint8Array → `|u1`.
 * @throws InputError if `shape` does not match `data.length`.
 */
export function encodeNpy(data: Float32Array | Int32Array | Uint8Array, shape: readonly number[]): Uint8Array {
  const dtype: NpyDtype =
    data instanceof Float32Array ? '<f4' : data instanceof Int32Array ? '<i4' : data instanceof Uint8Array ? '|u1' : fail();
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new InputError('shape', `dimensions must be non-negative integers, got [${shape.join(', ')}]`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new InputError('shape', `[${shape.join(', ')}] holds ${count} values but data has ${data.length}`);
  }
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let major = 1;
  let prefix = MAGIC.length + 2 + 2;
  let headerLength = padded(prefix, dict.length);
  if (headerLength > 0xffff) {
    major = 2;
    prefix = MAGIC.length + 2 + 4;
    headerLength = padded(prefix, dict.length);
  }
  const out = new Uint8Array(prefix + headerLength + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, headerLength, true);
  else view.setUint32(8, headerLength, true);
  out.fill(0x20, prefix, prefix + headerLength - 1); // space padding
  for (let i = 0; i < dict.length; i++) out[prefix + i] = dict.charCodeAt(i);
  out[prefix + headerLength - 1] = 0x0a;
  const start = prefix + headerLength;
  if (LITTLE_ENDIAN_HOST || dtype === '|u1') {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), start);
  } else {
    for (let i = 0; i < data.length; i++) {
      if (dtype === '<f4') view.setFloat32(start + 4 * i, data[i], true);
      else view.setInt32(start + 4 * i, data[i], true);
    }
  }
  return out;

  function fail(): never {
    throw new InputError('data', 'must be a Float32Array, Int32Array or Uint8Array');
  }
}

/** Header length (dict + spaces + '\n') so that prefix + header is a multiple of 64. */
function padded(prefix: number, dictLength: number): number {
  const unpadded = prefix + dictLength + 1;
  return dictLength + 1 + ((ALIGN - (unpadded % ALIGN)) % ALIGN);
}

/** Writes an array to a .npy file atomically (see {@link encodeNpy}). */
export function writeNpy(path: string, data: Float32Array | Int32Array | Uint8Array, shape: readonly number[]): void {
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
 * Scales pixels to [0, 1] (integers / 255, floats as they are), keeping only images
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
  const hi = isFloat ? 1 : 255;
  const tol = isFloat ? RANGE_TOLERANCE : 0;
  const scale = isFloat ? 1 : 1 / 255;
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
