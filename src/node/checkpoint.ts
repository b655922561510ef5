import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from './atomic.js';
import { FileFormatError } from '../errors.js';
import type { CheckpointStore, LoadedCheckpoint } from '../models/checkpoint.js';

/**
 * A folder of numbered checkpoints with an atomically replaced `latest.json`.
 *
 * Each checkpoint is written completely into its own sub-folder first; only then
 * does `latest.json` point at it, so a kill at any moment leaves the previous
 * checkpoint intact and readable. Older checkpoints are removed afterwards.
 */
export class CheckpointFolder implements CheckpointStore {
  constructor(readonly dir: string) {}

  get location(): string {
    return this.dir;
  }

  async save(tag: string, state: unknown, files: Record<string, Uint8Array | string>): Promise<void> {
    this.saveSync(tag, state, files);
  }

  async load<S>(): Promise<LoadedCheckpoint<S> | undefined> {
    return this.loadSync<S>();
  }

  /** Writes checkpoint `tag` with the given files and JSON state, then makes it the latest. */
  saveSync(tag: string, state: unknown, files: Record<string, Uint8Array | string>): void {
    const sub = join(this.dir, tag);
    mkdirSync(sub, { recursive: true });
    for (const [name, data] of Object.entries(files)) writeFileAtomic(join(sub, name), data);
    writeJsonAtomic(join(sub, 'state.json'), state);
    writeJsonAtomic(join(this.dir, 'latest.json'), { tag });
    for (const entry of readdirSync(this.dir, { withFileTypes: true })) {
      if (entry.isDirectory() && entry.name !== tag) rmSync(join(this.dir, entry.name), { recursive: true, force: true });
    }
  }

  /**
   * The latest checkpoint's tag and folder, when `latest.json` names one whose
   * state is there; undefined otherwise. Never throws: it serves the message
   * after a failed run, which must not fail in turn.
   */
  peek(): { tag: string; path: string } | undefined {
    try {
      const { tag } = JSON.parse(readFileSync(join(this.dir, 'latest.json'), 'utf8')) as { tag?: unknown };
      if (typeof tag !== 'string' || !existsSync(join(this.dir, tag, 'state.json'))) return undefined;
      return { tag, path: join(this.dir, tag) };
    } catch {
      return undefined;
    }
  }

  /** The latest checkpoint's state and a reader for its files, or undefined if there is none. */
  loadSync<S>(): LoadedCheckpoint<S> | undefined {
    const latest = join(this.dir, 'latest.json');
    if (!existsSync(latest)) return undefined;
    const { tag } = parseJson<{ tag: string }>(latest);
    const sub = join(this.dir, tag);
    const state = parseJson<S>(join(sub, 'state.json'));
    const name = (file: string) => join(sub, file);
    const read = (file: string) => {
      const p = name(file);
      if (!existsSync(p)) throw new FileFormatError(p, 'checkpoint file missing');
      return new Uint8Array(readFileSync(p));
    };
    return { tag, state, read, name };
  }
}

function parseJson<T>(file: string): T {
  if (!existsSync(file)) throw new FileFormatError(file, 'checkpoint file missing');
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new FileFormatError(file, `corrupt checkpoint (${(e as Error).message})`);
  }
}
