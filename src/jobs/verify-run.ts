/**
 * `advlab verify`: verified accuracy under interval bound propagation
 * (robustness/interval-bounds.ts) at each Linf budget, next to clean
 * accuracy and PGD's robust accuracy on the same images, and on request the
 * robust accuracy a whole suite leaves (`suite: 'standard'`, the AutoAttack-grade
 * evaluation). A verified image is a lower bound's witness (no input in the
 * ball changes its class); an attack's robust accuracy is an upper bound. An
 * image both verified and broken would be a bug in advlab: it is counted as
 * a violation, reported, and fails the run.
 */
import { join } from 'node:path';
import { tf, tfl } from '../engine/tf.js';
import type { BackendInfo } from '../engine/backend.js';
import { clearWorkerModels } from '../models/pool-model.js';
import { startJobPool, workerCount, type WorkersSpec } from '../node/workers.js';
import { loadModelJob, type ModelJobOptions } from './job-options.js';
import { Classifier } from '../models/classifier.js';
import { classifierPredictions } from '../models/evaluate.js';
import { packageVersions } from './train-run.js';
import { runMeta, type RunMeta } from '../report/meta.js';
import { writeFileAtomic, writeJsonAtomic } from '../node/atomic.js';
import { checkOutputFolder, type OutputLayout } from '../node/paths.js';
import { InputError } from '../errors.js';
import { runAttack } from '../attacks/run.js';
import { pgd } from '../attacks/pgd.js';
import { checkEpsValue } from '../attacks/validate.js';
import { intervalChain, verifiedAt } from '../robustness/interval-bounds.js';
import { buildSuite, type SuiteName } from '../robustness/suites.js';
import { evaluateRobustness } from '../robustness/evaluate.js';
import type { WorkerPool } from '../node/worker-pool.js';

/** Options of {@link verifyRun}. */
export interface VerifyRunOptions extends Omit<ModelJobOptions, 'queue' | 'preprocess'> {
  /** Linf budgets in the input's scale. */
  eps: number[];
  /** Steps of the PGD run next to each budget (default 40; 0 skips PGD and its check). */
  pgdSteps?: number;
  /** Random restarts of that PGD (default 1). */
  pgdRestarts?: number;
  /** A robustness suite run on the same images at each budget, as a second, stronger upper bound (default 'none'). */
  suite?: SuiteName | 'none';
  onProgress?: (event: VerifyRunEvent) => void;
}

export type VerifyRunEvent =
  | { type: 'model'; path: string; parameters: number }
  | { type: 'point'; eps: number; verified: number; robust: number | null; suiteRobust: number | null; count: number };

/** One budget's figures. */
export interface VerifyPoint {
  eps: number;
  /** Images correctly classified and verified (every margin's upper bound below 0). */
  verified: number;
  verifiedAccuracy: number;
  /** Images correctly classified that PGD did not break; null without PGD. */
  pgdRobust: number | null;
  pgdRobustAccuracy: number | null;
  /** Images correctly classified that the suite did not break; null without a suite. */
  suiteRobust: number | null;
  suiteRobustAccuracy: number | null;
  /** Verified images PGD or the suite broke: always 0 unless advlab has a bug. */
  violations: number;
  /** Seconds for the bounds, for PGD and for the suite. */
  boundSeconds: number;
  pgdSeconds: number | null;
  suiteSeconds: number | null;
}

/** result.json of `advlab verify`. */
export interface VerifyRunResult extends RunMeta {
  options: { model: string; dataset: string; eps: number[]; n: number; batchSize: number; seed: number; bounds: [number, number]; pgdSteps: number; pgdRestarts: number; suite: SuiteName | 'none'; out: string };
  dataset: { name: string; testSize: number; numClasses: number; imageShape: number[] };
  model: { path: string; parameters: number };
  count: number;
  correct: number;
  cleanAccuracy: number;
  points: VerifyPoint[];
  workers: number;
  files: { report: string };
  packages: Record<string, string>;
}

export const VERIFY_OUTPUT: OutputLayout = { files: ['result.json', 'report.html'] };
export const VERIFY_DEFAULTS = { dataset: 'mnist', n: 1000, batchSize: 128, seed: 0, pgdSteps: 40, pgdRestarts: 1, suite: 'none' } as const;

