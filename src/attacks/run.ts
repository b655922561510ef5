import { tf } from '../engine/tf.js';
import { readAndDispose } from '../engine/read.js';
import type { Classifier } from '../models/classifier.js';
import type { Attack, AttackResult, AttackSummary, CommonAttackOptions, Criterion, Norm } from './types.js';
import { validateInput, validateEps, resolveParams, validateCommon, type AttackInput } from './validate.js';
import { verifyBatch } from './verify.js';
import { Rng, deriveSeed } from '../util/rng.js';
import { InputError } from '../errors.js';
import { poolFor, type TaskPool, type TaskRef } from '../engine/task-pool.js';
import { shareClassifier } from '../models/pool-model.js';
import { ATTACK_TASK_URL, type AttackBatchOutput, type AttackBatchPayload } from './pool-task.js';

/** Options of {@link runAttack}: the common ones plus the attack's own parameters. */
export type RunAttackOptions = CommonAttackOptions & {
  params?: Record<string, unknown>;
  /**
   * Spreads the batches over these workers: threads, or processes behind a
   * queue (each attacks whole batches, so results are identical to a run
   * without a pool). Needs a classifier from a LayersModel. A local pool is
   * ignored with one worker or one batch (see poolFor).
   */
  pool?: TaskPool;
  /**
   * Per-example seeds (one per input image), replacing the default
   * deriveSeed(seed, `example:<index>`): callers that attack the same image
   * in several calls (an evaluation's stages and target ranks) give each call
   * its own.
   */
  exampleSeeds?: Uint32Array;
};

// Built when used: pool-task.ts imports the attack registry, which imports this module (a cycle).
const attackBatchTask = (label: string): TaskRef => ({ module: ATTACK_TASK_URL, name: 'attackBatchTask', label });

/**
 * Runs `attack` on a set of images, batch by batch, and returns re-verified
 * results. The input is checked first (shape, labels, bounds, NaN, eps); every
 * candidate is re-predicted and checked against the bounds and the eps-ball
 * before it counts as a success; costs are counted on the classifier.
 */
