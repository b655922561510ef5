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
 * - `ibp`: interval bound propagation, Gowal et al., "On the effectiveness of
 *   interval bound propagation for training verifiably robust models", 2018:
 *   kappa CE(f(x), y) + (1 - kappa) CE(worst-case logits over the ball, y), the
 *   worst case from interval bounds (robustness/interval-bounds.ts), with the
 *   paper's schedules (eps 0, then a linear ramp of eps to 1.1 x the target
 *   while kappa falls from 1 to 0.5). No inner attack: the bound replaces it.
 * - `consistency`: consistency regularization for randomized smoothing, Jeong
 *   & Shin, "Consistency regularization for certified robustness of smoothed
 *   classifiers", NeurIPS 2020: m noisy copies x + N(0, sigma^2) of each image
 *   (sigma = eps, clipped to the bounds as smoothing.ts certifies), CE on every
 *   copy + lambda mean_i KL(avg || p_i) + eta H(avg), avg the copies' mean
 *   softmax. No attack: the copies are the "perturbation".
 * The inner attacks run the model with `training: false`.
 */
import { tf, tfl } from '../engine/tf.js';
import { normOps } from '../attacks/norms.js';
import { InputError } from '../errors.js';
import type { ConsistencyWeights, Defense, DefenseConfig } from './types.js';
import { worstCaseMargins } from '../robustness/interval-bounds.js';

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
  if (c.name === 'ibp') return tf.clone(x);
  if (c.name === 'consistency') return noisyCopies(x, c.consistency!.copies, eps, seed, c.bounds);
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
  if (c.name === 'ibp') return tf.clone(x);
  if (c.name === 'consistency') return tf.clone(start);
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
    loss(model, clean, perturbed, y, k, at) {
      if (config.name === 'ibp') return ibpLoss(config, model, clean, y, k, at);
      if (config.name === 'consistency') {
        const logits = model.apply(perturbed, { training: true }) as tf.Tensor2D;
        return consistencyLoss(logits, y, k, config.consistency!);
      }
      if (config.name !== 'trades') return ceLoss(model, perturbed, y, k);
      const logits = model.apply(clean, { training: true }) as tf.Tensor2D;
      const advLogits = model.apply(perturbed, { training: true }) as tf.Tensor2D;
      const natural = tf.mean(crossEntropy(logits, y, k));
      const robust = tf.mean(klFromLogits(logits, advLogits));
      return { loss: tf.add(natural, tf.mul(robust, config.beta)) as tf.Scalar, logits };
    },
  };
}

/**
 * IBP's loss: kappa CE(f(x), y) + (1 - kappa) CE(z, y), z the upper bounds of
 * the margins z_j - z_y over the ball at this step's eps (0 at y; softmax
 * cross-entropy is shift-invariant, so at eps 0 both terms agree). Scores the
 * clean logits.
 */
function ibpLoss(c: DefenseConfig, model: tfl.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D, k: number, at: { eps: number; step: number; stepsPerEpoch: number }) {
  if (model.layers.some((l) => l.getClassName() === 'BatchNormalization')) {
    throw new InputError('model', 'IBP training bounds the layers with their inference-mode formulas; a model with batch norm would train on other statistics than it is bounded with: use a model without batch norm');
  }
  const logits = model.apply(x, { training: true }) as tf.Tensor2D;
  const kappa = ibpKappaAt(c, at.step, at.stepsPerEpoch);
  const clean = tf.mean(crossEntropy(logits, y, k));
  if (kappa >= 1) return { loss: clean as tf.Scalar, logits };
  const worst = tf.mean(crossEntropy(worstCaseMargins(model, x, y, at.eps, c.bounds), y, k));
  return { loss: tf.add(tf.mul(clean, kappa), tf.mul(worst, 1 - kappa)) as tf.Scalar, logits };
}

