/**
 * Reading tensor values on every backend: `await tensor.data()`, never
 * dataSync/arraySync/bufferSync (WebGPU cannot read synchronously and returns
 * zeros; WebGL stalls the page until the GPU is done). Since tf.tidy cannot
 * await, code computes what it needs in a tidy, returns the tensors, and reads
 * them with these helpers, which dispose them afterwards (also on failure).
 * The values are those dataSync would give.
 */
import { tf } from './tf.js';

/** The values of `tensors`, read concurrently (one wait for the device), in order; the tensors are disposed. */
export async function readAndDispose(tensors: readonly tf.Tensor[]): Promise<tf.TypedArray[]> {
  try {
    return (await Promise.all(tensors.map((t) => t.data()))) as tf.TypedArray[];
  } finally {
    tf.dispose(tensors as tf.Tensor[]);
  }
}

/** The values of one tensor, which is disposed. */
export async function readOne(tensor: tf.Tensor): Promise<tf.TypedArray> {
  return (await readAndDispose([tensor]))[0];
}
