/**
 * Checkpoints of `advlab eval`: one file per finished unit of work (a batch at
 * one eps, the minimal-perturbation phase, corruptions, sanity checks) under
 * `<out>/checkpoint/`, each written atomically, plus `state.json` with the
 * fingerprint of the run. `--resume` loads every finished unit and recomputes
 * only the rest; a checkpoint made with other settings or another model is
 * refused, not silently mixed in.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { writeJsonAtomic } from '../util/atomic.js';
import { FileFormatError, InputError } from '../errors.js';
import type { EnsembleBatchResult } from './ensemble.js';

const FORMAT = 'advlab-eval-checkpoint-1';

type Typed = Float32Array | Int32Array | Int8Array;
type Encoded = { dtype: 'f4' | 'i4' | 'i1'; base64: string };

/** Typed arrays as base64 of their little-endian bytes (exact, compact). */
export function encodeArray(a: Typed): Encoded {
  const dtype = a instanceof Float32Array ? 'f4' : a instanceof Int32Array ? 'i4' : 'i1';
  return { dtype, base64: Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64') };
}

export function decodeArray(e: Encoded, file: string): Typed {
  if (!e || typeof e.base64 !== 'string') throw new FileFormatError(file, 'an array is missing');
  const bytes = Buffer.from(e.base64, 'base64');
  const copy = new Uint8Array(bytes).buffer;
  if (e.dtype === 'f4' && copy.byteLength % 4 === 0) return new Float32Array(copy);
  if (e.dtype === 'i4' && copy.byteLength % 4 === 0) return new Int32Array(copy);
  if (e.dtype === 'i1') return new Int8Array(copy);
  throw new FileFormatError(file, `bad array (dtype ${String(e.dtype)}, ${copy.byteLength} bytes)`);
}

/** The checkpoint folder of one eval run. */
export class EvalCheckpoint {
  readonly dir: string;
  private constructor(dir: string) {
    this.dir = dir;
  }

  /**
   * Opens `<out>/checkpoint` for a run with this `fingerprint`. With `resume`,
   * an existing checkpoint must have the same fingerprint (else InputError
   * naming `resume`); without it, any old checkpoint is removed.
   */
  static open(out: string, fingerprint: unknown, resume: boolean): { checkpoint: EvalCheckpoint; resumed: boolean } {
    const dir = join(out, 'checkpoint');
    const stateFile = join(dir, 'state.json');
    const hash = fingerprintHash(fingerprint);
    let resumed = false;
    if (existsSync(stateFile) && resume) {
      let state: { format?: string; fingerprint?: string };
      try {
        state = JSON.parse(readFileSync(stateFile, 'utf8'));
      } catch (e) {
        throw new FileFormatError(stateFile, `not valid JSON (${(e as Error).message})`);
      }
      if (state.format !== FORMAT) throw new FileFormatError(stateFile, `not an advlab eval checkpoint (format ${String(state.format)})`);
      if (state.fingerprint !== hash) {
        throw new InputError('resume', `the checkpoint in ${dir} was made with other settings or another model; run without --resume to start over`);
      }
      resumed = true;
    } else if (existsSync(dir)) {
      rmSync(dir, { recursive: true, force: true });
    }
    mkdirSync(dir, { recursive: true });
    if (!resumed) writeJsonAtomic(stateFile, { format: FORMAT, fingerprint: hash, createdAt: new Date().toISOString() });
    return { checkpoint: new EvalCheckpoint(dir), resumed };
  }

  /** Finished batches at sweep position `epsIndex`, by batch index. */
  loadBatches(epsIndex: number): Map<number, EnsembleBatchResult> {
    const dir = join(this.dir, `eps-${epsIndex}`);
    const out = new Map<number, EnsembleBatchResult>();
    if (!existsSync(dir)) return out;
    for (const name of readdirSync(dir)) {
      const m = /^batch-(\d+)\.json$/.exec(name);
      if (!m) continue;
      const file = join(dir, name);
      const raw = readJson(file) as Record<string, unknown>;
      out.set(Number(m[1]), decodeBatch(raw, file));
    }
    return out;
  }

  saveBatch(epsIndex: number, index: number, r: EnsembleBatchResult): void {
    const dir = join(this.dir, `eps-${epsIndex}`);
    mkdirSync(dir, { recursive: true });
    writeJsonAtomic(join(dir, `batch-${String(index).padStart(5, '0')}.json`), {
      count: r.count,
      cleanPredictions: encodeArray(r.cleanPredictions),
      finalPredictions: encodeArray(r.finalPredictions),
      brokenBy: encodeArray(r.brokenBy),
      adversarial: r.adversarial ? encodeArray(r.adversarial) : null,
      stages: r.stages,
    });
  }

  /** A phase's saved value (minimal, corruptions, sanity), or undefined. */
  load<T>(phase: string): T | undefined {
    const file = join(this.dir, `${phase}.json`);
    return existsSync(file) ? (readJson(file) as T) : undefined;
  }

  save(phase: string, value: unknown): void {
    writeJsonAtomic(join(this.dir, `${phase}.json`), value);
  }
}

function decodeBatch(raw: Record<string, unknown>, file: string): EnsembleBatchResult {
  const count = raw.count;
  if (!Number.isSafeInteger(count) || (count as number) < 1 || !Array.isArray(raw.stages)) throw new FileFormatError(file, 'not a batch checkpoint');
  const r: EnsembleBatchResult = {
    count: count as number,
    cleanPredictions: decodeArray(raw.cleanPredictions as Encoded, file) as Int32Array,
    finalPredictions: decodeArray(raw.finalPredictions as Encoded, file) as Int32Array,
    brokenBy: decodeArray(raw.brokenBy as Encoded, file) as Int8Array,
    stages: raw.stages as EnsembleBatchResult['stages'],
  };
  if (raw.adversarial) r.adversarial = decodeArray(raw.adversarial as Encoded, file) as Float32Array;
  if (r.cleanPredictions.length !== r.count || r.finalPredictions.length !== r.count || r.brokenBy.length !== r.count) {
    throw new FileFormatError(file, `arrays do not hold ${r.count} examples (truncated or corrupt)`);
  }
  return r;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new FileFormatError(file, `not valid JSON (${(e as Error).message}); delete the checkpoint folder or run without --resume`);
  }
}

function fingerprintHash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}
