/**
 * A robustness evaluation at one epsilon over a whole image set: batches through
 * the suite (here or on a worker pool), per-example worst case, and the
 * summary (robust accuracy with its 95% interval, per stage, per class).
 */
import type { Classifier } from '../models/classifier.js';
import { shareClassifier } from '../models/pool-model.js';
import { poolFor, type TaskPool, type TaskRef } from '../engine/pool.js';
import { validateInput, validateEps, type AttackInput } from '../attacks/validate.js';
import { deriveSeed } from '../util/rng.js';
import { InputError } from '../errors.js';
import { evaluateBatch, MISCLASSIFIED, ROBUST, type EnsembleBatchResult } from './ensemble.js';
import { EVAL_TASK_URL, type EvalBatchPayload } from './pool-task.js';
import type { ClassSummary, EpsilonResult, StageSummary, Suite } from './types.js';

/** Options of {@link evaluateRobustness}. */
export interface EvaluateOptions {
  suite: Suite;
  eps: number;
  /** Default 0. Batch b runs with deriveSeed(seed, `eval:<first index>`), whatever the pool. */
  seed?: number;
  /** Images per batch (default 128): the unit of work, of parallelism and of checkpoints. */
  batchSize?: number;
  /** Every stage on every point (see EnsembleOptions.allPoints). */
  allPoints?: boolean;
  /** Keep the adversarial images (default true). */
  keepImages?: boolean;
  /** Spreads batches over these workers (a classifier from a LayersModel only): threads, or processes behind a queue. */
  pool?: TaskPool;
  /** Class names for the per-class table (default: the class numbers). */
  classNames?: readonly string[];
  /** Results of batches finished before (resume), by batch index; they are not recomputed. */
  done?: ReadonlyMap<number, EnsembleBatchResult>;
  /** Called once per batch, in batch order, as soon as it is final (also for batches from `done`). */
  onBatch?: (event: { index: number; batches: number; start: number; end: number; result: EnsembleBatchResult; fromCheckpoint: boolean }) => void | Promise<void>;
}

/** Everything an evaluation at one epsilon found, per example and in summary. */
export interface Evaluation {
  summary: EpsilonResult;
  cleanPredictions: Int32Array;
  finalPredictions: Int32Array;
  brokenBy: Int8Array;
  adversarial: Float32Array | null;
}

// Built when used: the task module imports the ensemble, which imports the attack registry.
const evalTask = (label: string): TaskRef => ({ module: EVAL_TASK_URL, name: 'evalBatchTask', label });

/**
 * Evaluates `classifier` on `input` with a suite at `options.eps` (see
 * ensemble.ts for the per-batch procedure). Results do not depend on the pool
 * or on resuming: each batch has a fixed seed.
 */
export async function evaluateRobustness(classifier: Classifier, input: AttackInput, options: EvaluateOptions): Promise<Evaluation> {
  validateInput(classifier, input);
  validateEps(options.eps, options.suite.norm, classifier, true);
  const batchSize = options.batchSize ?? 128;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new InputError('batchSize', `expected a positive integer, got ${batchSize}`);
  const seed = options.seed ?? 0;
  const n = input.count;
  const size = input.imageShape[0] * input.imageShape[1] * input.imageShape[2];
  const ranges: [number, number][] = [];
  for (let s = 0; s < n; s += batchSize) ranges.push([s, Math.min(n, s + batchSize)]);
  const keepImages = options.keepImages ?? true;
  const slice = (start: number, end: number): AttackInput => ({
    images: input.images.slice(start * size, end * size),
    labels: input.labels.slice(start, end),
    imageShape: input.imageShape,
    count: end - start,
  });
  const batchOptions = (start: number) => ({ suite: options.suite, eps: options.eps, seed: deriveSeed(seed, `eval:${start}`), allPoints: options.allPoints ?? false, keepImages });

  const todo = ranges.map((_, i) => i).filter((i) => !options.done?.has(i));
  const pending = new Map<number, Promise<EnsembleBatchResult>>();
  const pool = poolFor(options.pool, todo.length);
  if (pool) {
    const shared = await shareClassifier(classifier);
    for (const i of todo) {
      const [start, end] = ranges[i];
      const payload: EvalBatchPayload = { classifier: shared, input: slice(start, end), options: batchOptions(start) };
      const p = pool.run<EnsembleBatchResult, EvalBatchPayload>(evalTask(`eps ${options.eps} batch ${i} (images ${start}-${end - 1})`), [payload], (q) => [q.input.images.buffer]).then((r) => r[0]);
      p.catch(() => {}); // reported when its turn comes below
      pending.set(i, p);
    }
  }

  const results: EnsembleBatchResult[] = [];
  for (let i = 0; i < ranges.length; i++) {
    const [start, end] = ranges[i];
    const previous = options.done?.get(i);
    if (previous && previous.count !== end - start) throw new InputError('done', `checkpoint of batch ${i} holds ${previous.count} images, expected ${end - start}`);
    const result = previous ?? (await (pending.get(i) ?? evaluateBatch(classifier, slice(start, end), batchOptions(start))));
    results.push(result);
    await options.onBatch?.({ index: i, batches: ranges.length, start, end, result, fromCheckpoint: !!previous });
  }
  return combine(results, input, options, size);
}

