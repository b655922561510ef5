import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { tf } from './tf.js';
import { InputError, AdvlabError } from '../errors.js';
import { setAdvlabKernels, type KernelMode } from './kernels/index.js';

const require = createRequire(import.meta.url);

/** The backends advlab can run on. `node` is `@tensorflow/tfjs-node` (TensorFlow C library). */
export type BackendName = 'node' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['node', 'wasm', 'cpu'];

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
   * `auto` (default): tfjs-node if installed, else wasm, else cpu.
   * The `ADVLAB_BACKEND` environment variable overrides `auto`.
   */
  backend?: BackendName | 'auto';
  /** `advlab` (default) registers advlab's exact and complete gradient kernels on wasm; `shipped` keeps tfjs's own. */
  kernels?: KernelMode;
  /** For tests: how to load tfjs-node. Defaults to a real dynamic import. */
  loadNode?: () => Promise<unknown>;
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
 * Chooses and initialises the TensorFlow.js backend.
 *
 * Order for `auto`: `@tensorflow/tfjs-node` when the user has installed it (an
 * optional peer dependency), else WebAssembly with its .wasm files read from the
 * installed `@tensorflow/tfjs-backend-wasm` package (never fetched), else the
 * pure-JavaScript CPU backend. An explicit backend that cannot start is an error,
 * not a silent fallback.
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  const env = process.env.ADVLAB_BACKEND;
  let requested = options.backend ?? 'auto';
  if (requested === 'auto' && env) requested = parseBackendName(env, 'ADVLAB_BACKEND');
  const kernels = options.kernels ?? 'advlab';
  const notes: string[] = [];
  const loadNode = options.loadNode ?? (() => import('@tensorflow/tfjs-node' as string));

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
      // The threaded build starts its workers from blob: URLs, which Node's Worker
      // rejects; the single-threaded SIMD build is what runs here.
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
      wasm.setWasmPaths(wasmDir() + '/');
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
    threads: threadCount(name),
    kernels: name === 'wasm' ? kernels : 'native',
    notes,
  };
  return current;
}

/** The folder holding the wasm binaries inside the installed package. */
export function wasmDir(): string {
  return join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
}

function threadCount(name: BackendName): number {
  if (name === 'wasm') {
    const backend = tf.backend() as unknown as { wasm?: { tfjs?: { getThreadsCount?: () => number } } };
    return backend.wasm?.tfjs?.getThreadsCount?.() ?? 1;
  }
  if (name === 'node') {
    // TensorFlow's intra-op pool defaults to one thread per core.
    return (globalThis as any).navigator?.hardwareConcurrency ?? require('node:os').cpus().length;
  }
  return 1;
}

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0];
}
