/**
 * A pool of `worker_threads`, each with its own TensorFlow.js backend, that
 * splits batches of work across CPU cores.
 *
 * Why: the wasm backend computes on one thread in Node (the threaded build
 * cannot start its workers there, see backend.ts), so one process uses one core.
 * Attacks and evaluations are per-example, so a batch can be split into parts
 * that run in parallel, one per worker, and be put back together in order.
 *
 * Tasks, the messages and the {@link TaskPool} interface are the core's
 * (engine/task-pool.ts); this file is the Node platform's way to run them.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdvlabError, InputError } from '../errors.js';
import { deserializeError, stackFrames, type PoolOptions, type PoolWorkerData, type PoolWorkerInfo, type RunMessage, type SerializedError, type TaskPool, type TaskRef, type Transfer, type WorkerMessage } from '../engine/task-pool.js';

interface RunState {
  task: TaskRef;
  results: unknown[];
  remaining: number;
  settled: boolean;
  transfer?: (payload: any, index: number) => Transfer[];
  resolve(results: unknown[]): void;
  reject(error: Error): void;
}

interface Job {
  run: RunState;
  index: number;
  payload: unknown;
}

interface Slot {
  index: number;
  worker: Worker;
  info?: PoolWorkerInfo;
  job?: Job;
  /** Last 'error' event of the thread (an uncaught exception), reported when it exits. */
  crash?: Error;
  /** The thread has exited. */
  exited?: boolean;
}

/**
 * A fixed-size pool of worker threads, each with its own TensorFlow.js backend
 * (initialised once, at start). {@link WorkerPool.run} hands payloads to idle
 * workers from a queue and resolves with the results in payload order.
 *
 * ```ts
 * const pool = await WorkerPool.start({ size: 2, backend: 'wasm' });
 * try {
 *   const parts = splitRanges(batch, pool.size).map(([s, e]) => ({ x: images.slice(s * px, e * px), ... }));
 *   const out = await pool.run<Float32Array>({ module: tasksUrl, name: 'pgdLinf' }, parts, (p) => [p.x.buffer]);
 * } finally {
 *   await pool.close();
 * }
 * ```
 *
 * Idle workers do not keep the process alive (they are `unref`ed), but call
 * {@link WorkerPool.close} to free their memory.
 */
export class WorkerPool implements TaskPool {
  /** Number of workers. */
  readonly size: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private readonly data: PoolWorkerData;
  private nextId = 1;
  private closed = false;

  private constructor(size: number, data: PoolWorkerData) {
    this.size = size;
    this.data = data;
  }

