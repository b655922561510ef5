/**
 * The evaluation job without its platform: what `advlab eval` computes, for a
 * classifier and a class-balanced image set the caller already holds. The
 * platform passes in what it owns (DESIGN: a pool to run batches on, a store
 * for checkpoints); nothing here touches files, threads or Node, so the same
 * job runs under the CLI (eval-run.ts: files, the checkpoint folder, the
 * worker pool) and in a page's Web Worker (the playground), and both write
 * result.json in one schema.
 *
 * Phases, each saved to the store when there is one so a killed run resumes:
 * 1. the suite at every eps of the sweep (under a defense, once per threat
 *    model, then the per-example worst case), and a fast suite's audit;
 * 2. the defense's detector, when there is one;
 * 3. minimal perturbations; 4. corruption accuracy; 5. sanity checks on a sample.
 */
import type { TaskPool } from '../engine/task-pool.js';
import type { Classifier } from '../models/classifier.js';
import type { AttackInput } from '../attacks/validate.js';
import type { Norm } from '../attacks/types.js';
import { evaluateRobustness, type Evaluation } from '../robustness/evaluate.js';
import { MISCLASSIFIED, ROBUST, planRuns, type PipelineState } from '../robustness/schedule.js';
import { auditEvaluation, DEFAULT_AUDIT_SAMPLE } from '../robustness/audit.js';
import { buildSuite } from '../robustness/suites.js';
import { minimalNorms, summarizeMinimal, type MinimalNorms } from '../robustness/minimal.js';
import { corruptionAccuracy, type CorruptionAccuracyResult } from '../robustness/corruption-accuracy.js';
import type { CorruptionName } from '../robustness/corruptions.js';
import { runSanityChecks, overallVerdict } from '../robustness/sanity.js';
import { threatModelSuite, worstOverThreatModels, type DetectorResult } from '../robustness/defense-eval.js';
import type { AuditSummary, EpsilonResult, EvalRunResult, MinimalPerturbations, SanityCheck, Suite } from '../robustness/types.js';
import { base64ToBytes, bytesToBase64 } from '../util/base64.js';
import { FileFormatError } from '../errors.js';

/**
 * Where an evaluation keeps its finished work (the CLI: `<out>/checkpoint`,
 * see node/eval-checkpoint.ts). Slots are evaluations (an eps, an eps under
 * one threat model, the audit's parts); phases are JSON values.
 */
export interface EvalStore {
  loadEvaluation(slot: number, count?: number): { state: PipelineState; adversarial: Float32Array | null } | undefined;
  saveEvaluation(slot: number, state: PipelineState, adversarial: Float32Array | null): void;
  load<T>(phase: string): T | undefined;
  save(phase: string, value: unknown): void;
}

/** Progress of {@link runEvalJob}. */
export type EvalJobEvent =
  | { type: 'resumed'; points: number }
  | { type: 'phase'; phase: string; total: number; workers: number }
  | { type: 'batch'; phase: string; done: number; total: number; robust?: number; evaluated?: number }
  | { type: 'sweep'; result: EpsilonResult };

/** What {@link runEvalJob} needs. */
export interface EvalJobInput {
  /** The model as deployed (corruptions and the audit run on it). */
  classifier: Classifier;
  /** Under an input-purifying defense: the classifier the suite attacks under each threat model (the headline is their per-example worst case). */
  threatModels?: { name: string; classifier: Classifier }[];
  /** The defense's detector phase, run after the suite at the headline eps. */
  detector?: () => Promise<DetectorResult>;
  /** The images, class-balanced (see balancedSubset). */
  images: AttackInput;
  classNames: readonly string[];
  suite: Suite;
  /** Budgets in the input's scale; the first is the headline. */
  eps: readonly number[];
  seed: number;
  batchSize: number;
  allPoints?: boolean;
  /** A fast suite's audit: points to audit (default 100) or `full`, and whether a miss escalates (default true). */
  audit?: number | 'full';
  auditEscalate?: boolean;
  /** Minimal-perturbation attacks ([] for none). */
  minimal: readonly string[];
  corruptions: readonly CorruptionName[];
  /** Images of the sanity checks' sample (the first ones of `images`). */
  sanitySample: number;
  pool?: TaskPool;
  /** Workers the pool runs on (for progress only). */
  workers: number;
  /** Checkpoints: finished phases are read back from it when `resumed`. */
  store?: EvalStore;
  resumed?: boolean;
  onProgress?: (event: EvalJobEvent) => void;
}

