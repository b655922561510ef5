/**
 * The pool of an `advlab attack` or `advlab eval` job: queue workers when the
 * job names a Redis URL, else this machine's worker threads as before.
 */
import type { BackendInfo } from '../../engine/backend.js';
import type { TaskPool } from '../../engine/task-pool.js';
import { startJobPool, workerCount, type WorkersSpec } from '../workers.js';
import type { Classifier } from '../../models/classifier.js';
import { InputError } from '../../errors.js';
import { openRunId } from './run-id.js';

/** What a job says about where its batches run. */
export interface RunPoolOptions {
  /** Redis URL of the queue; absent: local threads. */
  queue?: string;
  /** Local worker threads (ignored with `queue`). */
  workers?: WorkersSpec;
  /** Output folder (holds the run id of a distributed run). */
  out: string;
  /** Reattach to the distributed run recorded in `out`. */
  resume?: boolean;
}

/** Where a distributed run's jobs go, for progress and logs. */
export interface QueueRunInfo {
  url: string;
  runId: string;
  /** True when `--resume` found the run id of an earlier coordinator. */
  reattached: boolean;
}

/** A job's pool and how many workers it used. */
export interface RunPool {
  /** Undefined: batches run in this thread. */
  pool: TaskPool | undefined;
  /** Set for a distributed run. */
  queue?: QueueRunInfo;
  /** Workers that did the work so far: threads, or distinct queue worker processes (at least 1). */
  workers(): number;
  close(): Promise<void>;
}

/**
 * Starts the pool for a job of `batches` batches on `classifier`.
 *
 * @throws InputError `queue` when the classifier cannot be sent to workers
 *   (graph models) or Redis does not answer; as startJobPool otherwise.
 */
export async function startRunPool(options: RunPoolOptions, backend: BackendInfo, classifier: Classifier, batches: number): Promise<RunPool> {
  if (options.queue === undefined) {
    // Graph models and functions cannot be rebuilt in a worker: they run here.
    const count = classifier.rebuildSpec ? workerCount(options.workers, backend, batches) : 1;
    const pool = await startJobPool(count, backend);
    return { pool, workers: () => count, close: async () => pool?.close() };
  }
  if (!classifier.rebuildSpec) throw new InputError('queue', 'queue workers rebuild the model from its Layers format; a graph model (or a function) cannot be sent to them: run without --queue');
  // Imported here: a local run needs neither BullMQ nor Redis.
  const [{ QueuePool }, { redactUrl, checkRedis }] = await Promise.all([import('./queue-pool.js'), import('./connection.js')]);
  await checkRedis(options.queue);
  const { runId, reattached } = openRunId(options.out, !!options.resume);
  const pool = await QueuePool.connect({ url: options.queue, runId });
  return {
    pool,
    queue: { url: redactUrl(options.queue), runId, reattached },
    workers: () => Math.max(1, pool.stats().workers.length),
    close: () => pool.close(),
  };
}
