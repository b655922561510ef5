import { tf, type tfl } from '../engine/tf.js';
import { InputError } from '../errors.js';
import type { Attack } from './types.js';

/** What an AdvGAN generator was trained for (kept with it by the training job). */
export interface AdvGanGeneratorInfo {
  /** The Linf budget it was trained at. */
  eps: number;
  /** Its target class, or null for an untargeted generator. */
  targetClass: number | null;
}

/**
 * AdvGAN as an attack (Xiao et al., IJCAI 2018): one forward pass of a
 * trained generator, x + min(eps, eps_G) tanh(G(x)) clipped to the bounds, so
 * every candidate is inside the requested ball whatever the generator does.
 * It never queries the attacked model (the driver re-predicts and re-verifies
 * every candidate, as for every attack). A targeted generator attacks toward
 * the class it was trained for; the run's targets must be that class.
 *
 * Usage: `runAttack(advganAttack(generator, info), classifier, data, { eps: 0.3 })`.
 */
export function advganAttack(generator: tfl.LayersModel, info: AdvGanGeneratorInfo): Attack {
  if (!(info.eps > 0 && Number.isFinite(info.eps))) throw new InputError('generator', `the generator's training eps must be positive, got ${info.eps}`);
  return {
    name: 'advgan',
    title: 'AdvGAN (a trained perturbation generator)',
    paper: 'Xiao et al., IJCAI 2018',
    kind: 'fixed-budget',
    access: 'decision',
    norms: ['linf'],
    targeted: info.targetClass === null ? 'untargeted' : 'targeted',
    params: [],
    async attackBatch(ctx) {
      if (info.targetClass !== null && ctx.targets) {
        // Read asynchronously: attacks run in pages too (WebGPU cannot read synchronously).
        const targets = (await ctx.targets.data()) as Int32Array;
        const wrong = targets.findIndex((t) => t !== info.targetClass);
        if (wrong >= 0) throw new InputError('targeted', `this generator was trained toward class ${info.targetClass}; example ${wrong} asks for class ${targets[wrong]}`);
      }
      const eps = Math.min(ctx.eps, info.eps);
      const [lo, hi] = ctx.classifier.bounds;
      return tf.tidy(() => tf.clipByValue(tf.add(ctx.x, tf.mul(tf.tanh(generator.apply(ctx.x, { training: false }) as tf.Tensor4D), eps)), lo, hi) as tf.Tensor4D);
    },
  };
}
