/**
 * A {@link TaskPool} that runs tasks in this thread, for queue workers on
 * tfjs-node (which computes on every core by itself, so worker threads would
 * only compete; see node/workers.ts).
 */
import type { TaskPool, TaskRef } from '../../engine/task-pool.js';
import { InputError } from '../../errors.js';

/** Runs each task by importing its module here and calling the function, one payload after another. */
export function inProcessPool(): TaskPool {
  return {
    size: 1,
    async run<R, P = unknown>(task: TaskRef, payloads: readonly P[]): Promise<R[]> {
      const mod = (await import(task.module)) as Record<string, unknown>;
      const fn = mod[task.name];
      if (typeof fn !== 'function') throw new InputError('task', `${task.module} has no exported function "${task.name}"`);
      const out: R[] = [];
      for (const p of payloads) out.push((await fn(p)) as R);
      return out;
    },
    async close() {},
  };
}
