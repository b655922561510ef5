import { existsSync } from 'node:fs';
import { tf, type tfl } from '../engine/tf.js';
import { buildModel, isZooName, ZOO_NAMES, type BuildModelOptions } from '../models/zoo.js';
import { loadModel, loadClassifierModel } from './model-files.js';
import { checkInputShape, isGraphModel, type ClassifierModel } from '../models/artifacts.js';
import { forArgument, InputError } from '../errors.js';

/** Where a model came from: a fresh zoo model or a saved one. */
export interface ResolvedModel {
  model: tfl.LayersModel;
  source: 'zoo' | 'file';
}

/** The image shape and class count a model is checked against. */
export interface ModelDataSpec {
  imageShape: [number, number, number];
  numClasses: number;
}

/**
 * The meaning of `--model` everywhere a model is trained: a zoo name builds a
 * fresh, seeded model for the data's shape; anything else is a saved model
 * folder (a Layers `model.json` folder, a `model.json` path, or an advlab run
 * folder), loaded and checked against the data's image shape and class count.
 * Graph models are refused (they cannot be trained); see {@link loadSavedClassifier}.
 */
export async function resolveModel(spec: string, data: ModelDataSpec, seed: number, argument = 'model', zoo: Pick<BuildModelOptions, 'activation' | 'width'> = {}): Promise<ResolvedModel> {
  if (isZooName(spec)) return { model: buildModel(spec, { inputShape: data.imageShape, numClasses: data.numClasses, seed, ...zoo }), source: 'zoo' };
  if (zoo.activation !== undefined || zoo.width !== undefined) throw new InputError('activation', `--activation and --width shape a new zoo model; "${spec}" is a saved model, whose architecture is fixed`);
  if (!existsSync(spec)) {
    throw new InputError(argument, `unknown model "${spec}"; expected a zoo name (${ZOO_NAMES.join(', ')}) or a saved model folder`);
  }
  return { model: checked(await loadModel(spec), spec, data, argument), source: 'file' };
}

/**
 * A saved model to attack or evaluate: a Layers model or a graph model
 * (`tensorflowjs_converter` output), from a model folder, a `model.json` path
 * or an advlab run folder, checked against the data's image shape and class
 * count. The caller disposes it.
 */
export async function loadSavedClassifier(path: string, data: ModelDataSpec, argument = 'model'): Promise<ClassifierModel> {
  return checked(await loadClassifierModel(path), path, data, argument);
}

/**
 * Opens a saved model the job reads only later (a baseline, a metrics
 * classifier) and disposes it again, so a missing or malformed one fails
 * before hours of work rather than after them. With `data`, it is also checked
 * against the data's image shape and class count.
 * @throws InputError naming `argument` and the path (a FileFormatError about
 *   the model's files comes back as an InputError naming `argument`, with the file).
 */
export async function checkSavedClassifier(path: string, argument: string, data?: ModelDataSpec): Promise<void> {
  if (typeof path !== 'string' || path === '') throw new InputError(argument, 'expected the path of a saved model');
  if (!existsSync(path)) throw new InputError(argument, `"${path}" does not exist; expected a saved model folder (model.json + weights), a model.json file, or an advlab train run folder`);
  try {
    const model = data ? await loadSavedClassifier(path, data, argument) : await loadClassifierModel(path);
    model.dispose();
  } catch (e) {
    // The data's shape is checked under the name `dataset` (right for --model); here the model given as `argument` is at fault.
    if (e instanceof InputError && e.argument === 'dataset') throw new InputError(argument, `${path}: ${e.message.slice('dataset: '.length)}`);
    throw forArgument(argument, e);
  }
}

/** Returns `model` if it takes the data's images and outputs one logit per class; else disposes it and throws. */
function checked<M extends ClassifierModel>(model: M, path: string, data: ModelDataSpec, argument: string): M {
  try {
    checkInputShape(model, data.imageShape, 'dataset');
    const out = outputShape(model, path, data.imageShape, argument);
    if (out.length !== 2 || out[1] !== data.numClasses) {
      throw new InputError(argument, `the model in ${path} outputs shape [${out.map((d) => d ?? 'batch').join(', ')}] but the dataset has ${data.numClasses} classes`);
    }
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/**
 * The output shape, batch dimension null. A graph model seldom states the shape
 * of its outputs, so it is run once on a batch of two zero images, which also
 * finds, before an attack starts, graphs that cannot run synchronously (control
 * flow) or only take batches of one.
 */
function outputShape(model: ClassifierModel, path: string, imageShape: readonly number[], argument: string): (number | null)[] {
  if (!isGraphModel(model)) return model.outputs[0].shape;
  let shapes: number[][];
  try {
    shapes = tf.tidy(() => {
      const y = model.execute(tf.zeros([2, ...imageShape]));
      return (Array.isArray(y) ? y : [y]).map((t) => t.shape);
    });
  } catch (e) {
    throw new InputError(argument, `the graph model in ${path} does not run on a batch of images of shape [${imageShape.join(', ')}]: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (shapes.length !== 1) throw new InputError(argument, `the graph model in ${path} has ${shapes.length} outputs; expected one (the logits)`);
  return [null, ...shapes[0].slice(1)];
}
