/**
 * What the CLI prints when a command fails. Bad input (InputError,
 * FileFormatError) is one line naming the option or file, exit code 2. Any
 * other failure (a bug, a write that failed in the middle of a run) is one
 * line too: what failed and, when the run has one, where its last checkpoint
 * is and that `--resume` continues from it; exit code 1. The stack trace is
 * for developers: only with ADVLAB_DEBUG=1.
 */
import { join } from 'node:path';
import { AdvlabError, isInputError } from '../errors.js';
import { CheckpointFolder } from '../node/checkpoint.js';
import { EvalCheckpoint } from '../node/eval-checkpoint.js';
import type { Progress } from './progress.js';

/** The environment variable that turns stack traces on. */
export const DEBUG_VARIABLE = 'ADVLAB_DEBUG';

/** True when ADVLAB_DEBUG is set to anything but empty or 0. */
export function debugEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env[DEBUG_VARIABLE];
  return v !== undefined && v !== '' && v !== '0';
}

/** How a command's output folder keeps its progress: epoch checkpoints (train, gan, aae), eval's checkpointed batches, or not at all (attack). */
export type CheckpointKind = 'epochs' | 'eval' | 'none';

/** A run that failed for a reason not the user's, with what its output folder holds to resume from. */
export class RunFailure extends Error {
  constructor(
    cause: unknown,
    /** Where the last checkpoint is and how to continue, or null when there is none. */
    readonly resumeNote: string | null,
  ) {
    super(describeError(cause), { cause });
    this.name = 'RunFailure';
  }
}

/**
 * Runs a command's job; a failure that is not bad input comes back as a
 * {@link RunFailure} that says where the run's last checkpoint is (looked up
 * after the failure, so it is the one a `--resume` would load). On any error,
 * `progress` is aborted first, so no bar is left half drawn above the message.
 */
export async function guardRun<T>(out: string, kind: CheckpointKind, progress: Pick<Progress, 'abort'>, job: () => Promise<T>): Promise<T> {
  try {
    return await job();
  } catch (e) {
    progress.abort();
    if (isInputError(e)) throw e;
    throw new RunFailure(e, resumeNote(out, kind));
  }
}

/** Where the last checkpoint in `out` is and how to continue from it, or null. */
export function resumeNote(out: string, kind: CheckpointKind): string | null {
  if (kind === 'none') return null;
  if (kind === 'epochs') {
    const latest = new CheckpointFolder(join(out, 'checkpoint')).peek();
    if (!latest) return null;
    return `the last checkpoint (${latest.tag.replace('-', ' ')}) is intact in ${latest.path}: run the same command with --resume to continue from it`;
  }
  const dir = EvalCheckpoint.find(out);
  return dir ? `the finished batches are checkpointed in ${dir}: run the same command with --resume to continue from them` : null;
}

/**
 * What the user reads on stderr for error `e` (ending in a newline):
 * `advlab: <one line>`, and the stack trace after it with ADVLAB_DEBUG=1.
 */
export function errorReport(e: unknown, debug = debugEnabled()): string {
  const stack = debug ? stackOf(e) : '';
  if (isInputError(e)) return `advlab: ${(e as Error).message}\n${stack}`;
  const note = e instanceof RunFailure && e.resumeNote ? `; ${e.resumeNote}` : '';
  const what = e instanceof RunFailure ? e.message : describeError(e);
  const hint = debug ? '' : ` (set ${DEBUG_VARIABLE}=1 for the stack trace)`;
  return `advlab: ${what}${note}${hint}\n${stack}`;
}

/**
 * One line saying what failed. A Node system error reads as the operation and
 * path (`cannot mkdir runs/x/checkpoint/epoch-2: file already exists (EEXIST)`);
 * an error from a pool worker says which; an unexpected error keeps its class
 * name (`TypeError: ...`), the clue to a bug.
 */
export function describeError(e: unknown): string {
  if (!(e instanceof Error)) return oneLine(String(e));
  const err = e as NodeJS.ErrnoException & { dest?: string; worker?: unknown };
  let text: string;
  if (typeof err.code === 'string' && typeof err.syscall === 'string') {
    const m = /^[A-Z0-9_]+: (.*?), \w+/s.exec(err.message);
    const target = err.path ? ` ${err.path}${err.dest ? ` to ${err.dest}` : ''}` : '';
    text = `cannot ${err.syscall}${target}: ${m ? m[1] : err.message} (${err.code})`;
  } else if (e instanceof AdvlabError || !e.name || e.name === 'Error') {
    text = e.message;
  } else {
    text = `${e.name}: ${e.message}`;
  }
  if (typeof err.worker === 'number') text += ` (in pool worker ${err.worker})`;
  return oneLine(text);
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

/** The stack of `e` (of its cause, for a RunFailure), ending in a newline; empty when there is none. */
function stackOf(e: unknown): string {
  const inner = e instanceof RunFailure ? e.cause : e;
  const stack = inner instanceof Error ? inner.stack : undefined;
  return stack ? `${stack}\n` : '';
}
