/**
 * The `advlab eval` job: a robustness evaluation of a trained model on a
 * class-balanced subset of a dataset's test split, written to a folder.
 *
 * Phases, each checkpointed (see eval-checkpoint.ts) so a killed run resumes:
 * 1. the suite at every eps of the sweep, points gathered into engine batches (on a worker
 *    pool when there are several cores), per-example worst case;
 * 2. minimal perturbations (when asked, by default with a sweep);
 * 3. corruption accuracy;
 * 4. sanity checks on a sample.
 * Then NPY arrays, report.html and, last, result.json.
 */
import { join } from 'node:path';
import type { TaskPool } from '../engine/task-pool.js';
import { createHash } from 'node:crypto';
import type { BackendInfo } from '../engine/backend.js';
import { startRunPool, type QueueRunInfo, type RunPool } from '../node/distributed/run-pool.js';
import { loadModelJob, type ModelJobOptions } from './job-options.js';
import { tf } from '../engine/tf.js';
import { balancedSubset } from '../data/subset.js';
import { writeNpy } from '../node/data/formats/npy.js';
import type { Dataset } from '../data/types.js';
import { Classifier } from '../models/classifier.js';
import { clearWorkerModels } from '../models/pool-model.js';
import { packageVersions } from './train-run.js';

import { checkEpsValue, validateEps } from '../attacks/validate.js';
import { NORMS, type Norm } from '../attacks/types.js';
import { runMeta } from '../report/meta.js';
import { writeFileAtomic, writeJsonAtomic } from '../node/atomic.js';
import { checkOutputFolder, type OutputLayout } from '../node/paths.js';
import { InputError, rethrowFor } from '../errors.js';
import { buildSuite } from '../robustness/suites.js';
import { evaluateRobustness, type Evaluation } from '../robustness/evaluate.js';
import { MISCLASSIFIED, ROBUST, planRuns, type PipelineState } from '../robustness/schedule.js';
import { EvalCheckpoint, decodeArray, encodeArray } from '../node/eval-checkpoint.js';
import { auditEvaluation, DEFAULT_AUDIT_SAMPLE } from '../robustness/audit.js';
import { minimalNorms, summarizeMinimal, MINIMAL_ATTACKS, type MinimalNorms } from '../robustness/minimal.js';
import { corruptionAccuracy, type CorruptionAccuracyResult } from '../robustness/corruption-accuracy.js';
import { CORRUPTION_NAMES, type CorruptionName } from '../robustness/corruptions.js';
import { runSanityChecks, overallVerdict } from '../robustness/sanity.js';
import type { AuditSummary, EpsilonResult, EvalRunResult, SanityCheck, Suite } from '../robustness/types.js';
import { loadAaePurifier } from '../node/aae-purifier-files.js';
import { parseDefenseSpec, purifiedModel, PURIFIER_GRADIENT_DESCRIPTIONS, type AaePurifier, type PurifierGradients } from '../defenses/aae-purifier.js';
import { evaluateDetector, threatModelSuite, worstOverThreatModels, type DetectorResult } from '../robustness/defense-eval.js';
import type { tfl } from '../engine/tf.js';

/** Options of {@link evalRun}. */
export interface EvalRunOptions extends ModelJobOptions {
  /** `standard` (default), `fast` (audited) or `quick`; ignored when `attacks` is given. */
  suite?: string;
  /** The fast suite's audit: points to audit (default 100) or `full` (every point it left robust). */
  audit?: number | 'full';
  /** After a miss in the audit's sample, audit every robust point (default true). */
  auditEscalate?: boolean;
  /** A custom suite: stage names in order (see suites.ts). */
  attacks?: string[];
  /** Default linf. */
  norm?: Norm;
  /** One or more budgets in the input's scale; the first is the headline. */
  eps: number[];
  /** Corruptions to test (default all; [] for none). */
  corruptions?: CorruptionName[];
  /** Minimal-perturbation attacks (default deepfool when eps has several values, else none). */
  minimal?: string[];
  /** Images of the sanity checks' sample (default 100). */
  sanitySample?: number;
  /** Run every stage on every point (slow; measures each stage alone). */
  allPoints?: boolean;
  /**
   * An input-purifying defense in front of the model: `aae:<folder of an
   * advlab aae run>`. The suite then runs under each threat model of
   * {@link DEFENSE_THREAT_MODELS} and the headline is the per-example worst case.
   */
  defense?: string;
  /** Continue from the checkpoint in `out` (the suite's state is saved every few seconds). */
  resume?: boolean;
  /** Write report.html (default true). */
  report?: boolean;
  onProgress?: (event: EvalRunEvent) => void;
}

