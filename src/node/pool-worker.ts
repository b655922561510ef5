/**
 * Entry point of a {@link WorkerPool} thread: initialises this thread's own
 * TensorFlow.js backend once, then runs the tasks the pool sends, one at a
 * time, and posts back each result or error.
 *
 * Started by worker-pool.ts as `pool-worker.ts` under tsx (inherited via execArgv) or
 * `pool-worker.js` from dist/; not meant to be imported.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from './backend.js';
import type { BackendInfo } from '../engine/backend.js';
import { serializeError, type PoolWorkerData, type RunMessage, type WorkerMessage } from '../engine/task-pool.js';
import { runTaskMessage, unsendableResult } from '../engine/task-runner.js';

const port = parentPort;
if (port == null) throw new Error('pool-worker is the entry point of a WorkerPool thread, not a module to import');

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

async function runTask(msg: RunMessage): Promise<void> {
  const { reply, transfer } = await runTaskMessage(msg);
  try {
    port!.postMessage(reply, transfer);
  } catch (e) {
    port!.postMessage(unsendableResult(msg, e));
  }
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
