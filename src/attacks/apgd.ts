import { tf } from '../engine/tf.js';
import { readAndDispose, readOne } from '../engine/read.js';
import { meetsCriterion, type Attack, type BatchContext, type Criterion } from './types.js';
import { normOps, type NormOps } from './norms.js';
import { crossEntropy, targetedCrossEntropy, dlr, targetedDlr } from './losses.js';
import { apgdCheckpoints, apgdStartRow, ApgdStepState } from './apgd-schedule.js';
import { Rng } from '../util/rng.js';
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
 * APGD (Auto-PGD): PGD without a step size to tune. Croce & Hein, "Reliable
 * evaluation of adversarial robustness with an ensemble of diverse
 * parameter-free attacks", ICML 2020 (APGD-CE, APGD-DLR, and with a target
 * APGD-T of AutoAttack). Where the paper and its reference code differ, this
 * follows the code (fra31/auto-attack, autopgd_base.py), which is what users
 * compare against:
 * - the start is a point on the boundary of the ball; the first step has size
 *   2 eps, later ones move with momentum (alpha = 0.75);
 * * - the step size is reviewed at checkpoints: the first after
 *   max(floor(0.22 steps), 1) iterates, each next interval shorter by
 *   max(floor(0.03 steps), 1) down to max(floor(0.06 steps), 1) (100 steps:
 *   22, 41, 57, 70, 80, 87, 93, 99); an example's step is halved, and it goes
 *   back to its best point, when at most `rho` of the interval's steps raised
 *   its loss, or when its step was not halved at the previous review and its
 *   best loss has not improved since (never at the first review);
 * - the loss increases are counted iterate to iterate, a jump back to the best
 *   point included, and the first step of the run is compared with 0 (the
 *   reference reads a not yet written slot there);
 * - any iterate that meets the criterion counts: targeted runs evaluated with
 *   the `misclassification` criterion (APGD-T) keep an iterate that lands in a
 *   third class, as the reference does.
 *
 * Distance: linf, l2. Targeted: toward the target's DLR (`loss: 'dlr'`, the
 * targeted DLR of APGD-T) or cross-entropy (`loss: 'ce'`).
 *
 * Parameters: steps (100: gradient evaluations per run; the last iterate is only
 * scored), restarts (1: the total number of runs, each from a new random start
 * for the examples not yet broken, as AutoAttack's and torchattacks'
 * n_restarts), loss ('ce' | 'dlr', default 'ce'), rho (0.75).
 *
 * Each example's start is drawn from its own seed, so results do not depend on
 * the batch. An example leaves the batch at its first success (costing no more
 * gradients); one never broken returns its highest-loss point over all runs.
 * Costs: at most restarts * steps gradient evaluations per image, plus forwards.
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
    { name: 'steps', type: 'integer', default: 100, min: 1, description: 'gradient evaluations per run (the step size is reviewed at 22%, 41%, 57%, ... of them)' },
    { name: 'restarts', type: 'integer', default: 1, min: 1, description: "total runs, each from a new random start for the examples not yet broken (AutoAttack's n_restarts)" },
    { name: 'loss', type: 'string', default: 'ce', choices: ['ce', 'dlr'], description: 'loss to ascend: cross-entropy or difference of logits ratio (targeted: their targeted forms)' },
    { name: 'rho', type: 'number', default: 0.75, min: 0, max: 1, description: 'halve the step when at most this fraction of the steps since the last review increased the loss' },
  ],
  attackBatch: (ctx, p) => runApgd(ctx, p),
};

type ApgdLoss = (logits: tf.Tensor2D, labels: tf.Tensor1D, targets: tf.Tensor1D | undefined) => tf.Tensor1D;

function lossFor(name: string, targeted: boolean): ApgdLoss {
  if (name === 'ce') return targeted ? (z, _y, t) => targetedCrossEntropy(z, t!) : (z, y) => crossEntropy(z, y);
  if (name === 'dlr') return targeted ? (z, y, t) => targetedDlr(z, y, t!) : (z, y) => dlr(z, y);
  throw new InputError('loss', `expected one of ce, dlr, got ${JSON.stringify(name)}`);
}

/** Tensors of one run, rows in step with {@link RunNumbers}. */
interface RunTensors {
  x: tf.Tensor4D;
  labels: tf.Tensor1D;
  targets: tf.Tensor1D | undefined;
  /** Current iterate x^(k), the previous one x^(k-1), the gradient at x^(k). */
  adv: tf.Tensor4D;
  prev: tf.Tensor4D;
  grad: tf.Tensor4D;
  /** Highest-loss point so far and its gradient. */
  best: tf.Tensor4D;
  gradBest: tf.Tensor4D;
}
const RUN_TENSORS = ['x', 'labels', 'targets', 'adv', 'prev', 'grad', 'best', 'gradBest'] as const satisfies readonly (keyof RunTensors)[];

