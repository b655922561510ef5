/**
 * `advlab train --defense <name>`: adversarial training, then the evidence.
 *
 * 1. Train with the defense (src/defenses/defenses.ts) through the ordinary
 *    trainer, so progress, checkpoints and --resume behave as in plain
 *    training; the inner attack runs on a worker pool when there are cores.
 * 2. Evaluate the defended model with `advlab eval`'s job (quick suite by
 *    default, an eps curve up to the training eps) into `<out>/eval`, and the
 *    undefended baseline (`--baseline`) the same way into `<out>/baseline-eval`.
 * 3. Write the before/after comparison into result.json and report.html.
 */
import { join } from 'node:path';
import type { BackendInfo } from '../engine/backend.js';
import { startJobPool, workerCount, type WorkersSpec } from '../node/workers.js';
import type { WorkerPool } from '../node/worker-pool.js';
import { clearWorkerModels } from '../models/pool-model.js';
import { trainRun, TRAIN_OUTPUT } from './train-run.js';
import type { TrainRunOptions, TrainRunResult } from '../models/types.js';
import { checkSavedClassifier } from '../node/resolve.js';
import { checkOutputFolder, type OutputLayout } from '../node/paths.js';
import type { EpochRecord } from '../models/train.js';
import { Classifier } from '../models/classifier.js';
import { loadModel, saveModel } from '../node/model-files.js';
import type { ImageSet } from '../data/types.js';
import type { tfl } from '../engine/tf.js';
import { findAttack } from '../attacks/index.js';
import { runAttack } from '../attacks/run.js';
import { deriveSeed } from '../util/rng.js';
import { existsSync } from 'node:fs';
import { evalRun, EVAL_OUTPUT } from './eval-run.js';
import { SUITE_NAMES } from '../robustness/suites.js';
import { savedModelPath } from './job-options.js';
import { checkGeneratedOptions } from './generated-data.js';
import type { EvalRunResult } from '../robustness/types.js';
import type { Norm } from '../attacks/types.js';
import { writeFileAtomic, writeJsonAtomic } from '../node/atomic.js';
import { InputError } from '../errors.js';
import { createDefense, defaultDefenseConfig, IBP_DEFAULTS, CONSISTENCY_DEFAULTS } from '../defenses/defenses.js';
import { pooledTraining } from '../defenses/pooled.js';
import { DEFENSE_NAMES, type DefenseConfig, type DefenseName, type DefenseRunResult, type EvidenceEntry, type OverfittingVerdict } from '../defenses/types.js';

/** Options of {@link defenseRun}: those of plain training plus the defense's. */
export interface DefenseRunOptions extends Omit<TrainRunOptions, 'defense'> {
  defense: DefenseName;
  defenseNorm?: Norm;
  /** Training budget in the input's scale (default 0.3). */
  defenseEps?: number;
  defenseSteps?: number;
  defenseStepSize?: number;
  tradesBeta?: number;
  /** Epochs of linear eps warm-up (default 0). */
  epsWarmup?: number;
  /** Random start of the inner attack (default true; false: plain FGSM/BIM training). */
  randomStart?: boolean;
  /** IBP: epochs at eps 0 before the ramp, the clean loss's final weight, and the training eps's multiple of the target (defaults: IBP_DEFAULTS). */
  ibpFlatEpochs?: number;
  ibpKappa?: number;
  ibpEpsScale?: number;
  /** Consistency regularization: the KL term's weight, the entropy term's, and the noisy copies per image (defaults: CONSISTENCY_DEFAULTS). */
  consistencyLambda?: number;
  consistencyEta?: number;
  noiseCopies?: number;
  /** Worker threads for the inner attack and the evaluation (default auto). */
  workers?: WorkersSpec;
  /** An undefended model (run folder or saved model) evaluated next to the defended one. */
  baseline?: string;
  /** The evaluation after training; false skips it. */
  evidence?: false | { suite?: string; n?: number; eps?: number[] };
}

/** What a defended run writes in its output folder, besides the evaluations' own folders (checked before any work). */
export const DEFENSE_OUTPUT: OutputLayout = {
  folders: [...(TRAIN_OUTPUT.folders ?? []), 'best-model', 'eval', 'baseline-eval'],
  files: [...(TRAIN_OUTPUT.files ?? []), 'report.html'],
};