/**
 * `copies` noisy copies of each image, image-major ([n * copies, h, w, c]:
 * image i's copies are rows i * copies ...), x + sigma N(0, 1) clipped to the
 * bounds.
 */
export function noisyCopies(x: tf.Tensor4D, copies: number, sigma: number, seed: number, bounds: readonly [number, number]): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const repeated = tf.reshape(tf.tile(tf.reshape(x, [n, 1, h * w * c]), [1, copies, 1]), [n * copies, h, w, c]);
    return tf.clipByValue(tf.add(repeated, tf.randomNormal(repeated.shape, 0, sigma, 'float32', seed)), bounds[0], bounds[1]) as tf.Tensor4D;
  });
}

/**
 * Consistency regularization's loss (Jeong & Shin 2020; see the module
 * comment) from the logits of image-major noisy copies [n * m, k]: mean CE
 * over every copy + lambda mean KL(avg || p_i) + eta mean H(avg). Returns the
 * log of the average prediction as the batch's logits (for the accuracy).
 */
export function consistencyLoss(logits: tf.Tensor2D, y: tf.Tensor1D, k: number, w: ConsistencyWeights): { loss: tf.Scalar; logits: tf.Tensor2D } {
  const m = w.copies;
  const n = y.shape[0];
  const yCopies = tf.reshape(tf.tile(tf.reshape(y, [n, 1]), [1, m]), [n * m]) as tf.Tensor1D;
  const ce = tf.mean(crossEntropy(logits, yCopies, k));
  const logp = tf.reshape(tf.logSoftmax(logits), [n, m, k]);
  const avg = tf.mean(tf.exp(logp), 1);
  // As the reference code: the average's log floored at 1e-20 (an average probability of 0 contributes 0 either way).
  const logAvg = tf.log(tf.maximum(avg, 1e-20));
  const kl = tf.mean(tf.sum(tf.mul(tf.expandDims(avg, 1), tf.sub(tf.expandDims(logAvg, 1), logp)), 2), 1);
  const entropy = tf.neg(tf.sum(tf.mul(avg, logAvg), 1));
  const loss = tf.addN([ce, tf.mul(tf.mean(kl), w.lambda), tf.mul(tf.mean(entropy), w.eta)]) as tf.Scalar;
  return { loss, logits: logAvg as tf.Tensor2D };
}

/** The IBP schedule's progress through its ramp at a step: 0 before, 1 after. */
function ibpRamp(c: DefenseConfig, step: number, stepsPerEpoch: number): number {
  const s = c.ibp!;
  const flat = s.flatEpochs * stepsPerEpoch;
  if (step < flat) return 0;
  if (c.epsWarmupEpochs <= 0) return 1;
  return Math.min(1, (step - flat + 1) / (c.epsWarmupEpochs * stepsPerEpoch));
}

/** The clean loss's weight kappa at a step of IBP training: 1, falling linearly over the ramp to the schedule's kappa. */
export function ibpKappaAt(c: DefenseConfig, step: number, stepsPerEpoch: number): number {
  return 1 - (1 - c.ibp!.kappa) * ibpRamp(c, step, stepsPerEpoch);
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
  if (c.name === 'ibp') {
    const s = c.ibp;
    if (!s) throw new InputError('defense', 'ibp needs its schedule (flatEpochs, kappa, epsScale)');
    if (c.norm !== 'linf') throw new InputError('defenseNorm', `IBP bounds the linf ball, not ${c.norm}`);
    if (!Number.isInteger(s.flatEpochs) || s.flatEpochs < 0) throw new InputError('ibpFlatEpochs', `expected an integer >= 0, got ${s.flatEpochs}`);
    if (!(s.kappa >= 0 && s.kappa <= 1)) throw new InputError('ibpKappa', `expected a weight in [0, 1], got ${s.kappa}`);
    if (!(s.epsScale >= 1 && Number.isFinite(s.epsScale))) throw new InputError('ibpEpsScale', `expected a factor >= 1, got ${s.epsScale}`);
  } else if (c.ibp !== undefined) {
    throw new InputError('ibpKappa', `the IBP schedule applies to --defense ibp, not ${c.name}`);
  }
  if (c.name === 'consistency') {
    const w = c.consistency;
    if (!w) throw new InputError('defense', 'consistency needs its weights (lambda, eta, copies)');
    if (!(w.lambda >= 0 && Number.isFinite(w.lambda))) throw new InputError('consistencyLambda', `expected a weight >= 0, got ${w.lambda}`);
    if (!(w.eta >= 0 && Number.isFinite(w.eta))) throw new InputError('consistencyEta', `expected a weight >= 0, got ${w.eta}`);
    if (!Number.isInteger(w.copies) || w.copies < 1 || w.copies > 16) throw new InputError('noiseCopies', `expected an integer in [1, 16], got ${w.copies}`);
  } else if (c.consistency !== undefined) {
    throw new InputError('consistencyLambda', `the consistency weights apply to --defense consistency, not ${c.name}`);
  }
}

