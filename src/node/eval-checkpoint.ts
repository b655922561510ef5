/**
 * Checkpoints of `advlab eval`: one file per unit of work (where the suite
 * stands at one eps, the minimal-perturbation phase, corruptions, sanity checks) under
 * `<out>/checkpoint/`, each written atomically, plus `state.json` with the
 * fingerprint of the run. `--resume` loads every finished unit and recomputes
 * only the rest; a checkpoint made with other settings or another model is
 * refused, not silently mixed in.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { writeJsonAtomic } from './atomic.js';
import { FileFormatError, InputError } from '../errors.js';
import type { PipelineState, StageFigures } from '../robustness/schedule.js';

const FORMAT = 'advlab-eval-checkpoint-2';

type Typed = Float32Array | Int32Array | Int8Array | Uint32Array;
type Encoded = { dtype: 'f4' | 'i4' | 'i1' | 'u4'; base64: string };

/** Typed arrays as base64 of their little-endian bytes (exact, compact). */
export function encodeArray(a: Typed): Encoded {
  const dtype = a instanceof Float32Array ? 'f4' : a instanceof Int32Array ? 'i4' : a instanceof Uint32Array ? 'u4' : 'i1';
  return { dtype, base64: Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64') };
}

export function decodeArray(e: Encoded, file: string): Typed {
  if (!e || typeof e.base64 !== 'string') throw new FileFormatError(file, 'an array is missing');
  const bytes = Buffer.from(e.base64, 'base64');
  const copy = new Uint8Array(bytes).buffer;
  if (e.dtype === 'f4' && copy.byteLength % 4 === 0) return new Float32Array(copy);
  if (e.dtype === 'i4' && copy.byteLength % 4 === 0) return new Int32Array(copy);
  if (e.dtype === 'u4' && copy.byteLength % 4 === 0) return new Uint32Array(copy);
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
   * The checkpoint folder of the eval run in `out` when it has one, else
   * undefined (for the message after a failed run: never throws).
   */
  static find(out: string): string | undefined {
    const dir = join(out, 'checkpoint');
    return existsSync(join(dir, 'state.json')) ? dir : undefined;
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

  /**
   * Where the suite stood at evaluation slot `slot` (an eps, or an eps under
   * one threat model, or an audit), or undefined; `count`, when known, is
   * checked against the saved state.
   */
  loadEvaluation(slot: number, count?: number): { state: PipelineState; adversarial: Float32Array | null } | undefined {
    const file = join(this.dir, `eval-${slot}.json`);
    if (!existsSync(file)) return undefined;
    return decodeEvaluation(readJson(file) as Record<string, unknown>, file, count);
  }

  /** Replaces slot `slot`'s saved state (written atomically: a kill leaves the old or the new one). */
  saveEvaluation(slot: number, state: PipelineState, adversarial: Float32Array | null): void {
    writeJsonAtomic(join(this.dir, `eval-${slot}.json`), {
      count: state.count,
      next: encodeArray(state.next),
      brokenBy: encodeArray(state.brokenBy),
      finalPredictions: encodeArray(state.finalPredictions),
      brokenStages: encodeArray(state.brokenStages),
      stages: state.stages,
      adversarial: adversarial ? encodeArray(adversarial) : null,
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

function decodeEvaluation(raw: Record<string, unknown>, file: string, expected?: number): { state: PipelineState; adversarial: Float32Array | null } {
  const count = raw.count as number;
  if (!Number.isSafeInteger(count) || count < 1 || (expected !== undefined && count !== expected) || !Array.isArray(raw.stages)) {
    throw new FileFormatError(file, `not an evaluation checkpoint${expected === undefined ? '' : ` of ${expected} points`}`);
  }
  const state: PipelineState = {
    count,
    next: decodeArray(raw.next as Encoded, file) as Int32Array,
    brokenBy: decodeArray(raw.brokenBy as Encoded, file) as Int8Array,
    finalPredictions: decodeArray(raw.finalPredictions as Encoded, file) as Int32Array,
    brokenStages: decodeArray(raw.brokenStages as Encoded, file) as Uint32Array,
    stages: raw.stages as StageFigures[],
  };
  const adversarial = raw.adversarial ? (decodeArray(raw.adversarial as Encoded, file) as Float32Array) : null;
  for (const [name, a] of [['next', state.next], ['brokenBy', state.brokenBy], ['finalPredictions', state.finalPredictions], ['brokenStages', state.brokenStages]] as const) {
    if (a.length !== count) throw new FileFormatError(file, `${name} holds ${a.length} values, expected ${count} (truncated or corrupt)`);
  }
  if (adversarial && adversarial.length % count !== 0) throw new FileFormatError(file, 'adversarial images truncated or corrupt');
  return { state, adversarial };
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
