/**
 * A robustness evaluation at one epsilon over a whole image set: every point
 * through the suite's stages in order, each stage only on the points no earlier
 * one broke, the verdict per point the worst case over stages (AutoAttack,
 * Croce & Hein 2020). The points move through the stages independently and
 * are gathered into full engine batches across the whole set (schedule.ts),
 * run here or on a worker pool; then the summary: robust accuracy with its 95%
 * interval, per stage, per class.
 */
import { tf } from '../engine/tf.js';
import { readOne } from '../engine/read.js';
import type { Classifier } from '../models/classifier.js';
import { shareClassifier, type SharedClassifier } from '../models/pool-model.js';
import type { TaskPool, TaskRef } from '../engine/task-pool.js';
import { validateInput, validateEps, type AttackInput } from '../attacks/validate.js';
import { deriveSeed } from '../util/rng.js';
import { InputError } from '../errors.js';
import { initialState, MISCLASSIFIED, ROBUST, Scheduler, type PipelineState, type ScheduledBatch, type StageFigures } from './schedule.js';
import { runStageBatch, type StageBatchInput, type StageBatchOutput } from './stage-batch.js';
import { EVAL_TASK_URL, type MaltRankPayload, type StageBatchPayload } from './pool-task.js';
import { rankByLogits, rankByMalt, type TargetOrder } from './targets.js';
import type { Norm } from '../attacks/types.js';
import type { ClassSummary, EpsilonResult, StageSummary, Suite } from './types.js';

/** Options of {@link evaluateRobustness}. */
export interface EvaluateOptions {
  suite: Suite;
  eps: number;
  /** Default 0. Point i's run at stage s and target rank r is seeded with deriveSeed(seed, `<stage name>:<r>:<id of i>`). */
  seed?: number;
  /**
   * Each point's id in its seeds (default its index): a subset evaluated with
   * the ids the points have in the whole set gets exactly the whole set's runs.
   */
  pointIds?: Int32Array;
  /** Largest engine batch (default 128). */
  batchSize?: number;
  /** Every stage on every point (not only those still robust), to measure each stage alone; the verdict is the same, the cost much higher. */
  allPoints?: boolean;
  /** Keep the adversarial images (default true). */
  keepImages?: boolean;
  /** Spreads batches over these workers (a classifier from a LayersModel only): threads, or processes behind a queue. */
  pool?: TaskPool;
  /** Class names for the per-class table (default: the class numbers). */
  classNames?: readonly string[];
  /** Where an earlier run stopped (from {@link Evaluation.state} or onProgress): finished runs are not repeated. */
  resume?: { state: PipelineState; adversarial: Float32Array | null };
  /** Called after each batch, with the state to checkpoint. */
  onProgress?: (event: EvaluationProgress) => void | Promise<void>;
}

/** Progress of an evaluation after one batch. */
export interface EvaluationProgress {
  /** Points through their whole plan, of `total`. */
  done: number;
  total: number;
  /** Points broken so far. */
  broken: number;
  stage: string;
  state: PipelineState;
  /** The adversarial images so far (broken points), when kept. */
  adversarial: Float32Array | null;
}

/** Everything an evaluation at one epsilon found, per example and in summary. */
export interface Evaluation {
  summary: EpsilonResult;
  cleanPredictions: Int32Array;
  finalPredictions: Int32Array;
  brokenBy: Int8Array;
  adversarial: Float32Array | null;
  state: PipelineState;
}

const stageTask: TaskRef = { module: EVAL_TASK_URL, name: 'stageBatchTask' };

/** Pools that report unbounded capacity (queues) get this many batches at once. */
const REMOTE_SLOTS = 8;

/**
 * Evaluates `classifier` on `input` with a suite at `options.eps`. Verdicts
 * depend neither on the pool, nor on the batch size, nor on resuming: each
 * point's runs draw from its own seeds, and the engine's results for an image
 * do not depend on its batch.
 */
