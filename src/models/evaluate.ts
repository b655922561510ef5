import { tf, tfl } from '../engine/tf.js';
import { readOne } from '../engine/read.js';
import type { ImageSet } from '../data/types.js';
import { makeBatch, batchOrder } from '../data/batches.js';
import type { Classifier } from './classifier.js';

/** Predicted labels (arg-max of the logits) of a model on a set, in inference mode, batch by batch. */
export async function predictLabels(model: tfl.LayersModel, set: ImageSet, batchSize = 256): Promise<Int32Array> {
  const out = new Int32Array(set.count);
  for (const idx of batchOrder(set.count, batchSize)) {
    const batch = makeBatch(set, idx);
    try {
      out.set((await readOne(tf.tidy(() => tf.argMax(model.predict(batch.x) as tf.Tensor, 1)))) as Int32Array, idx[0]);
    } finally {
      tf.dispose([batch.x, batch.y]);
    }
  }
  return out;
}

/** Predicted labels of a Classifier (bounds, preprocessing, any model kind) on a set, batch by batch. */
export async function classifierPredictions(classifier: Classifier, set: ImageSet, batchSize = 256): Promise<Int32Array> {
  const out = new Int32Array(set.count);
  for (const idx of batchOrder(set.count, batchSize)) {
    const batch = makeBatch(set, idx);
    try {
      out.set((await readOne(tf.tidy(() => classifier.predict(batch.x as tf.Tensor4D)))) as Int32Array, idx[0]);
    } finally {
      tf.dispose([batch.x, batch.y]);
    }
  }
  return out;
}

/** Fraction of `set` the model classifies correctly, in [0, 1]. */
export async function accuracy(model: tfl.LayersModel, set: ImageSet, batchSize = 256): Promise<number> {
  if (set.count === 0) return NaN;
  const pred = await predictLabels(model, set, batchSize);
  let correct = 0;
  for (let i = 0; i < set.count; i++) if (pred[i] === set.labels[i]) correct++;
  return correct / set.count;
}
