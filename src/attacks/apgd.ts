import { tf } from '../engine/tf.js';
import type { Attack, BatchContext } from './types.js';
import { normOps, type NormOps } from './norms.js';
import { crossEntropy, targetedCrossEntropy, dlr, targetedDlr } from './losses.js';
import { apgdCheckpoints, apgdStart, shouldHalve } from './apgd-schedule.js';
import { InputError } from '../errors.js';

/** Parameters of {@link apgd}. */
export interface ApgdParams {
  steps: number;
  restarts: number;
  loss: 'ce' | 'dlr';
  rho: number;
  [key: string]: unknown;
}

/**
 * APGD (Auto-PGD): PGD without a step size to tune. It starts with step 2*eps,
 * moves with momentum (alpha = 0.75), and at checkpoints w_j = ceil(p_j * steps)
 * (p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)) halves an
 * example's step and sends it back to its best-loss point when (1) fewer than
 * `rho` of the steps since the last checkpoint increased the loss, or (2) its step
 * was not halved at the last checkpoint and its best loss has not improved since.
 * Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
 * diverse parameter-free attacks", ICML 2020 (APGD-CE, APGD-DLR, and with a
 * target APGD-T of AutoAttack).
 *
 * Distance: linf, l2. Targeted: toward the target's DLR (`loss: 'dlr'`, the
 * targeted DLR of APGD-T) or cross-entropy (`loss: 'ce'`); the driver chooses one
 * target per image (AutoAttack's APGD-T instead tries the top-9 classes in turn).
 *
 * Parameters: steps (100: gradient evaluations per run; the last iterate is only
 * scored), restarts (0: extra runs from new random starts for the examples not yet
 * broken), loss ('ce' | 'dlr', default 'ce'), rho (0.75).
 *
 * Each run starts on the boundary of the ball (as in the official code); each
 * example keeps its first iterate that reaches the goal and leaves the batch there
 * (so it costs no more gradients); an example never broken returns its highest-loss
 * point over all runs. Costs: at most (restarts + 1) * steps gradient evaluations
 * per image, plus forward passes.
 *
 * Usage: `runAttack(apgd, classifier, data, { eps: 8 / 255, params: { loss: 'dlr' } })`,
 * targeted: `runAttack(apgd, classifier, data, { eps: 0.3, targeted: 'random', params: { loss: 'dlr' } })`.
 */
export const apgd: Attack<ApgdParams> = {
  name: 'apgd',
  title: 'Auto-PGD (APGD-CE / APGD-DLR / APGD-T)',
  paper: 'Croce & Hein, ICML 2020',
  kind: 'fixed-budget',
  access: 'gradient',
  norms: ['linf', 'l2'],
  targeted: 'both',
  params: [
    { name: 'steps', type: 'integer', default: 100, min: 1, description: 'gradient evaluations per run (the step size is halved at checkpoints 22%, 41%, 57%, ... of them)' },
    { name: 'restarts', type: 'integer', default: 0, min: 0, description: 'extra runs from new random starts for examples not yet broken' },
    { name: 'loss', type: 'string', default: 'ce', choices: ['ce', 'dlr'], description: 'loss to ascend: cross-entropy or difference of logits ratio (targeted: their targeted forms)' },
    { name: 'rho', type: 'number', default: 0.75, min: 0, max: 1, description: 'halve the step when fewer than this fraction of the steps since the last checkpoint increased the loss' },
  ],
  attackBatch: (ctx, p) => runApgd(ctx, p),
};

type ApgdLoss = (logits: tf.Tensor2D, labels: tf.Tensor1D, targets: tf.Tensor1D | undefined) => tf.Tensor1D;

function lossFor(name: string, targeted: boolean): ApgdLoss {
  if (name === 'ce') return targeted ? (z, _y, t) => targetedCrossEntropy(z, t!) : (z, y) => crossEntropy(z, y);
  if (name === 'dlr') return targeted ? (z, y, t) => targetedDlr(z, y, t!) : (z, y) => dlr(z, y);
  throw new InputError('loss', `expected one of ce, dlr, got ${JSON.stringify(name)}`);
}