/** Runs the verification (see the module comment) and writes result.json and report.html into `out`. */
export async function verifyRun(options: VerifyRunOptions, backend: BackendInfo): Promise<VerifyRunResult> {
  const startedAt = new Date();
  checkOutputFolder(options.out, 'out', VERIFY_OUTPUT);
  if (!Array.isArray(options.eps) || options.eps.length === 0) throw new InputError('eps', 'expected one or more Linf budgets');
  for (const e of options.eps) checkEpsValue(e);
  const pgdSteps = options.pgdSteps ?? VERIFY_DEFAULTS.pgdSteps;
  const pgdRestarts = options.pgdRestarts ?? VERIFY_DEFAULTS.pgdRestarts;
  if (!Number.isSafeInteger(pgdSteps) || pgdSteps < 0) throw new InputError('pgdSteps', `expected an integer >= 0, got ${pgdSteps}`);
  if (!Number.isSafeInteger(pgdRestarts) || pgdRestarts < 1) throw new InputError('pgdRestarts', `expected an integer >= 1, got ${pgdRestarts}`);
  const suiteName = options.suite ?? VERIFY_DEFAULTS.suite;
  const batchSize = options.batchSize ?? VERIFY_DEFAULTS.batchSize;
  const seed = options.seed ?? VERIFY_DEFAULTS.seed;
  const job = await loadModelJob(options, VERIFY_DEFAULTS, (e) => e.type === 'model' && options.onProgress?.(e));
  const model = job.model;
  if (!(model instanceof tfl.LayersModel)) throw new InputError('model', 'interval bounds need the layers of a Layers model (model.json of format layers-model), not a graph model');
  for (const e of options.eps) if (e > job.bounds[1] - job.bounds[0]) throw new InputError('eps', `${e} exceeds the input range: is it in the input's scale?`);
  intervalChain(model); // names a layer IBP cannot pass before any work
  let pool: WorkerPool | undefined;
  try {
    // Built once, before any work: buildSuite names a bad suite as an InputError.
    const suite = suiteName === 'none' ? null : buildSuite({ suite: suiteName, norm: 'linf', numClasses: job.data.numClasses });
    const classifier = Classifier.fromModel(model, { bounds: job.bounds });
    const { subset } = job;
    const input = { images: subset.images, labels: subset.labels, count: subset.count, imageShape: subset.imageShape };
    const [h, w, c] = subset.imageShape;
    const size = h * w * c;
    const predictions = await classifierPredictions(classifier, subset, batchSize);
    const correctMask = Array.from(predictions, (p, i) => p === subset.labels[i]);
    const correct = correctMask.filter(Boolean).length;
    if (pgdSteps > 0 || suite) pool = await startJobPool(workerCount(options.workers, backend, Math.ceil(job.subset.count / batchSize)), backend);
    const points: VerifyPoint[] = [];
    for (const eps of options.eps) {
      const t0 = performance.now();
      const verified = new Array<boolean>(subset.count).fill(false);
      for (let from = 0; from < subset.count; from += batchSize) {
        const to = Math.min(subset.count, from + batchSize);
        const x = tf.tensor4d(subset.images.subarray(from * size, to * size), [to - from, h, w, c]);
        const y = tf.tensor1d(subset.labels.subarray(from, to), 'int32');
        try {
          (await verifiedAt(model, x, y, eps, job.bounds)).forEach((v, i) => (verified[from + i] = v && correctMask[from + i]));
        } finally {
          tf.dispose([x, y]);
        }
      }
      const boundSeconds = (performance.now() - t0) / 1000;
      let broken: Uint8Array | null = null;
      let pgdSeconds: number | null = null;
      if (pgdSteps > 0) {
        const t1 = performance.now();
        const attack = await runAttack(pgd, classifier, input, { eps, norm: 'linf', seed, batchSize, params: { steps: pgdSteps, restarts: pgdRestarts }, ...(pool ? { pool } : {}) });
        broken = attack.success;
        pgdSeconds = (performance.now() - t1) / 1000;
      }
      let suiteBroken: boolean[] | null = null;
      let suiteSeconds: number | null = null;
      if (suite) {
        const t2 = performance.now();
        const evaluation = await evaluateRobustness(classifier, input, { suite, eps, seed, batchSize, keepImages: false, ...(pool ? { pool } : {}) });
        suiteBroken = Array.from(evaluation.brokenBy, (b) => b >= 0); // a stage's index: broken by it
        suiteSeconds = (performance.now() - t2) / 1000;
      }
      const verifiedCount = verified.filter(Boolean).length;
      const robust = broken ? correctMask.filter((ok, i) => ok && !broken![i]).length : null;
      const suiteRobust = suiteBroken ? correctMask.filter((ok, i) => ok && !suiteBroken![i]).length : null;
      const violations = verified.filter((v, i) => v && (broken?.[i] === 1 || suiteBroken?.[i] === true)).length;
      const point: VerifyPoint = {
        eps,
        verified: verifiedCount,
        verifiedAccuracy: verifiedCount / subset.count,
        pgdRobust: robust,
        pgdRobustAccuracy: robust === null ? null : robust / subset.count,
        suiteRobust,
        suiteRobustAccuracy: suiteRobust === null ? null : suiteRobust / subset.count,
        violations,
        boundSeconds,
        pgdSeconds,
        suiteSeconds,
      };
      points.push(point);
      options.onProgress?.({ type: 'point', eps, verified: verifiedCount, robust, suiteRobust, count: subset.count });
    }
    const result: VerifyRunResult = {
      ...runMeta('verify', backend, seed, startedAt),
      options: { model: options.model, dataset: job.datasetSpec, eps: [...options.eps], n: job.n, batchSize, seed, bounds: job.bounds, pgdSteps, pgdRestarts, suite: suiteName, out: options.out },
      dataset: { name: job.data.name, testSize: job.data.test.count, numClasses: job.data.numClasses, imageShape: [...job.data.test.imageShape] },
      model: { path: job.modelPath, parameters: model.countParams() },
      count: subset.count,
      correct,
      cleanAccuracy: correct / subset.count,
      points,
      workers: pool?.size ?? 1,
      files: { report: 'report.html' },
      packages: packageVersions(),
    };
    const { renderVerifyReport } = await import('../report/verify-report.js');
    writeFileAtomic(join(options.out, 'report.html'), renderVerifyReport(result));
    writeJsonAtomic(join(options.out, 'result.json'), result);
    const bad = points.filter((p) => p.violations > 0);
    if (bad.length) {
      throw new Error(`advlab bug: ${bad.map((p) => `${p.violations} image(s) at eps ${p.eps}`).join(', ')} verified by interval bounds but broken by ${suiteName === 'none' ? 'PGD' : `PGD or the ${suiteName} suite`}; a certificate can never exceed what an attack leaves robust (results kept in ${options.out} for the bug report)`);
    }
    return result;
  } finally {
    await pool?.close();
    if (pool) await clearWorkerModels();
    model.dispose();
  }
}

export type { WorkersSpec };
