import { tf } from '../engine/tf.js';

/**
 * Per-example losses an attack ascends, all from logits. "Targeted" versions are
 * written so that ascending them moves toward the target.
 */

/** Cross-entropy of the true class (ascend: leave it). */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    return tf.neg(tf.sum(tf.mul(logp, tf.oneHot(labels, logits.shape[1])), 1)) as tf.Tensor1D;
  });
}

/** Negative cross-entropy of the target (ascend: approach the target). */
export function targetedCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => tf.neg(crossEntropy(logits, targets)) as tf.Tensor1D);
}

/** max_{j != y} z_j - z_y: positive exactly when misclassified (Carlini & Wagner 2017's f6 without the clamp). */
export function margin(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const onehot = tf.oneHot(labels, logits.shape[1]);
    const zy = tf.sum(tf.mul(logits, onehot), 1);
    const other = tf.max(tf.sub(logits, tf.mul(onehot, 1e9)), 1);
    return tf.sub(other, zy) as tf.Tensor1D;
  });
}

/**
 * Difference of Logits Ratio (Croce & Hein 2020): -(z_y - max_{j!=y} z_j) / (z_pi1 - z_pi3),
 * shift- and scale-invariant in the logits, so it does not saturate the way CE can.
 */
export function dlr(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const sorted = tf.topk(logits, 3).values;
    const z1 = tf.reshape(tf.slice(sorted, [0, 0], [-1, 1]), [-1]);
    const z3 = tf.reshape(tf.slice(sorted, [0, 2], [-1, 1]), [-1]);
    return tf.div(margin(logits, labels), tf.add(tf.sub(z1, z3), 1e-12)) as tf.Tensor1D;
  });
}

/** Targeted DLR (Croce & Hein 2020): -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2). */
export function targetedDlr(logits: tf.Tensor2D, labels: tf.Tensor1D, targets: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const k = logits.shape[1];
    const zy = tf.sum(tf.mul(logits, tf.oneHot(labels, k)), 1);
    const zt = tf.sum(tf.mul(logits, tf.oneHot(targets, k)), 1);
    const sorted = tf.topk(logits, Math.min(4, k)).values;
    const z1 = tf.reshape(tf.slice(sorted, [0, 0], [-1, 1]), [-1]);
    const z3 = tf.reshape(tf.slice(sorted, [0, Math.min(2, k - 1)], [-1, 1]), [-1]);
    const z4 = tf.reshape(tf.slice(sorted, [0, Math.min(3, k - 1)], [-1, 1]), [-1]);
    const denom = tf.add(tf.sub(z1, tf.div(tf.add(z3, z4), 2)), 1e-12);
    return tf.neg(tf.div(tf.sub(zy, zt), denom)) as tf.Tensor1D;
  });
}
