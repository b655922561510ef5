/**
 * Shapes of a robustness evaluation: suites, per-epsilon verdicts, minimal
 * perturbations, sanity checks, and the `advlab eval` result.json.
 */
import type { Norm } from '../attacks/types.js';
import type { RunMeta } from '../report/meta.js';
import type { CorruptionAccuracyResult } from './corruption-accuracy.js';
import type { DetectorResult } from './defense-eval.js';

/** One attack of a suite, run on the points still robust when its turn comes. */
export interface SuiteStage {
  /** Stage name in reports, e.g. `apgd-ce`, `apgd-t`, `fab-t`, `square`. */
  name: string;
  /** Attack (registry name). */
  attack: string;
  /** The attack's parameters (defaults fill the rest). */
  params: Record<string, unknown>;
  /**
   * Targeted over the top classes: the stage runs once per target rank
   * 2..targetClasses+1 of the clean logits (AutoAttack's APGD-T and FAB-T),
   * each time on the points still robust. Omitted: untargeted.
   */
  targetClasses?: number;
  /**
   * How target ranks map to classes: by decreasing clean logit (`logits`, the
   * default, AutoAttack's order) or nearest linearized boundary first (`malt`,
   * Melamed et al. 2024). See targets.ts.
   */
  targetOrder?: 'logits' | 'malt';
  /**
   * Largest engine batch of this stage, below the evaluation's batch size.
   * For a stage whose batches take as long whatever their size (Square: its
   * queries are sequential, each a forward pass of the batch), small batches
   * let the last ones spread over every worker instead of leaving one to
   * finish alone. Verdicts do not depend on it.
   */
  maxBatch?: number;
  /** Needs gradients (false for black-box stages). */
  whiteBox: boolean;
}

/** A named, ordered list of stages. */
export interface Suite {
  name: string;
  norm: Norm;
  stages: SuiteStage[];
}

/** What one stage did at one epsilon. */
export interface StageSummary {
  name: string;
  attack: string;
  /** Examples this stage broke (they were robust after every earlier stage). */
  broken: number;
  /** Robust accuracy after this stage and all earlier ones. */
  robustAccuracyAfter: number;
  /** Images this stage attacked (the points still robust when it started, times its target ranks). */
  attacked: number;
  gradients: number;
  queries: number;
  seconds: number;
  /** With allPoints (every stage on every point): robust accuracy against this stage alone. */
  standaloneRobustAccuracy?: number;
}

/** What a fast suite's self-audit against the standard suite did and found (audit.ts). */
export interface AuditSummary {
  /** The suite audited against (`standard`). */
  reference: string;
  /** Its stages the fast suite did not run, which the audit runs. */
  stages: string[];
  /** Points the fast suite left robust. */
  robustBefore: number;
  /** Of those, points audited (a seeded random sample, or all). */
  sampled: number;
  /** Every robust point was audited. */
  full: boolean;
  /** Audited points the remainder broke: robust for the fast suite, not for the standard one. */
  misses: number;
  /** Their indices in the evaluated set. */
  missed: number[];
  /**
   * 95% upper bound (exact, Clopper-Pearson) on the fraction of the fast
   * suite's robust points the standard suite would break; 0 when every one was
   * audited or the audit escalated.
   */
  missRateUpper: number;
  /** The bound as points, and as robust accuracy: how much lower the standard suite could go at most. */
  gapUpperPoints: number;
  gapUpper: number;
  /** A miss made the audit run the remainder on every robust point: the verdicts are then the standard suite's. */
  escalated: boolean;
  escalatedPoints: number;
  gradients: number;
  queries: number;
  /** Busy thread-seconds of the audit. */
  seconds: number;
}

/** Robust accuracy of one class. */
export interface ClassSummary {
  class: number;
  name: string;
  count: number;
  cleanAccuracy: number;
  robustAccuracy: number;
}

/** The verdict of a suite at one epsilon. */
export interface EpsilonResult {
  eps: number;
  /** Examples correctly classified and not broken by any stage (per-example worst case). */
  robustCount: number;
  robustAccuracy: number;
  /** 95% Wilson score interval of robustAccuracy. */
  confidenceInterval: [number, number];
  stages: StageSummary[];
  perClass: ClassSummary[];
  gradients: number;
  queries: number;
  gradientsPerImage: number;
  queriesPerImage: number;
  /** Attack time summed over batches: on several workers, busy thread-seconds (the wall time is about seconds / workers). */
  seconds: number;
  /** Images per second of one worker (count / seconds). */
  imagesPerSecond: number;
}

