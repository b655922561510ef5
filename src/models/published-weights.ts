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

/**
 * The trainer's side: publishes a model's weights into one buffer, made (with
 * the model's topology shared once, see shareModel) on the first publish and
 * again whenever another model is published.
 */
export class WeightsChannel {
  private current?: { model: tfl.LayersModel; shared: SharedModel; buffer: SharedArrayBuffer; sizes: number[] };
  private version = 0;

  /** Writes `model`'s current weights and returns the reference for this version. */
  async publish(model: tfl.LayersModel): Promise<WeightsRef> {
    if (this.current?.model !== model) {
      const sizes = model.weights.map((w) => (w.shape as number[]).reduce((a, c) => a * c, 1));
      this.current = { model, shared: await shareModel(model), buffer: new SharedArrayBuffer(4 * sizes.reduce((a, c) => a + c, 0)), sizes };
    }
    const { shared, buffer, sizes } = this.current;
    const all = new Float32Array(buffer);
    let offset = 0;
    for (let i = 0; i < model.weights.length; i++) {
      all.set((await model.weights[i].read().data()) as Float32Array, offset);
      offset += sizes[i];
    }
    this.version++;
    return { model: shared, weights: buffer, version: this.version };
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