/** Options that belong to one defense; given with another, they are refused. */
const DEFENSE_OWN_OPTIONS = {
  consistency: ['consistencyLambda', 'consistencyEta', 'noiseCopies'],
  ibp: ['ibpFlatEpochs', 'ibpKappa', 'ibpEpsScale'],
} as const satisfies Record<string, readonly (keyof DefenseRunOptions)[]>;

/** Trains with a defense and writes the evidence (see the module comment). */
export async function defenseRun(options: DefenseRunOptions, backend: BackendInfo): Promise<DefenseRunResult> {
  checkGeneratedOptions(options);
  if (!(DEFENSE_NAMES as readonly string[]).includes(options.defense) || options.defense === 'none') {
    throw new InputError('defense', `unknown defense "${options.defense}"; expected ${DEFENSE_NAMES.filter((d) => d !== 'none').join(', ')}`);
  }
  const config = defaultDefenseConfig(options.defense, {
    norm: options.defenseNorm,
    eps: options.defenseEps,
    steps: options.defenseSteps,
    stepSize: options.defenseStepSize,
    beta: options.tradesBeta,
    epsWarmupEpochs: options.epsWarmup,
    randomStart: options.randomStart,
    ...(options.defense === 'ibp'
      ? { ibp: { flatEpochs: options.ibpFlatEpochs ?? IBP_DEFAULTS.flatEpochs, kappa: options.ibpKappa ?? IBP_DEFAULTS.kappa, epsScale: options.ibpEpsScale ?? IBP_DEFAULTS.epsScale } }
      : {}),
    ...(options.defense === 'consistency'
      ? { consistency: { lambda: options.consistencyLambda ?? CONSISTENCY_DEFAULTS.lambda, eta: options.consistencyEta ?? CONSISTENCY_DEFAULTS.eta, copies: options.noiseCopies ?? CONSISTENCY_DEFAULTS.copies } }
      : {}),
  });
  for (const [name, keys] of Object.entries(DEFENSE_OWN_OPTIONS)) {
    if (options.defense === name) continue;
    for (const key of keys) if (options[key] !== undefined) throw new InputError(key, `only applies with --defense ${name}`);
  }
  const defense = createDefense(config); // validates
  // A smoothing-trained model's evidence is a certificate of its smoothed classifier (advlab certify), not an attack on the base classifier.
  const smoothing = config.name === 'consistency';
  if (smoothing && options.baseline !== undefined) throw new InputError('baseline', 'the consistency defense is judged by certificates of its smoothed classifier (advlab certify), not by an evaluation next to a baseline');
  const evidence = options.evidence === false || smoothing ? null : { suite: options.evidence?.suite ?? 'quick', n: options.evidence?.n, eps: options.evidence?.eps ?? defaultCurve(config.eps) };

  // Check the evidence settings before hours of training, not after.
  if (evidence) {
    if (!(SUITE_NAMES as readonly string[]).includes(evidence.suite)) throw new InputError('evalSuite', `unknown suite "${evidence.suite}"; expected ${SUITE_NAMES.join(', ')}`);
    if (evidence.n !== undefined && (!Number.isSafeInteger(evidence.n) || evidence.n < 1)) throw new InputError('evalN', `expected a positive integer, got ${evidence.n}`);
    for (const e of evidence.eps) {
      if (!(e > 0) || !Number.isFinite(e)) throw new InputError('evalEps', `expected positive numbers, got ${e}`);
      if (config.norm === 'linf' && e > config.bounds[1] - config.bounds[0]) throw new InputError('evalEps', `${e} exceeds the input range: is it in the input's scale?`);
    }
  }
  // Everything written or read after training is checked now: a run of hours must not fail at its end.
  checkOutputFolder(options.out, 'out', DEFENSE_OUTPUT);
  if (evidence) {
    checkOutputFolder(join(options.out, 'eval'), 'out', EVAL_OUTPUT);
    if (options.baseline !== undefined) checkOutputFolder(join(options.out, 'baseline-eval'), 'out', EVAL_OUTPUT);
  }
  const baseline = options.baseline === undefined ? undefined : savedModelPath(options.baseline, 'baseline');
  if (baseline !== undefined) await checkSavedClassifier(baseline, 'baseline');
  // Two halves of a batch already fill two workers.
  const workers = workerCount(options.workers, backend, 2);
  let pool: WorkerPool | undefined;
  let trained: TrainRunResult;
  let overfitting: OverfittingVerdict | null = null;
  const t0 = performance.now();
  try {
    pool = await startJobPool(workers, backend);
    // Catastrophic overfitting is an attack-training failure; noise training has no attack to watch.
    const watch = smoothing ? undefined : overfittingWatch(config, options.out, pool, options.seed ?? 0);
    trained = await trainRun(
      {
        ...options,
        defense,
        // Each worker attacks its slice of the batch and takes the loss gradient on it: no core waits for the update.
        ...(pool ? { parallel: pooledTraining(defense, pool) } : {}),
        ...(watch ? { validation: VALIDATION_IMAGES, monitor: watch.monitor, beforeSave: watch.beforeSave } : {}),
        // The baseline against the data's image shape and classes, before the first epoch.
        checkInputs: async (data) => {
          if (baseline !== undefined) await checkSavedClassifier(baseline, 'baseline', { imageShape: data.train.imageShape, numClasses: data.numClasses });
        },
      },
      backend,
    );
    overfitting = watch?.verdict() ?? null;
  } finally {
    await pool?.close();
    await clearWorkerModels();
  }
  // A resumed run adds the epochs its earlier runs finished (their whole-epoch time), so the figure is the training's, not this run's.
  const earlier = trained.history.filter((h) => h.epoch <= trained.resumedFromEpoch).reduce((t, h) => t + (h.wallSeconds ?? h.seconds), 0);
  const trainingSeconds = (performance.now() - t0) / 1000 + earlier;

  let evidenceResult: DefenseRunResult['evidence'] = null;
  if (evidence) {
    const evaluate = async (model: string, dir: string): Promise<EvidenceEntry> => {
      const r = await evalRun(
        {
          model,
          dataset: options.dataset,
          out: dir,
          suite: evidence.suite,
          norm: config.norm,
          eps: evidence.eps,
          n: evidence.n,
          seed: options.seed,
          corruptions: [],
          minimal: [],
          workers: options.workers,
          resume: options.resume,
        },
        backend,
      );
      return entry(r, model, dir);
    };
    const defended = await evaluate(options.out, join(options.out, 'eval'));
    const baseline = options.baseline ? await evaluate(options.baseline, join(options.out, 'baseline-eval')) : null;
    evidenceResult = { suite: evidence.suite, n: defended.count, eps: evidence.eps, defended, baseline };
  }
  const result: DefenseRunResult = { ...trained, defense: { ...config, workers, trainingSeconds, overfitting }, evidence: evidenceResult };
  if (evidenceResult) {
    const { renderDefenseReport } = await import('../report/defense-report.js');
    writeFileAtomic(join(options.out, 'report.html'), await renderDefenseReport(result));
  }
  writeJsonAtomic(join(options.out, 'result.json'), result);
  return result;
}