/** Per-example numbers of one run. */
interface RunNumbers {
  /** Row of each example in the driver's batch. */
  index: number[];
  label: number[];
  target: (number | undefined)[];
  state: ApgdStepState[];
}
const RUN_NUMBERS = ['index', 'label', 'target', 'state'] as const satisfies readonly (keyof RunNumbers)[];

async function runApgd(ctx: BatchContext, p: ApgdParams): Promise<tf.Tensor4D> {
  const { classifier, x, labels, targets } = ctx;
  if (ctx.norm !== 'linf' && ctx.norm !== 'l2') throw new InputError('norm', `apgd supports linf, l2, not ${ctx.norm}`);
  if (p.loss === 'dlr' && !targets && classifier.numClasses < 3) {
    throw new InputError('loss', `the untargeted DLR loss needs at least 3 classes, the classifier has ${classifier.numClasses}; use loss "ce"`);
  }
  const loss = lossFor(p.loss, !!targets);
  const n = x.shape[0];
  const d = x.size / n;
  const out = ((await x.data()) as Float32Array).slice();
  const labelData = ((await labels.data()) as Int32Array).slice();
  const targetData = targets ? ((await targets.data()) as Int32Array).slice() : undefined;
  const cleanPred = ((await readOne(tf.tidy(() => tf.argMax(classifier.logits(x), 1)))) as Int32Array).slice();
  // Examples misclassified before the attack can never count as successes: leave them clean.
  let todo: number[] = [];
  for (let i = 0; i < n; i++) if (cleanPred[i] === labelData[i]) todo.push(i);
  const rngs = Array.from(ctx.exampleSeeds, (s) => new Rng(s));
  const lossOverall = new Float64Array(n).fill(-Infinity);
  const checkpoints = apgdCheckpoints(p.steps);
  for (let run = 0; run < p.restarts && todo.length > 0; run++) {
    const result = await apgdRun(ctx, todo, p, loss, checkpoints, rngs, labelData, targetData);
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
 * One APGD run on the rows `todo` of the batch. Returns the first iterate of
 * each example broken in this run, and the best-loss point of the rest.
 */
async function apgdRun(
  ctx: BatchContext,
  todo: number[],
  p: ApgdParams,
  loss: ApgdLoss,
  checkpoints: number[],
  rngs: Rng[],
  labelData: Int32Array,
  targetData: Int32Array | undefined,
): Promise<{ broken: Map<number, Float32Array>; unbroken: Map<number, { row: Float32Array; value: number }> }> {
  const { classifier, eps } = ctx;
  const ops = normOps(ctx.norm);
  const [lo, hi] = classifier.bounds;
  const d = ctx.x.size / ctx.x.shape[0];
  const broken = new Map<number, Float32Array>();
  const m = todo.length;
  const start = new Float32Array(m * d);
  todo.forEach((i, r) => apgdStartRow(ctx.norm as 'linf' | 'l2', eps, rngs[i], start.subarray(r * d, (r + 1) * d)));
  const t = tf.tidy(() => {
    const idx = tf.tensor1d(todo, 'int32');
    const x = tf.gather(ctx.x, idx) as tf.Tensor4D;
    const adv = tf.clipByValue(tf.add(x, tf.tensor4d(start, x.shape)), lo, hi) as tf.Tensor4D;
    return { x, labels: tf.gather(ctx.labels, idx) as tf.Tensor1D, targets: ctx.targets ? (tf.gather(ctx.targets, idx) as tf.Tensor1D) : undefined, adv };
  });
  let first: Evaluated;
  try {
    first = await evaluate(classifier, t.adv, t.labels, t.targets, loss, true);
  } catch (e) {
    tf.dispose([t.x, t.labels, t.adv, ...(t.targets ? [t.targets] : [])]);
    throw e;
  }
  const s: RunTensors = { ...t, prev: t.adv.clone(), grad: first.grad!, best: t.adv.clone(), gradBest: first.grad!.clone() };
  const v: RunNumbers = {
    index: [...todo],
    label: todo.map((i) => labelData[i]),
    target: todo.map((i) => targetData?.[i]),
    state: Array.from(first.loss, (l) => new ApgdStepState(eps, l)),
  };
  try {
    // The start itself may already meet the criterion.
    await retire(s, v, first.pred, ctx.criterion, broken, d);
    let checkpoint = 0;
    let lastCheck = 0;
    for (let k = 0; k < p.steps && v.index.length > 0; k++) {
      const a = k > 0 ? 0.75 : 1;
      const next = tf.tidy(() => {
        const eta = tf.reshape(tf.tensor1d(v.state.map((e) => e.step)), [-1, 1, 1, 1]);
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
      const e = await evaluate(classifier, s.adv, s.labels, s.targets, loss, !last);
      if (e.grad) {
        s.grad.dispose();
        s.grad = e.grad;
      }
      const improved = Uint8Array.from(v.state, (state, i) => (state.observe(e.loss[i]) ? 1 : 0));
      if (improved.some((b) => b)) {
        s.best = replaceRows(s.best, improved, s.adv);
        if (!last) s.gradBest = replaceRows(s.gradBest, improved, s.grad);
      }
      await retire(s, v, e.pred, ctx.criterion, broken, d);
      // Step-size review after the w_j-th iterate.
      if (checkpoint < checkpoints.length && k + 1 === checkpoints[checkpoint]) {
        const interval = checkpoints[checkpoint] - lastCheck;
        lastCheck = checkpoints[checkpoint];
        checkpoint++;
        const halve = Uint8Array.from(v.state, (state) => (state.review(interval, p.rho) ? 1 : 0));
        // Continue from the best point: x^(k+1) <- x_max (the momentum term still uses x^(k)).
        if (halve.some((b) => b)) {
          s.adv = replaceRows(s.adv, halve, s.best);
          s.grad = replaceRows(s.grad, halve, s.gradBest);
        }
      }
    }
    const unbroken = new Map<number, { row: Float32Array; value: number }>();
    if (v.index.length > 0) {
      const data = (await s.best.data()) as Float32Array;
      v.index.forEach((i, r) => unbroken.set(i, { row: data.slice(r * d, (r + 1) * d), value: v.state[r].lossBest }));
    }
    return { broken, unbroken };
  } finally {
    for (const f of RUN_TENSORS) s[f]?.dispose();
  }
}

/** What {@link evaluate} finds at a point. */
interface Evaluated {
  loss: Float32Array;
  pred: Int32Array;
  grad?: tf.Tensor4D;
}

/** Loss and predictions at `adv` (read in one wait), and the loss gradient when `withGradient`. */
async function evaluate(
  classifier: BatchContext['classifier'],
  adv: tf.Tensor4D,
  labels: tf.Tensor1D,
  targets: tf.Tensor1D | undefined,
  loss: ApgdLoss,
  withGradient: boolean,
): Promise<Evaluated> {
  if (!withGradient) {
    const [value, pred] = await readAndDispose(
      tf.tidy(() => {
        const logits = classifier.logits(adv);
        return [loss(logits, labels, targets), tf.argMax(logits, 1)];
      }),
    );
    return { loss: value as Float32Array, pred: pred as Int32Array };
  }
  // The predictions come from the forward pass of the gradient evaluation itself.
  const { value, grad, logits } = classifier.valueAndGradient(adv, (z) => loss(z, labels, targets));
  try {
    const pred = tf.tidy(() => tf.argMax(logits, 1));
    const [lossValues, predValues] = await readAndDispose([value, pred]);
    return { loss: lossValues as Float32Array, pred: predValues as Int32Array, grad };
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
 * Takes out of the run the examples whose current iterate meets the criterion,
 * recording that iterate (their first success) in `broken`.
 */
async function retire(s: RunTensors, v: RunNumbers, pred: Int32Array, criterion: Criterion, broken: Map<number, Float32Array>, d: number): Promise<void> {
  const keep: number[] = [];
  let data: Float32Array | undefined;
  for (let r = 0; r < v.index.length; r++) {
    if (meetsCriterion(pred[r], v.label[r], v.target[r], criterion)) {
      data ??= (await s.adv.data()) as Float32Array;
      broken.set(v.index[r], data.slice(r * d, (r + 1) * d));
    } else keep.push(r);
  }
  if (keep.length === v.index.length) return;
  for (const f of RUN_NUMBERS) {
    const arr = v[f] as unknown[];
    (v as unknown as Record<string, unknown[]>)[f] = keep.map((r) => arr[r]);
  }
  // Nobody left: the loop ends and the caller disposes the (now stale) tensors.
  if (keep.length === 0) return;
  tf.tidy(() => {
    const idx = tf.tensor1d(keep, 'int32');
    for (const f of RUN_TENSORS) {
      const t = s[f];
      if (!t) continue;
      const g = tf.keep(tf.gather(t, idx));
      t.dispose();
      (s as unknown as Record<string, tf.Tensor>)[f] = g;
    }
  });
}
