/**
 * A model's current weights, shared with pool workers through one
 * SharedArrayBuffer: the trainer writes every weight (trainable or not, in
 * `model.weights` order, float32) after each step and bumps the version; a
 * worker copies them into its own build of the model only when the version it
 * holds is older. Sending the buffer in a payload shares it, it does not copy.
 */
import { tf, type tfl } from '../engine/tf.js';
import { shareModel, type SharedModel } from './pool-model.js';

/** What a task payload carries to reach the trainer's current weights. */
export interface WeightsRef {
  model: SharedModel;
  /** Every weight of the model, in `model.weights` order, float32. */
  weights: SharedArrayBuffer;
  /** Bumped by the trainer after each publish: a worker reloads weights only when it changes. */
  version: number;
}

/** The trainer's side: one buffer per model, written by {@link PublishedWeights.publish}. */
export class PublishedWeights {
  readonly sizes: number[];
  private readonly all: Float32Array;
  private version = 0;

  private constructor(
    readonly model: tfl.LayersModel,
    private readonly shared: SharedModel,
    private readonly buffer: SharedArrayBuffer,
  ) {
    this.sizes = model.weights.map((w) => (w.shape as number[]).reduce((a, c) => a * c, 1));
    this.all = new Float32Array(buffer);
  }

  /** Shares `model`'s topology once (see shareModel) and allocates its weight buffer. */
  static async of(model: tfl.LayersModel): Promise<PublishedWeights> {
    const sizes = model.weights.map((w) => (w.shape as number[]).reduce((a, c) => a * c, 1));
    return new PublishedWeights(model, await shareModel(model), new SharedArrayBuffer(4 * sizes.reduce((a, c) => a + c, 0)));
  }

  /** Writes the model's current weights and returns the reference for this version. */
  async publish(): Promise<WeightsRef> {
    let offset = 0;
    for (let i = 0; i < this.model.weights.length; i++) {
      this.all.set((await this.model.weights[i].read().data()) as Float32Array, offset);
      offset += this.sizes[i];
    }
    this.version++;
    return { model: this.shared, weights: this.buffer, version: this.version };
  }
}

/** Weights version each cached model of this thread holds, by model key. */
const loaded = new Map<string, number>();

/** Copies the published weights into this thread's build of the model, unless it holds that version already. */
export function syncWeights(model: tfl.LayersModel, ref: WeightsRef): void {
  if (loaded.get(ref.model.key) === ref.version) return;
  const all = new Float32Array(ref.weights);
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
  loaded.set(ref.model.key, ref.version);
}

/** Forgets which versions this thread holds (its models were rebuilt or changed outside syncWeights). */
export function forgetSyncedWeights(key: string): void {
  loaded.delete(key);
}
