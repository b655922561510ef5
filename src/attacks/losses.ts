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
 * Indices [n, k] of the k largest logits of each row, as an op the tape sees
 * with a gradient of its own. TF.js has no gradient for TopK, so the ranking
 * is computed inside a custom op (the tape is off inside it) whose gradient
 * with respect to the logits is -0 everywhere: adding -0 leaves every other
 * contribution to the logits' gradient bit for bit as it was (x + -0 === x,
 * signed zeros included), as when the ranking came from a detached copy. This
 * replaces a synchronous read of the logits (dataSync), which WebGPU cannot do.
 */
function topIndices(logits: tf.Tensor2D, k: number): tf.Tensor2D {
  return tf.customGrad((z) => ({
    value: tf.topk(z as tf.Tensor2D, k).indices,
    gradFunc: () => tf.fill((z as tf.Tensor).shape, -0),
  }))(logits) as tf.Tensor2D;
}

/**
 * The k largest logits of each row, as differentiable tensors [n] (largest first).
 * The ranking ({@link topIndices}) passes no gradient; the values are picked out
 * of the logits with one-hot masks, so the gradient reaches the selected
 * logits, as through a sort.
 */
function largest(logits: tf.Tensor2D, k: number): tf.Tensor1D[] {
  const classes = logits.shape[1];
  const order = topIndices(logits, k);
  return Array.from({ length: k }, (_, j) => {
    const column = tf.reshape(tf.slice(order, [0, j], [-1, 1]), [-1]) as tf.Tensor1D;
    return tf.sum(tf.mul(logits, tf.oneHot(column, classes)), 1) as tf.Tensor1D;
  });
}

/**
 * Difference of Logits Ratio (Croce & Hein 2020): -(z_y - max_{j!=y} z_j) / (z_pi1 - z_pi3),
 * shift- and scale-invariant in the logits, so it does not saturate the way CE can.
 * Differentiable; needs at least 3 classes.
 */
export function dlr(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const [z1, , z3] = largest(logits, 3);
    return tf.div(margin(logits, labels), tf.add(tf.sub(z1, z3), 1e-12)) as tf.Tensor1D;
  });
}

/**
 * Targeted DLR of APGD-T (Croce & Hein 2020): -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2).
 * With fewer than 4 classes the missing ranks repeat the last one. Differentiable.
 */
export function targetedDlr(logits: tf.Tensor2D, labels: tf.Tensor1D, targets: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const k = logits.shape[1];
    const top = largest(logits, Math.min(4, k));
    const z1 = top[0];
    const z3 = top[Math.min(2, top.length - 1)];
    const z4 = top[Math.min(3, top.length - 1)];
    const zy = tf.sum(tf.mul(logits, tf.oneHot(labels, k)), 1);
    const zt = tf.sum(tf.mul(logits, tf.oneHot(targets, k)), 1);
    const denom = tf.add(tf.sub(z1, tf.div(tf.add(z3, z4), 2)), 1e-12);
    return tf.neg(tf.div(tf.sub(zy, zt), denom)) as tf.Tensor1D;
  });
}