/** Distribution of minimal adversarial perturbations (from a minimal-perturbation attack). */
export interface MinimalPerturbations {
  attack: string;
  norm: Norm;
  /** Correctly classified examples attacked. */
  attacked: number;
  /** Of those, examples the attack broke (a finite minimal norm). */
  found: number;
  /** Median over all attacked examples (unbroken ones count as infinite); null if fewer than half were broken. */
  median: number | null;
  /** Median over the broken ones only. */
  medianFound: number | null;
  quantiles: { q: number; value: number | null }[];
  histogram: { edges: number[]; counts: number[] };
  /** Accuracy implied by the minimal norms: fraction of all images correctly classified with minimal norm > eps. */
  curve: { eps: number; accuracy: number }[];
  gradientsPerImage: number;
  seconds: number;
}

/** Outcome of one sanity check. */
export type Verdict = 'pass' | 'warn' | 'skipped';

/** One sanity check (Athalye et al. 2018; Carlini et al. 2019): a verdict and the figures behind it. */
export interface SanityCheck {
  /** Stable identifier, e.g. `monotone-in-eps`. */
  id: string;
  title: string;
  verdict: Verdict;
  /** One sentence: what was seen and, on warn, what it suggests. */
  message: string;
  figures: Record<string, number | string | boolean | null | number[]>;
}

/** The content of `result.json` for `advlab eval`. */
export interface EvalRunResult extends RunMeta {
  options: {
    model: string;
    dataset: string;
    suite: string;
    attacks: string[] | null;
    norm: Norm;
    eps: number[];
    n: number;
    batchSize: number;
    seed: number;
    corruptions: string[];
    minimal: string | null;
    bounds: [number, number];
    preprocess: { mean: number | number[]; std: number | number[] } | null;
    workers: number | 'auto';
    /** Redis URL (password hidden) of a distributed run's queue; absent for a local run. */
    queue?: string;
    allPoints: boolean;
    /** `--defense`, e.g. `aae:runs/aae`; null without. */
    defense: string | null;
    /** The output folder; null for a run that wrote no files (the playground). */
    out: string | null;
  };
  dataset: { name: string; testSize: number; numClasses: number; imageShape: number[]; classNames: string[] };
  model: string;
  modelPath: string;
  suite: Suite;
  norm: Norm;
  count: number;
  cleanAccuracy: number;
  /** The headline: at `eps` (the first value of --eps). */
  eps: number;
  robustAccuracy: number;
  confidenceInterval: [number, number];
  /** One entry per epsilon, ascending. */
  sweep: EpsilonResult[];
  /** Which stage broke each example at the headline eps, counted by stage name (`robust`, `misclassified` too). */
  brokenBy: Record<string, number>;
  minimal: MinimalPerturbations | null;
  corruptions: CorruptionAccuracyResult | null;
  /**
   * Sanity checks; under a defense they run on the defended model as deployed
   * (threat model `plain`), where gradient masking shows.
   */
  sanity: { verdict: 'pass' | 'warn'; checks: SanityCheck[] };
  /**
   * An input-purifying defense (`--defense`): the suite under each threat model
   * alone (the headline figures above are the per-example worst case over
   * them), and the AAE as a detector. Null without a defense.
   */
  defense: {
    kind: 'aae';
    /** The AAE run folder. */
    path: string;
    threatModels: { name: string; description: string; robustAccuracy: number; sweep: EpsilonResult[] }[];
    detector: DetectorResult;
  } | null;
  /** A fast suite's self-audit at the headline eps (null for other suites). */
  audit: AuditSummary | null;
  /** Worker threads that evaluated batches, or for a distributed run the queue worker processes that did. */
  workers: number;
  /** Wall time of this session after loading (all phases; a resumed run counts only its own session). */
  seconds: number;
  gradientsPerImage: number;
  queriesPerImage: number;
  /** The headline eps's images per second of one worker (see EpsilonResult.imagesPerSecond). */
  imagesPerSecond: number;
  /** Whether the run resumed from a checkpoint. */
  resumed: boolean;
  /** The files the run wrote, relative to its folder; null for a run that wrote none (the playground). */
  files: { adversarial: string; labels: string; predictions: string; brokenBy: string; report: string } | null;
  packages: Record<string, string>;
}
