/**
 * Training-side defenses: each turns a clean training batch into what the
 * model is trained on (adversarial examples, found with the model in inference
 * mode) and the loss of that batch.
 */
import type { tf } from '../engine/tf.js';
import type { TrainingDefense } from '../models/train.js';
import type { Norm } from '../attacks/types.js';

/** Defense names `advlab train --defense` takes. */
export const DEFENSE_NAMES = ['none', 'pgd-at', 'fgsm-rs', 'trades'] as const;
export type DefenseName = (typeof DEFENSE_NAMES)[number];

/** Settings of a defense (defaults in defaults.ts). */
export interface DefenseConfig {
  name: DefenseName;
  norm: Norm;
  /** Perturbation budget in the input's scale. */
  eps: number;
  /** Steps of the inner attack (PGD-AT, TRADES); FGSM-RS takes one. */
  steps: number;
  /** Step size of the inner attack (input scale). */
  stepSize: number;
  /** TRADES: weight of the robustness (KL) term. */
  beta: number;
  /** PGD-AT and FGSM-RS: start the inner attack at a uniform random point of the ball (default true); false gives plain FGSM / BIM training, prone to catastrophic overfitting. */
  randomStart: boolean;
  /** Epochs over which eps grows linearly from 0 to `eps` (0: full eps from the start). */
  epsWarmupEpochs: number;
  /** Valid input range. */
  bounds: [number, number];
}

/** A defense: its settings and the trainer's hooks (eps schedule, perturbation, loss). */
export interface Defense extends TrainingDefense {
  config: DefenseConfig;
}
