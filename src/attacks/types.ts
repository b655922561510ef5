import type { tf } from '../engine/tf.js';
import type { Classifier } from '../models/classifier.js';
import type { Rng } from '../util/rng.js';

/** Distance measures of the perturbation budget. */
export type Norm = 'linf' | 'l2' | 'l1';
export const NORMS: readonly Norm[] = ['linf', 'l2', 'l1'];

/** How targets are chosen: per example (array), a random wrong class, or the least likely class. */
export type TargetSpec = 'random' | 'least-likely' | Int32Array | readonly number[];

/**
 * What counts as a success (Foolbox's criteria, as a value rather than a flag):
 * `target`, the prediction is the target (targeted attacks); `misclassification`,
 * the prediction is not the label. A targeted run with `misclassification` uses
 * its targets only to steer the search, as AutoAttack's APGD-T and FAB-T do: any
 * iterate that leaves the true class counts (fra31/auto-attack, autopgd_base.py
 * and fab_base.py, `pred != y`).
 */
export type Criterion = 'target' | 'misclassification';

/** Whether a prediction meets the criterion for an example with this label and (targeted) target. */
export function meetsCriterion(prediction: number, label: number, target: number | undefined, criterion: Criterion): boolean {
  return criterion === 'target' && target !== undefined ? prediction === target : prediction !== label;
}

/** Options every attack takes. */
export interface CommonAttackOptions {
  /** Perturbation norm (attacks list the norms they support). */
  norm?: Norm;
  /** Budget in the input's own scale (fixed-budget attacks; minimal-perturbation attacks use it as an optional cap). */
  eps?: number;
  /** Omit for an untargeted attack. */
  targeted?: TargetSpec;
  /** Default: `target` when targeted, else `misclassification` (see {@link Criterion}). */
  criterion?: Criterion;
  /** Seeds every random choice (random starts, targets, black-box proposals). Default 0. */
  seed?: number;
  /** Images per batch (default 128). */
  batchSize?: number;
  /** Called after each batch. */
  onProgress?: (event: { done: number; total: number }) => void;
}

/** Everything an attack sees for one batch. Tensors belong to the driver: do not dispose them. */
export interface BatchContext {
  classifier: Classifier;
  /** Clean images [n, h, w, c]. */
  x: tf.Tensor4D;
  /** True labels, int32 [n]. */
  labels: tf.Tensor1D;
  /** Target labels, int32 [n], when targeted. */
  targets?: tf.Tensor1D;
  norm: Norm;
  eps: number;
  /** What counts as a success; an attack that stops early or keeps its first success uses it. */
  criterion: Criterion;
  /** The batch's generator, for attacks whose random choices are made for the whole batch. */
  rng: Rng;
  /**
   * One seed per example, fixed by the driver from the run's seed and the
   * example's position in the whole input (or given by the caller). Attacks
   * that draw each example's random choices from its own seed give results that
   * do not depend on the batch size, the batch's other examples or the pool.
   */
  exampleSeeds: Uint32Array;
}

/** Declares one attack parameter: for validation, defaults and `advlab attack --list`. */
export interface ParamSpec {
  name: string;
  type: 'number' | 'integer' | 'boolean' | 'string';
  default: number | boolean | string;
  description: string;
  min?: number;
  max?: number;
  choices?: readonly string[];
}

/**
 * One attack. `attackBatch` returns candidate adversarial images for a batch
 * (a new tensor the driver disposes); the driver validates the input, batches,
 * chooses targets, re-verifies every candidate and counts the cost.
 */
export interface Attack<P extends Record<string, unknown> = Record<string, unknown>> {
  /** CLI name, e.g. `pgd`. */
  name: string;
  title: string;
  /** The paper behind it. */
  paper: string;
  /** `fixed-budget`: best example within eps; `minimal`: smallest perturbation that succeeds. */
  kind: 'fixed-budget' | 'minimal';
  /** What it needs from the model. */
  access: 'gradient' | 'scores' | 'decision';
  norms: readonly Norm[];
  /** Whether it runs untargeted, targeted, or both. */
  targeted: 'both' | 'untargeted' | 'targeted';
  params: readonly ParamSpec[];
  attackBatch(ctx: BatchContext, params: P): Promise<tf.Tensor4D> | tf.Tensor4D;
}

/** Per-example perturbation sizes. */
export interface PerturbationNorms {
  l0: Float32Array;
  l1: Float32Array;
  l2: Float32Array;
  linf: Float32Array;
}

/** The result of an attack on a set of images, after re-verification. */
export interface AttackResult {
  attack: string;
  norm: Norm;
  eps: number | null;
  targeted: boolean;
  criterion: Criterion;
  params: Record<string, unknown>;
  seed: number;
  /** Adversarial images, same layout as the input (NHWC float32). */
  adversarial: Float32Array;
  imageShape: [number, number, number];
  count: number;
  labels: Int32Array;
  targets: Int32Array | null;
  cleanPredictions: Int32Array;
  adversarialPredictions: Int32Array;
  /** 1 where the example meets the criterion (re-predicted, inside the bounds and the eps ball) and was correctly classified before. */
  success: Uint8Array;
  /** Candidates that reached the goal but failed a check (outside the bounds or the ball, non-finite): not counted as successes. */
  rejected: { outOfBounds: number; outsideBall: number; nonFinite: number };
  norms: PerturbationNorms;
  /** Gradient evaluations and queries (images scored) spent, in total. */
  gradients: number;
  queries: number;
  seconds: number;
  summary: AttackSummary;
}

/** Headline figures of an {@link AttackResult}. */
export interface AttackSummary {
  cleanAccuracy: number;
  /** Correct before and still correct (untargeted) or not at the target (targeted) after. */
  robustAccuracy: number;
  /** Successes among the examples classified correctly before. */
  successRate: number;
  /** Over successful examples. */
  medianL2: number | null;
  medianLinf: number | null;
  meanL2: number | null;
  gradientsPerImage: number;
  queriesPerImage: number;
  imagesPerSecond: number;
}
