import { tf } from '../engine/tf.js';
import type { Norm } from './types.js';

/**
 * What a gradient attack needs to know about its norm (Foolbox's design: one
 * descent core, a small module per norm): a random start inside the ball, the
 * steepest-ascent direction for a gradient, the projection onto the ball, and
 * the size of a perturbation. All take and return per-example NHWC tensors.
 */
export interface NormOps {
  norm: Norm;
  /** A random perturbation inside the eps-ball. */
  randomStart(shape: number[], eps: number, seed: number): tf.Tensor4D;
  /** The direction of unit norm that increases the loss fastest to first order. */
  direction(grad: tf.Tensor4D): tf.Tensor4D;
  /** Projects perturbations onto the eps-ball. */
  project(delta: tf.Tensor4D, eps: number): tf.Tensor4D;
  /** Per-example norm [n]. */
  size(delta: tf.Tensor4D): tf.Tensor1D;
}

const TINY = 1e-12;

/** Reshapes [n, ...] to [n, d] for per-example reductions. */
function flat(t: tf.Tensor): tf.Tensor2D {
  return tf.reshape(t, [t.shape[0], -1]);
}

/** Scales each example of `t` by `s` [n]. */
function perExample(t: tf.Tensor4D, s: tf.Tensor1D): tf.Tensor4D {
  return tf.mul(t, tf.reshape(s, [-1, 1, 1, 1]));
}

export const linf: NormOps = {
  norm: 'linf',
  randomStart: (shape, eps, seed) => tf.randomUniform(shape as [number, number, number, number], -eps, eps, 'float32', seed) as tf.Tensor4D,
  // sign, exact on every backend (advlab replaces wasm's inexact Sign kernel).
  direction: (g) => tf.sign(g),
  project: (d, eps) => tf.clipByValue(d, -eps, eps),
  size: (d) => tf.max(tf.abs(flat(d)), 1) as tf.Tensor1D,
};

export const l2: NormOps = {
  norm: 'l2',
  randomStart: (shape, eps, seed) =>
    tf.tidy(() => {
      // Uniform in the ball: a Gaussian direction scaled by eps * U^(1/d).
      const n = shape[0];
      const d = shape.slice(1).reduce((a, b) => a * b, 1);
      const dir = tf.randomNormal(shape as [number, number, number, number], 0, 1, 'float32', seed) as tf.Tensor4D;
      const radius = tf.mul(eps, tf.pow(tf.randomUniform([n], 0, 1, 'float32', seed + 1), 1 / d)) as tf.Tensor1D;
      return perExample(dir, tf.div(radius, tf.add(l2.size(dir), TINY)) as tf.Tensor1D);
    }),
  direction: (g) => tf.tidy(() => perExample(g, tf.div(1, tf.add(l2.size(g), TINY)) as tf.Tensor1D)),
  project: (d, eps) => tf.tidy(() => perExample(d, tf.minimum(1, tf.div(eps, tf.add(l2.size(d), TINY))) as tf.Tensor1D)),
  size: (d) => tf.norm(flat(d), 'euclidean', 1) as tf.Tensor1D,
};

/**
 * L1 with sparse steps (Tramer & Boneh 2019, "Adversarial training and robustness
 * for multiple perturbations", SLIDE): only the coordinates in the top
 * `1 - sparsity` of |gradient| move, so a step is not spread thinly over all pixels.
 */
export function l1(sparsity = 0.99): NormOps {
  return {
    norm: 'l1',
    randomStart: (shape, eps, seed) =>
      tf.tidy(() => {
        // Laplace-like direction, rescaled to a uniform radius in [0, eps].
        const n = shape[0];
        const dir = tf.mul(tf.sign(tf.randomUniform(shape, -1, 1, 'float32', seed)), tf.randomUniform(shape, 0, 1, 'float32', seed + 1)) as tf.Tensor4D;
        const radius = tf.mul(eps, tf.randomUniform([n], 0, 1, 'float32', seed + 2)) as tf.Tensor1D;
        return perExample(dir, tf.div(radius, tf.add(l1Size(dir), TINY)) as tf.Tensor1D);
      }),
    direction: (g) =>
      tf.tidy(() => {
        const a = flat(tf.abs(g));
        const d = a.shape[1];
        const k = Math.max(1, Math.round((1 - sparsity) * d));
        const kth = tf.slice(tf.topk(a, k).values, [0, k - 1], [-1, 1]);
        const mask = tf.cast(tf.greaterEqual(a, kth), 'float32');
        const step = tf.mul(tf.sign(flat(g)), mask);
        const normed = tf.div(step, tf.add(tf.sum(tf.abs(step), 1, true), TINY));
        return tf.reshape(normed, g.shape) as tf.Tensor4D;
      }),
    project: (d, eps) => projectL1(d, eps),
    size: l1Size,
  };
}

function l1Size(d: tf.Tensor4D): tf.Tensor1D {
  return tf.sum(tf.abs(flat(d)), 1) as tf.Tensor1D;
}

/**
 * Euclidean projection onto the L1 ball (Duchi et al. 2008, "Efficient projections
 * onto the l1-ball for learning in high dimensions"): soft-threshold |v| by the
 * theta that makes the L1 norm exactly eps; examples already inside stay put.
 */
export function projectL1(delta: tf.Tensor4D, eps: number): tf.Tensor4D {
  return tf.tidy(() => {
    const v = flat(delta);
    const [n, d] = v.shape;
    const a = tf.abs(v);
    const sorted = tf.topk(a, d).values; // descending
    const cumsum = tf.cumsum(sorted, 1);
    const ks = tf.reshape(tf.range(1, d + 1, 1, 'float32'), [1, d]);
    // rho = last index where sorted_k > (cumsum_k - eps) / k
    const cond = tf.cast(tf.greater(sorted, tf.div(tf.sub(cumsum, eps), ks)), 'float32');
    const rho = tf.sub(tf.max(tf.mul(cond, ks), 1), 1); // 0-based
    const rhoIdx = tf.cast(rho, 'int32');
    const cumAtRho = tf.gather(tf.reshape(cumsum, [-1]), tf.add(tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(d, 'int32')), rhoIdx));
    const theta = tf.maximum(tf.div(tf.sub(cumAtRho, eps), tf.add(rho, 1)), 0);
    const inside = tf.lessEqual(tf.sum(a, 1), eps);
    const theta2 = tf.reshape(tf.where(inside, tf.zerosLike(theta), theta), [n, 1]);
    const projected = tf.mul(tf.sign(v), tf.relu(tf.sub(a, theta2)));
    return tf.reshape(projected, delta.shape) as tf.Tensor4D;
  });
}

/** The norm module for a norm name. */
export function normOps(norm: Norm): NormOps {
  return norm === 'linf' ? linf : norm === 'l2' ? l2 : l1();
}
