/**
 * The training-side defenses (see types.ts):
 * - `pgd-at`: PGD adversarial training, Madry et al., "Towards deep learning
 *   models resistant to adversarial attacks", ICLR 2018: train on the PGD
 *   example (uniform random start, `steps` signed steps, no early stop).
 * - `fgsm-rs`: fast adversarial training, Wong, Rice & Kolter, "Fast is better
 *   than free", ICLR 2020: one signed step of 1.25 eps from a uniform random
 *   start, projected back to the ball.
 * - `trades`: Zhang et al., "Theoretically principled trade-off between
 *   robustness and accuracy", ICML 2019: CE(f(x), y) + beta KL(f(x) || f(x')),
 *   x' maximising the KL from x + 0.001 N(0, 1).
 * The inner attacks run the model with `training: false`.
 */
import { tf, tfl } from '../engine/tf.js';
import { normOps } from '../attacks/norms.js';
import { InputError } from '../errors.js';
import type { Defense, DefenseConfig } from './types.js';

type PerExampleLoss = (logits: tf.Tensor2D) => tf.Tensor1D;

/** Softmax cross-entropy per example, from logits. */
function crossEntropy(logits: tf.Tensor2D, y: tf.Tensor1D, k: number): tf.Tensor1D {
  return tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(y, k)), 1)) as tf.Tensor1D;
}

/** KL(p || q) per example from the logits of p and q, in the stable log-softmax form. */
export function klFromLogits(pLogits: tf.Tensor2D, qLogits: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(pLogits);
    const logq = tf.logSoftmax(qLogits);
    return tf.sum(tf.mul(tf.exp(logp), tf.sub(logp, logq)), 1) as tf.Tensor1D;
  });
}

/**
 * Signed-gradient ascent of `loss` from `start`, projected onto the eps-ball
 * around `x` and clipped to the bounds after every step; all steps run (no
 * early stop: the strongest point of the path is not what adversarial
 * training wants, the end point is).
 */
function ascend(model: tfl.LayersModel, x: tf.Tensor4D, start: tf.Tensor4D, loss: PerExampleLoss, c: DefenseConfig, eps: number, steps: number, stepSize: number): tf.Tensor4D {
  const ops = normOps(c.norm);
  const [lo, hi] = c.bounds;
  let adv = start;
  for (let s = 0; s < steps; s++) {
    const next = tf.tidy(() => {
      const g = tf.grad((input: tf.Tensor) => tf.sum(loss(model.apply(input, { training: false }) as tf.Tensor2D)) as tf.Scalar)(adv);
      const moved = tf.add(adv, tf.mul(ops.direction(g as tf.Tensor4D), stepSize));
      return tf.clipByValue(tf.add(x, ops.project(tf.sub(moved, x) as tf.Tensor4D, eps)), lo, hi) as tf.Tensor4D;
    });
    if (adv !== start) adv.dispose();
    adv = next;
  }
  return adv === start ? tf.clone(start) : adv;
}

function uniformStart(x: tf.Tensor4D, c: DefenseConfig, eps: number, seed: number): tf.Tensor4D {
  return tf.tidy(() => tf.clipByValue(tf.add(x, normOps(c.norm).randomStart(x.shape, eps, seed)), c.bounds[0], c.bounds[1]) as tf.Tensor4D);
}

const ceLoss = (model: tfl.LayersModel, input: tf.Tensor4D, y: tf.Tensor1D, k: number) => {
  const logits = model.apply(input, { training: true }) as tf.Tensor2D;
  return { loss: tf.mean(crossEntropy(logits, y, k)) as tf.Scalar, logits };
};

/**
 * The random start of a batch's inner attack: uniform in the ball (PGD-AT,
 * FGSM-RS) or x + 0.001 N(0, 1) (TRADES), clipped to the bounds. Drawn in the
 * trainer's thread, so the ascent that follows is deterministic per example
 * wherever it runs.
 */
export function attackStart(c: DefenseConfig, x: tf.Tensor4D, eps: number, seed: number): tf.Tensor4D {
  if (c.name === 'trades') {
    return tf.tidy(() => tf.clipByValue(tf.add(x, tf.mul(tf.randomNormal(x.shape, 0, 1, 'float32', seed), 0.001)), c.bounds[0], c.bounds[1]) as tf.Tensor4D);
  }
  return c.randomStart ? uniformStart(x, c, eps, seed) : tf.clone(x);
}

/**
 * The inner attack from `start`: CE ascent (PGD-AT: `steps` steps; FGSM-RS:
 * one step of 1.25 eps) or KL ascent from the clean prediction (TRADES). The
 * model runs in inference mode; every example's path depends only on itself.
 */
