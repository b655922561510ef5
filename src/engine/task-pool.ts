/**
 * What attacks and evaluations need from a pool of workers, on any platform:
 * the task names, the {@link TaskPool} interface, and the messages between a
 * pool and its workers (Node's worker threads in src/node, Web Workers in a
 * page). Nothing here starts a worker.
 *
 * Tasks are plain exported async functions of an ES module, named by module URL
 * (a {@link TaskRef}); the worker imports the module itself, so the engine
 * never imports the attacks or models that tasks use.
 */
import { AdvlabError, FileFormatError, InputError } from '../errors.js';
import type { BackendInfo } from './backend.js';
import type { KernelMode } from './kernels/index.js';

/**
 * Names a task: `module` is the URL of an ES module (e.g. `import.meta.url` of
 * the file defining it, or `pathToFileURL(path).href`), `name` one of its
 * exports, an `async (payload) => result` function. Payloads and results cross
 * threads by structured clone, so they must be plain data (typed arrays,
 * objects, numbers, strings), never tensors or functions.
 */
export interface TaskRef {
  /** Absolute URL of the ES module that exports the task. */
  module: string;
  /** Name of the exported task function. */
  name: string;
  /**
   * What this call computes, e.g. `eps 0.3 batch 2 (images 256-383)`: pools
   * name it when the task fails, so the user knows which part of a run broke.
   */
  label?: string;
}

/**
 * What a payload's buffers may be moved as. SharedArrayBuffers are accepted (so
 * `(p) => [p.x.buffer]` type-checks whatever backs `p.x`) and skipped: they are
 * shared, never copied.
 */
export type Transfer = ArrayBuffer | SharedArrayBuffer;

/**
 * What the batch code of attacks and evaluations needs from a pool: run a task
 * once per payload somewhere else and get the results back in payload order.
 * Node's `WorkerPool` (src/node) runs them on threads of this process, the
 * distributed `QueuePool` on worker processes reached through Redis.
 */
export interface TaskPool {
  /**
   * Tasks the pool runs at once (its workers). A pool whose workers are
   * elsewhere ({@link TaskPool.remote}) may report `Infinity`: jobs wait there
   * for whichever workers are connected.
   */
  readonly size: number;
  /**
   * True when tasks run outside this process: then even a single batch goes
   * to the pool (its workers, not this process, are meant to do the work, and
   * a resumed run collects the result they already computed).
   */
  readonly remote?: boolean;
  /**
   * Runs `task` once per payload and resolves with the results in payload
   * order. `transfer` names buffers to move rather than copy (a hint a remote
   * pool ignores).
   */
  run<R, P = unknown>(task: TaskRef, payloads: readonly P[], transfer?: (payload: P, index: number) => Transfer[]): Promise<R[]>;
  /** Frees the pool's workers or connections. Idempotent. */
  close(): Promise<void>;
}

/**
 * The pool to hand `units` batches to, or undefined to run them in this
 * thread: a local pool pays off with several workers and several batches, a
 * remote one always.
 */
export function poolFor(pool: TaskPool | undefined, units: number): TaskPool | undefined {
  if (!pool || units < 1) return undefined;
  if (pool.remote) return pool;
  return pool.size > 1 && units > 1 ? pool : undefined;
}

/** Backends a pool worker can run. tfjs-node is left out: it already uses every core by itself. */
export type PoolBackend = 'wasm' | 'cpu' | 'auto';

/** Options of {@link WorkerPool.start}. */
export interface PoolOptions {
  /** Number of workers. Default: one per core. */
  size?: number;
  /**
   * Backend of every worker. `auto` (default): wasm if it starts, else cpu
   * (`ADVLAB_BACKEND=cpu|wasm` chooses instead).
   */
  backend?: PoolBackend;
  /** Kernels on wasm, as in `initBackend`. Default `advlab`. */
  kernels?: KernelMode;
}