  /**
   * Starts `size` workers and waits until each has initialised its backend.
   *
   * @throws InputError on a bad option; the worker's error (e.g. AdvlabError
   *   "backend wasm requested but unavailable") when a worker cannot start, after
   *   terminating the others.
   */
  static async start(options: PoolOptions = {}): Promise<WorkerPool> {
    const size = options.size ?? availableParallelism();
    if (!Number.isSafeInteger(size) || size < 1) throw new InputError('size', `must be a positive integer, got ${size}`);
    const backend = options.backend ?? 'auto';
    if (!['wasm', 'cpu', 'auto'].includes(backend)) {
      throw new InputError('backend', `unknown pool backend "${backend}"; expected one of wasm, cpu, auto`);
    }
    const kernels = options.kernels ?? 'advlab';
    if (kernels !== 'advlab' && kernels !== 'shipped') {
      throw new InputError('kernels', `unknown kernels "${kernels}"; expected advlab or shipped`);
    }
    const pool = new WorkerPool(size, { backend, kernels });
    const started = await Promise.allSettled(Array.from({ length: size }, (_, i) => pool.spawn(i)));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await pool.close();
      throw failed.reason;
    }
    return pool;
  }

  /** Backend, threads and counters of each running worker, in pool order (copies). */
  get workers(): PoolWorkerInfo[] {
    return this.slots.flatMap((s) => (s.info && !s.exited ? [{ ...s.info, notes: [...s.info.notes] }] : []));
  }

  /**
   * Runs `task` once per payload on the pool's workers and resolves with the
   * results in the order of `payloads` (whatever order they finish in). More
   * payloads than workers is fine: the rest wait in a queue.
   *
   * @param transfer returns the buffers of a payload to move to the worker
   *   instead of copying (they become unusable here), e.g. `(p) => [p.x.buffer]`.
   *   SharedArrayBuffers are never copied and need not be listed.
   * @throws the first error a task throws, with its original name (e.g.
   *   `InputError`, rebuilt as that class for advlab's errors) and message, plus
   *   `worker`, `task` and `payloadIndex` properties; the run's payloads still
   *   queued are dropped and the pool stays usable.
   */
  run<R, P = unknown>(task: TaskRef, payloads: readonly P[], transfer?: (payload: P, index: number) => Transfer[]): Promise<R[]> {
    if (this.closed) return Promise.reject(new AdvlabError('the worker pool is closed'));
    if (task == null || typeof task.name !== 'string' || task.name === '' || typeof task.module !== 'string' || !isAbsoluteUrl(task.module)) {
      return Promise.reject(
        new InputError('task', 'expected { module, name } with module an absolute URL (e.g. import.meta.url or pathToFileURL(path).href)'),
      );
    }
    if (payloads.length === 0) return Promise.resolve([]);
    return new Promise<R[]>((resolve, reject) => {
      const run: RunState = {
        task: { module: task.module, name: task.name, ...(task.label ? { label: task.label } : {}) },
        results: new Array(payloads.length),
        remaining: payloads.length,
        settled: false,
        transfer,
        resolve: resolve as (r: unknown[]) => void,
        reject,
      };
      payloads.forEach((payload, index) => this.queue.push({ run, index, payload }));
      this.dispatch();
    });
  }

  /** Terminates every worker. Runs still pending reject. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const error = new AdvlabError('the worker pool was closed before the task finished');
    for (const job of this.queue.splice(0)) this.fail(job.run, error);
    for (const slot of this.slots) if (slot.job) this.fail(slot.job.run, error);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  // -------------------------------------------------------------------------

  /** Starts the worker at `index` (also used to replace one that died) and resolves once it is ready. */
  private spawn(index: number): Promise<void> {
    const t0 = performance.now();
    const worker = new Worker(workerEntry(), { workerData: this.data });
    const slot: Slot = { index, worker };
    this.slots[index] = slot;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on('message', (msg: WorkerMessage) => {
        if (msg.type === 'ready') {
          ready = true;
          slot.info = {
            ...msg.info,
            index,
            threadId: worker.threadId,
            startupMs: Math.round(performance.now() - t0),
            tasksRun: 0,
            numTensors: 0,
          };
          resolve();
          this.dispatch();
        } else if (msg.type === 'init-error') {
          reject(reviveError(msg.error, { worker: index }));
          void worker.terminate();
        } else {
          this.finish(slot, msg);
        }
      });
      worker.on('error', (e) => {
        slot.crash = e;
      });
      worker.on('exit', (code) => {
        slot.exited = true;
        if (!ready) {
          reject(slot.crash ?? new AdvlabError(`pool worker ${index} exited with code ${code} before its backend was ready`));
          return;
        }
        if (this.closed || this.slots[index] !== slot) return;
        this.onCrash(slot, code);
      });
    });
  }

  /** A worker died outside a task's own error handling (e.g. an uncaught exception in a timer, or out of memory). */
  private onCrash(slot: Slot, code: number): void {
    const why = slot.crash ? `: ${slot.crash.message}` : '';
    if (slot.job) {
      const job = slot.job;
      slot.job = undefined;
      this.fail(job.run, withContext(new AdvlabError(`pool worker ${slot.index} exited with code ${code}${why}`), slot.index, job));
    }
    // Replace it so the pool keeps its size; if even that fails, fail what is queued.
    this.spawn(slot.index).catch((e: Error) => {
      if (this.closed) return;
      if (!this.slots.some((s) => s.info != null && !s.exited)) for (const job of this.queue.splice(0)) this.fail(job.run, e);
    });
  }

  /** Gives queued jobs to idle, ready workers. */
  private dispatch(): void {
    if (this.closed) return;
    for (const slot of this.slots) {
      if (slot == null || slot.info == null || slot.exited || slot.job != null) continue;
      while (slot.job == null && this.queue.length > 0) {
        const job = this.queue.shift()!;
        // Jobs of a run that already failed are dropped, not computed.
        if (job.run.settled) continue;
        const msg: RunMessage = { type: 'run', id: this.nextId++, module: job.run.task.module, name: job.run.task.name, payload: job.payload };
        try {
          const transfer = (job.run.transfer?.(job.payload, job.index) ?? []).filter(
            (t): t is ArrayBuffer => !(t instanceof SharedArrayBuffer),
          );
          slot.worker.postMessage(msg, transfer);
        } catch (e) {
          // E.g. DataCloneError: a payload holding a function or tensor.
          this.fail(job.run, withContext(asError(e), slot.index, job));
          continue;
        }
        slot.job = job;
        slot.worker.ref();
      }
      if (this.queue.length === 0) break;
    }
    for (const slot of this.slots) if (slot?.info != null && slot.job == null) slot.worker.unref();
  }

  private finish(slot: Slot, msg: Extract<WorkerMessage, { type: 'result' | 'error' }>): void {
    const job = slot.job;
    slot.job = undefined;
    if (slot.info) {
      slot.info.tasksRun++;
      slot.info.numTensors = msg.numTensors;
    }
    if (job && !job.run.settled) {
      if (msg.type === 'result') {
        job.run.results[job.index] = msg.result;
        if (--job.run.remaining === 0) {
          job.run.settled = true;
          job.run.resolve(job.run.results);
        }
      } else {
        this.fail(job.run, reviveError(msg.error, { worker: slot.index, job }));
      }
    }
    this.dispatch();
  }

  private fail(run: RunState, error: Error): void {
    if (run.settled) return;
    run.settled = true;
    run.reject(error);
  }
}