/** What {@link runEvalJob} found: every figure of result.json that does not depend on the platform. */
export interface EvalJobOutput {
  /** The evaluation at the headline eps (the worst case over threat models; with the audit's breaks). */
  head: Evaluation;
  /** `suite` is the stages `head.brokenBy` indexes: the suite's, per threat model under a defense, then the audit's. */
  fields: Pick<
    EvalRunResult,
    'norm' | 'count' | 'cleanAccuracy' | 'eps' | 'robustAccuracy' | 'confidenceInterval' | 'sweep' | 'brokenBy' | 'minimal' | 'corruptions' | 'sanity' | 'audit' | 'gradientsPerImage' | 'queriesPerImage' | 'imagesPerSecond'
  > & { suite: Suite };
  /** Under a defense: the sweep under each threat model alone. */
  threatSweeps: EpsilonResult[][];
  detector: DetectorResult | null;
}

/** Runs the evaluation (see the module comment). Validation of eps, suite and options is the caller's. */
export async function runEvalJob(input: EvalJobInput): Promise<EvalJobOutput> {
  const { classifier, images: subset, suite, seed, batchSize, pool, workers, store, classNames } = input;
  const resumed = !!(input.resumed && store);
  const progress = input.onProgress;
  const epsList = [...new Set(input.eps)].sort((a, b) => a - b);
  const headline = input.eps[0];
  const n = subset.count;
  const threatModels = input.threatModels ?? [];
  const attacked = threatModels.length ? threatModels.map((t) => t.classifier) : [classifier];
  const audited = suite.name === 'fast';

  // 1. The suite at every eps.
  const sweep: EpsilonResult[] = [];
  let main: Evaluation | undefined;
  // Under a defense, one evaluation per threat model (store slot k * T + t), then the per-example worst case.
  let reportedSuite = threatModels.length ? threatModelSuite(suite, threatModels.map((t) => t.name)) : suite;
  const threatSweeps: EpsilonResult[][] = attacked.map(() => []);
  let plainHead: Evaluation | undefined;
  for (let k = 0; k < epsList.length; k++) {
    const eps = epsList[k];
    const perThreat: Evaluation[] = [];
    for (let t = 0; t < attacked.length; t++) {
      const slot = k * attacked.length + t;
      const saved = resumed ? store!.loadEvaluation(slot, n) : undefined;
      const phase = threatModels.length ? `eps ${eps} ${threatModels[t].name}` : `eps ${eps}`;
      progress?.({ type: 'phase', phase, total: n, workers });
      if (saved) progress?.({ type: 'resumed', points: finishedPoints(saved.state, suite).done });
      const evaluation = await evaluateRobustness(attacked[t], subset, {
        suite,
        eps,
        seed,
        batchSize,
        allPoints: input.allPoints,
        keepImages: eps === headline,
        pool,
        classNames,
        ...(saved ? { resume: saved } : {}),
        // Saved after every batch (a few MB at most, next to minutes of attack): a kill loses only the batches running.
        onProgress: ({ state, adversarial }) => {
          store?.saveEvaluation(slot, state, adversarial);
          const { done, robust } = finishedPoints(state, suite);
          progress?.({ type: 'batch', phase, done, total: n, robust, evaluated: done });
        },
      });
      // Also when no batch ran (every point misclassified, or all done before a resume).
      store?.saveEvaluation(slot, evaluation.state, evaluation.adversarial);
      perThreat.push(evaluation);
      threatSweeps[t].push(evaluation.summary);
    }
    const evaluation = perThreat.length > 1 ? worstOverThreatModels(perThreat, reportedSuite, subset.labels, { eps, classNames }) : perThreat[0];
    sweep.push(evaluation.summary);
    progress?.({ type: 'sweep', result: evaluation.summary });
    if (eps === headline) {
      main = evaluation;
      plainHead = perThreat[0];
    }
  }
  let head = main!;

  // The fast suite's self-audit against the standard suite, at the headline eps.
  let audit: AuditSummary | null = null;
  if (audited) {
    const base = epsList.length * attacked.length;
    const slots = { sample: base, rest: base + 1 } as const;
    const resume = resumed ? { sample: store!.loadEvaluation(slots.sample), rest: store!.loadEvaluation(slots.rest) } : undefined;
    progress?.({ type: 'phase', phase: `audit at eps ${headline}`, total: 1, workers });
    const result = await auditEvaluation(classifier, subset, suite, head, {
      reference: buildSuite({ suite: 'standard', norm: suite.norm, numClasses: classifier.numClasses }),
      sample: input.audit ?? DEFAULT_AUDIT_SAMPLE,
      escalate: input.auditEscalate,
      eps: headline,
      seed,
      batchSize,
      pool,
      classNames,
      ...(resume ? { resume } : {}),
      onProgress: (part, e) => {
        store?.saveEvaluation(slots[part], e.state, e.adversarial);
        progress?.({ type: 'batch', phase: `audit at eps ${headline}`, done: e.done, total: e.total, robust: e.total - e.broken, evaluated: e.done });
      },
    });
    head = result.evaluation;
    audit = result.audit;
    reportedSuite = result.suite;
    sweep[epsList.indexOf(headline)] = head.summary;
    progress?.({ type: 'sweep', result: head.summary });
  }

  // 2. The defense's detector.
  let detector: DetectorResult | null = null;
  if (input.detector) {
    detector = (resumed && store!.load<DetectorResult>('detector')) || null;
    if (!detector) {
      progress?.({ type: 'phase', phase: 'detector', total: 1, workers });
      detector = await input.detector();
      store?.save('detector', detector);
      progress?.({ type: 'batch', phase: 'detector', done: 1, total: 1 });
    }
  }

  // 3. Minimal perturbations.
  let minimalSummary: MinimalPerturbations | null = null;
  let minimalCheck: SanityCheck = {
    id: 'minimal-vs-suite',
    title: 'The suite finds at least what the minimal-perturbation attacks imply',
    verdict: 'skipped',
    message: 'no minimal-perturbation attack ran (--minimal)',
    figures: {},
  };
  if (input.minimal.length) {
    progress?.({ type: 'phase', phase: 'minimal perturbations', total: 1, workers });
    let norms = resumed ? loadMinimal(store!) : undefined;
    if (!norms) {
      norms = await minimalNorms(attacked[attacked.length - 1], subset, { attacks: [...input.minimal], norm: suite.norm, seed, batchSize, pool });
      store?.save('minimal', { norms: { dtype: 'f4', base64: bytesToBase64(new Uint8Array(norms.norms.buffer, norms.norms.byteOffset, norms.norms.byteLength)) }, gradients: norms.gradients, seconds: norms.seconds });
    }
    const top = Math.max(...epsList) * 1.25;
    const grid = Array.from({ length: 51 }, (_, i) => (top * i) / 50);
    minimalSummary = summarizeMinimal(norms, [...input.minimal], suite.norm, grid);
    minimalCheck = checkMinimalAgainstSuite(norms.norms, sweep, minimalCheck);
    progress?.({ type: 'batch', phase: 'minimal perturbations', done: 1, total: 1 });
  }

  // 4. Corruptions.
  let corruptionResult: CorruptionAccuracyResult | null = null;
  if (input.corruptions.length) {
    corruptionResult = (resumed && store!.load<CorruptionAccuracyResult>('corruptions')) || null;
    if (!corruptionResult) {
      progress?.({ type: 'phase', phase: 'corruptions', total: input.corruptions.length * 5, workers: 1 });
      corruptionResult = await corruptionAccuracy(attacked[0], subset.images, subset.labels, subset.imageShape, {
        corruptions: [...input.corruptions],
        seed,
        batchSize: 256,
        onProgress: (e) => {
          if (e.corruption !== 'clean') progress?.({ type: 'batch', phase: 'corruptions', done: e.done - 1, total: e.total - 1 });
        },
      });
      store?.save('corruptions', corruptionResult);
    }
  }

  // 5. Sanity checks.
  let checks = (resumed && store!.load<SanityCheck[]>('sanity')) || null;
  if (!checks) {
    progress?.({ type: 'phase', phase: 'sanity checks', total: 6, workers });
    // The checks read the suite's own verdicts (the audit ran on a sample only).
    checks = await sanity(attacked[0], subset, suite, plainHead ?? head, threatModels.length || audited ? threatSweeps[0] : sweep, epsList, headline, Math.min(input.sanitySample, n), seed, pool, (done) =>
      progress?.({ type: 'batch', phase: 'sanity checks', done, total: 6 }),
    );
    store?.save('sanity', checks);
  }
  checks = [...checks, minimalCheck];

  const headSummary = sweep[epsList.indexOf(headline)];
  const brokenBy: Record<string, number> = { misclassified: 0, robust: 0 };
  for (const s of reportedSuite.stages) brokenBy[s.name] = 0;
  for (const b of head.brokenBy) {
    if (b === MISCLASSIFIED) brokenBy.misclassified++;
    else if (b === ROBUST) brokenBy.robust++;
    else brokenBy[reportedSuite.stages[b].name]++;
  }
  return {
    head,
    threatSweeps,
    detector,
    fields: {
      suite: reportedSuite,
      norm: suite.norm as Norm,
      count: n,
      cleanAccuracy: (n - brokenBy.misclassified) / n,
      eps: headline,
      robustAccuracy: headSummary.robustAccuracy,
      confidenceInterval: headSummary.confidenceInterval,
      sweep,
      brokenBy,
      minimal: minimalSummary,
      corruptions: corruptionResult,
      sanity: { verdict: overallVerdict(checks), checks },
      audit,
      gradientsPerImage: sweep.reduce((a, s) => a + s.gradients, 0) / n,
      queriesPerImage: sweep.reduce((a, s) => a + s.queries, 0) / n,
      imagesPerSecond: headSummary.imagesPerSecond,
    },
  };
}

