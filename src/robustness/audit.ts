/**
 * The self-audit of a fast suite: on a random sample of the points it left
 * robust, the stages of the standard suite it did not run, with the standard
 * suite's own seeds, so each audited point gets exactly the standard suite's
 * verdict. A point the audit breaks is a miss: the fast suite would have
 * reported it robust where the standard one does not. The misses in the
 * sample bound the misses among all the fast suite's robust points (exact
 * Clopper-Pearson bound); with a miss, the remainder runs on every robust
 * point (escalation), so the final verdicts are never weaker than the
 * standard suite's. Every point the audit breaks counts as broken.
 */
import type { Classifier } from '../models/classifier.js';
import type { AttackInput } from '../attacks/validate.js';
import { take } from '../data/split.js';
import { InputError } from '../errors.js';
import { Rng, deriveSeed } from '../util/rng.js';
import { clopperPearsonUpper } from '../util/binomial.js';
import { evaluateRobustness, summarizeEvaluation, type Evaluation, type EvaluateOptions, type EvaluationProgress } from './evaluate.js';
import { remainderOf } from './suites.js';
import { ROBUST, type PipelineState } from './schedule.js';
import type { AuditSummary, Suite } from './types.js';

/** Points audited when nothing else is asked. */
export const DEFAULT_AUDIT_SAMPLE = 100;

/** Options of {@link auditEvaluation}. */
export interface AuditOptions extends Pick<EvaluateOptions, 'eps' | 'seed' | 'batchSize' | 'pool' | 'classNames' | 'keepImages'> {
  /** The suite whose verdicts the fast one must reach (the standard suite). */
  reference: Suite;
  /** Points to audit: a count (default 100) or `full` (every robust point). */
  sample?: number | 'full';
  /** Run the remainder on every robust point after a miss in the sample (default true). */
  escalate?: boolean;
  /** Resume the audit's evaluations (sample, then escalation) from saved states. */
  resume?: { sample?: SavedState; rest?: SavedState };
  /** Called after each batch of the audit's evaluations, with which part it is. */
  onProgress?: (part: 'sample' | 'rest', event: EvaluationProgress) => void | Promise<void>;
}

type SavedState = { state: PipelineState; adversarial: Float32Array | null };

/** An audited evaluation: the fast suite's verdicts with the audit's breaks added, and what the audit found. */
export interface AuditedEvaluation {
  evaluation: Evaluation;
  audit: AuditSummary;
  /** The suite the evaluation's stage indices refer to: the fast stages, then `audit/<stage>` for each remainder stage. */
  suite: Suite;
}

/**
 * Audits `fast` (an evaluation of `input` with `suite`) against
 * `options.reference`. See the module comment.
 *
 * @throws InputError naming `audit` for a sample size that is not a positive integer or `full`.
 */
