/**
 * Output paths checked before a job does any work: a run that can only fail
 * at its first checkpoint, after an epoch of training, should fail at once,
 * naming the option and the path. Node-only, like `atomic.ts` beside it: the
 * jobs call these next to their file writes, never the platform-neutral core.
 *
 * Writability is tested by creating (and removing) a file, not by reading
 * permission bits: root ignores those, a read-only mount or a pseudo file
 * system (/proc) does not, and only a real write says what the run will meet.
 */
import { closeSync, existsSync, openSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { InputError } from '../errors.js';

/** What a job writes inside its output folder: sub-folders and files, relative to it. */
export interface OutputLayout {
  /** Sub-folders the job creates or fills (`checkpoint`, `model`, ...). */
  folders?: readonly string[];
  /** Files the job writes (`result.json`, `report.html`, ...). */
  files?: readonly string[];
}

/**
 * Checks an output folder before any work: it is a folder or can be created
 * as one, files can be written in it, and nothing in its way inside it (a file
 * where the job needs a sub-folder of `layout`, a folder where it writes a file).
 * Creates nothing (a probe file is written and removed).
 * @param argument the job's argument naming the folder (e.g. `out`), for the error.
 * @throws InputError naming `argument` and the path.
 */
export function checkOutputFolder(path: string, argument: string, layout: OutputLayout = {}): void {
  if (typeof path !== 'string' || path === '') throw new InputError(argument, 'an output folder is required');
  if (!existsSync(path)) {
    checkCreatable(path, argument);
    return;
  }
  if (!isDirectory(path)) throw new InputError(argument, `${path} is a file, not a folder; give a folder for the outputs (a new or an existing one)`);
  checkWritable(path, argument, path);
  for (const sub of layout.folders ?? []) {
    const p = join(path, sub);
    if (!existsSync(p)) continue;
    if (!isDirectory(p)) throw new InputError(argument, `${p} is a file, but the run writes a folder of that name; move the file away or choose another output folder`);
    checkWritable(p, argument, p);
  }
  for (const file of layout.files ?? []) {
    const p = join(path, file);
    if (existsSync(p) && isDirectory(p)) throw new InputError(argument, `${p} is a folder, but the run writes a file of that name; move it away or choose another output folder`);
  }
}

/**
 * Checks an output file before any work: its folder exists (a typo in it
 * should not silently create a tree of folders) and takes new files, and the
 * path is not a folder.
 * @throws InputError naming `argument` and the path.
 */
export function checkOutputFile(path: string, argument: string): void {
  if (typeof path !== 'string' || path === '') throw new InputError(argument, 'an output file is required');
  if (existsSync(path) && isDirectory(path)) throw new InputError(argument, `${path} is a folder; expected a file name`);
  const dir = dirname(path);
  if (!existsSync(dir)) throw new InputError(argument, `the folder of ${path} does not exist: ${dir}; create it first, or write elsewhere`);
  if (!isDirectory(dir)) throw new InputError(argument, `${dir} is a file, so ${path} cannot be written under it`);
  checkWritable(dir, argument, path);
}

/** A path that does not exist yet: its nearest existing ancestor must be a folder that takes new entries. */
function checkCreatable(path: string, argument: string): void {
  let ancestor = dirname(resolve(path));
  while (!existsSync(ancestor) && dirname(ancestor) !== ancestor) ancestor = dirname(ancestor);
  if (!isDirectory(ancestor)) throw new InputError(argument, `${path} cannot be created as a folder: ${ancestor} is a file`);
  checkWritable(ancestor, argument, path);
}

/** Creates and removes a probe file in `dir`; `target` is the path the error names. */
function checkWritable(dir: string, argument: string, target: string): void {
  const probe = join(dir, `.advlab-write-check-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    closeSync(openSync(probe, 'wx'));
  } catch (e) {
    const what = resolve(target) === resolve(dir) ? `${target} is not writable` : `${target} cannot be created: ${dir} is not writable`;
    // The reason is the probe's, e.g. EROFS on a read-only mount, EACCES, ENOSPC.
    throw new InputError(argument, `${what}: a test file could not be created in it (${systemReason(e)})`);
  }
  rmSync(probe, { force: true });
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** `EACCES: permission denied` from a Node system error, without its syscall and path (the message names the path). */
function systemReason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err.code !== 'string') return String((e as Error)?.message ?? e);
  const m = /^[A-Z0-9_]+: (.*?)(, \w+ '.*)?$/s.exec(err.message);
  return `${err.code}: ${m ? m[1] : err.message}`;
}