/** Points through the whole plan, and those of them still robust. */
function finishedPoints(state: PipelineState, suite: Suite): { done: number; robust: number } {
  const end = planRuns(suite).length;
  let done = 0;
  let robust = 0;
  for (let i = 0; i < state.count; i++) {
    if (state.next[i] < end) continue;
    done++;
    if (state.brokenBy[i] === ROBUST) robust++;
  }
  return { done, robust };
}

async function sanity(
  classifier: Classifier,
  subset: AttackInput,
  suite: Suite,
  head: Evaluation,
  sweep: EpsilonResult[],
  epsList: number[],
  headline: number,
  m: number,
  seed: number,
  pool: TaskPool | undefined,
  onDone: (done: number) => void,
): Promise<SanityCheck[]> {
  const size = subset.imageShape[0] * subset.imageShape[1] * subset.imageShape[2];
  const sample = { images: subset.images.slice(0, m * size), labels: subset.labels.slice(0, m), imageShape: subset.imageShape, count: m };
  const reference = suite.stages.find((s) => s.whiteBox) ?? suite.stages[0];
  const blackStages = suite.stages.map((s, i) => (s.whiteBox ? -1 : i)).filter((i) => i >= 0);
  const firstBlack = blackStages.length ? Math.min(...blackStages) : -1;
  const whiteBoxOnly = firstBlack < 0 || suite.stages.slice(firstBlack).every((s) => !s.whiteBox);
  let blackBox: { broken: number; count: number; whiteBoxRobust: number } | undefined;
  let survivors: Int32Array | undefined;
  if (blackStages.length && whiteBoxOnly) {
    // Black-box stages run after every white-box one: what they broke, the white-box ones missed.
    let broken = 0;
    let whiteBoxRobust = 0;
    for (const b of head.brokenBy) {
      if (b >= firstBlack) broken++;
      if (b >= firstBlack || b === ROBUST) whiteBoxRobust++;
    }
    blackBox = { broken, count: head.brokenBy.length, whiteBoxRobust };
  } else if (!blackStages.length) {
    const idx: number[] = [];
    for (let i = 0; i < m; i++) if (head.brokenBy[i] === ROBUST) idx.push(i);
    survivors = Int32Array.from(idx);
  }
  let done = 0;
  return runSanityChecks({
    classifier,
    sample,
    norm: suite.norm,
    eps: headline,
    seed,
    sweep: { eps: epsList, robustAccuracy: sweep.map((s) => s.robustAccuracy), count: subset.count },
    ...(blackBox ? { blackBox } : {}),
    ...(survivors ? { whiteBoxSurvivors: survivors } : {}),
    reference: { attack: reference.attack, params: reference.params },
    pool,
    onProgress: () => onDone(++done),
  });
}