export async function evaluateRobustness(classifier: Classifier, input: AttackInput, options: EvaluateOptions): Promise<Evaluation> {
  validateInput(classifier, input);
  validateEps(options.eps, options.suite.norm, classifier, true);
  const batchSize = options.batchSize ?? 128;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new InputError('batchSize', `expected a positive integer, got ${batchSize}`);
  const { suite, eps } = options;
  const seed = options.seed ?? 0;
  const n = input.count;
  const size = input.imageShape[0] * input.imageShape[1] * input.imageShape[2];
  const k = classifier.numClasses;
  const cleanLogits = await logitsOf(classifier, input, batchSize);
  const cleanPredictions = new Int32Array(n);
  for (let i = 0; i < n; i++) cleanPredictions[i] = argmax(cleanLogits, i * k, k);
  // Target rank r (from 2) is entry r - 2 of a point's order: by clean logit, as AutoAttack, or by MALT's distance.
  const orders: Record<TargetOrder, number[][] | undefined> = {
    logits: rankByLogits(cleanLogits, n, k),
    malt: undefined,
  };
  const keep = options.keepImages ?? true;
  if (options.pointIds && options.pointIds.length !== n) throw new InputError('pointIds', `expected one id per point (${n}), got ${options.pointIds.length}`);
  const ids = options.pointIds ?? Int32Array.from({ length: n }, (_, i) => i);
  const state = options.resume?.state ?? initialState(suite, input.labels, cleanPredictions);
  if (state.count !== n || state.stages.length !== suite.stages.length) throw new InputError('resume', `the saved state holds ${state.count} points and ${state.stages.length} stages, expected ${n} and ${suite.stages.length}`);
  const adversarial = keep ? (options.resume?.adversarial ?? input.images.slice()) : null;
  const scheduler = new Scheduler(suite, state, { batchSize, allPoints: options.allPoints });

  const pool = options.pool && (options.pool.size > 1 || options.pool.remote) ? options.pool : undefined;
  if (pool && !classifier.rebuildSpec) throw new InputError('pool', 'a worker pool needs a classifier made with Classifier.fromModel from a LayersModel (a function or GraphModel cannot be sent to workers)');
  const shared: SharedClassifier | undefined = pool ? await shareClassifier(classifier) : undefined;
  const slots = pool ? (Number.isFinite(pool.size) ? pool.size : REMOTE_SLOTS) : 1;
  if (suite.stages.some((s) => s.targetClasses && s.targetOrder === 'malt')) {
    orders.malt = await maltOrders(classifier, input, state, batchSize, suite.norm, pool, shared, slots);
  }

  const batchInput = (b: ScheduledBatch): StageBatchInput => {
    const stage = suite.stages[b.stage];
    const images = new Float32Array(b.points.length * size);
    b.points.forEach((i, j) => images.set(input.images.subarray(i * size, (i + 1) * size), j * size));
    return {
      attack: stage.attack,
      params: stage.params,
      norm: suite.norm,
      eps,
      images,
      imageShape: [...input.imageShape] as [number, number, number],
      labels: Int32Array.from(b.points, (i) => input.labels[i]),
      targets: stage.targetClasses ? Int32Array.from(b.points, (i, j) => orders[stage.targetOrder ?? 'logits']![i][b.ranks[j] - 2]) : null,
      exampleSeeds: Uint32Array.from(b.points, (i, j) => deriveSeed(seed, `${stage.name}:${b.ranks[j]}:${ids[i]}`)),
    };
  };
  const run = (b: ScheduledBatch): Promise<StageBatchOutput> => {
    const batch = batchInput(b);
    if (!pool) return runStageBatch(classifier, batch);
    const label = `eps ${eps} ${suite.stages[b.stage].name}, ${b.points.length} points from ${b.points[0]}`;
    return pool.run<StageBatchOutput, StageBatchPayload>({ ...stageTask, label }, [{ classifier: shared!, batch }], (p) => [p.batch.images.buffer]).then((r) => r[0]);
  };

  const finish = async (b: ScheduledBatch, out: StageBatchOutput, report: boolean) => {
    const firstBreak = b.points.map((i, j) => out.success[j] === 1 && state.brokenBy[i] === ROBUST);
    scheduler.complete(
      b,
      b.points.map((_, j) => ({ broken: out.success[j] === 1, prediction: out.predictions[j] })),
      out,
    );
    if (adversarial) b.points.forEach((i, j) => firstBreak[j] && adversarial.set(out.adversarial.subarray(j * size, (j + 1) * size), i * size));
    if (report) await options.onProgress?.({ done: scheduler.done, total: n, broken: countBroken(state.brokenBy), stage: suite.stages[b.stage].name, state, adversarial });
  };

  if (pool?.remote) {
    // Workers behind a queue: whole rounds, so the batches (and the job ids made from them) are the same on a
    // resume from the last round's checkpoint, and the jobs workers finished meanwhile are collected, not redone.
    while (!scheduler.finished) {
      const round = scheduler.takeRound();
      const outs = await Promise.all(round.map(run));
      for (let j = 0; j < round.length; j++) await finish(round[j], outs[j], j === round.length - 1);
    }
  } else {
    const running = new Map<ScheduledBatch, Promise<{ b: ScheduledBatch; out: StageBatchOutput }>>();
    try {
      while (!scheduler.finished) {
        while (running.size < slots) {
          const b = scheduler.take(slots - running.size);
          if (!b) break;
          running.set(
            b,
            run(b).then((out) => ({ b, out })),
          );
        }
        if (!running.size) throw new Error('evaluation scheduler stalled with work left (a bug in advlab)');
        const { b, out } = await Promise.race(running.values());
        running.delete(b);
        await finish(b, out, true);
      }
    } finally {
      // A failed batch: let the others settle (their errors are not the first), so none is left unobserved.
      if (running.size) await Promise.allSettled(running.values());
    }
  }
  const summary = summarizeEvaluation(state, input.labels, options);
  return { summary, cleanPredictions, finalPredictions: state.finalPredictions.slice(), brokenBy: state.brokenBy.slice(), adversarial, state };
}

