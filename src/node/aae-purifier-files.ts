/** An `advlab aae` run folder read as an input purifier (`advlab eval --defense aae:<run>`). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { aaePurifier, type AaePurifier } from '../defenses/aae-purifier.js';
import { loadModel } from './model-files.js';

/**
 * Loads the encoder and decoder of an `advlab aae` run.
 * @throws InputError('defense') if the folder holds no AAE, or a categorical one (whose code is not encoder(x) alone).
 */
export async function loadAaePurifier(path: string): Promise<AaePurifier> {
  for (const part of ['encoder', 'decoder']) {
    if (!existsSync(join(path, part, 'model.json'))) throw new InputError('defense', `${path} is not an advlab aae run folder: ${join(path, part, 'model.json')} is missing`);
  }
  const encoder = await loadModel(join(path, 'encoder'));
  let decoder;
  try {
    decoder = await loadModel(join(path, 'decoder'));
  } catch (e) {
    encoder.dispose();
    throw e;
  }
  return aaePurifier(path, encoder, decoder);
}
