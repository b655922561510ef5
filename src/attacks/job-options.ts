import type { WorkersSpec } from '../engine/workers.js';
import type { Preprocessing } from '../models/classifier.js';

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
}