/** The examples of one run still being attacked: tensors (rows in step) and per-example numbers. */
interface Active {
  /** Index of each row in the driver's batch. */
  index: number[];
  x: tf.Tensor4D;
  labels: tf.Tensor1D;
  targets?: tf.Tensor1D;
  /** Current iterate x^(k), the previous one x^(k-1), the gradient at x^(k). */
  adv: tf.Tensor4D;
  prev: tf.Tensor4D;
  grad: tf.Tensor4D;
  /** Highest-loss point so far and its gradient. */
  best: tf.Tensor4D;
  gradBest: tf.Tensor4D;
  step: number[];
  lossBest: number[];
  lossPrev: number[];
  increases: number[];
  lossBestAtLastCheck: number[];
  reducedAtLastCheck: boolean[];
}

const TENSOR_FIELDS = ['x', 'labels', 'targets', 'adv', 'prev', 'grad', 'best', 'gradBest'] as const;
const NUMBER_FIELDS = ['index', 'step', 'lossBest', 'lossPrev', 'increases', 'lossBestAtLastCheck', 'reducedAtLastCheck'] as const;

function runApgd(ctx: BatchContext, p: ApgdParams): tf.Tensor4D {
  const { classifier, x, labels, targets } = ctx;
  if (ctx.norm !== 'linf' && ctx.norm !== 'l2') throw new InputError('norm', `apgd supports linf, l2, not ${ctx.norm}`);
  if (p.loss === 'dlr' && !targets && classifier.numClasses < 3) {
    throw new InputError('loss', `the untargeted DLR loss needs at least 3 classes, the classifier has ${classifier.numClasses}; use loss "ce"`);
  }
  const loss = lossFor(p.loss, !!targets);
  const n = x.shape[0];
  const d = x.size / n;
  const out = (x.dataSync() as Float32Array).slice();
  const labelData = labels.dataSync() as Int32Array;
  const cleanPredT = tf.tidy(() => tf.argMax(classifier.logits(x), 1));
  const cleanPred = cleanPredT.dataSync() as Int32Array;
  cleanPredT.dispose();
  // Examples misclassified before the attack can never count as successes: leave them clean.
  let todo: number[] = [];
  for (let i = 0; i < n; i++) if (cleanPred[i] === labelData[i]) todo.push(i);
  const lossOverall = new Float64Array(n).fill(-Infinity);
  const checkpoints = apgdCheckpoints(p.steps);
  for (let run = 0; run <= p.restarts && todo.length > 0; run++) {
    const result = apgdRun(ctx, todo, p, loss, checkpoints);
    for (const [i, row] of result.broken) out.set(row, i * d);
    for (const [i, { row, value }] of result.unbroken) {
      if (value > lossOverall[i]) {
        lossOverall[i] = value;
        out.set(row, i * d);
      }
    }
    todo = todo.filter((i) => !result.broken.has(i));
  }
  return tf.tensor4d(out, x.shape);
}

/**
 * One APGD run on the rows `todo` of the batch. Returns the first successful
 * iterate of each example broken in this run, and the best-loss point of the rest.
 */
