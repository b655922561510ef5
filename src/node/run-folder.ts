/**
 * The folder of a resumable training job (advlab gan, advlab aae): its
 * checkpoint settings and its history.csv.
 */
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from './atomic.js';
import { FileFormatError, InputError } from '../errors.js';
import { CheckpointFolder } from './checkpoint.js';
import type { EpochLoopEvent } from '../models/train.js';

/**
 * A fresh run owns its folder: the checkpoint and the per-epoch grids of an
 * earlier run (files of `out/grids` matching `gridFiles`) are removed. A
 * resume keeps them, but only with the same training settings (saved next to
 * the checkpoint as settings.json; the architecture itself is also checked by
 * the checkpoint's topology hash).
 * @throws InputError naming `resume` when the settings differ; FileFormatError for a corrupt settings.json.
 */
export function prepareRunFolder<S extends object>(out: string, checkpointDir: string, settings: S, resume: boolean, gridFiles: RegExp): void {
  const settingsFile = join(checkpointDir, 'settings.json');
  const hasCheckpoint = existsSync(join(checkpointDir, 'latest.json'));
  if (resume && hasCheckpoint) {
    if (existsSync(settingsFile)) {
      let saved: Partial<S>;
      try {
        saved = JSON.parse(readFileSync(settingsFile, 'utf8')) as Partial<S>;
      } catch (e) {
        throw new FileFormatError(settingsFile, `corrupt (${(e as Error).message})`);
      }
      const diff = (Object.keys(settings) as (keyof S)[]).filter((k) => JSON.stringify(saved[k] ?? null) !== JSON.stringify(settings[k]));
      if (diff.length) {
        const text = diff.map((k) => `${String(k)} ${JSON.stringify(saved[k] ?? null)} (now ${JSON.stringify(settings[k])})`).join(', ');
        throw new InputError('resume', `the checkpoint in ${checkpointDir} was trained with other settings: ${text}; use the same settings, or drop --resume to start over`);
      }
    }
    return;
  }
  if (!resume) {
    rmSync(checkpointDir, { recursive: true, force: true });
    const grids = join(out, 'grids');
    if (existsSync(grids)) for (const f of readdirSync(grids)) if (gridFiles.test(f)) rmSync(join(grids, f), { force: true });
  }
  writeJsonAtomic(settingsFile, settings);
}

/** Writes `out/history.csv` atomically: a header of `columns`, one row per record, empty cells for figures not measured. */
export function writeHistoryCsv(out: string, columns: readonly string[], rows: readonly Record<string, number | boolean | null | undefined>[]): void {
  const lines = rows.map((r) => columns.map((c) => (r[c] === undefined || r[c] === null ? '' : String(r[c]))).join(','));
  writeFileAtomic(join(out, 'history.csv'), [columns.join(','), ...lines].join('\n') + '\n');
}

/**
 * Keeps `out/history.csv` in step with a training loop's checkpointed
 * history: on `resumed`, the history the checkpoint restores; on each
 * `epoch-end`, that epoch's record (replacing any later ones). Returns the
 * handler to call with every event of the loop.
 */
export function followHistory<R extends { epoch: number; monitor?: Record<string, number | boolean | null | undefined> }>(
  out: string,
  checkpointDir: string,
  columns: readonly string[],
): (e: EpochLoopEvent<unknown, R>) => void {
  let history: R[] = [];
  return (e) => {
    if (e.type === 'resumed') history = new CheckpointFolder(checkpointDir).loadSync<{ history: R[] }>()?.state.history ?? [];
    if (e.type === 'epoch-end') {
      const { type: _t, epochs: _e, ...record } = e;
      history = [...history.filter((h) => h.epoch < record.epoch), record as unknown as R];
      writeHistory(out, columns, history);
    }
  };
}

/** Writes `out/history.csv` from epoch records: their figures, with the monitor's next to them. */
export function writeHistory<R extends { monitor?: Record<string, number | boolean | null | undefined> }>(out: string, columns: readonly string[], history: readonly R[]): void {
  writeHistoryCsv(out, columns, history.map(({ monitor, ...h }) => ({ ...monitor, ...(h as Record<string, number | boolean | null | undefined>) })));
}
