/**
 * Entry point of a {@link WorkerPool} thread: initialises this thread's own
 * TensorFlow.js backend once, then runs the tasks the pool sends, one at a
 * time, and posts back each result or error.
 *
 * Started by pool.ts as `pool-worker.ts` under tsx (inherited via execArgv) or
 * `pool-worker.js` from dist/; not meant to be imported.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { tf } from './tf.js';
import { initBackend, type BackendInfo } from './backend.js';
import { InputError } from '../errors.js';
import { serializeError, type PoolWorkerData, type RunMessage, type WorkerMessage } from './pool.js';

const port = parentPort;
if (port == null) throw new Error('pool-worker is the entry point of a WorkerPool thread, not a module to import');

/** Task modules, imported once per worker. */
const modules = new Map<string, Promise<Record<string, unknown>>>();

async function startBackend({ backend, kernels }: PoolWorkerData): Promise<BackendInfo> {
  if (backend !== 'auto') return initBackend({ backend, kernels });
  // tfjs-node is skipped: it already computes on every core, so one process is the way to use it.
  const env = process.env.ADVLAB_BACKEND;
  if (env === 'cpu' || env === 'wasm') return initBackend({ backend: env, kernels });
  const notes = env ? [`ADVLAB_BACKEND=${env} is not used by pool workers (wasm or cpu only: tfjs-node already uses every core)`] : [];
  let info: BackendInfo;
  try {
    info = await initBackend({ backend: 'wasm', kernels });
  } catch (e) {
    info = await initBackend({ backend: 'cpu' });
    notes.push(e instanceof Error ? e.message : String(e));
  }
  info.notes.push(...notes);
  return info;
}

async function taskFunction(module: string, name: string): Promise<(payload: unknown) => unknown> {
  let loading = modules.get(module);
  if (!loading) {
    loading = import(module) as Promise<Record<string, unknown>>;
    modules.set(module, loading);
  }
  let mod: Record<string, unknown>;
  try {
    mod = await loading;
  } catch (e) {
    modules.delete(module); // let a later run retry, e.g. after the file is fixed
    throw new InputError('task', `cannot import ${module}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const fn = mod[name];
  if (typeof fn !== 'function') throw new InputError('task', `${module} has no exported function "${name}"`);
  return fn as (payload: unknown) => unknown;
}

/**
 * Buffers to move (not copy) back to the main thread: those of typed arrays in
 * the result that span their whole ArrayBuffer, i.e. arrays the task made for
 * the result (a `data()` read, a `slice()`). Views into larger buffers, which the
 * task may still use (a cached model's weights, a wasm heap), are copied instead.
 */
function ownedBuffers(value: unknown, out = new Set<ArrayBuffer>(), depth = 0): ArrayBuffer[] {
  if (ArrayBuffer.isView(value)) {
    const b = value.buffer;
    if (b instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === b.byteLength) out.add(b);
  } else if (depth < 3 && Array.isArray(value)) {
    for (const v of value) ownedBuffers(v, out, depth + 1);
  } else if (depth < 3 && value != null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) ownedBuffers(v, out, depth + 1);
  }
  return [...out];
}

async function runTask(msg: RunMessage): Promise<void> {
  let reply: WorkerMessage;
  try {
    const fn = await taskFunction(msg.module, msg.name);
    const result = await fn(msg.payload);
    if (result instanceof tf.Tensor) {
      // Structured clone would send the tensor's bookkeeping, not its values, and leak it here.
      throw new TypeError(`task "${msg.name}" returned a tf.Tensor; return its values (await t.data()) and dispose it`);
    }
    reply = { type: 'result', id: msg.id, result, numTensors: tf.memory().numTensors };
    try {
      port!.postMessage(reply, ownedBuffers(result));
      return;
    } catch (e) {
      throw new TypeError(`task "${msg.name}" returned a value that cannot be sent to the main thread: ${e instanceof Error ? e.message : e}`);
    }
  } catch (e) {
    reply = { type: 'error', id: msg.id, error: serializeError(e), numTensors: tf.memory().numTensors };
  }
  port!.postMessage(reply);
}

// Tasks run one at a time: the pool sends a worker its next task only after its
// last reply, so chaining here is just a safeguard.
let last: Promise<void> = Promise.resolve();
port.on('message', (msg: RunMessage) => {
  if (msg?.type === 'run') last = last.then(() => runTask(msg));
});

try {
  const info = await startBackend(workerData as PoolWorkerData);
  port.postMessage({ type: 'ready', info } satisfies WorkerMessage);
} catch (e) {
  port.postMessage({ type: 'init-error', error: serializeError(e) } satisfies WorkerMessage);
}