/**
 * Both the suite and the minimal norms give upper bounds on robust accuracy.
 * If the minimal norms imply a lower one at some eps (by more than 1% and 2
 * examples), the suite missed examples a weaker-budget search found: it is too
 * weak for this model (more steps, restarts or other stages are needed).
 */
function checkMinimalAgainstSuite(norms: Float32Array, sweep: EpsilonResult[], base: SanityCheck): SanityCheck {
  const n = norms.length;
  const implied = sweep.map((s) => Array.from(norms).filter((v) => v > s.eps).length / n);
  const gaps = sweep.map((s, i) => s.robustAccuracy - implied[i]);
  const worst = Math.max(...gaps);
  const warn = worst > 0.01 && worst * n >= 2;
  const at = sweep[gaps.indexOf(worst)].eps;
  return {
    ...base,
    verdict: warn ? 'warn' : 'pass',
    message: warn
      ? `at eps ${at} the minimal perturbations leave ${(implied[gaps.indexOf(worst)] * 100).toFixed(1)}% robust but the suite ${(sweep[gaps.indexOf(worst)].robustAccuracy * 100).toFixed(1)}%: the suite is too weak for this model`
      : 'at every eps of the sweep the suite finds at least what the minimal perturbations imply',
    figures: { eps: sweep.map((s) => s.eps), suiteRobustAccuracy: sweep.map((s) => s.robustAccuracy), minimalImpliedAccuracy: implied, largestGap: worst },
  };
}

function loadMinimal(store: EvalStore): MinimalNorms | undefined {
  const saved = store.load<{ norms: { dtype: string; base64: string }; gradients: number; seconds: number }>('minimal');
  if (!saved) return undefined;
  const bytes = saved.norms && typeof saved.norms.base64 === 'string' ? base64ToBytes(saved.norms.base64) : null;
  if (!bytes || saved.norms.dtype !== 'f4' || bytes.byteLength % 4 !== 0) throw new FileFormatError('checkpoint/minimal.json', 'the minimal norms are missing or not float32');
  return { norms: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), gradients: saved.gradients, seconds: saved.seconds };
}