export async function auditEvaluation(classifier: Classifier, input: AttackInput, suite: Suite, fast: Evaluation, options: AuditOptions): Promise<AuditedEvaluation> {
  const sample = options.sample ?? DEFAULT_AUDIT_SAMPLE;
  if (sample !== 'full' && (!Number.isSafeInteger(sample) || sample < 1)) throw new InputError('audit', `expected a positive number of points or "full", got ${String(sample)}`);
  const remainder = remainderOf(options.reference, suite);
  const n = input.count;
  const robust: number[] = [];
  for (let i = 0; i < n; i++) if (fast.brokenBy[i] === ROBUST) robust.push(i);
  const full = sample === 'full' || sample >= robust.length;
  const chosen = full ? robust : pick(robust, sample, options.seed ?? 0);
  const size = input.imageShape[0] * input.imageShape[1] * input.imageShape[2];

  const run = async (points: number[], part: 'sample' | 'rest') => {
    if (!points.length || !remainder.stages.length) return undefined;
    const sub = take(input, Int32Array.from(points), size);
    const ev = await evaluateRobustness(classifier, sub, {
      suite: remainder,
      eps: options.eps,
      seed: options.seed,
      batchSize: options.batchSize,
      pool: options.pool,
      keepImages: options.keepImages,
      pointIds: Int32Array.from(points),
      ...(options.resume?.[part] ? { resume: options.resume[part] } : {}),
      onProgress: options.onProgress && ((e) => options.onProgress!(part, e)),
    });
    return { points, ev };
  };
  const sampled = await run(chosen, 'sample');
  const misses = sampled ? sampled.points.filter((_, j) => sampled.ev.brokenBy[j] >= 0) : [];
  const escalate = (options.escalate ?? true) && misses.length > 0 && !full;
  const chosenSet = new Set(chosen);
  const rest = escalate ? await run(robust.filter((i) => !chosenSet.has(i)), 'rest') : undefined;

  // The fast verdicts, then the audit's breaks as stages `audit/<name>` after the fast ones.
  const offset = suite.stages.length;
  const merged: Suite = { name: suite.name, norm: suite.norm, stages: [...suite.stages, ...remainder.stages.map((s) => ({ ...s, name: `audit/${s.name}` }))] };
  const brokenBy = fast.brokenBy.slice();
  const finalPredictions = fast.finalPredictions.slice();
  const adversarial = fast.adversarial ? fast.adversarial.slice() : null;
  const stages = [...fast.state.stages.map((s) => ({ ...s })), ...remainder.stages.map(() => ({ broken: 0, attacked: 0, gradients: 0, queries: 0, seconds: 0, batches: 0 }))];
  for (const part of [sampled, rest]) {
    if (!part) continue;
    part.ev.state.stages.forEach((s, j) => {
      const t = stages[offset + j];
      t.attacked += s.attacked;
      t.gradients += s.gradients;
      t.queries += s.queries;
      t.seconds += s.seconds;
      t.batches += s.batches;
    });
    part.points.forEach((i, j) => {
      const b = part.ev.brokenBy[j];
      if (b < 0) return;
      brokenBy[i] = offset + b;
      finalPredictions[i] = part.ev.finalPredictions[j];
      stages[offset + b].broken++;
      if (adversarial && part.ev.adversarial) adversarial.set(part.ev.adversarial.subarray(j * size, (j + 1) * size), i * size);
    });
  }
  const state: PipelineState = { count: n, next: fast.state.next, brokenBy, finalPredictions, brokenStages: fast.state.brokenStages, stages };
  const summary = summarizeEvaluation(state, input.labels, { suite: merged, eps: options.eps, classNames: options.classNames });
  const k = chosen.length;
  const m = misses.length;
  // With every robust point audited (or escalated), the verdicts are the reference's: no gap is left.
  const covered = full || escalate;
  const rateUpper = k ? clopperPearsonUpper(m, k) : 0;
  const audit: AuditSummary = {
    reference: options.reference.name,
    stages: remainder.stages.map((s) => s.name),
    robustBefore: robust.length,
    sampled: k,
    full,
    misses: m,
    missed: misses,
    missRateUpper: covered ? 0 : rateUpper,
    gapUpperPoints: covered ? 0 : Math.ceil(rateUpper * robust.length - 1e-9),
    gapUpper: covered ? 0 : Math.ceil(rateUpper * robust.length - 1e-9) / n,
    escalated: escalate,
    escalatedPoints: rest?.points.length ?? 0,
    gradients: stages.slice(offset).reduce((a, s) => a + s.gradients, 0),
    queries: stages.slice(offset).reduce((a, s) => a + s.queries, 0),
    seconds: stages.slice(offset).reduce((a, s) => a + s.seconds, 0),
  };
  return { evaluation: { summary, cleanPredictions: fast.cleanPredictions, finalPredictions, brokenBy, adversarial, state }, audit, suite: merged };
}

/** `count` of `points`, chosen uniformly with a seeded generator, in ascending order. */
function pick(points: number[], count: number, seed: number): number[] {
  const rng = new Rng(deriveSeed(seed, 'audit'));
  const order = rng.permutation(points.length);
  return Array.from(order.subarray(0, count), (j) => points[j]).sort((a, b) => a - b);
}