/** What one worker runs on, so results can record it. */
export interface PoolWorkerInfo extends BackendInfo {
  /** Position of the worker in the pool, 0-based. */
  index: number;
  /** Node's id of the worker thread. */
  threadId: number;
  /** Milliseconds from spawning the thread to its backend being ready. */
  startupMs: number;
  /** Tasks the worker has finished (successfully or not). */
  tasksRun: number;
  /** `tf.memory().numTensors` in the worker after its last task (a leak check for tasks). */
  numTensors: number;
}

// ---------------------------------------------------------------------------
// Messages between the pool and its workers (shared with pool-worker.ts).

/** Data the pool hands each worker at spawn. */
export interface PoolWorkerData {
  backend: PoolBackend;
  kernels: KernelMode;
}

/** An error flattened for postMessage: structured clone drops the class and own properties. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  /** Own enumerable primitive properties, e.g. InputError's `argument`, FileFormatError's `file`. */
  props: Record<string, string | number | boolean>;
}

/** Pool → worker. */
export interface RunMessage {
  type: 'run';
  id: number;
  module: string;
  name: string;
  payload: unknown;
}

/** Worker → pool. */
export type WorkerMessage =
  | { type: 'ready'; info: BackendInfo }
  | { type: 'init-error'; error: SerializedError }
  | { type: 'result'; id: number; result: unknown; numTensors: number }
  | { type: 'error'; id: number; error: SerializedError; numTensors: number };

// ---------------------------------------------------------------------------

/**
 * Splits `n` items into at most `parts` contiguous, half-open ranges
 * `[start, end)`, in order, whose sizes differ by at most one (the first
 * `n % parts` ranges get the extra item). Never returns an empty range, so
 * fewer than `parts` ranges come back when `n < parts` (none when `n` is 0).
 *
 * @throws InputError unless `n` is a non-negative and `parts` a positive integer.
 */
export function splitRanges(n: number, parts: number): [number, number][] {
  if (!Number.isSafeInteger(n) || n < 0) throw new InputError('n', `must be a non-negative integer, got ${n}`);
  if (!Number.isSafeInteger(parts) || parts < 1) throw new InputError('parts', `must be a positive integer, got ${parts}`);
  const k = Math.min(parts, n);
  const base = Math.floor(n / k);
  const extra = n % k;
  const out: [number, number][] = [];
  let start = 0;
  for (let i = 0; i < k; i++) {
    const end = start + base + (i < extra ? 1 : 0);
    out.push([start, end]);
    start = end;
  }
  return out;
}

/** advlab's error classes, rebuilt by name so `instanceof` and `isInputError` work across threads. */
const ERROR_CLASSES: Record<string, { prototype: Error }> = {
  AdvlabError,
  InputError,
  FileFormatError,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/**
 * Flattens an error for postMessage. Structured clone keeps only name/message
 * of built-in errors and loses the class and own properties (`argument`, `file`).
 */
export function serializeError(e: unknown): SerializedError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e), props: {} };
  const props: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(e)) {
    if (k !== 'name' && k !== 'message' && k !== 'stack' && ['string', 'number', 'boolean'].includes(typeof v)) props[k] = v;
  }
  return { name: e.name, message: e.message, stack: e.stack, props };
}

/**
 * Rebuilds an error from a worker with its original name and message (so the
 * CLI prints it unchanged), as an instance of its class when that is one of
 * advlab's or a built-in one, with its own properties (`argument`, `file`).
 */
export function deserializeError(s: SerializedError): Error {
  const error = new Error(s.message);
  const cls = Object.hasOwn(ERROR_CLASSES, s.name) ? ERROR_CLASSES[s.name] : undefined;
  if (cls) Object.setPrototypeOf(error, cls.prototype);
  Object.defineProperty(error, 'name', { value: s.name, writable: true, configurable: true, enumerable: false });
  Object.assign(error, s.props);
  return error;
}

/** The `at ...` lines of a worker's stack: where the task threw. */
export function stackFrames(s: SerializedError): string[] {
  return (s.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
}
