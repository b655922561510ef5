/**
 * The identity of a distributed run, kept in its output folder so that
 * `--resume` reattaches to the same jobs.
 *
 * Job ids are `<run id>-<hash of the job's content>`: a resumed coordinator
 * rebuilds the same payloads, finds the jobs it queued before it died
 * (finished ones with their results) and waits for or collects them instead
 * of queueing new work. A fresh run gets a new id, so it never picks up the
 * results of an older run in the same Redis.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeJsonAtomic } from '../atomic.js';
import { FileFormatError } from '../../errors.js';

/** File of the run id, in the output folder. */
export const RUN_ID_FILE = 'queue-run.json';

/**
 * The run id for output folder `out`: the saved one when resuming (and there
 * is one), else a new one, saved (atomically) before any job is queued.
 */
export function openRunId(out: string, resume: boolean): { runId: string; reattached: boolean } {
  const file = join(out, RUN_ID_FILE);
  if (resume && existsSync(file)) {
    let saved: unknown;
    try {
      saved = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new FileFormatError(file, `not valid JSON (${(e as Error).message}); delete it or run without --resume`);
    }
    const runId = (saved as { runId?: unknown })?.runId;
    if (typeof runId !== 'string' || !/^[0-9a-f]{16,64}$/.test(runId)) throw new FileFormatError(file, 'no valid "runId"; delete it or run without --resume');
    return { runId, reattached: true };
  }
  const runId = randomBytes(12).toString('hex');
  writeJsonAtomic(file, { runId, createdAt: new Date().toISOString() });
  return { runId, reattached: false };
}
