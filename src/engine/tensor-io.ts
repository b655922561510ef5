import { tf } from './tf.js';
import { FileFormatError } from '../errors.js';
import { concatArrays } from '../util/arrays.js';

/** Name, shape and dtype of one tensor in a packed buffer. */
export interface TensorSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
}

/**
 * Packs named tensors into one little-endian buffer plus a JSON-able manifest
 * (the same idea as the TF.js weights manifest), for checkpoints.
 */
export function packTensors(named: { name: string; tensor: tf.Tensor }[]): { specs: TensorSpec[]; data: Uint8Array } {
  const specs: TensorSpec[] = [];
  const parts: Uint8Array[] = [];
  for (const { name, tensor } of named) {
    if (tensor.dtype !== 'float32' && tensor.dtype !== 'int32') {
      throw new Error(`packTensors: ${name} has dtype ${tensor.dtype}; only float32 and int32 are stored`);
    }
    const values = tensor.dataSync() as Float32Array | Int32Array;
    specs.push({ name, shape: tensor.shape.slice(), dtype: tensor.dtype });
    parts.push(new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice());
  }
  return { specs, data: concatArrays(parts, Uint8Array) };
}

/** Inverse of {@link packTensors}; the caller owns (and disposes) the tensors. */
export function unpackTensors(specs: TensorSpec[], data: Uint8Array, file: string): { name: string; tensor: tf.Tensor }[] {
  const expected = specs.reduce((s, sp) => s + 4 * sp.shape.reduce((a, b) => a * b, 1), 0);
  if (data.length !== expected) {
    throw new FileFormatError(file, `${data.length < expected ? 'truncated' : 'too long'}: expected ${expected} bytes, found ${data.length}`);
  }
  const copy = data.slice();
  let offset = 0;
  return specs.map((sp) => {
    const n = sp.shape.reduce((a, b) => a * b, 1);
    const values = sp.dtype === 'int32' ? new Int32Array(copy.buffer, offset, n) : new Float32Array(copy.buffer, offset, n);
    offset += 4 * n;
    return { name: sp.name, tensor: tf.tensor(values, sp.shape, sp.dtype) };
  });
}