export async function runAttack(attack: Attack, classifier: Classifier, input: AttackInput, options: RunAttackOptions = {}): Promise<AttackResult> {
  validateCommon(options);
  validateInput(classifier, input);
  const norm: Norm = options.norm ?? attack.norms[0];
  if (!attack.norms.includes(norm)) throw new InputError('norm', `${attack.name} supports ${attack.norms.join(', ')}, not ${norm}`);
  const fixed = attack.kind === 'fixed-budget';
  validateEps(options.eps as number, norm, classifier, fixed);
  const eps = options.eps ?? Infinity;
  const targeted = options.targeted !== undefined;
  const criterion: Criterion = options.criterion ?? (targeted ? 'target' : 'misclassification');
  if (criterion !== 'target' && criterion !== 'misclassification') throw new InputError('criterion', `expected "target" or "misclassification", got ${JSON.stringify(criterion)}`);
  if (criterion === 'target' && !targeted) throw new InputError('criterion', 'the criterion "target" needs targets (targeted)');
  if (options.exampleSeeds && options.exampleSeeds.length !== input.count) throw new InputError('exampleSeeds', `expected one seed per image (${input.count}), got ${options.exampleSeeds.length}`);
  if (targeted && attack.targeted === 'untargeted') throw new InputError('targeted', `${attack.name} has no targeted version`);
  if (!targeted && attack.targeted === 'targeted') throw new InputError('targeted', `${attack.name} is targeted only: give targets (an array, "random" or "least-likely")`);
  if (attack.access === 'gradient' && !classifier.hasGradients) throw new InputError('attack', `${attack.name} needs gradients, which this classifier does not give; use square, simba or hopskipjump`);
  if (options.pool && (options.pool.size > 1 || options.pool.remote) && !classifier.rebuildSpec) {
    throw new InputError('pool', 'a worker pool needs a classifier made with Classifier.fromModel from a LayersModel (a function or GraphModel cannot be sent to workers)');
  }
  const params = resolveParams(attack, options.params ?? {});
  const seed = options.seed ?? 0;
  const batchSize = options.batchSize ?? 128;
  const size = input.imageShape[0] * input.imageShape[1] * input.imageShape[2];
  const n = input.count;
  const before = classifier.counts;
  const t0 = performance.now();

  const adversarial = new Float32Array(input.images);
  const cleanPredictions = new Int32Array(n);
  const adversarialPredictions = new Int32Array(n);
  const success = new Uint8Array(n);
  const norms = { l0: new Float32Array(n), l1: new Float32Array(n), l2: new Float32Array(n), linf: new Float32Array(n) };
  const rejected = { outOfBounds: 0, outsideBall: 0, nonFinite: 0 };
  const targets = targeted ? new Int32Array(n) : null;
  const targetRng = new Rng(deriveSeed(seed, 'targets'));
  const exampleSeeds = options.exampleSeeds ?? Uint32Array.from({ length: n }, (_, i) => deriveSeed(seed, `example:${i}`));

  const ranges: [number, number][] = [];
  for (let start = 0; start < n; start += batchSize) ranges.push([start, Math.min(n, start + batchSize)]);

  /** Clean predictions and targets of a batch: in the main thread, before its attack runs. */
  const prepare = async (start: number, end: number): Promise<{ preds: Int32Array; targets: Int32Array | null }> => {
    const labelBatch = input.labels.subarray(start, end);
    const leastLikely = options.targeted === 'least-likely';
    // The tidy returns the arg-max (and arg-min) tensors; their values are read after it (await cannot run inside tf.tidy).
    const picked = tf.tidy(() => {
      const logits = classifier.logits(tf.tensor4d(input.images.subarray(start * size, end * size), [end - start, ...input.imageShape]));
      return leastLikely ? [tf.argMax(logits, 1), tf.argMin(logits, 1)] : [tf.argMax(logits, 1)];
    });
    const values = (await readAndDispose(picked)) as Int32Array[];
    const preds = values[0].slice();
    cleanPredictions.set(preds, start);
    let chosen: Int32Array | null = null;
    if (targets) {
      chosen = chooseTargets(options.targeted!, labelBatch, leastLikely ? values[1] : null, start, classifier.numClasses, targetRng);
      targets.set(chosen, start);
    }
    return { preds, targets: chosen };
  };
  const batchSeed = (start: number) => deriveSeed(seed, `batch:${start}`);

  /** Candidates of a batch, attacked here. */
  const attackHere = async (start: number, end: number, batchTargets: Int32Array | null): Promise<Float32Array> => {
    const x = tf.tensor4d(input.images.subarray(start * size, end * size), [end - start, ...input.imageShape]);
    const labels = tf.tensor1d(input.labels.subarray(start, end), 'int32');
    const targetT = batchTargets ? tf.tensor1d(batchTargets, 'int32') : undefined;
    let candidate: tf.Tensor4D | undefined;
    try {
      candidate = await attack.attackBatch(
        { classifier, x, labels, targets: targetT, norm, eps, criterion, rng: new Rng(batchSeed(start)), exampleSeeds: exampleSeeds.slice(start, end) },
        params,
      );
      return ((await candidate.data()) as Float32Array).slice();
    } finally {
      tf.dispose([x, labels, targetT, candidate].filter((t) => t !== undefined) as tf.Tensor[]);
    }
  };

  const verifyInto = async (start: number, end: number, advBatch: Float32Array, preds: Int32Array): Promise<void> => {
    const cleanBatch = input.images.subarray(start * size, end * size);
    const labelBatch = input.labels.subarray(start, end);
    const verdict = await verifyBatch(classifier, cleanBatch, advBatch, labelBatch, targets ? targets.subarray(start, end) : null, criterion, preds, Number.isFinite(eps) ? { norm, eps } : null);
    adversarial.set(advBatch, start * size);
    adversarialPredictions.set(verdict.predictions, start);
    success.set(verdict.success, start);
    norms.l0.set(verdict.l0, start);
    norms.l1.set(verdict.l1, start);
    norms.l2.set(verdict.l2, start);
    norms.linf.set(verdict.linf, start);
    rejected.outOfBounds += verdict.rejected.outOfBounds;
    rejected.outsideBall += verdict.rejected.outsideBall;
    rejected.nonFinite += verdict.rejected.nonFinite;
    options.onProgress?.({ done: end, total: n });
  };

  const pool = poolFor(options.pool, ranges.length);
  if (pool) {
    // Every batch is queued at once; the pool runs them on its workers while
    // this thread verifies finished batches in order.
    const shared = await shareClassifier(classifier);
    // One batch after the other: random targets are drawn from one generator in batch order.
    const prepared: Awaited<ReturnType<typeof prepare>>[] = [];
    for (const [start, end] of ranges) prepared.push(await prepare(start, end));
    const outputs = ranges.map(([start, end], i) => {
      const payload: AttackBatchPayload = {
        classifier: shared,
        attack: attack.name,
        params,
        x: input.images.slice(start * size, end * size),
        shape: [end - start, ...input.imageShape],
        labels: input.labels.slice(start, end),
        targets: prepared[i].targets,
        norm,
        eps,
        criterion,
        seed: batchSeed(start),
        exampleSeeds: exampleSeeds.slice(start, end),
      };
      const out = pool.run<AttackBatchOutput, AttackBatchPayload>(attackBatchTask(`${attack.name} batch ${i} (images ${start}-${end - 1})`), [payload], (p) => [p.x.buffer]).then((r) => r[0]);
      // Failures surface when their batch is awaited below; this only stops an early
      // failure of a later batch from being reported as unhandled meanwhile.
      out.catch(() => {});
      return out;
    });
    for (let i = 0; i < ranges.length; i++) {
      const out = await outputs[i];
      classifier.addCounts(out);
      await verifyInto(ranges[i][0], ranges[i][1], out.adversarial, prepared[i].preds);
    }
  } else {
    for (const [start, end] of ranges) {
      const { preds, targets: batchTargets } = await prepare(start, end);
      await verifyInto(start, end, await attackHere(start, end, batchTargets), preds);
    }
  }

  const seconds = (performance.now() - t0) / 1000;
  const after = classifier.counts;
  const gradients = after.gradients - before.gradients;
  const queries = after.queries - before.queries;
  return {
    attack: attack.name,
    norm,
    eps: Number.isFinite(eps) ? eps : null,
    targeted,
    criterion,
    params,
    seed,
    adversarial,
    imageShape: [...input.imageShape] as [number, number, number],
    count: n,
    labels: input.labels.slice(),
    targets,
    cleanPredictions,
    adversarialPredictions,
    success,
    rejected,
    norms,
    gradients,
    queries,
    seconds,
    summary: summarize(input.labels, cleanPredictions, success, norms, gradients, queries, seconds),
  };
}

