/**
 * NumPy `.npy` arrays to and from bytes, on any platform (files: src/node/data/formats/npy.ts).
 *
 * Format (NumPy Enhancement Proposal 1, "A simple file format for NumPy arrays", and
 * numpy/lib/format.py): the magic string "\x93NUMPY", a major and minor version
 * byte, the header length (uint16 LE in v1.0, uint32 LE in v2.0/3.0), then an ASCII
 * (UTF-8 in v3.0) Python dict literal such as
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (60000, 28, 28), }`
 * padded with spaces and ending in '\n', then the raw data.
 */
import { FileFormatError, InputError } from '../errors.js';

/** The dtypes advlab reads, in their canonical little-endian spelling. */
export type NpyDtype = '|u1' | '<u2' | '<i4' | '<i8' | '<f4' | '<f8';
/** Data of a .npy array; `<i8` is read into a Float64Array (exact up to 2^53). */
export type NpyData = Uint8Array | Uint16Array | Int32Array | Float32Array | Float64Array;

/** A decoded .npy array, C order. */
export interface NpyArray {
  shape: number[];
  dtype: NpyDtype;
  data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const ITEM_SIZE: Record<NpyDtype, number> = { '|u1': 1, '<u2': 2, '<i4': 4, '<i8': 8, '<f4': 4, '<f8': 8 };
/** `<u1` and `|u1` are the same thing; numpy writes `|u1` because bytes have no byte order. */
const DTYPE_ALIASES: Record<string, NpyDtype> = {
  '|u1': '|u1', '<u1': '|u1', '=u1': '|u1', u1: '|u1', '<u2': '<u2',
  '<i4': '<i4', '<i8': '<i8', '<f4': '<f4', '<f8': '<f8',
};
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** numpy aligns the data to 64 bytes; we do the same when writing. */
const ALIGN = 64;

/**
 * Decodes the bytes of a .npy file. `file` is only used in error messages.
 * @throws FileFormatError naming `file` for bad magic, an unsupported dtype, Fortran order, or truncated data.
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
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, headerStart + headerLength));
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
    throw new FileFormatError(file, `dtype '${descr[1]}' is not supported${hint}; supported: |u1, <u2, <i4, <i8, <f4, <f8`);
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
    if (dtype === '<u2') return new Uint16Array(buf);
    if (dtype === '<i4') return new Int32Array(buf);
    if (dtype === '<f4') return new Float32Array(buf);
    return new Float64Array(buf);
  }
  const view = new DataView(buf);
  if (dtype === '<u2') return Uint16Array.from({ length: count }, (_, i) => view.getUint16(2 * i, true));
  if (dtype === '<i4') return Int32Array.from({ length: count }, (_, i) => view.getInt32(4 * i, true));
  if (dtype === '<f4') return Float32Array.from({ length: count }, (_, i) => view.getFloat32(4 * i, true));
  return Float64Array.from({ length: count }, (_, i) => view.getFloat64(8 * i, true));
}

/**
 * Encodes an array as a .npy file (format v1.0, or v2.0 if the header needs it),
 * C order, little-endian: Float32Array → `<f4`, Int32Array → `<i4`, Uint16Array → `<u2`, Uint8Array → `|u1`.
 * @throws InputError if `shape` does not match `data.length`.
 */
export function encodeNpy(data: Float32Array | Int32Array | Uint16Array | Uint8Array, shape: readonly number[]): Uint8Array {
  const dtype: NpyDtype =
    data instanceof Float32Array ? '<f4' : data instanceof Int32Array ? '<i4' : data instanceof Uint16Array ? '<u2' : data instanceof Uint8Array ? '|u1' : fail();
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
      else if (dtype === '<u2') view.setUint16(start + 2 * i, data[i], true);
      else view.setInt32(start + 4 * i, data[i], true);
    }
  }
  return out;

  function fail(): never {
    throw new InputError('data', 'must be a Float32Array, Int32Array, Uint16Array or Uint8Array');
  }
}

/** Header length (dict + spaces + '\n') so that prefix + header is a multiple of 64. */
function padded(prefix: number, dictLength: number): number {
  const unpadded = prefix + dictLength + 1;
  return dictLength + 1 + ((ALIGN - (unpadded % ALIGN)) % ALIGN);
}
