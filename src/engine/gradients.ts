/**
 * Gradients tfjs-core leaves out: the comparison kernels. They are piecewise
 * constant, so their gradient is zero almost everywhere; tfjs registers none,
 * and a second derivative through an op whose gradient uses a comparison (the
 * LeakyReLU and ReLU6 gradients select with `greater`) fails with "gradient
 * function not found for Greater". Double backpropagation is what the WGAN-GP
 * gradient penalty needs (Gulrajani et al. 2017): the penalty on the critic's
 * input gradient is itself differentiated with respect to the weights.
 */
import * as tf from '@tensorflow/tfjs-core';

const COMPARISONS = ['Greater', 'GreaterEqual', 'Less', 'LessEqual', 'Equal', 'NotEqual'];

/** Registers zero gradients for the comparison kernels that have none. Idempotent. */
export function registerMissingGradients(): void {
  for (const kernelName of COMPARISONS) {
    if (tf.getGradient(kernelName)) continue;
    tf.registerGradient({
      kernelName,
      inputsToSave: ['a', 'b'],
      gradFunc: (_dy, saved) => {
        const [a, b] = saved as tf.Tensor[];
        return { a: () => tf.zerosLike(a), b: () => tf.zerosLike(b) };
      },
    });
  }
}
