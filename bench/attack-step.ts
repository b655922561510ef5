import { tf } from '../src/engine/tf.js';
import type { Classifier } from '../src/models/classifier.js';
import { crossEntropy } from '../src/attacks/losses.js';
import { Rng } from '../src/util/rng.js';
import { time } from './measure.js';

/**
 * The engine's speed on a 28x28x1 classifier, as attacks use it: the median
 * of one attack step (logits, cross-entropy, input gradient) and of one
 * forward pass on `batch` random images, in this thread.
 */
export function attackStepTiming(classifier: Classifier, batch: number): { stepMs: number; forwardMs: number } {
  const rng = new Rng(0);
  const x = tf.tensor4d(Float32Array.from({ length: batch * 784 }, () => rng.next()), [batch, 28, 28, 1]);
  const y = tf.tensor1d(Int32Array.from({ length: batch }, () => rng.int(10)), 'int32');
  try {
    const step = time(() => {
      const r = classifier.valueAndGradient(x, (z) => crossEntropy(z, y));
      r.grad.dataSync();
      tf.dispose([r.value, r.grad, r.logits]);
    }, { warmup: 3, repeats: 9 });
    const forward = time(() => tf.tidy(() => classifier.logits(x).dataSync()), { warmup: 3, repeats: 9 });
    return { stepMs: step.medianMs, forwardMs: forward.medianMs };
  } finally {
    tf.dispose([x, y]);
  }
}