/** Targets of a batch; `leastLikely` is the arg-min of its clean logits (read by the caller), for the `least-likely` spec. */
function chooseTargets(spec: NonNullable<CommonAttackOptions['targeted']>, labels: Int32Array, leastLikely: Int32Array | null, offset: number, k: number, rng: Rng): Int32Array {
  const m = labels.length;
  const out = new Int32Array(m);
  if (spec === 'random') {
    for (let i = 0; i < m; i++) out[i] = (labels[i] + 1 + rng.int(k - 1)) % k;
  } else if (spec === 'least-likely') {
    out.set(leastLikely!);
    // A class that is least likely and also the label only happens with constant logits; move it.
    for (let i = 0; i < m; i++) if (out[i] === labels[i]) out[i] = (labels[i] + 1) % k;
  } else if (typeof spec === 'string') {
    throw new InputError('targeted', `expected "random", "least-likely" or one target label per image, got "${spec}"`);
  } else {
    for (let i = 0; i < m; i++) {
      const t = spec[offset + i];
      if (t === undefined) throw new InputError('targeted', `expected one target per image; none for image ${offset + i}`);
      if (!Number.isInteger(t) || t < 0 || t >= k) throw new InputError('targeted', `target ${t} for image ${offset + i} is outside [0, ${k - 1}]`);
      if (t === labels[i]) throw new InputError('targeted', `target ${t} for image ${offset + i} is its true label`);
      out[i] = t;
    }
  }
  return out;
}

/** Headline figures: accuracies in [0, 1], medians over successful examples. */
export function summarize(labels: Int32Array, clean: Int32Array, success: Uint8Array, norms: { l2: Float32Array; linf: Float32Array }, gradients: number, queries: number, seconds: number): AttackSummary {
  const n = labels.length;
  let correct = 0;
  let wins = 0;
  const l2s: number[] = [];
  const linfs: number[] = [];
  for (let i = 0; i < n; i++) {
    if (clean[i] === labels[i]) correct++;
    if (success[i]) {
      wins++;
      l2s.push(norms.l2[i]);
      linfs.push(norms.linf[i]);
    }
  }
  return {
    cleanAccuracy: correct / n,
    robustAccuracy: (correct - wins) / n,
    successRate: correct ? wins / correct : 0,
    medianL2: median(l2s),
    medianLinf: median(linfs),
    meanL2: l2s.length ? l2s.reduce((a, b) => a + b, 0) / l2s.length : null,
    gradientsPerImage: gradients / n,
    queriesPerImage: queries / n,
    imagesPerSecond: seconds > 0 ? n / seconds : 0,
  };
}

function median(values: number[]): number | null {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
