import { tf } from '../engine/tf.js';
import { readOne } from '../engine/read.js';
import type { Attack, BatchContext, Norm } from './types.js';
import { normOps } from './norms.js';
import { InputError } from '../errors.js';

/** Parameters of {@link deepfool}. */
export type DeepFoolParams = { steps: number; overshoot: number; candidates: number };

/**
 * DeepFool: at each step, linearize the classifier around the current point and
 * take the smallest step that crosses the nearest linearized decision boundary
 * among the `candidates` most likely classes; the accumulated step is scaled by
 * `1 + overshoot` so the example lands just past the boundary. Moosavi-Dezfooli,
 * Fawzi and Frossard, "DeepFool: a simple and accurate method to fool deep neural
 * networks", CVPR 2016 (L2 as in the paper's Algorithm 2, Linf as in its Section
 * 3.3 with q = 1), following Foolbox 3's implementation.
 *
 * For an affine binary classifier f(x) = w.x + b the first step is exact: it
 * moves by |f(x)| / ||w||_2 along -sign(f) w / ||w||_2 (L2), or by
 * |f(x)| / ||w||_1 along -sign(f) sign(w) (Linf), times `1 + overshoot`.
 *
 * Kind: minimal perturbation, untargeted only. Distance: l2 (default), linf.
 * Per-example early stopping: an example is no longer updated once it is
 * misclassified (and costs no more gradients); every iterate is clipped to the
 * classifier's bounds. A finite `eps` is a cap: the final perturbation is
 * projected onto the eps-ball (as Foolbox's minimization attacks do), so an
 * example whose minimal perturbation is larger usually fails.
 *
 * Parameters: steps (50), overshoot (0.02), candidates (10: the true class and
 * the most likely others at the clean input; at least 2). Each step costs
 * `min(candidates, numClasses) - 1` gradients per still-correct example.
 * Usage: `runAttack(deepfool, classifier, data, { norm: 'l2', params: { steps: 50 } })`.
 */
export const deepfool: Attack<DeepFoolParams> = {
  name: 'deepfool',
  title: 'DeepFool',
  paper: 'Moosavi-Dezfooli et al., CVPR 2016',
  kind: 'minimal',
  access: 'gradient',
  norms: ['l2', 'linf'],
  targeted: 'untargeted',
  params: [
    { name: 'steps', type: 'integer', default: 50, min: 1, description: 'maximum linearization steps' },
    { name: 'overshoot', type: 'number', default: 0.02, min: 0, description: 'the accumulated step is multiplied by 1 + overshoot to cross the boundary' },
    { name: 'candidates', type: 'integer', default: 10, min: 2, description: 'classes considered: the true class and the most likely others at the clean input' },
  ],
  attackBatch: (ctx, p) => deepfoolBatch(ctx, p),
};

/** Added to every distance for numerical stability (Foolbox's constant). */
const STABILITY = 1e-4;
const TINY = 1e-8;

