/**
 * Evaluating an input-purifying defense (`advlab eval --defense aae:<run>`):
 * the suite runs once per threat model (what gradients the attacker gets, see
 * defenses/aae-purifier.ts), and an example counts as robust only if it
 * survives every one of them: the honest number is the per-example worst case
 * (Athalye, Carlini & Wagner 2018; Tramèr et al. 2020). Beside it, the AAE as
 * a detector: ROC AUC of its reconstruction error on clean images against PGD
 * examples made on the bare classifier (MagNet's setting, Meng & Chen 2017).
 */
import type { tfl } from '../engine/tf.js';
import { accuracy } from '../models/evaluate.js';
import { findAttack, runAttack } from '../attacks/index.js';
import type { AttackInput } from '../attacks/validate.js';
import type { Norm } from '../attacks/types.js';
import type { Classifier } from '../models/classifier.js';
import type { TaskPool } from '../engine/task-pool.js';
import { deriveSeed } from '../util/rng.js';
import { reconstructionErrors, type AaePurifier } from '../defenses/aae-purifier.js';
import { MISCLASSIFIED, ROBUST, type PipelineState } from './schedule.js';
import { summarizeEvaluation, type Evaluation } from './evaluate.js';
import { cleanThreshold, detectionFigures, quantile, type DetectionFigures } from './detection.js';
import type { Suite } from './types.js';

/** The suite of a worst case over threat models: every stage of each, named `<threat model>/<stage>`. */
export function threatModelSuite(suite: Suite, threatModels: readonly string[]): Suite {
  return { name: suite.name, norm: suite.norm, stages: threatModels.flatMap((t) => suite.stages.map((s) => ({ ...s, name: `${t}/${s.name}` }))) };
}

/**
 * Per-example worst case of the same suite run under several threat models on
 * the same images: broken if any threat model broke it (the first one's
 * adversarial image kept), robust only if none did. `suite` is the
 * {@link threatModelSuite} of the evaluations' suite.
 */
export function worstOverThreatModels(evaluations: readonly Evaluation[], suite: Suite, labels: Int32Array, options: { eps: number; classNames?: readonly string[] }): Evaluation {
  const n = labels.length;
  const k = suite.stages.length / evaluations.length;
  const first = evaluations[0];
  const brokenBy = new Int8Array(n).fill(ROBUST);
  const finalPredictions = Int32Array.from(first.cleanPredictions);
  const keep = evaluations.every((e) => e.adversarial);
  const size = keep ? first.adversarial!.length / n : 0;
  const adversarial = keep ? Float32Array.from(first.adversarial!) : null;
  for (let i = 0; i < n; i++) {
    if (first.brokenBy[i] === MISCLASSIFIED) {
      brokenBy[i] = MISCLASSIFIED;
      continue;
    }
    const t = evaluations.findIndex((e) => e.brokenBy[i] >= 0);
    if (t < 0) continue;
    const e = evaluations[t];
    brokenBy[i] = t * k + e.brokenBy[i];
    finalPredictions[i] = e.finalPredictions[i];
    if (adversarial) adversarial.set(e.adversarial!.subarray(i * size, (i + 1) * size), i * size);
  }
  // Each stage's cost is its threat model's, its "broken" what it added to the worst case.
  const stages = evaluations.flatMap((e, t) =>
    e.state.stages.map((s, j) => ({ ...s, broken: brokenBy.filter((b) => b === t * k + j).length })),
  );
  const state: PipelineState = { count: n, next: new Int32Array(n), brokenBy, finalPredictions, brokenStages: new Uint32Array(n), stages };
  const summary = summarizeEvaluation(state, labels, { suite, eps: options.eps, classNames: options.classNames });
  return { summary, cleanPredictions: first.cleanPredictions, finalPredictions, brokenBy, adversarial, state };
}

/** Clean images flagged by the detector's threshold. */
export const DETECTOR_FALSE_POSITIVE_RATE = 0.05;
/** PGD steps of the detector's adversarial examples (made on the bare classifier). */
export const DETECTOR_PGD_STEPS = 40;

/** The AAE as a detector, and the purifier against an attacker who ignores it. */
export interface DetectorResult {
  /** How the adversarial examples were made. */
  attack: { name: string; steps: number; eps: number; norm: Norm; on: string };
  /** Mean squared reconstruction error per pixel above which an input is flagged. */
  threshold: number;
  falsePositiveRate: number;
  cleanMedianError: number;
  /** Against the PGD examples that fooled the bare classifier. */
  againstPgd: DetectionFigures & { medianError: number | null };
  /** Accuracy of the bare classifier on the PGD examples (all images). */
  bareAccuracyUnderPgd: number;
  /** Accuracy of the purified classifier on the same PGD examples: the "oblivious attacker" figure, an upper bound. */
  purifiedAccuracyUnderPgd: number;
}

/**
 * Runs PGD on the bare classifier, then scores clean and adversarial images by
 * reconstruction error and classifies the adversarial ones through the purifier.
 */
export async function evaluateDetector(
  bare: Classifier,
  purified: tfl.LayersModel,
  purifier: AaePurifier,
  input: AttackInput,
  options: { eps: number; norm: Norm; seed: number; pool?: TaskPool },
): Promise<DetectorResult> {
  const pgd = findAttack('pgd')!;
  const attack = await runAttack(pgd, bare, input, { norm: options.norm, eps: options.eps, params: { steps: DETECTOR_PGD_STEPS }, seed: deriveSeed(options.seed, 'defense:detector'), ...(options.pool && bare.rebuildSpec ? { pool: options.pool } : {}) });
  const clean = await reconstructionErrors(purifier, input.images);
  const adv = await reconstructionErrors(purifier, attack.adversarial);
  const threshold = cleanThreshold(clean, DETECTOR_FALSE_POSITIVE_RATE);
  const fooled = Array.from(attack.success.keys()).filter((i) => attack.success[i]);
  const advScores = Float64Array.from(fooled, (i) => adv[i]);
  return {
    attack: { name: 'pgd', steps: DETECTOR_PGD_STEPS, eps: options.eps, norm: options.norm, on: 'the bare classifier' },
    threshold,
    falsePositiveRate: DETECTOR_FALSE_POSITIVE_RATE,
    cleanMedianError: quantile(clean, 0.5),
    againstPgd: { ...detectionFigures(clean, advScores, threshold), medianError: advScores.length ? quantile(advScores, 0.5) : null },
    bareAccuracyUnderPgd: attack.summary.robustAccuracy,
    purifiedAccuracyUnderPgd: await accuracy(purified, { images: attack.adversarial, labels: input.labels, count: input.count, imageShape: [...input.imageShape] as [number, number, number] }),
  };
}
