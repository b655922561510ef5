/**
 * The WorkerPool task of pooled adversarial training: the inner attack on a
 * slice of a training batch, on the worker's copy of the model with the
 * trainer's current weights. See pooled.ts.
 */
import { tf } from '../engine/tf.js';
import { modelInWorker, type SharedModel } from '../models/pool-model.js';
import { attackFrom } from './defenses.js';
import type { DefenseConfig } from './types.js';

/** URL of this module, for the pool's TaskRef. */
export const DEFENSE_TASK_URL = import.meta.url;

/** One slice of a batch, as plain data. */
export interface AscentPayload {
  model: SharedModel;
  /** Every weight of the model (trainable and not), in `model.weights` order, float32. */
  weights: SharedArrayBuffer;
  /** Bumped by the trainer after each step: a worker reloads weights only when it changes. */
  version: number;
  config: DefenseConfig;
  x: Float32Array;
  start: Float32Array;
  y: Int32Array;
  shape: [number, number, number, number];
  eps: number;
}

/** Weights version each cached model holds, by model key. */
const loaded = new Map<string, number>();

/** Runs the defense's inner attack on the slice; returns the perturbed images. */
export async function ascentTask(p: AscentPayload): Promise<Float32Array> {
  const model = await modelInWorker(p.model);
  if (loaded.get(p.model.key) !== p.version) {
    const all = new Float32Array(p.weights);
    let offset = 0;
    const values = model.weights.map((w) => {
      const shape = w.shape as number[];
      const size = shape.reduce((a, b) => a * b, 1);
      const t = tf.tensor(all.subarray(offset, offset + size), shape);
      offset += size;
      return t;
    });
    model.setWeights(values);
    tf.dispose(values);
    loaded.set(p.model.key, p.version);
  }
  const out = tf.tidy(() => {
    const x = tf.tensor4d(p.x, p.shape);
    const start = tf.tensor4d(p.start, p.shape);
    const y = tf.tensor1d(p.y, 'int32');
    return attackFrom(p.config, model, x, y, start, p.eps);
  });
  try {
    return (await out.data()) as Float32Array;
  } finally {
    out.dispose();
  }
}