/**
 * eps at a point of training: linear from 0 to eps over the first
 * `epsWarmupEpochs` epochs (by step), then constant. A warm-up avoids the
 * early collapse of adversarial training at large eps.
 */
export function epsAt(c: DefenseConfig, step: number, stepsPerEpoch: number): number {
  if (c.name === 'ibp') return c.eps * c.ibp!.epsScale * ibpRamp(c, step, stepsPerEpoch);
  if (c.epsWarmupEpochs <= 0) return c.eps;
  return c.eps * Math.min(1, (step + 1) / (c.epsWarmupEpochs * stepsPerEpoch));
}

/** IBP's schedule defaults: eps 0 for an epoch, a ramp over 5, kappa to 0.5, eps to 1.1 x the target (Gowal et al.). */
export const IBP_DEFAULTS = { flatEpochs: 1, rampEpochs: 5, kappa: 0.5, epsScale: 1.1 } as const;

/** Consistency regularization's defaults: the reference code's mnist setting (m = 2 copies, eta 0.5) with lambda 10, between its 5 and 20. */
export const CONSISTENCY_DEFAULTS = { lambda: 10, eta: 0.5, copies: 2 } as const;

/** Defaults per defense; eps 0.3 linf is mnist's standard budget (for consistency, eps is the noise's sigma, 0.5 by default). */
export function defaultDefenseConfig(name: DefenseConfig['name'], over: Partial<DefenseConfig> = {}): DefenseConfig {
  const eps = over.eps ?? (name === 'consistency' ? 0.5 : 0.3);
  const base: DefenseConfig = {
    name,
    norm: name === 'consistency' ? 'l2' : 'linf',
    eps,
    steps: name === 'fgsm-rs' ? 1 : 10,
    // PGD-AT/TRADES: 2.5 eps / steps (Madry et al.); FGSM-RS: 1.25 eps (Wong et al.).
    stepSize: name === 'fgsm-rs' ? 1.25 * eps : (2.5 * eps) / (over.steps ?? 10),
    beta: 6,
    randomStart: name !== 'ibp',
    // IBP: Gowal et al.'s mnist schedule keeps eps 0 for the first ~3% of training and ramps over the next ~17%.
    epsWarmupEpochs: name === 'ibp' ? IBP_DEFAULTS.rampEpochs : 0,
    bounds: [0, 1],
    ...(name === 'ibp' ? { ibp: { flatEpochs: IBP_DEFAULTS.flatEpochs, kappa: IBP_DEFAULTS.kappa, epsScale: IBP_DEFAULTS.epsScale } } : {}),
    ...(name === 'consistency' ? { consistency: { ...CONSISTENCY_DEFAULTS } } : {}),
  };
  const config = { ...base, ...Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined)) } as DefenseConfig;
  // FGSM-RS is one step by definition.
  if (name === 'fgsm-rs') config.steps = 1;
  return config;
}