/** Training images held out to watch robust accuracy each epoch. */
const VALIDATION_IMAGES = 256;
/**
 * Catastrophic overfitting of fast adversarial training (Wong et al. 2020,
 * "Fast is better than free", ICLR): the model learns to defeat the single
 * FGSM step instead of resisting perturbations, so multi-step PGD breaks what
 * FGSM cannot. Two signs on the held-out images, either one counts:
 * - collapse: PGD accuracy falls this far below its best epoch (the
 *   early-stopping rule of Wong et al.'s code);
 * - gap: FGSM accuracy exceeds PGD accuracy by this much. This one also
 *   catches a run that overfits from the start (FGSM without a random start),
 *   where PGD accuracy never rose and so cannot fall. A sound adversarially
 *   trained model's PGD-10 and FGSM accuracies differ by a few points.
 */
const COLLAPSE_DROP = 0.2;
const FGSM_PGD_GAP = 0.3;

/** Whether an epoch's held-out figures show catastrophic overfitting, given the best PGD accuracy so far. */
export function isCatastrophicOverfitting(figures: { pgdAccuracy: number; fgsmAccuracy: number }, bestPgdAccuracy: number): boolean {
  return figures.pgdAccuracy < bestPgdAccuracy - COLLAPSE_DROP || figures.fgsmAccuracy > figures.pgdAccuracy + FGSM_PGD_GAP;
}

/**
 * The watch's flag for an epoch: never while eps is still warming up (epochs
 * 1..warmupEpochs trained at a smaller eps than the watch attacks with, so
 * FGSM far above PGD is expected there, not a sign of overfitting).
 */