function combine(results: EnsembleBatchResult[], input: AttackInput, options: EvaluateOptions, size: number): Evaluation {
  const n = input.count;
  const cleanPredictions = new Int32Array(n);
  const finalPredictions = new Int32Array(n);
  const brokenBy = new Int8Array(n);
  const keep = (options.keepImages ?? true) && results.every((r) => r.adversarial);
  const adversarial = keep ? new Float32Array(n * size) : null;
  let offset = 0;
  for (const r of results) {
    cleanPredictions.set(r.cleanPredictions, offset);
    finalPredictions.set(r.finalPredictions, offset);
    brokenBy.set(r.brokenBy, offset);
    if (adversarial) adversarial.set(r.adversarial!, offset * size);
    offset += r.count;
  }
  return { summary: summarizeEvaluation(results, input.labels, options), cleanPredictions, finalPredictions, brokenBy, adversarial };
}

/** The {@link EpsilonResult} of a set of batch results. */
export function summarizeEvaluation(results: readonly EnsembleBatchResult[], labels: Int32Array, options: Pick<EvaluateOptions, 'suite' | 'eps' | 'classNames' | 'allPoints'>): EpsilonResult {
  const n = labels.length;
  const brokenBy = new Int8Array(n);
  let offset = 0;
  for (const r of results) {
    brokenBy.set(r.brokenBy, offset);
    offset += r.count;
  }
  let correct = 0;
  let robust = 0;
  for (let i = 0; i < n; i++) {
    if (brokenBy[i] !== MISCLASSIFIED) correct++;
    if (brokenBy[i] === ROBUST) robust++;
  }
  let remaining = correct;
  const stages: StageSummary[] = options.suite.stages.map((stage, s) => {
    const sum = (key: 'broken' | 'attacked' | 'gradients' | 'queries' | 'seconds') => results.reduce((a, r) => a + (r.stages[s]?.[key] ?? 0), 0);
    const broken = sum('broken');
    remaining -= broken;
    const summary: StageSummary = {
      name: stage.name,
      attack: stage.attack,
      broken,
      robustAccuracyAfter: remaining / n,
      attacked: sum('attacked'),
      gradients: sum('gradients'),
      queries: sum('queries'),
      seconds: sum('seconds'),
    };
    if (options.allPoints) summary.standaloneRobustAccuracy = results.reduce((a, r) => a + (r.stages[s]?.standaloneRobust ?? 0), 0) / n;
    return summary;
  });
  const gradients = stages.reduce((a, s) => a + s.gradients, 0);
  const queries = stages.reduce((a, s) => a + s.queries, 0);
  const seconds = stages.reduce((a, s) => a + s.seconds, 0);
  return {
    eps: options.eps,
    robustCount: robust,
    robustAccuracy: robust / n,
    confidenceInterval: wilsonInterval(robust, n),
    stages,
    perClass: perClass(labels, brokenBy, options.classNames),
    gradients,
    queries,
    gradientsPerImage: gradients / n,
    queriesPerImage: queries / n,
    seconds,
    imagesPerSecond: seconds > 0 ? n / seconds : 0,
  };
}

/**
 * 95% Wilson score interval of a proportion k / n (Wilson 1927): unlike the
 * normal approximation it stays inside [0, 1] and is sensible at k = 0 or n.
 */
export function wilsonInterval(k: number, n: number, z = 1.959963984540054): [number, number] {
  if (n === 0) return [0, 1];
  const p = k / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // The bounds are exactly 0 and 1 at k = 0 and k = n (rounding would leave 1e-18).
  return [k === 0 ? 0 : Math.max(0, centre - half), k === n ? 1 : Math.min(1, centre + half)];
}

function perClass(labels: Int32Array, brokenBy: Int8Array, names?: readonly string[]): ClassSummary[] {
  const k = Math.max(names?.length ?? 0, ...Array.from(labels, (l) => l + 1));
  const count = new Array(k).fill(0);
  const correct = new Array(k).fill(0);
  const robust = new Array(k).fill(0);
  labels.forEach((l, i) => {
    count[l]++;
    if (brokenBy[i] !== MISCLASSIFIED) correct[l]++;
    if (brokenBy[i] === ROBUST) robust[l]++;
  });
  return count.map((c, j) => ({ class: j, name: names?.[j] ?? String(j), count: c, cleanAccuracy: c ? correct[j] / c : 0, robustAccuracy: c ? robust[j] / c : 0 }));
}
