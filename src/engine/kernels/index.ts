import { tf } from '../tf.js';
import { wasmKernels } from './wasm/index.js';

/** `advlab`: advlab's kernels replace or complete the wasm backend's; `shipped`: tfjs's own only. */
export type KernelMode = 'advlab' | 'shipped';

const shipped = new Map<string, tf.KernelConfig | undefined>();
let mode: KernelMode = 'shipped';

/**
 * Registers advlab's wasm kernels (`advlab`) or restores the ones tfjs shipped
 * (`shipped`), through tfjs's public kernel registry. Idempotent. The switch
 * exists so benchmarks can compare both in one run.
 */
export function setAdvlabKernels(next: KernelMode): void {
  if (next === mode) return;
  for (const config of wasmKernels) {
    if (!shipped.has(config.kernelName)) shipped.set(config.kernelName, tf.getKernel(config.kernelName, 'wasm'));
    if (tf.getKernel(config.kernelName, 'wasm')) tf.unregisterKernel(config.kernelName, 'wasm');
    if (next === 'advlab') {
      tf.registerKernel(config);
    } else {
      const original = shipped.get(config.kernelName);
      if (original) tf.registerKernel(original);
    }
  }
  mode = next;
}

/** Which kernels are registered on wasm now. */
export function kernelMode(): KernelMode {
  return mode;
}
