/**
 * Exact `Sign` for the wasm backend. The shipped kernel returns 0 for
 * |x| < ~1.2e-7 (so tf.sign(1e-8) === 0), which silently zeroes FGSM/PGD steps
 * wherever the loss gradient is tiny.
 */
import { tf } from '../../tf.js';
import { wasmBackend, type KernelArgs } from './util.js';

/** 1 for x > 0, -1 for x < 0, 0 otherwise (0, -0 and NaN), like the CPU backend. */
function sign(args: KernelArgs): tf.TensorInfo {
  const backend = wasmBackend(args);
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string' || x.dtype === 'complex64') {
    throw new Error(`advlab wasm Sign does not support dtype ${x.dtype}`);
  }
  const out = backend.makeOutput(x.shape, x.dtype);
  // Views after the allocation: makeOutput may grow (and detach) the heap.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    dst[i] = v > 0 ? 1 : v < 0 ? -1 : 0;
  }
  return out;
}

/** Exact `Sign` on wasm for float32, int32 and bool tensors. */
export const signConfig: tf.KernelConfig = {
  kernelName: 'Sign',
  backendName: 'wasm',
  kernelFunc: sign as unknown as tf.KernelFunc,
};
