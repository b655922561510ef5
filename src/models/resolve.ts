import { existsSync } from 'node:fs';
import type { tfl } from '../engine/tf.js';
import { buildModel, isZooName, ZOO_NAMES } from './zoo.js';
import { loadModel, checkInputShape } from './io.js';
import { InputError } from '../errors.js';

/** Where a model came from: a fresh zoo model or a saved one. */
export interface ResolvedModel {
  model: tfl.LayersModel;
  source: 'zoo' | 'file';
}

/**
 * The meaning of `--model` everywhere: a zoo name builds a fresh, seeded model
 * for the data's shape; anything else is a saved model folder (a Layers
 * `model.json` folder, a `model.json` path, or an advlab run folder), loaded and
 * checked against the data's image shape and class count.
 */
export async function resolveModel(
  spec: string,
  data: { imageShape: [number, number, number]; numClasses: number },
  seed: number,
  argument = 'model',
): Promise<ResolvedModel> {
  if (isZooName(spec)) return { model: buildModel(spec, { inputShape: data.imageShape, numClasses: data.numClasses, seed }), source: 'zoo' };
  if (!existsSync(spec)) {
    throw new InputError(argument, `unknown model "${spec}"; expected a zoo name (${ZOO_NAMES.join(', ')}) or a saved model folder`);
  }
  const model = await loadModel(spec);
  try {
    checkInputShape(model, data.imageShape, 'dataset');
    const out = model.outputs[0].shape;
    if (out.length !== 2 || out[1] !== data.numClasses) {
      throw new InputError(argument, `the model in ${spec} outputs shape [${out.map((d) => d ?? 'batch').join(', ')}] but the dataset has ${data.numClasses} classes`);
    }
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, source: 'file' };
}
