import { tf } from './tf.js';
import { InputError, AdvlabError } from '../errors.js';
import { setAdvlabKernels, type KernelMode } from './kernels/index.js';

/**
 * The backends advlab can run on. `node` is `@tensorflow/tfjs-node` (TensorFlow
 * C library, Node only); `webgl` and `webgpu` run on a page's GPU.
 */
export type BackendName = 'node' | 'wasm' | 'cpu' | 'webgl' | 'webgpu';
/** The backends of Node (the CLI's `--backend`). */
export const BACKEND_NAMES: readonly BackendName[] = ['node', 'wasm', 'cpu'];
/** The backends of a page. */
export const BROWSER_BACKEND_NAMES: readonly BackendName[] = ['webgl', 'webgpu', 'wasm', 'cpu'];

/** What {@link initBackend} chose and why. */
export interface BackendInfo {
  /** advlab's name for the backend. */
  name: BackendName;
  /** tfjs's own name of the backend (`tensorflow`, `wasm`, `cpu`). */
  tfjsName: string;
  /** Threads the backend computes with. */
  threads: number;
  /** Which kernels run where advlab registers its own (wasm only). */
  kernels: KernelMode | 'native';
  /** Why a preferred backend was skipped, if one was. */
  notes: string[];
}

export interface InitBackendOptions {
  /**
   * `auto` (default): tfjs-node if `loadNode` loads it, else wasm, else cpu.
   * In Node, `advlab/node`'s initBackend lets `ADVLAB_BACKEND` override `auto`.
   */
  backend?: BackendName | 'auto';
  /** `advlab` (default) registers advlab's exact and complete gradient kernels on wasm; `shipped` keeps tfjs's own. */
  kernels?: KernelMode;
  /**
   * Where the wasm backend's .wasm files are: a folder path or URL prefix
   * ending in `/` (tfjs-backend-wasm's `setWasmPaths`). Node's initBackend
   * points it at the installed package; in a page, wherever the site serves them.
   */
  wasmPaths?: string;
  /**
   * Loads `@tensorflow/tfjs-node` (registering the `tensorflow` backend).
   * Only Node has it: `advlab/node`'s initBackend passes a dynamic import;
   * without it the `node` backend is unavailable.
   */
  loadNode?: () => Promise<unknown>;
  /**
   * wasm: use tfjs's threaded build where the platform can start its workers
   * (a page under cross-origin isolation). Default false; Node cannot (its
   * Worker rejects the blob: URLs the build starts them from).
   */
  wasmThreads?: boolean;
  /** Threads the `node` backend computes with, for the record (Node's initBackend passes the core count). */
  nodeThreads?: number;
}

let current: BackendInfo | undefined;

/** The backend chosen by the last {@link initBackend}, if any. */
export function backendInfo(): BackendInfo | undefined {
  return current;
}

/** Parses a backend name from a CLI option or environment variable. */
export function parseBackendName(value: string, argument: string): BackendName | 'auto' {
  if (value === 'auto' || (BACKEND_NAMES as readonly string[]).includes(value)) return value as BackendName | 'auto';
  throw new InputError(argument, `unknown backend "${value}"; expected one of auto, ${BACKEND_NAMES.join(', ')}`);
}

/**
 * Chooses and initialises the TensorFlow.js backend, on any platform.
 *
 * Order for `auto`: `@tensorflow/tfjs-node` when `loadNode` loads it, else
 * WebAssembly (its .wasm files from `wasmPaths`), else the pure-JavaScript CPU
 * backend. An explicit backend that cannot start is an error, not a silent
 * fallback. In Node, use `advlab/node`'s initBackend, which supplies the Node
 * parts (tfjs-node, the installed .wasm files, `ADVLAB_BACKEND`).
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  const requested = options.backend ?? 'auto';
  const kernels = options.kernels ?? 'advlab';
  const notes: string[] = [];
  const loadNode = options.loadNode ?? (async () => {
    throw new Error('@tensorflow/tfjs-node runs in Node only (use the initBackend of advlab/node)');
  });

  const tryNode = async (): Promise<boolean> => {
    try {
      await loadNode();
    } catch (e) {
      notes.push(`@tensorflow/tfjs-node is not installed (${firstLine(e)})`);
      return false;
    }
    if (!(await tf.setBackend('tensorflow'))) {
      notes.push('@tensorflow/tfjs-node loaded but its backend did not start');
      return false;
    }
    return true;
  };

  const tryWasm = async (): Promise<boolean> => {
    try {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      if (!options.wasmThreads) tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
      if (options.wasmPaths) wasm.setWasmPaths(options.wasmPaths);
      if (!(await tf.setBackend('wasm'))) {
        notes.push('the wasm backend did not start');
        return false;
      }
      return true;
    } catch (e) {
      notes.push(`the wasm backend could not load (${firstLine(e)})`);
      return false;
    }
  };

  let name: BackendName | undefined;
  if (requested === 'node') {
    if (!(await tryNode())) {
      throw new AdvlabError(`backend "node" requested but unavailable: ${notes.join('; ')}. Install it with: npm install @tensorflow/tfjs-node`);
    }
    name = 'node';
  } else if (requested === 'wasm') {
    if (!(await tryWasm())) throw new AdvlabError(`backend "wasm" requested but unavailable: ${notes.join('; ')}`);
    name = 'wasm';
  } else if (requested === 'cpu') {
    await tf.setBackend('cpu');
    name = 'cpu';
  } else if (requested === 'webgl' || requested === 'webgpu') {
    // Loaded only when asked for: their modules touch browser APIs.
    try {
      await (requested === 'webgl' ? import('@tensorflow/tfjs-backend-webgl') : import('@tensorflow/tfjs-backend-webgpu'));
      if (!(await tf.setBackend(requested))) throw new Error(`tfjs could not start ${requested} (no ${requested === 'webgl' ? 'WebGL context' : 'WebGPU adapter'})`);
    } catch (e) {
      throw new AdvlabError(`backend "${requested}" requested but unavailable: ${firstLine(e)}`);
    }
    name = requested;
  } else {
    if (await tryNode()) name = 'node';
    else if (await tryWasm()) name = 'wasm';
    else {
      await tf.setBackend('cpu');
      name = 'cpu';
    }
  }
  await tf.ready();
  if (name === 'wasm') setAdvlabKernels(kernels);
  current = {
    name,
    tfjsName: tf.getBackend(),
    threads: threadCount(name, options.nodeThreads),
    kernels: name === 'wasm' ? kernels : 'native',
    notes,
  };
  return current;
}

function threadCount(name: BackendName, nodeThreads: number | undefined): number {
  if (name === 'wasm') {
    const backend = tf.backend() as unknown as { wasm?: { tfjs?: { getThreadsCount?: () => number } } };
    return backend.wasm?.tfjs?.getThreadsCount?.() ?? 1;
  }
  if (name === 'node') {
    // TensorFlow's intra-op pool defaults to one thread per core.
    return nodeThreads ?? 1;
  }
  return 1;
}

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0];
}