export type EvalRunEvent =
  | { type: 'dataset'; dataset: Dataset; count: number }
  | { type: 'model'; path: string; parameters: number }
  | { type: 'resumed'; points: number }
  | { type: 'queue'; queue: QueueRunInfo }
  | { type: 'phase'; phase: string; total: number; workers: number }
  | { type: 'batch'; phase: string; done: number; total: number; robust?: number; evaluated?: number }
  | { type: 'sweep'; result: EpsilonResult };

/** Threat models a purifying defense is evaluated under (see defenses/aae-purifier.ts): what a naive evaluation sees, and BPDA. */
export const DEFENSE_THREAT_MODELS: readonly PurifierGradients[] = ['plain', 'bpda'];

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

/** What `advlab eval` writes in its output folder (checked before any work, see node/paths.ts). */
export const EVAL_OUTPUT: OutputLayout = {
  folders: ['checkpoint'],
  files: ['result.json', 'report.html', 'adversarial.npy', 'labels.npy', 'predictions.npy', 'broken-by.npy', 'queue-run.json'],
};

export const EVAL_DEFAULTS = { dataset: 'mnist', suite: 'standard', norm: 'linf' as Norm, n: 1000, batchSize: 128, seed: 0, sanitySample: 100 } as const;

/** Runs the evaluation and writes `out` (see the module comment). */
export async function evalRun(options: EvalRunOptions, backend: BackendInfo): Promise<EvalRunResult> {
  const startedAt = new Date();
  checkOutputFolder(options.out, 'out', EVAL_OUTPUT);
  const norm = options.norm ?? EVAL_DEFAULTS.norm;
  if (!NORMS.includes(norm)) throw new InputError('norm', `unknown norm "${norm}"; expected linf or l2`);
  if (!Array.isArray(options.eps) || !options.eps.length) throw new InputError('eps', 'at least one budget is required (e.g. 0.3 for mnist linf, or a sweep 0.1,0.2,0.3)');
  for (const e of options.eps) {
    checkEpsValue(e);
    if (e === 0) throw new InputError('eps', 'must be > 0');
  }
  const epsList = [...new Set(options.eps)].sort((a, b) => a - b);
  const headline = options.eps[0];
  const seed = options.seed ?? EVAL_DEFAULTS.seed;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new InputError('seed', `expected an integer >= 0, got ${seed}`);
  const batchSize = options.batchSize ?? EVAL_DEFAULTS.batchSize;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new InputError('batchSize', `expected a positive integer, got ${batchSize}`);
  if (options.n !== undefined && (!Number.isSafeInteger(options.n) || options.n < 1)) throw new InputError('n', `expected a positive integer, got ${options.n}`);
  const sanitySample = options.sanitySample ?? EVAL_DEFAULTS.sanitySample;
  if (!Number.isSafeInteger(sanitySample) || sanitySample < 0) throw new InputError('sanitySample', `expected an integer >= 0, got ${sanitySample}`);
  const corruptions = options.corruptions ?? [...CORRUPTION_NAMES];
  const minimal = options.minimal ?? (epsList.length > 1 ? ['deepfool'] : []);
  for (const m of minimal) if (!(MINIMAL_ATTACKS as readonly string[]).includes(m)) throw new InputError('minimal', `unknown minimal-perturbation attack "${m}"; expected ${MINIMAL_ATTACKS.join(', ')}`);
  const defenseSpec = options.defense === undefined ? undefined : parseDefenseSpec(options.defense);
  if (defenseSpec && options.preprocess) throw new InputError('defense', 'a purifier works on the images themselves: not together with --mean/--std');
  // A wrong or unreachable Redis fails here, in seconds, before any data is loaded.
  if (options.queue !== undefined) await (await import('../node/distributed/connection.js')).checkRedis(options.queue);
  // The purifier is opened before the data: a missing or corrupt AAE folder is named at once.
  const purifier: AaePurifier | undefined = defenseSpec ? await loadAaePurifier(defenseSpec.path).catch(rethrowFor('defense')) : undefined;
  let inputs: Awaited<ReturnType<typeof loadModelJob>>;
  try {
    inputs = await loadModelJob(options, EVAL_DEFAULTS, options.onProgress);
  } catch (e) {
    purifier?.dispose();
    throw e;
  }
  const { modelPath, datasetSpec, data, n, subset, bounds, model } = inputs;
  let classifier: Classifier | undefined;
  let runPool: RunPool | undefined;
  const purified: { name: PurifierGradients; model: tfl.LayersModel; classifier: Classifier }[] = [];
  try {
    const suite = buildSuite({ suite: options.suite, attacks: options.attacks, norm, numClasses: data.numClasses });
    const audited = suite.name === 'fast';
    if (audited && defenseSpec) throw new InputError('suite', 'the fast suite audits itself on the bare model; evaluate a defense with --suite standard');
    if (!audited && options.audit !== undefined) throw new InputError('audit', 'only the fast suite is audited (--suite fast)');
    classifier = Classifier.fromModel(model, { bounds, preprocess: options.preprocess });
    if (purifier) {
      if (bounds[0] !== 0 || bounds[1] !== 1) throw new InputError('defense', `an AAE reconstructs images in [0, 1]; the model's bounds are [${bounds.join(', ')}]`);
      for (const name of DEFENSE_THREAT_MODELS) {
        const m = purifiedModel(model, purifier, name);
        purified.push({ name, model: m, classifier: Classifier.fromModel(m, { bounds }) });
      }
    }
    // The classifiers the suite attacks: the model, or the purified one under each threat model.
    const attacked = purified.length ? purified.map((p) => p.classifier) : [classifier];
    for (const e of epsList) validateEps(e, norm, classifier, true);
    // Points, not batches, are the unit of parallel work: a run smaller than one batch still splits over the workers.
    runPool = await startRunPool({ queue: options.queue, workers: options.workers, out: options.out, resume: options.resume }, backend, classifier, n);
    const pool = runPool.pool;
    if (runPool.queue) options.onProgress?.({ type: 'queue', queue: runPool.queue });
    const workers = runPool.workers();

    const fingerprint = {
      model: modelFingerprint(attacked[0], subset.images, Math.min(n, 16)),
      defense: options.defense ?? null,
      dataset: datasetSpec,
      n,
      suite,
      norm,
      eps: epsList,
      audit: audited ? [options.audit ?? DEFAULT_AUDIT_SAMPLE, options.auditEscalate ?? true] : null,
      // The headline eps keeps its adversarial images in the checkpoint; the others do not.
      headline,
      batchSize,
      seed,
      allPoints: !!options.allPoints,
      bounds,
      preprocess: options.preprocess ?? null,
      minimal,
      corruptions,
      sanitySample,
    };
    const { checkpoint, resumed } = EvalCheckpoint.open(options.out, fingerprint, !!options.resume);
    const t0 = performance.now();

    // 1. The suite at every eps.
    const sweep: EpsilonResult[] = [];
    let main: Evaluation | undefined;
    // Under a defense, one evaluation per threat model (checkpoint slot k * T + t), then the per-example worst case.
    let reportedSuite = purified.length ? threatModelSuite(suite, DEFENSE_THREAT_MODELS) : suite;
    const threatSweeps: EpsilonResult[][] = attacked.map(() => []);
    let plainHead: Evaluation | undefined;
    for (let k = 0; k < epsList.length; k++) {
      const eps = epsList[k];
      const perThreat: Evaluation[] = [];
      for (let t = 0; t < attacked.length; t++) {
        const slot = k * attacked.length + t;
        const saved = resumed ? checkpoint.loadEvaluation(slot, n) : undefined;
        const phase = purified.length ? `eps ${eps} ${purified[t].name}` : `eps ${eps}`;
        options.onProgress?.({ type: 'phase', phase, total: n, workers });
        if (saved) options.onProgress?.({ type: 'resumed', points: finishedPoints(saved.state, suite).done });
        const evaluation = await evaluateRobustness(attacked[t], subset, {
          suite,
          eps,
          seed,
          batchSize,
          allPoints: options.allPoints,
          keepImages: eps === headline,
          pool,
          classNames: data.classNames,
          ...(saved ? { resume: saved } : {}),
          // Saved after every batch (a few MB at most, next to minutes of attack): a kill loses only the batches running.
          onProgress: ({ state, adversarial }) => {
            checkpoint.saveEvaluation(slot, state, adversarial);
            const { done, robust } = finishedPoints(state, suite);
            options.onProgress?.({ type: 'batch', phase, done, total: n, robust, evaluated: done });
          },
        });
        // Also when no batch ran (every point misclassified, or all done before a resume).
        checkpoint.saveEvaluation(slot, evaluation.state, evaluation.adversarial);
        perThreat.push(evaluation);
        threatSweeps[t].push(evaluation.summary);
      }
      const evaluation = perThreat.length > 1 ? worstOverThreatModels(perThreat, reportedSuite, subset.labels, { eps, classNames: data.classNames }) : perThreat[0];
      sweep.push(evaluation.summary);
      options.onProgress?.({ type: 'sweep', result: evaluation.summary });
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
      const resume = resumed ? { sample: checkpoint.loadEvaluation(slots.sample), rest: checkpoint.loadEvaluation(slots.rest) } : undefined;
      options.onProgress?.({ type: 'phase', phase: `audit at eps ${headline}`, total: 1, workers });
      const result = await auditEvaluation(classifier, subset, suite, head, {
        reference: buildSuite({ suite: 'standard', norm, numClasses: data.numClasses }),
        sample: options.audit,
        escalate: options.auditEscalate,
        eps: headline,
        seed,
        batchSize,
        pool,
        classNames: data.classNames,
        ...(resume ? { resume } : {}),
        onProgress: (part, e) => {
          checkpoint.saveEvaluation(slots[part], e.state, e.adversarial);
          options.onProgress?.({ type: 'batch', phase: `audit at eps ${headline}`, done: e.done, total: e.total, robust: e.total - e.broken, evaluated: e.done });
        },
      });
      head = result.evaluation;
      audit = result.audit;
      reportedSuite = result.suite;
      sweep[epsList.indexOf(headline)] = head.summary;
      options.onProgress?.({ type: 'sweep', result: head.summary });
    }

    // The AAE as a detector, against PGD on the bare classifier.
    let detector: DetectorResult | null = null;
    if (purifier) {
      detector = (resumed && checkpoint.load<DetectorResult>('detector')) || null;
      if (!detector) {
        options.onProgress?.({ type: 'phase', phase: 'detector', total: 1, workers });
        detector = await evaluateDetector(classifier, purified[0].model, purifier, subset, { eps: headline, norm, seed, pool });
        checkpoint.save('detector', detector);
        options.onProgress?.({ type: 'batch', phase: 'detector', done: 1, total: 1 });
      }
    }

    // 2. Minimal perturbations.
    let minimalSummary = null;
    let minimalCheck: SanityCheck = {
      id: 'minimal-vs-suite',
      title: 'The suite finds at least what the minimal-perturbation attacks imply',
      verdict: 'skipped',
      message: 'no minimal-perturbation attack ran (--minimal)',
      figures: {},
    };
    if (minimal.length) {
      options.onProgress?.({ type: 'phase', phase: 'minimal perturbations', total: 1, workers });
      let norms = loadMinimal(checkpoint, resumed);
      if (!norms) {
        norms = await minimalNorms(attacked[attacked.length - 1], subset, { attacks: minimal, norm, seed, batchSize, pool });
        checkpoint.save('minimal', { norms: encodeArray(norms.norms), gradients: norms.gradients, seconds: norms.seconds });
      }
      const top = Math.max(...epsList) * 1.25;
      const grid = Array.from({ length: 51 }, (_, i) => (top * i) / 50);
      minimalSummary = summarizeMinimal(norms, minimal, norm, grid);
      minimalCheck = checkMinimalAgainstSuite(norms.norms, sweep, minimalCheck);
      options.onProgress?.({ type: 'batch', phase: 'minimal perturbations', done: 1, total: 1 });
    }

    // 3. Corruptions.
    let corruptionResult: CorruptionAccuracyResult | null = null;
    if (corruptions.length) {
      corruptionResult = (resumed && checkpoint.load<CorruptionAccuracyResult>('corruptions')) || null;
      if (!corruptionResult) {
        options.onProgress?.({ type: 'phase', phase: 'corruptions', total: corruptions.length * 5, workers: 1 });
        corruptionResult = await corruptionAccuracy(attacked[0], subset.images, subset.labels, subset.imageShape, {
          corruptions,
          seed,
          batchSize: 256,
          onProgress: (e) => {
            if (e.corruption !== 'clean') options.onProgress?.({ type: 'batch', phase: 'corruptions', done: e.done - 1, total: e.total - 1 });
          },
        });
        checkpoint.save('corruptions', corruptionResult);
      }
    }

    // 4. Sanity checks.
    let checks = (resumed && checkpoint.load<SanityCheck[]>('sanity')) || null;
    if (!checks) {
      options.onProgress?.({ type: 'phase', phase: 'sanity checks', total: 6, workers });
      // Before the audit's stages: the checks read the suite's own verdicts (the audit ran on a sample only).
      checks = await sanity(attacked[0], subset, suite, plainHead ?? head, purified.length || audited ? threatSweeps[0] : sweep, epsList, headline, Math.min(sanitySample, n), seed, pool, (done) =>
        options.onProgress?.({ type: 'batch', phase: 'sanity checks', done, total: 6 }),
      );
      checkpoint.save('sanity', checks);
    }
    checks = [...checks, minimalCheck];

    // Outputs.
    const out = options.out;
    const [h, w, c] = subset.imageShape;
    const files = { adversarial: 'adversarial.npy', labels: 'labels.npy', predictions: 'predictions.npy', brokenBy: 'broken-by.npy', report: 'report.html' };
    writeNpy(join(out, files.adversarial), head.adversarial!, [n, h, w, c]);
    writeNpy(join(out, files.labels), subset.labels, [n]);
    const predictions = new Int32Array(2 * n);
    predictions.set(head.cleanPredictions, 0);
    predictions.set(head.finalPredictions, n);
    writeNpy(join(out, files.predictions), predictions, [2, n]);
    writeNpy(join(out, files.brokenBy), Int32Array.from(head.brokenBy), [n]);

    const headSummary = sweep[epsList.indexOf(headline)];
    const brokenBy: Record<string, number> = { misclassified: 0, robust: 0 };
    for (const s of reportedSuite.stages) brokenBy[s.name] = 0;
    for (const b of head.brokenBy) {
      if (b === MISCLASSIFIED) brokenBy.misclassified++;
      else if (b === ROBUST) brokenBy.robust++;
      else brokenBy[reportedSuite.stages[b].name]++;
    }
    const cleanCorrect = n - brokenBy.misclassified;
    const seconds = (performance.now() - t0) / 1000;
    const result: EvalRunResult = {
      ...runMeta('eval', backend, seed, startedAt),
      options: {
        model: options.model,
        dataset: datasetSpec,
        suite: suite.name,
        attacks: options.attacks ?? null,
        norm,
        eps: [...options.eps],
        n,
        batchSize,
        seed,
        corruptions: [...corruptions],
        minimal: minimal.length ? minimal.join(',') : null,
        bounds,
        preprocess: options.preprocess ? { mean: toJson(options.preprocess.mean), std: toJson(options.preprocess.std) } : null,
        workers: options.workers ?? 'auto',
        ...(runPool.queue ? { queue: runPool.queue.url } : {}),
        allPoints: !!options.allPoints,
        defense: options.defense ?? null,
        out,
      },
      dataset: { name: data.name, testSize: data.test.count, numClasses: data.numClasses, imageShape: [...data.test.imageShape], classNames: [...data.classNames] },
      model: options.model,
      modelPath,
      suite: reportedSuite,
      norm,
      count: n,
      cleanAccuracy: cleanCorrect / n,
      eps: headline,
      robustAccuracy: headSummary.robustAccuracy,
      confidenceInterval: headSummary.confidenceInterval,
      sweep,
      brokenBy,
      minimal: minimalSummary,
      corruptions: corruptionResult,
      sanity: { verdict: overallVerdict(checks), checks },
      audit,
      defense: purifier
        ? {
            kind: 'aae',
            path: purifier.path,
            threatModels: DEFENSE_THREAT_MODELS.map((name, t) => ({ name, description: PURIFIER_GRADIENT_DESCRIPTIONS[name], robustAccuracy: threatSweeps[t][epsList.indexOf(headline)].robustAccuracy, sweep: threatSweeps[t] })),
            detector: detector!,
          }
        : null,
      workers: runPool.workers(),
      seconds,
      gradientsPerImage: sweep.reduce((a, s) => a + s.gradients, 0) / n,
      queriesPerImage: sweep.reduce((a, s) => a + s.queries, 0) / n,
      imagesPerSecond: headSummary.imagesPerSecond,
      resumed,
      files,
      packages: packageVersions(),
    };
    if (options.report ?? true) {
      const { renderEvalReport } = await import('../report/eval-report.js');
      const html = await renderEvalReport(result, {
        clean: subset.images,
        adversarial: head.adversarial!,
        labels: subset.labels,
        cleanPredictions: head.cleanPredictions,
        adversarialPredictions: head.finalPredictions,
        brokenBy: head.brokenBy,
        imageShape: [h, w, c],
      });
      writeFileAtomic(join(out, files.report), html);
    }
    writeJsonAtomic(join(out, 'result.json'), result);
    return result;
  } finally {
    await runPool?.close();
    await clearWorkerModels();
    classifier?.dispose();
    // The purified models add no weights of their own: disposing the parts frees them.
    for (const p of purified) p.classifier.dispose();
    purifier?.dispose();
    model.dispose();
  }
}

async function sanity(
  classifier: Classifier,
  subset: ReturnType<typeof balancedSubset>,
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

function loadMinimal(checkpoint: EvalCheckpoint, resumed: boolean): MinimalNorms | undefined {
  if (!resumed) return undefined;
  const saved = checkpoint.load<{ norms: Parameters<typeof decodeArray>[0]; gradients: number; seconds: number }>('minimal');
  if (!saved) return undefined;
  return { norms: decodeArray(saved.norms, join(checkpoint.dir, 'minimal.json')) as Float32Array, gradients: saved.gradients, seconds: saved.seconds };
}

/** Identifies the model by its logits on a few images: another model or other weights give another checkpoint fingerprint. */
function modelFingerprint(classifier: Classifier, images: Float32Array, m: number): string {
  const [h, w, c] = classifier.inputShape;
  const logits = tf.tidy(() => classifier.logits(tf.tensor4d(images.subarray(0, m * h * w * c), [m, h, w, c])).dataSync() as Float32Array);
  return createHash('sha256').update(Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength)).digest('hex');
}

function toJson(v: number | readonly number[]): number | number[] {
  return typeof v === 'number' ? v : [...v];
}
