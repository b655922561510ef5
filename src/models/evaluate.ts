import { tf, tfl } from '../engine/tf.js';
import type { ImageSet } from '../data/types.js';
import { makeBatch, batchOrder } from '../data/batches.js';

/** Logits of a model on a set, in inference mode, batch by batch. */
export function predictLabels(model: tfl.LayersModel, set: ImageSet, batchSize = 256): Int32Array {
  const out = new Int32Array(set.count);
  for (const idx of batchOrder(set.count, batchSize)) {
    const batch = makeBatch(set, idx);
    const pred = tf.tidy(() => tf.argMax(model.predict(batch.x) as tf.Tensor, 1));
    out.set(pred.dataSync() as Int32Array, idx[0]);
    tf.dispose([batch.x, batch.y, pred]);
  }
  return out;
}

/** Fraction of `set` the model classifies correctly, in [0, 1]. */
export function accuracy(model: tfl.LayersModel, set: ImageSet, batchSize = 256): number {
  if (set.count === 0) return NaN;
  const pred = predictLabels(model, set, batchSize);
  let correct = 0;
  for (let i = 0; i < set.count; i++) if (pred[i] === set.labels[i]) correct++;
  return correct / set.count;
}