// ---------------------------------------------------------------------------

/**
 * The worker's entry: `pool-worker.js` next to this file in dist/; from
 * TypeScript source, `pool-worker.ts` behind a small bootstrap.
 *
 * Why the bootstrap: a worker inherits `--import tsx` through execArgv, but on
 * Node 20 module hooks registered that way do not apply inside worker threads
 * (tsx issue #354, nodejs/node#47747), so the worker cannot load a .ts file.
 * The bootstrap checks whether this thread loads .ts (importing the side-effect
 * free pool.ts under a probe query: a failed import is cached per URL, so the
 * probe must not be the worker file itself) and registers tsx's hooks only if
 * not, so Node versions whose workers do get the hooks do not register twice.
 */
function workerEntry(): URL {
  const self = import.meta.url;
  const ext = extname(fileURLToPath(self));
  const entry = new URL(`./pool-worker${ext}`, self);
  if (ext === '.js') return entry;
  let tsxApi: string | null = null;
  try {
    tsxApi = import.meta.resolve('tsx/esm/api');
  } catch {
    // Not tsx (e.g. Node's own type stripping): nothing to register.
  }
  const code = [
    `try { await import(${JSON.stringify(self + '?pool-worker-probe')}); }`,
    `catch (e) {`,
    `  if (e?.code !== 'ERR_UNKNOWN_FILE_EXTENSION' || ${JSON.stringify(tsxApi)} === null) throw e;`,
    `  (await import(${JSON.stringify(tsxApi)})).register();`,
    `}`,
    `await import(${JSON.stringify(entry.href)});`,
  ].join('\n');
  return new URL('data:text/javascript,' + encodeURIComponent(code));
}

/**
 * Rebuilds an error from a worker (see {@link deserializeError}) with `worker`,
 * `task` and `payloadIndex` added, and the worker's stack headed by where it ran.
 */
function reviveError(s: SerializedError, where: { worker: number; job?: Job }): Error {
  const error = deserializeError(s);
  const task = where.job ? `${where.job.run.task.module}#${where.job.run.task.name}, payload ${where.job.index}${where.job.run.task.label ? `, ${where.job.run.task.label}` : ''}` : 'backend start';
  error.stack = [`${s.name}: ${s.message}`, `    in pool worker ${where.worker} (${task})`, ...stackFrames(s)].join('\n');
  return where.job ? withContext(error, where.worker, where.job) : Object.assign(error, { worker: where.worker });
}

function withContext(error: Error, worker: number, job: Job): Error {
  return Object.assign(error, { worker, task: `${job.run.task.module}#${job.run.task.name}`, payloadIndex: job.index });
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function isAbsoluteUrl(s: string): boolean {
  try {
    new URL(s);
    return true;
  } catch {
    return false;
  }
}
