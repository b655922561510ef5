/**
 * The coordinator's side of a distributed run: a {@link TaskPool} whose tasks
 * become BullMQ jobs on Redis, run by `advlab worker` processes anywhere.
 *
 * Attacks and evaluations hand it the same tasks and payloads as a local
 * {@link WorkerPool} and get the same results back in order; nothing about
 * their batching, seeds or verification changes, which is what makes a
 * distributed run give exactly the numbers of a local one.
 */
import { Job, Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import type { TaskPool, TaskRef } from '../../engine/task-pool.js';
import { checkRedis, closeRedis, openRedis, QueueError, redactUrl } from './connection.js';
import { taskWireName, type TaskModules } from './tasks.js';
import { ModelPublisher, contentHash, decodeResult, encodePayload } from './wire.js';
import { InputError } from '../../errors.js';

/** Queue and Redis key prefix used when none is given. */
export const DEFAULT_QUEUE = 'advlab';

/** Attempts of a job before the run gives up on it (a worker dying mid-job also counts, through BullMQ's stalled-job check). */
export const DEFAULT_ATTEMPTS = 3;

/** How long finished jobs stay in Redis when no coordinator collects them (for `--resume`). */
const KEEP_SECONDS = 7 * 24 * 3600;

/** A job's data in Redis (BullMQ stores it as JSON). */
export interface JobData {
  /** Format version. */
  v: 1;
  /** Task wire name, `module#function` (see tasks.ts). */
  task: string;
  /** What the job computes, for logs and errors (e.g. `eps 0.3 batch 2 (images 256-383)`). */
  label: string;
  /** The payload, structured-clone serialized, base64 (see wire.ts). */
  payload: string;
  /** Hashes of the model blobs the payload refers to. */
  models: string[];
}

/** A job's return value: the encoded result and who computed it. */
export interface JobReturn {
  /** The task's result, structured-clone serialized, base64. */
  result: string;
  /** The worker's name (`host:pid`). */
  worker: string;
  /** Milliseconds the worker spent on the job (decoding, task, encoding). */
  ms: number;
}

/** Options of {@link QueuePool.connect}. */
export interface QueuePoolOptions {
  /** `redis://host:6379` (see connection.ts). */
  url: string;
  /** Identifies the run (see run-id.ts); jobs of a resumed run keep their ids. */
  runId: string;
  /** BullMQ queue name, also the Redis key prefix of the model blobs. Default {@link DEFAULT_QUEUE}. */
  queue?: string;
  /** Default {@link DEFAULT_ATTEMPTS}. */
  attempts?: number;
  /** Extra task modules the workers were started with (see tasks.ts). */
  tasks?: TaskModules;
  /** Called as jobs are queued, found from before (resume) and finished. */
  onJob?: (event: QueueJobEvent) => void;
}

export type QueueJobEvent =
  | { type: 'queued'; id: string; label: string }
  | { type: 'reattached'; id: string; label: string; state: string }
  | { type: 'finished'; id: string; label: string; worker: string; ms: number };

/** Counters of a {@link QueuePool}, e.g. for result files and the benchmark. */
export interface QueuePoolStats {
  /** Jobs whose results came back. */
  jobs: number;
  /** Of those, jobs queued by an earlier coordinator of the same run (resume). */
  reattached: number;
  /** Distinct workers (`host:pid`) that computed them. */
  workers: string[];
  /** Milliseconds the workers spent on them, summed. */
  workerMs: number;
  /** Milliseconds this process spent encoding, queueing (Redis round trips included) and decoding, summed: the coordinator's own overhead. */
  coordinatorMs: number;
}

/**
 * A pool of remote workers behind a BullMQ queue.
 *
 * ```ts
 * const pool = await QueuePool.connect({ url: 'redis://host:6379', runId });
 * try {
 *   const results = await pool.run(task, payloads);
 * } finally {
 *   await pool.close();
 * }
 * ```
 */
export class QueuePool implements TaskPool {
  /** Unbounded: jobs wait in Redis for whichever workers are connected. */
  readonly size = Number.POSITIVE_INFINITY;
  readonly remote = true;
  private readonly publisher: ModelPublisher;
  private readonly attempts: number;
  /** Jobs this pool is waiting for, and the ones it collected (removed on close). */
  private readonly pending = new Set<string>();
  private readonly collected = new Set<string>();
  private readonly counters = { jobs: 0, reattached: 0, workers: new Set<string>(), workerMs: 0, coordinatorMs: 0 };
  private closed = false;

  private constructor(
    private readonly options: QueuePoolOptions,
    private readonly redis: Redis,
    private readonly eventsRedis: Redis,
    private readonly queue: Queue,
    private readonly events: QueueEvents,
  ) {
    this.attempts = options.attempts ?? DEFAULT_ATTEMPTS;
    this.publisher = new ModelPublisher(redis, options.queue ?? DEFAULT_QUEUE);
  }

  /**
   * Checks that Redis answers (within seconds), then opens the queue.
   *
   * @throws InputError `queue` for a bad URL or an unreachable Redis;
   *   InputError `attempts` unless it is a positive integer.
   */
  static async connect(options: QueuePoolOptions): Promise<QueuePool> {
    const attempts = options.attempts ?? DEFAULT_ATTEMPTS;
    if (!Number.isSafeInteger(attempts) || attempts < 1) throw new InputError('attempts', `expected a positive integer, got ${attempts}`);
    if (typeof options.runId !== 'string' || !/^[\w.-]+$/.test(options.runId)) throw new InputError('runId', 'expected letters, digits, ".", "-" or "_"');
    await checkRedis(options.url);
    const name = options.queue ?? DEFAULT_QUEUE;
    const redis = openRedis(options.url);
    const eventsRedis = openRedis(options.url);
    const queue = new Queue(name, { connection: redis, prefix: name });
    const events = new QueueEvents(name, { connection: eventsRedis, prefix: name });
    queue.on('error', () => {}); // connection drops: ioredis reconnects
    events.on('error', () => {});
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    return new QueuePool(options, redis, eventsRedis, queue, events);
  }

  /** The Redis URL, password hidden. */
  get url(): string {
    return redactUrl(this.options.url);
  }

  /** See {@link QueuePoolStats}. */
  stats(): QueuePoolStats {
    const c = this.counters;
    return { jobs: c.jobs, reattached: c.reattached, workers: [...c.workers].sort(), workerMs: c.workerMs, coordinatorMs: c.coordinatorMs };
  }

  /**
   * Queues one job per payload and resolves with the results in payload
   * order. A job this run queued before (same content: a resumed run) is
   * collected, or waited for, instead of being queued again.
   *
   * @throws QueueError naming the task's label when a job fails on every
   *   attempt; the run's jobs still waiting are then withdrawn.
   */
  async run<R, P = unknown>(task: TaskRef, payloads: readonly P[]): Promise<R[]> {
    if (this.closed) throw new QueueError('the queue pool is closed');
    const wire = taskWireName(task, this.options.tasks);
    return Promise.all(payloads.map((p, i) => this.runOne<R>(wire, task.label ?? (payloads.length > 1 ? `payload ${i}` : wire), p)));
  }

  private async runOne<R>(task: string, label: string, payload: unknown): Promise<R> {
    let t0 = performance.now();
    const { data, models, content } = await encodePayload(payload, this.publisher);
    const id = `${this.options.runId}-${contentHash(task, content).slice(0, 40)}`;
    const jobData: JobData = { v: 1, task, label, payload: data, models };
    let job = await Job.fromId<JobData, JobReturn>(this.queue, id);
    let reattached = false;
    if (job) {
      reattached = true;
      const state = await job.getState();
      this.options.onJob?.({ type: 'reattached', id, label, state });
      // A job that failed before gets its attempts again: the resume may follow a fix.
      if (state === 'failed') await job.retry('failed');
    } else {
      job = await this.queue.add(task, jobData, {
        jobId: id,
        attempts: this.attempts,
        backoff: { type: 'fixed', delay: 500 },
        removeOnComplete: { age: KEEP_SECONDS },
        removeOnFail: { age: KEEP_SECONDS },
      });
      this.options.onJob?.({ type: 'queued', id, label });
    }
    this.pending.add(id);
    this.counters.coordinatorMs += performance.now() - t0;
    let value: JobReturn;
    try {
      value = await job.waitUntilFinished(this.events);
    } catch (e) {
      this.pending.delete(id);
      const failed = await Job.fromId(this.queue, id).catch(() => undefined);
      const attempts = failed ? `${failed.attemptsMade} attempt${failed.attemptsMade === 1 ? '' : 's'}` : 'its attempts';
      await this.withdrawPending();
      throw Object.assign(new QueueError(`${label} failed on the queue workers after ${attempts}: ${(e as Error).message} (job ${id})`), { job: id, label });
    }
    t0 = performance.now();
    this.pending.delete(id);
    this.collected.add(id);
    const result = decodeResult(value.result) as R;
    const c = this.counters;
    c.jobs++;
    if (reattached) c.reattached++;
    c.workers.add(value.worker);
    c.workerMs += value.ms;
    c.coordinatorMs += performance.now() - t0;
    this.options.onJob?.({ type: 'finished', id, label, worker: value.worker, ms: value.ms });
    return result;
  }

  /** Removes the jobs still waiting (a failed run should not keep the workers busy); running ones cannot be removed and finish. */
  private async withdrawPending(): Promise<void> {
    const ids = [...this.pending];
    this.pending.clear();
    await Promise.all(ids.map((id) => this.queue.remove(id).catch(() => 0)));
  }

  /**
   * Withdraws jobs still waiting, removes the collected ones (their results
   * are the caller's now) and closes the connections. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.withdrawPending();
      await Promise.all([...this.collected].map((id) => this.queue.remove(id).catch(() => 0)));
    } finally {
      await Promise.allSettled([this.events.close(), this.queue.close()]);
      await closeRedis(this.redis, this.eventsRedis);
    }
  }
}
