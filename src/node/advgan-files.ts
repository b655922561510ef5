/** Reads a trained AdvGAN generator (as `advlab advgan` saves it) from disk. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { tfl } from '../engine/tf.js';
import { FileFormatError } from '../errors.js';
import type { AdvGanGeneratorInfo } from '../attacks/advgan.js';
import { loadModel } from './model-files.js';

/** The file beside the generator's model.json that says what it was trained for. */
export const ADVGAN_INFO_FILE = 'advgan.json';

/** A trained generator with its training eps and target class. */
export interface LoadedAdvGan {
  generator: tfl.LayersModel;
  info: AdvGanGeneratorInfo;
  /** The folder the generator was read from. */
  path: string;
}

/**
 * Loads an AdvGAN generator from an `advlab advgan` run folder (its
 * `generator/`) or from the generator folder itself; `advgan.json` must be
 * there, since a generator without its eps and target class cannot be used
 * correctly.
 *
 * @throws FileFormatError naming the missing or malformed file.
 */
export async function loadAdvGanGenerator(path: string): Promise<LoadedAdvGan> {
  if (!existsSync(path)) throw new FileFormatError(path, 'not found');
  const dir = existsSync(join(path, 'generator', ADVGAN_INFO_FILE)) ? join(path, 'generator') : path;
  const infoPath = join(dir, ADVGAN_INFO_FILE);
  if (!existsSync(infoPath)) throw new FileFormatError(infoPath, 'not found: expected an advlab advgan run folder or its generator/ folder');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(infoPath, 'utf8'));
  } catch (e) {
    throw new FileFormatError(infoPath, `not valid JSON (${(e as Error).message})`);
  }
  const { eps, targetClass } = (raw ?? {}) as { eps?: unknown; targetClass?: unknown };
  if (typeof eps !== 'number' || !(eps > 0) || !Number.isFinite(eps)) throw new FileFormatError(infoPath, `"eps" must be a positive number, got ${JSON.stringify(eps)}`);
  if (targetClass !== null && !(typeof targetClass === 'number' && Number.isInteger(targetClass) && targetClass >= 0)) {
    throw new FileFormatError(infoPath, `"targetClass" must be null or a class index, got ${JSON.stringify(targetClass)}`);
  }
  const generator = await loadModel(dir);
  return { generator, info: { eps, targetClass: targetClass as number | null }, path: dir };
}
