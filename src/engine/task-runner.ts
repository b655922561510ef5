/**
 * The worker side of a task pool, on any platform: imports a task's module
 * (once per worker), runs the task, and builds the reply. Node's pool-worker.ts
 * and a page's Web Worker only wire it to their message ports.
 */
import { tf } from './tf.js';
import { InputError } from '../errors.js';
import { serializeError, type RunMessage, type WorkerMessage } from './task-pool.js';

/** Task modules, imported once per worker. */
const modules = new Map<string, Promise<Record<string, unknown>>>();

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

/**
 * Runs one task message as a pool worker does and returns the reply with the
 * buffers to move: the result, or the task's error flattened for postMessage.
 */
export async function runTaskMessage(msg: RunMessage): Promise<{ reply: WorkerMessage; transfer: ArrayBuffer[] }> {
  try {
    const fn = await taskFunction(msg.module, msg.name);
    const result = await fn(msg.payload);
    if (result instanceof tf.Tensor) {
      // Structured clone would send the tensor's bookkeeping, not its values, and leak it here.
      throw new TypeError(`task "${msg.name}" returned a tf.Tensor; return its values (await t.data()) and dispose it`);
    }
    return { reply: { type: 'result', id: msg.id, result, numTensors: tf.memory().numTensors }, transfer: ownedBuffers(result) };
  } catch (e) {
    return { reply: { type: 'error', id: msg.id, error: serializeError(e), numTensors: tf.memory().numTensors }, transfer: [] };
  }
}

/** The error reply when a task's result cannot be posted (e.g. it holds a function). */
export function unsendableResult(msg: RunMessage, e: unknown): WorkerMessage {
  const error = new TypeError(`task "${msg.name}" returned a value that cannot be sent to the main thread: ${e instanceof Error ? e.message : e}`);
  return { type: 'error', id: msg.id, error: serializeError(error), numTensors: tf.memory().numTensors };
}
