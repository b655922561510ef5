/**
 * Which task functions may run on queue workers, and their names on the wire.
 *
 * A local pool names a task by module URL, but a URL is a path on the
 * coordinator's machine and means nothing on a worker's; and a worker must
 * not import whatever module a job names (anyone who can write to the queue
 * could make it run any file). So jobs carry a short name,
 * `robustness/pool-task#evalBatchTask`, and each side maps it to its own copy
 * of advlab's task modules; extra modules (a library user's own tasks) are
 * allowed only when both sides are given them by name.
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../../errors.js';
import type { TaskRef } from '../../engine/task-pool.js';

/** advlab's task modules, relative to the source root, without extension. */
export const BUILTIN_TASK_MODULES = ['robustness/pool-task', 'attacks/pool-task'] as const;

/** Extra task modules: wire name (e.g. `my-tasks`) → module URL on this machine. */
export type TaskModules = Readonly<Record<string, string>>;

const root = new URL('../../', import.meta.url);
const ext = extname(fileURLToPath(import.meta.url));

/** The wire name of a task (`module#function`). @throws InputError for a module that is not allowed. */
export function taskWireName(task: TaskRef, extra: TaskModules = {}): string {
  for (const m of BUILTIN_TASK_MODULES) if (task.module === new URL(m + ext, root).href) return `${m}#${task.name}`;
  for (const [name, url] of Object.entries(extra)) if (task.module === url) return `${name}#${task.name}`;
  throw new InputError('task', `${task.module} is not a task module queue workers run (advlab's: ${BUILTIN_TASK_MODULES.join(', ')}, or one passed as an extra task module)`);
}

/** The task a wire name stands for on this machine. @throws InputError for a name that is not allowed. */
export function taskFromWire(wire: string, extra: TaskModules = {}): TaskRef {
  const hash = wire.lastIndexOf('#');
  const mod = hash > 0 ? wire.slice(0, hash) : '';
  const name = hash > 0 ? wire.slice(hash + 1) : '';
  if (!/^[A-Za-z_$][\w$]*$/.test(name)) throw new InputError('task', `"${wire}" is not a task name (module#function)`);
  if ((BUILTIN_TASK_MODULES as readonly string[]).includes(mod)) return { module: new URL(mod + ext, root).href, name };
  if (Object.hasOwn(extra, mod)) return { module: extra[mod], name };
  throw new InputError('task', `"${wire}": this worker does not run tasks of module "${mod}"`);
}
