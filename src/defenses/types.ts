/**
 * Training-side defenses: each turns a clean training batch into what the
 * model is trained on (adversarial examples, found with the model in inference
 * mode) and the loss of that batch.
 */
import type { TrainingDefense } from '../models/train.js';
import type { Norm } from '../attacks/types.js';
import type { TrainRunResult } from '../models/types.js';

/** Defense names `advlab train --defense` takes. */
export const DEFENSE_NAMES = ['none', 'pgd-at', 'fgsm-rs', 'trades', 'ibp', 'consistency'] as const;
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
  /** IBP's schedules (defenses.ts); only for `ibp`. */
  ibp?: IbpSchedule;
  /** Consistency regularization's weights (defenses.ts); only for `consistency`, whose `eps` is the noise's sigma. */
  consistency?: ConsistencyWeights;
}

/**
 * Consistency regularization (Jeong & Shin 2020): `copies` noisy copies of
 * each image, CE on each, plus lambda times the mean KL from their average
 * prediction to each copy's and eta times the average prediction's entropy.
 */
export interface ConsistencyWeights {
  lambda: number;
  eta: number;
  copies: number;
}

/**
 * Interval bound propagation training's schedules (Gowal et al. 2018): eps 0
 * for `flatEpochs`, then a linear ramp over `epsWarmupEpochs` to `epsScale`
 * times the target eps, while the clean loss's weight falls from 1 to `kappa`.
 */
export interface IbpSchedule {
  flatEpochs: number;
  kappa: number;
  epsScale: number;
}

/** A defense: its settings and the trainer's hooks (eps schedule, perturbation, loss). */
export interface Defense extends TrainingDefense {
  config: DefenseConfig;
}

/** One model's evaluation, as the comparison shows it. */
export interface EvidenceEntry {
  model: string;
  /** Test images evaluated. */
  count: number;
  cleanAccuracy: number;
  robustAccuracy: number;
  confidenceInterval: [number, number];
  curve: { eps: number; robustAccuracy: number }[];
  sanity: 'pass' | 'warn';
  /** Folder of the full evaluation (report.html, result.json). */
  evalDir: string;
}

/** result.json of a defended training run: the training result plus the defense and the evidence. */
export interface DefenseRunResult extends TrainRunResult {
  defense: DefenseConfig & { workers: number; trainingSeconds: number; overfitting: OverfittingVerdict | null };
  evidence: { suite: string; n: number; eps: number[]; defended: EvidenceEntry; baseline: EvidenceEntry | null } | null;
}

/** What the per-epoch watch concluded. */
export interface OverfittingVerdict {
  /** Catastrophic overfitting at the last epoch (see {@link isCatastrophicOverfitting}). */
  detected: boolean;
  /** Epochs whose held-out figures showed it (1-based). */
  epochs: number[];
  /** Epoch with the best held-out PGD accuracy, and that accuracy. */
  bestEpoch: number;
  bestPgdAccuracy: number;
  finalPgdAccuracy: number;
  finalFgsmAccuracy: number;
  /** The saved model holds the best epoch's weights instead of the last. */
  restored: boolean;
}