function apgdRun(
  ctx: BatchContext,
  todo: number[],
  p: ApgdParams,
  loss: ApgdLoss,
  checkpoints: number[],
): { broken: Map<number, Float32Array>; unbroken: Map<number, { row: Float32Array; value: number }> } {
  const { classifier, eps } = ctx;
  const ops = normOps(ctx.norm);
  const [lo, hi] = classifier.bounds;
  const d = ctx.x.size / ctx.x.shape[0];
  const broken = new Map<number, Float32Array>();
  const reached = (pred: Int32Array, labels: Int32Array, targets: Int32Array | undefined, k: number) => (targets ? pred[k] === targets[k] : pred[k] !== labels[k]);

  const m = todo.length;
  const idx = tf.tensor1d(todo, 'int32');
  const x = tf.gather(ctx.x, idx) as tf.Tensor4D;
  const labels = tf.gather(ctx.labels, idx) as tf.Tensor1D;
  const targets = ctx.targets ? (tf.gather(ctx.targets, idx) as tf.Tensor1D) : undefined;
  idx.dispose();
  const adv0 = tf.tidy(() => tf.clipByValue(tf.add(x, apgdStart(ctx.norm as 'linf' | 'l2', x.shape, eps, ctx.rng.seed())), lo, hi) as tf.Tensor4D);
  let first: ReturnType<typeof evaluate>;
  try {
    first = evaluate(classifier, adv0, labels, targets, loss, true);
  } catch (e) {
    tf.dispose([x, labels, adv0, ...(targets ? [targets] : [])]);
    throw e;
  }
  const s: Active = {
    index: [...todo],
    x,
    labels,
    targets,
    adv: adv0,
    prev: adv0.clone(),
    grad: first.grad!,
    best: adv0.clone(),
    gradBest: first.grad!.clone(),
    step: new Array(m).fill(2 * eps),
    lossBest: [...first.loss],
    lossPrev: [...first.loss],
    increases: new Array(m).fill(0),
    lossBestAtLastCheck: [...first.loss],
    reducedAtLastCheck: new Array(m).fill(false),
  };
  try {
    // The start itself may already be adversarial.
    retire(s, first.pred, reached, broken, d);
    let checkpoint = 0;
    let lastCheck = 0;
    for (let k = 0; k < p.steps && s.index.length > 0; k++) {
      const n = s.index.length;
      const a = k > 0 ? 0.75 : 1;
      const next = tf.tidy(() => {
        const eta = tf.reshape(tf.tensor1d(s.step), [-1, 1, 1, 1]);
        const z = projectClip(ops, tf.add(s.adv, tf.mul(eta, ops.direction(s.grad))) as tf.Tensor4D, s.x, eps, lo, hi);
        // x^(k+1) = P(x^(k) + a (z - x^(k)) + (1 - a) (x^(k) - x^(k-1)))
        const moved = tf.add(tf.add(s.adv, tf.mul(a, tf.sub(z, s.adv))), tf.mul(1 - a, tf.sub(s.adv, s.prev))) as tf.Tensor4D;
        return projectClip(ops, moved, s.x, eps, lo, hi);
      });
      s.prev.dispose();
      s.prev = s.adv;
      s.adv = next;
      // The last iterate is only scored: its gradient would never be used.
      const last = k === p.steps - 1;
      const e = evaluate(classifier, s.adv, s.labels, s.targets, loss, !last);
      if (e.grad) {
        s.grad.dispose();
        s.grad = e.grad;
      }
      const improved = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        if (e.loss[i] > s.lossPrev[i]) s.increases[i]++;
        s.lossPrev[i] = e.loss[i];
        if (e.loss[i] > s.lossBest[i]) {
          s.lossBest[i] = e.loss[i];
          improved[i] = 1;
        }
      }
      if (improved.some((v) => v)) {
        s.best = replaceRows(s.best, improved, s.adv);
        if (!last) s.gradBest = replaceRows(s.gradBest, improved, s.grad);
      }
      retire(s, e.pred, reached, broken, d);
      // Step-size review at checkpoint w_j, after the w_j-th iterate.
      if (checkpoint < checkpoints.length && k + 1 === checkpoints[checkpoint]) {
        const interval = checkpoints[checkpoint] - lastCheck;
        lastCheck = checkpoints[checkpoint];
        checkpoint++;
        const halve = new Uint8Array(s.index.length);
        for (let i = 0; i < s.index.length; i++) {
          const h = shouldHalve(
            { increases: s.increases[i], lossBest: s.lossBest[i], lossBestAtLastCheck: s.lossBestAtLastCheck[i], reducedAtLastCheck: s.reducedAtLastCheck[i] },
            interval,
            p.rho,
          );
          halve[i] = h ? 1 : 0;
          s.reducedAtLastCheck[i] = h;
          s.lossBestAtLastCheck[i] = s.lossBest[i];
          s.increases[i] = 0;
          if (h) {
            s.step[i] /= 2;
            // Continue from the best point: x^(k+1) <- x_max (the momentum term still uses x^(k)).
            s.lossPrev[i] = s.lossBest[i];
          }
        }
        if (halve.some((v) => v)) {
          s.adv = replaceRows(s.adv, halve, s.best);
          s.grad = replaceRows(s.grad, halve, s.gradBest);
        }
      }
    }
    const unbroken = new Map<number, { row: Float32Array; value: number }>();
    if (s.index.length > 0) {
      const data = s.best.dataSync() as Float32Array;
      s.index.forEach((i, r) => unbroken.set(i, { row: data.slice(r * d, (r + 1) * d), value: s.lossBest[r] }));
    }
    return { broken, unbroken };
  } finally {
    for (const f of TENSOR_FIELDS) s[f]?.dispose();
  }
}

