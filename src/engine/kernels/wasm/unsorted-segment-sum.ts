/**
 * `UnsortedSegmentSum` for the wasm backend, which tfjs 4.22 does not ship;
 * the gradient of `gather` (embeddings, indexing) runs it.
 */
import { tf } from '../../tf.js';
import { wasmBackend, type KernelArgs } from './util.js';

/**
 * out[ids[i], ...] += x[i, ...] over the leading dims of x that segmentIds
 * covers; ids outside [0, numSegments) are dropped, as in TensorFlow.
 */
function unsortedSegmentSum(args: KernelArgs): tf.TensorInfo {
  const backend = wasmBackend(args);
  const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (args.attrs ?? {}).numSegments as number;
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`advlab wasm UnsortedSegmentSum does not support dtype ${x.dtype}`);
  }
  const tail = x.shape.slice(segmentIds.shape.length);
  const inner = tail.reduce((a, b) => a * b, 1);
  const out = backend.makeOutput([numSegments, ...tail], x.dtype);
  // Views after the allocation: makeOutput may grow (and detach) the heap.
  const dst = backend.typedArrayFromHeap(out);
  const src = backend.typedArrayFromHeap(x);
  const ids = backend.typedArrayFromHeap(segmentIds);
  dst.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const o = s * inner;
    const xi = i * inner;
    for (let j = 0; j < inner; j++) dst[o + j] += src[xi + j];
  }
  return out;
}

/** `UnsortedSegmentSum` on wasm (float32 and int32). */
export const unsortedSegmentSumConfig: tf.KernelConfig = {
  kernelName: 'UnsortedSegmentSum',
  backendName: 'wasm',
  kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc,
};
