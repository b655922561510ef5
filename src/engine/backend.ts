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
   * (a page under cross-origin isolation), with this many threads (`true`:
   * one per logical core). Default false; Node cannot (its Worker rejects the
   * blob: URLs the build starts them from).
   */
  wasmThreads?: boolean | number;
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
      const threads = wasmThreadCount(options.wasmThreads);
      if (!threads) tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
      else wasm.setThreadsCount(threads);
      if (options.wasmPaths) wasm.setWasmPaths(options.wasmPaths);
      // tfjs caps its pool at half of navigator.hardwareConcurrency (it assumes two hyperthreads per core),
      // so a 2-core machine would get one thread whatever was asked: the cap reads the core count once, while
      // the module starts, so for that moment it sees one "core" per requested thread pair.
      const restore = threads ? raiseCoreCountFor(threads) : undefined;
      let started: boolean;
      try {
        started = await tf.setBackend('wasm');
      } finally {
        restore?.();
      }
      if (!started) {
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

/** Threads asked for the threaded wasm build (0: the single-threaded build). */
function wasmThreadCount(option: boolean | number | undefined): number {
  if (typeof option === 'number') {
    if (!Number.isInteger(option) || option < 0 || option > 8) throw new InputError('wasmThreads', `expected true, false or an integer in [0, 8] (tfjs starts at most 8 workers), got ${option}`);
    return option;
  }
  if (!option) return 0;
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  return Math.min(8, Math.max(1, cores));
}

/**
 * Makes navigator.hardwareConcurrency read at least 2 * threads until the
 * returned function runs (an own property over the prototype's getter);
 * nothing where there is no navigator.
 */
function raiseCoreCountFor(threads: number): (() => void) | undefined {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  if (!nav || (nav.hardwareConcurrency ?? 0) >= 2 * threads) return undefined;
  try {
    Object.defineProperty(nav, 'hardwareConcurrency', { value: 2 * threads, configurable: true });
  } catch {
    return undefined;
  }
  return () => {
    delete (nav as { hardwareConcurrency?: number }).hardwareConcurrency;
  };
}

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0];
}
