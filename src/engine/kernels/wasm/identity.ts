/**
 * `Identity` for the wasm backend without a copy: the output shares the
 * input's data (its reference count goes up), as on the CPU backend. The
 * shipped kernel copies, and tfjs runs Identity on every tensor it keeps for
 * a gradient (engine.saveTensorsForBackwardMode clones them): under a tape
 * each layer's weights and activations were copied at every step. Shared data
 * is safe because tfjs never writes into a data id after it is made.
 */
import { tf } from '../../tf.js';
import { wasmBackend, type KernelArgs } from './util.js';

function identity(args: KernelArgs): tf.TensorInfo | tf.Tensor {
  const backend = wasmBackend(args);
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === 'string') throw new Error('advlab wasm Identity: string tensors are not supported');
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Zero-copy `Identity` on wasm. */
export const identityConfig: tf.KernelConfig = {
  kernelName: 'Identity',
  backendName: 'wasm',
  kernelFunc: identity as unknown as tf.KernelFunc,
};
