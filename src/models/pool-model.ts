/**
 * Shipping a model to {@link WorkerPool} tasks cheaply.
 *
 * {@link shareModel} snapshots a model once, with its weights in a
 * SharedArrayBuffer: putting the snapshot in every payload then costs only its
 * topology JSON (a few KB), because postMessage shares, not copies, a
 * SharedArrayBuffer. Inside a task, {@link modelInWorker} builds the model on
 * first use and keeps it under the snapshot's key, so each worker builds each
 * model once, not once per call.
 */
import { tf, tfl } from '../engine/tf.js';
import { InputError } from '../errors.js';
import { modelFromArtifacts, modelToArtifacts } from './artifacts.js';
import { Classifier, type Preprocessing } from './classifier.js';

/** A model snapshot to put in pool task payloads. Treat it as immutable. */
export interface SharedModel {
  /** Identifies this snapshot; a worker's cached model is found by it. */
  key: string;
  /** Topology, weight specs and weights (`weightData` a SharedArrayBuffer). */
  artifacts: tf.io.ModelArtifacts;
}

/** True for a {@link SharedModel} snapshot (e.g. to find the models inside a task payload). */
export function isSharedModel(value: unknown): value is SharedModel {
  if (value == null || typeof value !== 'object') return false;
  const v = value as Partial<SharedModel>;
  return typeof v.key === 'string' && v.artifacts != null && typeof v.artifacts === 'object' && 'modelTopology' in v.artifacts;
}

/** Models a thread keeps built at once; the least recently used one beyond this is disposed. */
export const MODEL_CACHE_CAPACITY = 4;

/**
 * Snapshots `model` for pool tasks. Later training of `model` does not change
 * the snapshot: share it again to send new weights (it gets a new key).
 */
export async function shareModel(model: tfl.LayersModel): Promise<SharedModel> {
  const artifacts = await modelToArtifacts(model);
  const weights = new Uint8Array(artifacts.weightData as ArrayBuffer);
  const shared = new SharedArrayBuffer(weights.byteLength);
  new Uint8Array(shared).set(weights);
  // A random key, not a hash of the weights: cheaper, and a snapshot is immutable anyway.
  return { key: crypto.randomUUID(), artifacts: { ...artifacts, weightData: shared as unknown as ArrayBuffer } };
}

/** key → model being built or built, in least-recently-used-first order (Map keeps insertion order). */
const cache = new Map<string, Promise<tfl.LayersModel>>();

/**
 * The model of a {@link SharedModel} snapshot, built in this thread on first
 * use and cached by key. Do not dispose it: the cache owns it, and disposes the
 * least recently used model when more than {@link MODEL_CACHE_CAPACITY} are
 * held (so a task should not hold more than that many models at once).
 *
 * Works in the main thread too (e.g. to run a task in-process for reference).
 *
 * @throws InputError if `shared` is not a snapshot from {@link shareModel}.
 */
export function modelInWorker(shared: SharedModel): Promise<tfl.LayersModel> {
  if (shared == null || typeof shared.key !== 'string' || shared.artifacts == null) {
    return Promise.reject(new InputError('model', 'expected a SharedModel from shareModel()'));
  }
  let model = cache.get(shared.key);
  if (model) {
    // Refresh its place as most recently used.
    cache.delete(shared.key);
  } else {
    model = build(shared.artifacts);
    // A failed build is not cached, so a retry rebuilds.
    model.catch(() => cache.get(shared.key) === model && cache.delete(shared.key));
  }
  cache.set(shared.key, model);
  for (const [key, old] of cache) {
    if (cache.size <= MODEL_CACHE_CAPACITY) break;
    cache.delete(key);
    old.then((m) => m.dispose(), () => {});
  }
  return model;
}

/** Disposes every model this thread has cached. */
export async function clearWorkerModels(): Promise<void> {
  const models = [...cache.values()];
  cache.clear();
  for (const m of await Promise.allSettled(models)) if (m.status === 'fulfilled') m.value.dispose();
}

/** Number of models this thread has cached (for tests). */
export function workerModelCount(): number {
  return cache.size;
}

async function build(artifacts: tf.io.ModelArtifacts): Promise<tfl.LayersModel> {
  // One private copy per build: tfjs slices the weight buffer as it decodes, and
  // an ArrayBuffer is what its decoders are written for.
  const data = artifacts.weightData;
  const weightData = data instanceof SharedArrayBuffer ? new Uint8Array(data).slice().buffer : data;
  return modelFromArtifacts({ ...artifacts, weightData });
}

/** A {@link Classifier} snapshot for pool task payloads: its model, bounds and preprocessing. */
export interface SharedClassifier {
  model: SharedModel;
  bounds: [number, number];
  preprocess?: Preprocessing;
}

/**
 * Snapshots a classifier for pool tasks.
 *
 * @throws InputError if it was not made with Classifier.fromModel from a
 *   LayersModel (a function or a GraphModel cannot be rebuilt in a worker).
 */
export async function shareClassifier(classifier: Classifier): Promise<SharedClassifier> {
  const spec = classifier.rebuildSpec;
  if (!spec) throw new InputError('pool', 'a worker pool needs a classifier made with Classifier.fromModel from a LayersModel (a function or GraphModel cannot be sent to workers)');
  return { model: await shareModel(spec.model), bounds: [spec.bounds[0], spec.bounds[1]], ...(spec.preprocess ? { preprocess: spec.preprocess } : {}) };
}

/**
 * The classifier of a {@link SharedClassifier}, on this thread's cached model.
 * The caller disposes it (which frees its preprocessing constants, not the model).
 */
export async function classifierInWorker(shared: SharedClassifier): Promise<Classifier> {
  const model = await modelInWorker(shared.model);
  return Classifier.fromModel(model, { bounds: shared.bounds, ...(shared.preprocess ? { preprocess: shared.preprocess } : {}) });
}
