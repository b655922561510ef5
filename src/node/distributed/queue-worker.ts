/**
 * The worker's side of a distributed run (`advlab worker`): takes jobs from
 * the BullMQ queue, runs their task on this machine's backend and returns the
 * result.
 *
 * Tasks run on a {@link WorkerPool} (one thread per job the worker takes at
 * once) even for a single thread: this keeps the process's own event loop
 * free to renew BullMQ's job locks while a batch computes for minutes. A lock
 * that is not renewed, because the process died (kill -9, power loss) or hangs,
 * expires; BullMQ's stalled-job check on any worker then puts the job back in
 * the queue for another worker. On tfjs-node, which already uses every core,
 * tasks run in the main thread instead (give it a long `lockSeconds`).
 */
import { hostname } from 'node:os';
import { Worker, UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { BackendInfo } from '../../engine/backend.js';
import { WorkerPool } from '../worker-pool.js';
import { type TaskPool } from '../../engine/task-pool.js';
import { isInputError, InputError } from '../../errors.js';
import { checkRedis, closeRedis, openRedis } from './connection.js';
import { DEFAULT_QUEUE, type JobData, type JobReturn } from './queue-pool.js';
import { taskFromWire, type TaskModules } from './tasks.js';
import { ModelFetcher, decodePayload, encodeResult } from './wire.js';
import { inProcessPool } from './in-process.js';

/** Options of {@link startQueueWorker}. */
export interface QueueWorkerOptions {
  /** `redis://host:6379`. */
  url: string;
  /** The backend this process started (`initBackend`); wasm and cpu run tasks on threads, others in this thread. */
  backend: BackendInfo;
  /** Jobs taken at once, one thread each (wasm, cpu). Default 1. */
  threads?: number;
  /** Default `advlab`, as the coordinator's. */
  queue?: string;
  /** Seconds a job's lock lasts without renewal; a dead worker's job is retried after about this long. Default 30. */
  lockSeconds?: number;
  /** Seconds between this worker's checks for other workers' stalled jobs. Default 30. */
  stalledSeconds?: number;
  /** Extra task modules (see tasks.ts). */
  tasks?: TaskModules;
  /** Name recorded on jobs and in results. Default `host:pid`. */
  name?: string;
  onEvent?: (event: QueueWorkerEvent) => void;
}

export type QueueWorkerEvent =
  | { type: 'ready'; name: string; threads: number }
  | { type: 'start'; id: string; label: string; attempt: number }
  | { type: 'done'; id: string; label: string; ms: number }
  | { type: 'failed'; id: string; label: string; message: string; final: boolean };

/** A running queue worker. */
export interface QueueWorker {
  readonly name: string;
  /**
   * Stops taking jobs, lets the running ones finish (or, with `force`, gives
   * them up: they go back to the queue once their lock expires), then closes
   * the threads and connections. Idempotent.
   */
  close(force?: boolean): Promise<void>;
}

/**
 * Connects to Redis (failing within seconds if it does not answer), starts the
 * task threads and begins taking jobs.
 *
 * @throws InputError `queue` for an unreachable Redis, `threads`,
 *   `lockSeconds` or `stalledSeconds` for a bad value.
 */
export async function startQueueWorker(options: QueueWorkerOptions): Promise<QueueWorker> {
  const threads = options.threads ?? 1;
  if (!Number.isSafeInteger(threads) || threads < 1) throw new InputError('threads', `expected a positive integer, got ${threads}`);
  const lockSeconds = options.lockSeconds ?? 30;
  const stalledSeconds = options.stalledSeconds ?? 30;
  for (const [k, v] of Object.entries({ lockSeconds, stalledSeconds })) if (!(Number.isFinite(v) && v > 0)) throw new InputError(k, `expected a positive number of seconds, got ${v}`);
  await checkRedis(options.url);
  const name = options.name ?? `${hostname()}:${process.pid}`;
  const prefix = options.queue ?? DEFAULT_QUEUE;
  const b = options.backend;
  const pool: TaskPool =
    b.name === 'wasm' || b.name === 'cpu' ? await WorkerPool.start({ size: threads, backend: b.name, kernels: b.kernels === 'shipped' ? 'shipped' : 'advlab' }) : inProcessPool();
  const redis = openRedis(options.url);
  const fetcher = new ModelFetcher(redis, prefix);
  const emit = options.onEvent ?? (() => {});

  /** Running jobs with their lock tokens, to give back on a forced close. */
  const active = new Map<string, { job: Job<JobData, JobReturn>; token?: string }>();
  const processor = async (job: Job<JobData, JobReturn>, token?: string): Promise<JobReturn> => {
    const t0 = performance.now();
    const { label = job.name } = job.data ?? {};
    const id = job.id ?? '?';
    active.set(id, { job, token });
    emit({ type: 'start', id, label, attempt: job.attemptsMade + 1 });
    try {
      if (job.data?.v !== 1) throw new InputError('job', `unknown job format ${String(job.data?.v)} (a coordinator of another advlab version?)`);
      const task = taskFromWire(job.data.task, options.tasks);
      const payload = await decodePayload(job.data.payload, fetcher);
      const [result] = await pool.run(task, [payload]);
      const ms = performance.now() - t0;
      emit({ type: 'done', id, label, ms });
      return { result: encodeResult(result), worker: name, ms };
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      // Bad input fails the same way on every attempt: do not retry it.
      const final = isInputError(e) || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      emit({ type: 'failed', id, label, message, final });
      throw isInputError(e) ? new UnrecoverableError(`${e.name}: ${message}`) : e;
    } finally {
      active.delete(id);
    }
  };

  const worker = new Worker<JobData, JobReturn>(prefix, processor, {
    connection: redis as Redis,
    prefix,
    name,
    concurrency: Math.min(threads, pool.size),
    lockDuration: lockSeconds * 1000,
    stalledInterval: stalledSeconds * 1000,
    autorun: true,
  });
  worker.on('error', () => {}); // connection drops: ioredis reconnects
  await worker.waitUntilReady();
  emit({ type: 'ready', name, threads: pool.size });

  let closing: Promise<void> | undefined;
  return {
    name,
    close(force = false) {
      if (closing && !force) return closing;
      closing = (async () => {
        try {
          if (force) {
            // Back to the queue now, rather than when their locks expire; the
            // tasks' own ending then fails harmlessly (the lock is gone).
            await Promise.allSettled([...active.values()].map(({ job, token }) => job.moveToWait(token)));
            await pool.close();
          }
          await worker.close(force);
        } finally {
          await pool.close();
          await closeRedis(redis);
        }
      })();
      return closing;
    },
  };
}