async function deepfoolBatch(ctx: BatchContext, p: DeepFoolParams): Promise<tf.Tensor4D> {
  const { classifier, x, labels, eps } = ctx;
  const norm: Norm = ctx.norm;
  if (norm !== 'l2' && norm !== 'linf') throw new InputError('norm', `deepfool supports l2 and linf, not ${norm}`);
  if (ctx.targets) throw new InputError('targeted', 'deepfool has no targeted version');
  const [lo, hi] = classifier.bounds;
  const n = x.shape[0];
  const d = x.shape[1] * x.shape[2] * x.shape[3];
  const numClasses = classifier.numClasses;
  const K = Math.min(p.candidates, numClasses);
  const labelArr = ((await labels.data()) as Int32Array).slice();

  // Candidate classes per example: the label first, then the other classes by decreasing clean logit.
  const cleanLogits = ((await readOne(tf.tidy(() => classifier.logits(x)))) as Float32Array).slice();
  const classes = new Int32Array(n * K);
  for (let i = 0; i < n; i++) {
    const row = cleanLogits.subarray(i * numClasses, (i + 1) * numClasses);
    const others = Array.from({ length: numClasses }, (_, j) => j)
      .filter((j) => j !== labelArr[i])
      .sort((a, b) => row[b] - row[a] || a - b);
    classes[i * K] = labelArr[i];
    for (let k = 1; k < K; k++) classes[i * K + k] = others[k - 1];
  }

  let pTotal = tf.zeros([n, d]) as tf.Tensor2D;
  let adv = tf.keep(x.clone());
  const active = new Array<boolean>(n).fill(true);
  try {
    for (let step = 0; step < p.steps; step++) {
      // Which examples are still classified correctly at their current point?
      const idx = indicesOf(active);
      if (!idx.length) break;
      const preds = (await readOne(tf.tidy(() => tf.argMax(classifier.logits(gatherRows(adv, idx)), 1)))) as Int32Array;
      idx.forEach((i, j) => {
        if (preds[j] !== labelArr[i]) active[i] = false;
      });
      const live = indicesOf(active);
      if (!live.length) break;
      const m = live.length;

      const next = tf.tidy(() => {
        const xs = gatherRows(adv, live);
        const y = tf.tensor1d(live.map((i) => labelArr[i]), 'int32');
        const losses: tf.Tensor1D[] = [];
        const grads: tf.Tensor2D[] = [];
        for (let k = 1; k < K; k++) {
          const ck = tf.tensor1d(live.map((i) => classes[i * K + k]), 'int32');
          const pick = tf.sub(tf.oneHot(ck, numClasses), tf.oneHot(y, numClasses));
          // f_k = Z_k - Z_y per example (negative while the example is correct).
          const { value, grad } = classifier.valueAndGradient(xs, (logits) => tf.sum(tf.mul(logits, pick), 1) as tf.Tensor1D);
          losses.push(value);
          grads.push(tf.reshape(grad, [m, d]));
        }
        const f = tf.stack(losses, 1) as tf.Tensor2D; // [m, K-1]
        const g = tf.stack(grads, 1) as tf.Tensor3D; // [m, K-1, d]
        const gNorm = norm === 'l2' ? tf.sqrt(tf.sum(tf.square(g), 2)) : tf.sum(tf.abs(g), 2); // dual norm of the step's norm
        const dist = tf.div(tf.abs(f), tf.add(gNorm, TINY));
        const best = tf.argMin(dist, 1);
        const sel = K - 1 === 1 ? tf.ones([m, 1]) : tf.oneHot(best, K - 1); // [m, K-1] (oneHot needs depth >= 2)
        const distBest = tf.add(tf.sum(tf.mul(dist, sel), 1), STABILITY); // [m]
        const gBest = tf.sum(tf.mul(g, tf.expandDims(sel, 2)), 1) as tf.Tensor2D; // [m, d]
        const stepDir =
          norm === 'l2'
            ? tf.div(gBest, tf.add(tf.sqrt(tf.sum(tf.square(gBest), 1, true)), TINY))
            : tf.sign(gBest);
        const pStep = tf.mul(tf.reshape(distBest, [m, 1]), stepDir) as tf.Tensor2D;
        // Scatter the live examples' steps back to the batch (zero rows elsewhere).
        const inverse = new Int32Array(n).fill(m);
        live.forEach((i, j) => (inverse[i] = j));
        const pFull = tf.gather(tf.concat([pStep, tf.zeros([1, d])], 0), tf.tensor1d(inverse, 'int32'));
        const total = tf.add(pTotal, pFull) as tf.Tensor2D;
        const moved = tf.clipByValue(tf.add(x, tf.mul(1 + p.overshoot, tf.reshape(total, x.shape))), lo, hi);
        const mask = tf.reshape(tf.tensor1d(active.map((a) => (a ? 1 : 0)), 'bool'), [n, 1, 1, 1]);
        const newAdv = tf.where(tf.broadcastTo(mask, x.shape), moved, adv) as tf.Tensor4D;
        return { total, newAdv };
      });
      pTotal.dispose();
      adv.dispose();
      pTotal = next.total;
      adv = next.newAdv;
    }
    return capToEps(x, adv, norm, eps, lo, hi);
  } finally {
    pTotal.dispose();
    adv.dispose();
  }
}

function indicesOf(flags: readonly boolean[]): number[] {
  const out: number[] = [];
  flags.forEach((f, i) => f && out.push(i));
  return out;
}

function gatherRows(t: tf.Tensor4D, rows: number[]): tf.Tensor4D {
  return tf.gather(t, tf.tensor1d(rows, 'int32')) as tf.Tensor4D;
}

/** Projects `adv - x` onto the eps-ball of `norm` (a no-op for eps = Infinity) and clips to the bounds; returns a new tensor. */
function capToEps(x: tf.Tensor4D, adv: tf.Tensor4D, norm: Norm, eps: number, lo: number, hi: number): tf.Tensor4D {
  return tf.tidy(() => {
    if (!Number.isFinite(eps)) return tf.clipByValue(adv, lo, hi) as tf.Tensor4D;
    const delta = normOps(norm).project(tf.sub(adv, x) as tf.Tensor4D, eps);
    return tf.clipByValue(tf.add(x, delta), lo, hi) as tf.Tensor4D;
  });
}
