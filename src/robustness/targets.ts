/**
 * Which classes a targeted stage aims at, in order. AutoAttack takes the
 * classes by decreasing clean logit. MALT (Melamed, Yehudai & Shamir,
 * "MALT powers up adversarial attacks", NeurIPS 2024; reference code
 * odeliamel/MALT, targeting.py) ranks them by the distance to each class's
 * boundary under a linear model of the logits at the clean point, the DeepFool
 * step (z_y - z_j) / ||grad(z_y - z_j)||_q (q = 1 for an L-inf budget, 2 for
 * L2): the class whose boundary is nearest in the attack's own norm comes
 * first, which finds with one or two targets what the logit order needs many
 * for.
 */
import { tf } from '../engine/tf.js';
import { readAndDispose } from '../engine/read.js';
import type { Classifier } from '../models/classifier.js';
import type { Norm } from '../attacks/types.js';

/** How a targeted stage orders its target classes. */
export type TargetOrder = 'logits' | 'malt';

/** Classes other than the top one, by decreasing logit, per point ([n][k - 1]; rank r is index r - 2). */
export function rankByLogits(logits: Float32Array, n: number, k: number): number[][] {
  return Array.from({ length: n }, (_, i) => {
    const order = Array.from({ length: k }, (_, j) => j).sort((a, b) => logits[i * k + b] - logits[i * k + a] || a - b);
    return order.slice(1);
  });
}

/**
 * MALT's order of the classes other than the label, per point, nearest
 * linearized boundary first: [count][k - 1] flattened. One backward pass per
 * class (the Jacobian's rows), on the clean images.
 */
export async function rankByMalt(classifier: Classifier, images: Float32Array, labels: Int32Array, norm: Norm): Promise<Int32Array> {
  const n = labels.length;
  const k = classifier.numClasses;
  const [h, w, c] = classifier.inputShape;
  const d = h * w * c;
  const out = new Int32Array(n * (k - 1));
  if (n === 0) return out;
  const x = tf.tensor4d(images, [n, h, w, c]);
  try {
    // Logits and one gradient per class: z_c and grad z_c for every point.
    let logits: Float32Array | undefined;
    const jacobian: Float32Array[] = [];
    for (let cls = 0; cls < k; cls++) {
      const r = classifier.valueAndGradient(x, (z) => tf.squeeze(tf.slice(z, [0, cls], [-1, 1]), [1]) as tf.Tensor1D);
      r.value.dispose();
      // The class's gradients and the logits, read in one wait; the logits are kept from the first pass.
      const [grad, z] = await readAndDispose([r.grad, r.logits]);
      logits ??= (z as Float32Array).slice();
      jacobian.push((grad as Float32Array).slice());
    }
    for (let i = 0; i < n; i++) {
      const y = labels[i];
      const gy = jacobian[y].subarray(i * d, (i + 1) * d);
      const scored: { cls: number; distance: number }[] = [];
      for (let j = 0; j < k; j++) {
        if (j === y) continue;
        const gj = jacobian[j].subarray(i * d, (i + 1) * d);
        let size = 0;
        for (let p = 0; p < d; p++) {
          const diff = gy[p] - gj[p];
          size += norm === 'l2' ? diff * diff : Math.abs(diff);
        }
        if (norm === 'l2') size = Math.sqrt(size);
        const margin = logits![i * k + y] - logits![i * k + j];
        // A zero gradient gives no direction: such a class goes last (the reference leaves it at +inf).
        scored.push({ cls: j, distance: size > 0 ? margin / size : Infinity });
      }
      scored.sort((a, b) => a.distance - b.distance || a.cls - b.cls);
      scored.forEach((s, r) => (out[i * (k - 1) + r] = s.cls));
    }
  } finally {
    x.dispose();
  }
  return out;
}