/** Loss and predictions at `adv`, and the loss gradient when `withGradient`. */
function evaluate(
  classifier: BatchContext['classifier'],
  adv: tf.Tensor4D,
  labels: tf.Tensor1D,
  targets: tf.Tensor1D | undefined,
  loss: ApgdLoss,
  withGradient: boolean,
): { loss: Float32Array; pred: Int32Array; grad?: tf.Tensor4D } {
  if (!withGradient) {
    const [value, pred] = tf.tidy(() => {
      const logits = classifier.logits(adv);
      return [loss(logits, labels, targets), tf.argMax(logits, 1)];
    });
    try {
      return { loss: value.dataSync() as Float32Array, pred: pred.dataSync() as Int32Array };
    } finally {
      tf.dispose([value, pred]);
    }
  }
  // The predictions come from the forward pass of the gradient evaluation itself.
  const { value, grad, logits } = classifier.valueAndGradient(adv, (z) => loss(z, labels, targets));
  try {
    const pred = tf.tidy(() => tf.argMax(logits, 1));
    const out = { loss: value.dataSync() as Float32Array, pred: pred.dataSync() as Int32Array, grad };
    pred.dispose();
    return out;
  } catch (e) {
    grad.dispose();
    throw e;
  } finally {
    tf.dispose([value, logits]);
  }
}

/** Projects `point` onto the eps-ball around `x` and clips it to the bounds. */
function projectClip(ops: NormOps, point: tf.Tensor4D, x: tf.Tensor4D, eps: number, lo: number, hi: number): tf.Tensor4D {
  return tf.tidy(() => tf.clipByValue(tf.add(x, ops.project(tf.sub(point, x) as tf.Tensor4D, eps)), lo, hi) as tf.Tensor4D);
}

/** `target` with the rows where `mask` is 1 taken from `source`; disposes `target`. */
function replaceRows(target: tf.Tensor4D, mask: Uint8Array, source: tf.Tensor4D): tf.Tensor4D {
  const out = tf.tidy(() => {
    const m = tf.reshape(tf.tensor1d(mask, 'bool'), [-1, 1, 1, 1]);
    return tf.where(tf.broadcastTo(m, target.shape), source, target) as tf.Tensor4D;
  });
  target.dispose();
  return out;
}

/**
 * Takes out of the run the examples whose current iterate reaches the goal,
 * recording that iterate (their first success) in `broken`.
 */
function retire(
  s: Active,
  pred: Int32Array,
  reached: (pred: Int32Array, labels: Int32Array, targets: Int32Array | undefined, k: number) => boolean,
  broken: Map<number, Float32Array>,
  d: number,
): void {
  const labels = s.labels.dataSync() as Int32Array;
  const targets = s.targets ? (s.targets.dataSync() as Int32Array) : undefined;
  const keep: number[] = [];
  let data: Float32Array | undefined;
  for (let r = 0; r < s.index.length; r++) {
    if (reached(pred, labels, targets, r)) {
      data ??= s.adv.dataSync() as Float32Array;
      broken.set(s.index[r], data.slice(r * d, (r + 1) * d));
    } else keep.push(r);
  }
  if (keep.length === s.index.length) return;
  for (const f of NUMBER_FIELDS) {
    const arr = s[f] as unknown[];
    (s as unknown as Record<string, unknown[]>)[f] = keep.map((r) => arr[r]);
  }
  // Nobody left: the loop ends and the caller disposes the (now stale) tensors.
  if (keep.length === 0) return;
  const idx = tf.tensor1d(keep, 'int32');
  for (const f of TENSOR_FIELDS) {
    const t = s[f];
    if (!t) continue;
    const g = tf.gather(t, idx);
    t.dispose();
    (s as unknown as Record<string, tf.Tensor>)[f] = g;
  }
  idx.dispose();
}
