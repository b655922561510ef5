/**
 * How many pool workers a job should use, and the pool itself: shared by the
 * commands that spread batches over threads (`advlab attack`, `advlab eval`)
 * and those that split each training batch over them (`advlab train`, `advlab gan`).
 */
import { availableParallelism } from 'node:os';
import type { BackendInfo } from '../engine/backend.js';
import { WorkerPool } from './worker-pool.js';
import { InputError } from '../errors.js';

/** A worker count, or `auto`: one per core when the backend computes on one thread. */
export type WorkersSpec = number | 'auto';

/**
 * The number of workers to use for `units` independent batches on `backend`.
 * `auto` gives one per core (at most one per batch) on the single-threaded
 * wasm and cpu backends, and 1 (no pool) on tfjs-node or a threaded wasm,
 * which already use every core inside one call.
 *
 * @throws InputError if `requested` is neither `auto` nor a positive integer.
 */
export function workerCount(requested: WorkersSpec | undefined, backend: BackendInfo, units: number): number {
  const spec = requested ?? 'auto';
  if (spec !== 'auto' && (!Number.isSafeInteger(spec) || spec < 1)) throw new InputError('workers', `expected a positive integer or "auto", got ${String(spec)}`);
  if (spec === 'auto') {
    if (backend.name === 'node' || backend.threads > 1) return 1;
    return Math.max(1, Math.min(availableParallelism(), units));
  }
  return Math.max(1, Math.min(spec, units));
}

/**
 * Starts a pool of `count` workers on the same backend and kernels as this
 * thread, or returns undefined for one worker (the job then runs in this
 * thread). Pools exist for wasm and cpu only.
 */
export async function startJobPool(count: number, backend: BackendInfo): Promise<WorkerPool | undefined> {
  if (count <= 1) return undefined;
  if (backend.name !== 'wasm' && backend.name !== 'cpu') throw new InputError('workers', `worker threads run the wasm or cpu backend; this run uses ${backend.name}, which is multi-threaded already: use 1 worker`);
  return WorkerPool.start({ size: count, backend: backend.name, kernels: backend.kernels === 'shipped' ? 'shipped' : 'advlab' });
}

/**
 * The pool of a training job's data-parallel steps: two shards of a batch fill
 * two cores; under `auto`, none when the job's nets are not worth splitting
 * (`worth`: see worthSharding).
 */
export async function startShardingPool(requested: WorkersSpec | undefined, backend: BackendInfo, worth: boolean): Promise<WorkerPool | undefined> {
  if ((requested ?? 'auto') === 'auto' && !worth) return undefined;
  return startJobPool(workerCount(requested, backend, 2), backend);
}
