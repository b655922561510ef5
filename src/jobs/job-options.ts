import { existsSync } from 'node:fs';
import type { WorkersSpec } from '../node/workers.js';
import type { Preprocessing } from '../models/classifier.js';
import { loadDataset } from '../node/data/load.js';
import { balancedSubset } from '../data/subset.js';
import type { Dataset, ImageSet } from '../data/types.js';
import { loadSavedClassifier } from '../node/resolve.js';
import { countParameters, type ClassifierModel } from '../models/artifacts.js';
import { isZooName } from '../models/zoo.js';
import { InputError, rethrowFor } from '../errors.js';

/** What every job on a trained model and a test split takes (`advlab attack`, `advlab eval`). */
export interface ModelJobOptions {
  /** A trained model: a saved model folder (Layers or graph model), a `model.json` path, or an `advlab train` run folder. */
  model: string;
  /** Built-in dataset name or a path; the job runs on its test split. Default `mnist`. */
  dataset?: string;
  /** Output folder. */
  out: string;
  /** Class-balanced prefix of the test split (default 1000, or the whole split if smaller). */
  n?: number;
  /** Images per batch (default 128): the unit of work and of parallelism. */
  batchSize?: number;
  /** Default 0. */
  seed?: number;
  /** Valid input range of the model, in the images' scale (default [0, 1]). */
  bounds?: readonly [number, number];
  /** Normalization applied inside the classifier (per channel (x - mean) / std). */
  preprocess?: Preprocessing;
  /**
   * Worker threads that process batches in parallel (default `auto`: one per
   * core on the single-threaded wasm/cpu backends, none on tfjs-node). Results
   * do not depend on it.
   */
  workers?: WorkersSpec;
  /**
   * Redis URL of a BullMQ queue (`redis://host:6379`): batches become jobs for
   * `advlab worker` processes instead of running on this machine's threads
   * (`workers` is then ignored). Results do not depend on it.
   */
  queue?: string;
}

/** Progress events every model job emits while loading. */
export type ModelJobEvent = { type: 'dataset'; dataset: Dataset; count: number } | { type: 'model'; path: string; parameters: number };

/** What a model job works on, loaded and checked. The caller disposes `model`. */
export interface ModelJobInputs {
  modelPath: string;
  datasetSpec: string;
  data: Dataset;
  n: number;
  subset: ImageSet;
  bounds: [number, number];
  model: ClassifierModel;
}

/**
 * Loads a job's inputs in the order that fails cheapest first: the model path,
 * the dataset and its balanced `--n` subset, the bounds against the images,
 * then the saved model checked against the dataset.
 */
export async function loadModelJob(
  options: ModelJobOptions,
  defaults: { dataset: string; n: number },
  onProgress?: (event: ModelJobEvent) => void,
): Promise<ModelJobInputs> {
  const modelPath = savedModelPath(options.model);
  const datasetSpec = options.dataset ?? defaults.dataset;
  const data = loadDataset(datasetSpec);
  const n = options.n ?? Math.min(defaults.n, data.test.count);
  const subset = balancedSubset(data.test, data.numClasses, n);
  onProgress?.({ type: 'dataset', dataset: data, count: n });
  const bounds: [number, number] = options.bounds ? [options.bounds[0], options.bounds[1]] : [0, 1];
  checkBounds(subset.images, bounds);
  // A malformed model file is the --model option's fault: named as such, with the file.
  const model = await loadSavedClassifier(modelPath, { imageShape: data.test.imageShape, numClasses: data.numClasses }).catch(rethrowFor('model'));
  onProgress?.({ type: 'model', path: options.model, parameters: countParameters(model) });
  return { modelPath, datasetSpec, data, n, subset, bounds, model };
}

/**
 * `--model` for an attack must be a trained model. A zoo name would build an
 * untrained one, so it is refused unless a folder of that name exists (then the
 * folder is meant, and is passed on as a path).
 */
export function savedModelPath(spec: string, argument = 'model'): string {
  if (!spec) throw new InputError(argument, 'a trained model is required: a saved model folder or an advlab train run folder');
  if (existsSync(spec)) return isZooName(spec) ? `./${spec}` : spec;
  if (isZooName(spec)) {
    throw new InputError(argument, `"${spec}" is a zoo name, which would be an untrained model; attack a trained one: a saved model folder or a run folder (e.g. advlab train --model ${spec} --out runs/${spec}, then --model runs/${spec})`);
  }
  throw new InputError(argument, `no saved model at "${spec}"; expected a saved model folder (model.json + weights), a model.json file, or an advlab train run folder`);
}

/** Loaded images are in [0, 1]; bounds that do not contain them would reject the clean images themselves. */
export function checkBounds(images: Float32Array, bounds: readonly [number, number]): void {
  if (bounds.length !== 2 || !Number.isFinite(bounds[0]) || !Number.isFinite(bounds[1]) || !(bounds[0] < bounds[1])) {
    throw new InputError('bounds', `expected [min, max] with finite min < max, got [${bounds.join(', ')}]`);
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of images) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo < bounds[0] || hi > bounds[1]) {
    throw new InputError('bounds', `[${bounds.join(', ')}] does not contain the images, which range over [${lo}, ${hi}] (datasets load in [0, 1]; a model expecting another scale needs preprocess mean/std, not other bounds)`);
  }
}