function countBroken(brokenBy: Int8Array): number {
  let c = 0;
  for (const b of brokenBy) if (b >= 0) c++;
  return c;
}

/** The {@link EpsilonResult} of an evaluation's per-point verdicts and per-stage figures. */
export function summarizeEvaluation(
  result: { brokenBy: Int8Array; stages: readonly StageFigures[]; brokenStages?: Uint32Array },
  labels: Int32Array,
  options: Pick<EvaluateOptions, 'suite' | 'eps' | 'classNames' | 'allPoints'>,
): EpsilonResult {
  const n = labels.length;
  const { brokenBy } = result;
  let correct = 0;
  let robust = 0;
  for (let i = 0; i < n; i++) {
    if (brokenBy[i] !== MISCLASSIFIED) correct++;
    if (brokenBy[i] === ROBUST) robust++;
  }
  let remaining = correct;
  const stages: StageSummary[] = options.suite.stages.map((stage, s) => {
    const f = result.stages[s];
    remaining -= f.broken;
    const summary: StageSummary = {
      name: stage.name,
      attack: stage.attack,
      broken: f.broken,
      robustAccuracyAfter: remaining / n,
      attacked: f.attacked,
      gradients: f.gradients,
      queries: f.queries,
      seconds: f.seconds,
    };
    if (options.allPoints && result.brokenStages) {
      let standalone = 0;
      for (let i = 0; i < n; i++) if (brokenBy[i] !== MISCLASSIFIED && !(result.brokenStages[i] & (1 << s))) standalone++;
      summary.standaloneRobustAccuracy = standalone / n;
    }
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

/** Clean logits of every image, [n * classes], in batches (one read each). */
async function logitsOf(classifier: Classifier, input: AttackInput, batchSize: number): Promise<Float32Array> {
  const n = input.count;
  const size = input.imageShape[0] * input.imageShape[1] * input.imageShape[2];
  const out = new Float32Array(n * classifier.numClasses);
  for (let s = 0; s < n; s += batchSize) {
    const e = Math.min(n, s + batchSize);
    out.set((await readOne(tf.tidy(() => classifier.logits(tf.tensor4d(input.images.subarray(s * size, e * size), [e - s, ...input.imageShape]))))) as Float32Array, s * classifier.numClasses);
  }
  return out;
}

function argmax(v: Float32Array, offset: number, k: number): number {
  let best = 0;
  for (let j = 1; j < k; j++) if (v[offset + j] > v[offset + best]) best = j;
  return best;
}

/**
 * MALT's target order of every point still to be attacked, in batches (on the
 * pool when there is one); points already done get an empty order.
 */
async function maltOrders(
  classifier: Classifier,
  input: AttackInput,
  state: PipelineState,
  batchSize: number,
  norm: Norm,
  pool: TaskPool | undefined,
  shared: SharedClassifier | undefined,
  slots: number,
): Promise<number[][]> {
  const k = classifier.numClasses;
  const size = input.imageShape[0] * input.imageShape[1] * input.imageShape[2];
  const todo: number[] = [];
  for (let i = 0; i < state.count; i++) if (state.brokenBy[i] === ROBUST) todo.push(i);
  // Enough chunks for every worker, none larger than a batch.
  const chunk = Math.max(1, Math.min(batchSize, Math.ceil(todo.length / slots)));
  const parts: number[][] = [];
  for (let s = 0; s < todo.length; s += chunk) parts.push(todo.slice(s, s + chunk));
  const partInput = (points: number[]) => {
    const images = new Float32Array(points.length * size);
    points.forEach((i, j) => images.set(input.images.subarray(i * size, (i + 1) * size), j * size));
    return { images, labels: Int32Array.from(points, (i) => input.labels[i]) };
  };
  let ranked: Int32Array[];
  if (!pool) {
    // In this thread one part after the other, as before the reads became asynchronous (only one part's tensors alive at a time).
    ranked = [];
    for (const points of parts) {
      const { images, labels } = partInput(points);
      ranked.push(await rankByMalt(classifier, images, labels, norm));
    }
  } else {
    ranked = await Promise.all(
      parts.map((points) => {
        const { images, labels } = partInput(points);
        const task: TaskRef = { module: EVAL_TASK_URL, name: 'maltRankTask', label: `MALT targets of ${points.length} points from ${points[0]}` };
        return pool.run<Int32Array, MaltRankPayload>(task, [{ classifier: shared!, images, labels, norm }], (p) => [p.images.buffer]).then((r) => r[0]);
      }),
    );
  }
  const out: number[][] = Array.from({ length: state.count }, () => []);
  parts.forEach((points, p) => points.forEach((i, j) => (out[i] = Array.from(ranked[p].subarray(j * (k - 1), (j + 1) * (k - 1))))));
  return out;
}