export function overfittingFlag(epoch: number, warmupEpochs: number, figures: { pgdAccuracy: number; fgsmAccuracy: number }, bestPgdAccuracy: number): boolean {
  return epoch > warmupEpochs && isCatastrophicOverfitting(figures, bestPgdAccuracy);
}

/**
 * Each epoch: PGD-10 and FGSM accuracy at the training eps on held-out
 * training images, and `catastrophicOverfitting` (1 or 0) in the epoch's
 * record so progress can warn at once; the best epoch's weights (by PGD
 * accuracy) are saved to `<out>/best-model` (so a resumed run still has them).
 * If the last epoch shows catastrophic overfitting, the best weights are
 * restored before the model is saved.
 */
function overfittingWatch(config: DefenseConfig, out: string, pool: WorkerPool | undefined, seed: number) {
  const bestDir = join(out, 'best-model');
  let last: Record<string, number> | undefined;
  let best = { epoch: 0, pgd: -1 };
  let verdict: OverfittingVerdict | null = null;
  const monitor = async (model: tfl.LayersModel, epoch: number, validation: ImageSet): Promise<Record<string, number>> => {
    const classifier = Classifier.fromModel(model, { bounds: config.bounds });
    try {
      const common = { norm: config.norm, eps: config.eps, seed: deriveSeed(seed, `watch:${epoch}`), batchSize: 128, pool };
      const pgd = await runAttack(findAttack('pgd')!, classifier, validation, { ...common, params: { steps: 10, stepSize: (2.5 * config.eps) / 10 } });
      const fgsm = await runAttack(findAttack('fgsm')!, classifier, validation, common);
      const figures = { pgdAccuracy: pgd.summary.robustAccuracy, fgsmAccuracy: fgsm.summary.robustAccuracy, validationAccuracy: pgd.summary.cleanAccuracy };
      last = { ...figures, catastrophicOverfitting: overfittingFlag(epoch, config.epsWarmupEpochs, figures, Math.max(best.pgd, figures.pgdAccuracy)) ? 1 : 0 };
      if (figures.pgdAccuracy > best.pgd) {
        best = { epoch, pgd: figures.pgdAccuracy };
        await saveModel(model, bestDir);
      }
      return last;
    } finally {
      classifier.dispose();
    }
  };
  const beforeSave = async (model: tfl.LayersModel, history: EpochRecord[]): Promise<void> => {
    // After a resume, the figures come from the checkpointed history.
    for (const h of history) if (h.monitor && h.monitor.pgdAccuracy > best.pgd) best = { epoch: h.epoch, pgd: h.monitor.pgdAccuracy };
    const final = history[history.length - 1]?.monitor ?? last;
    if (!final) return;
    const finalEpoch = history[history.length - 1]?.epoch ?? 0;
    const detected = overfittingFlag(finalEpoch, config.epsWarmupEpochs, final as { pgdAccuracy: number; fgsmAccuracy: number }, best.pgd);
    let restored = false;
    if (detected && best.epoch !== history[history.length - 1]?.epoch && existsSync(join(bestDir, 'model.json'))) {
      const bestModel = await loadModel(bestDir);
      model.setWeights(bestModel.getWeights());
      bestModel.dispose();
      restored = true;
    }
    const epochs = history.filter((h) => h.monitor?.catastrophicOverfitting === 1).map((h) => h.epoch);
    verdict = { detected, epochs, bestEpoch: best.epoch, bestPgdAccuracy: best.pgd, finalPgdAccuracy: final.pgdAccuracy, finalFgsmAccuracy: final.fgsmAccuracy, restored };
  };
  return { monitor, beforeSave, verdict: (): OverfittingVerdict | null => verdict };
}

/** The training eps and three fractions of it, headline first. */
function defaultCurve(eps: number): number[] {
  return [eps, eps / 4, eps / 2, (3 * eps) / 4].map((e) => Number(e.toPrecision(6)));
}

function entry(r: EvalRunResult, model: string, dir: string): EvidenceEntry {
  return {
    model,
    count: r.count,
    cleanAccuracy: r.cleanAccuracy,
    robustAccuracy: r.robustAccuracy,
    confidenceInterval: r.confidenceInterval,
    curve: r.sweep.map((s) => ({ eps: s.eps, robustAccuracy: s.robustAccuracy })),
    sanity: r.sanity.verdict,
    evalDir: dir,
  };
}