export function attackFrom(c: DefenseConfig, model: tfl.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D, start: tf.Tensor4D, eps: number): tf.Tensor4D {
  const step = scaledStep(c, eps);
  if (c.name === 'trades') {
    const target = tf.tidy(() => model.apply(x, { training: false }) as tf.Tensor2D);
    try {
      return ascend(model, x, start, (z) => klFromLogits(target, z), c, eps, c.steps, step);
    } finally {
      target.dispose();
    }
  }
  const k = numClasses(model);
  return ascend(model, x, start, (z) => crossEntropy(z, y, k), c, eps, c.name === 'fgsm-rs' ? 1 : c.steps, step);
}

/** Builds the defense described by `config` (validated). */
export function createDefense(config: DefenseConfig): Defense {
  validateDefense(config);
  if (config.name === 'none') throw new InputError('defense', '"none" has no training procedure');
  return {
    config,
    epsAt: (step, perEpoch) => epsAt(config, step, perEpoch),
    perturb(model, b) {
      const start = attackStart(config, b.x, b.eps, b.seed);
      try {
        return attackFrom(config, model, b.x, b.y, start, b.eps);
      } finally {
        start.dispose();
      }
    },
    loss(model, clean, perturbed, y, k) {
      if (config.name !== 'trades') return ceLoss(model, perturbed, y, k);
      const logits = model.apply(clean, { training: true }) as tf.Tensor2D;
      const advLogits = model.apply(perturbed, { training: true }) as tf.Tensor2D;
      const natural = tf.mean(crossEntropy(logits, y, k));
      const robust = tf.mean(klFromLogits(logits, advLogits));
      return { loss: tf.add(natural, tf.mul(robust, config.beta)) as tf.Scalar, logits };
    },
  };
}

/** The step size shrinks with eps during a warm-up, keeping step/eps fixed. */
function scaledStep(c: DefenseConfig, eps: number): number {
  return c.stepSize * (eps / c.eps);
}

function numClasses(model: tfl.LayersModel): number {
  const shape = model.outputs[0].shape;
  return shape[shape.length - 1] as number;
}

/** Checks a defense config; errors name the option. */
export function validateDefense(c: DefenseConfig): void {
  if (c.norm !== 'linf' && c.norm !== 'l2') throw new InputError('defenseNorm', `adversarial training runs in linf or l2, not ${c.norm}`);
  const range = c.bounds[1] - c.bounds[0];
  if (!(c.eps > 0) || !Number.isFinite(c.eps)) throw new InputError('defenseEps', `expected a positive number, got ${c.eps}`);
  if (c.norm === 'linf' && c.eps > range) throw new InputError('defenseEps', `${c.eps} exceeds the input range ${range}: is it in the input's scale?`);
  if (!Number.isInteger(c.steps) || c.steps < 1) throw new InputError('defenseSteps', `expected a positive integer, got ${c.steps}`);
  if (!(c.stepSize > 0) || !Number.isFinite(c.stepSize)) throw new InputError('defenseStepSize', `expected a positive number, got ${c.stepSize}`);
  if (!(c.beta >= 0) || !Number.isFinite(c.beta)) throw new InputError('tradesBeta', `expected a number >= 0, got ${c.beta}`);
  if (!Number.isInteger(c.epsWarmupEpochs) || c.epsWarmupEpochs < 0) throw new InputError('epsWarmup', `expected an integer >= 0, got ${c.epsWarmupEpochs}`);
}

/**
 * eps at a point of training: linear from 0 to eps over the first
 * `epsWarmupEpochs` epochs (by step), then constant. A warm-up avoids the
 * early collapse of adversarial training at large eps.
 */
export function epsAt(c: DefenseConfig, step: number, stepsPerEpoch: number): number {
  if (c.epsWarmupEpochs <= 0) return c.eps;
  return c.eps * Math.min(1, (step + 1) / (c.epsWarmupEpochs * stepsPerEpoch));
}

/** Defaults per defense; eps 0.3 linf is mnist's standard budget. */
export function defaultDefenseConfig(name: DefenseConfig['name'], over: Partial<DefenseConfig> = {}): DefenseConfig {
  const eps = over.eps ?? 0.3;
  const base: DefenseConfig = {
    name,
    norm: 'linf',
    eps,
    steps: name === 'fgsm-rs' ? 1 : 10,
    // PGD-AT/TRADES: 2.5 eps / steps (Madry et al.); FGSM-RS: 1.25 eps (Wong et al.).
    stepSize: name === 'fgsm-rs' ? 1.25 * eps : (2.5 * eps) / (over.steps ?? 10),
    beta: 6,
    randomStart: true,
    epsWarmupEpochs: 0,
    bounds: [0, 1],
  };
  const config = { ...base, ...Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined)) } as DefenseConfig;
  // FGSM-RS is one step by definition.
  if (name === 'fgsm-rs') config.steps = 1;
  return config;
}
