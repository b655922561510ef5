/**
 * The backend as Node starts it: tfjs-node when the user installed it (an
 * optional peer dependency), the .wasm files read from the installed
 * `@tensorflow/tfjs-backend-wasm` package (never fetched), and the
 * `ADVLAB_BACKEND` environment variable. The core's initBackend does the rest.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { initBackend as initCoreBackend, parseBackendName, type BackendInfo, type InitBackendOptions } from '../engine/backend.js';

const require = createRequire(import.meta.url);

/** The folder holding the wasm binaries inside the installed package. */
export function wasmDir(): string {
  return join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
}

/**
 * Chooses and initialises the TensorFlow.js backend in Node (see the core's
 * initBackend for the order). `ADVLAB_BACKEND` overrides `auto`.
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  const env = process.env.ADVLAB_BACKEND;
  let backend = options.backend ?? 'auto';
  if (backend === 'auto' && env) backend = parseBackendName(env, 'ADVLAB_BACKEND');
  return initCoreBackend({
    loadNode: () => import('@tensorflow/tfjs-node' as string),
    wasmPaths: wasmDir() + '/',
    nodeThreads: availableParallelism(),
    ...options,
    backend,
  });
}
