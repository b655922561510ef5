/**
 * The `advlab eval` job in Node: a robustness evaluation of a trained model on a
 * class-balanced subset of a dataset's test split, written to a folder.
 *
 * It checks the options and reads the model and data, starts the worker pool
 * (or the Redis queue), opens the checkpoint folder (eval-checkpoint.ts, the
 * job's store: a killed run resumes), and runs the platform-neutral job
 * (eval-job.ts: the suite over the sweep, the audit, minimal perturbations,
 * corruptions, sanity checks). Then NPY arrays, report.html and, last, result.json.
 */
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { BackendInfo } from '../engine/backend.js';
import { startRunPool, type QueueRunInfo, type RunPool } from '../node/distributed/run-pool.js';
import { loadModelJob, type ModelJobOptions } from './job-options.js';
import { tf } from '../engine/tf.js';
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
import { EvalCheckpoint } from '../node/eval-checkpoint.js';
import { DEFAULT_AUDIT_SAMPLE } from '../robustness/audit.js';
import { MINIMAL_ATTACKS } from '../robustness/minimal.js';
import { CORRUPTION_NAMES, type CorruptionName } from '../robustness/corruptions.js';
import { runEvalJob, type EvalJobEvent } from './eval-job.js';
import type { EvalRunResult } from '../robustness/types.js';
import { loadAaePurifier } from '../node/aae-purifier-files.js';
import { parseDefenseSpec, purifiedModel, PURIFIER_GRADIENT_DESCRIPTIONS, type AaePurifier, type PurifierGradients } from '../defenses/aae-purifier.js';
import { evaluateDetector } from '../robustness/defense-eval.js';
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

export type EvalRunEvent = EvalJobEvent | { type: 'dataset'; dataset: Dataset; count: number } | { type: 'model'; path: string; parameters: number } | { type: 'queue'; queue: QueueRunInfo };

/** Threat models a purifying defense is evaluated under (see defenses/aae-purifier.ts): what a naive evaluation sees, and BPDA. */
export const DEFENSE_THREAT_MODELS: readonly PurifierGradients[] = ['plain', 'bpda'];

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
    const job = await runEvalJob({
      classifier,
      ...(purified.length ? { threatModels: purified.map((p) => ({ name: p.name, classifier: p.classifier })) } : {}),
      ...(purifier ? { detector: () => evaluateDetector(classifier!, purified[0].model, purifier, subset, { eps: headline, norm, seed, pool }) } : {}),
      images: subset,
      classNames: data.classNames,
      suite,
      eps: options.eps,
      seed,
      batchSize,
      allPoints: options.allPoints,
      audit: options.audit,
      auditEscalate: options.auditEscalate,
      minimal,
      corruptions,
      sanitySample,
      pool,
      workers,
      store: checkpoint,
      resumed,
      onProgress: options.onProgress,
    });
    const { head, threatSweeps, detector } = job;

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
      ...job.fields,
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

/** Identifies the model by its logits on a few images: another model or other weights give another checkpoint fingerprint. */
function modelFingerprint(classifier: Classifier, images: Float32Array, m: number): string {
  const [h, w, c] = classifier.inputShape;
  const logits = tf.tidy(() => classifier.logits(tf.tensor4d(images.subarray(0, m * h * w * c), [m, h, w, c])).dataSync() as Float32Array);
  return createHash('sha256').update(Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength)).digest('hex');
}

function toJson(v: number | readonly number[]): number | number[] {
  return typeof v === 'number' ? v : [...v];
}
