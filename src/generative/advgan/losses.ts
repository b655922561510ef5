/**
 * AdvGAN's losses (Xiao et al., "Generating adversarial examples with
 * adversarial networks", IJCAI 2018): the generator minimises
 *
 *   L = L_adv + alpha L_GAN + beta L_hinge,
 *
 * L_adv the C&W margin of the attacked model's logits at x + G(x) (Carlini &
 * Wagner 2017's f6, as the paper), L_GAN the generator's GAN loss against a
 * discriminator that tells x + G(x) from x (generative/losses.ts, from logits),
 * L_hinge the perturbation's L2 norm above a bound c. Each function returns
 * per-example values or their mean as documented; the trainer combines them.
 */
import { tf } from '../../engine/tf.js';
import { InputError } from '../../errors.js';

/**
 * The C&W margin per example from the attacked model's logits z [n, k]:
 * untargeted max(z_y - max_{j != y} z_j, -kappa) (positive while the label
 * still wins), targeted max(max_{j != t} z_j - z_t, -kappa) (positive until
 * the target wins). Minimising it pushes the margin down to -kappa, then stops.
 */
export function marginLoss(logits: tf.Tensor2D, classes: tf.Tensor1D, targeted: boolean, kappa = 0): tf.Tensor1D {
  if (!(kappa >= 0 && Number.isFinite(kappa))) throw new InputError('kappa', `expected a confidence >= 0, got ${kappa}`);
  return tf.tidy(() => {
    const k = logits.shape[1];
    const mask = tf.oneHot(classes, k);
    const own = tf.sum(tf.mul(logits, mask), 1);
    // The best other class: the class itself pushed far below every logit.
    const others = tf.max(tf.sub(logits, tf.mul(mask, 1e9)), 1);
    const margin = targeted ? tf.sub(others, own) : tf.sub(own, others);
    return tf.maximum(margin, -kappa) as tf.Tensor1D;
  });
}

/** The hinge on the perturbation's L2 norm per example: max(0, ||delta||_2 - c). */
export function perturbationHinge(delta: tf.Tensor4D, c: number): tf.Tensor1D {
  if (!(c >= 0 && Number.isFinite(c))) throw new InputError('hingeBound', `expected a bound >= 0, got ${c}`);
  return tf.tidy(() => tf.relu(tf.sub(tf.norm(tf.reshape(delta, [delta.shape[0], -1]), 'euclidean', 1), c)) as tf.Tensor1D);
}

/**
 * The perturbation G(x) becomes inside the Linf ball of `eps` and the image
 * inside the bounds: delta = eps tanh(raw), x_adv = clip(x + delta). The tanh
 * keeps every value of delta in the ball with a gradient everywhere (the
 * paper clips; a clip's gradient is zero outside it).
 */
export function perturbedImages(x: tf.Tensor4D, raw: tf.Tensor4D, eps: number, bounds: readonly [number, number]): { delta: tf.Tensor4D; adversarial: tf.Tensor4D } {
  if (!(eps > 0 && Number.isFinite(eps))) throw new InputError('eps', `expected a positive budget, got ${eps}`);
  return tf.tidy(() => {
    const delta = tf.mul(tf.tanh(raw), eps) as tf.Tensor4D;
    return { delta, adversarial: tf.clipByValue(tf.add(x, delta), bounds[0], bounds[1]) as tf.Tensor4D };
  });
}
