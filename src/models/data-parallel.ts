/**
 * Data-parallel training steps on a worker pool: the batch is split into one
 * shard per worker, each worker computes its shard's gradients on its own
 * copy of the model at the current weights (train-task.ts), the gradients are
 * summed here in shard order (so a run is bit-identical for the same seed and
 * worker count), the optimizer updates once, and the new weights are
 * published before the next step.
 *
 * Batch norm: each worker normalises its shard with the shard's own
 * statistics (as data-parallel training without synchronized batch norm
 * does: the shards are large enough, and synchronizing would cost a round
 * trip per layer), and the moving statistics the workers computed are
 * averaged, weighted by shard size.
 */
import { tf, type tfl } from '../engine/tf.js';
import { splitRanges, type TaskPool, type TaskRef } from '../engine/task-pool.js';
import { WeightsChannel } from './published-weights.js';
import { TRAIN_TASK_URL, type GradientPayload, type ShardGradients } from './train-task.js';
import type { Batch } from '../data/batches.js';

/** What the trainer knows about the step it asks for. */
export interface StepContext {
  numClasses: number;
  /** The adversarial-training budget of this step (defenses only). */
  eps: number;
  /** The step's seed (defenses' random starts). */
  seed: number;
  /** The global step, and steps per epoch (defenses' schedules). */
  step: number;
  stepsPerEpoch: number;
}

/** Computes a batch's gradients on a pool: {@link dataParallel} for plain training, the pooled defenses for adversarial training. */
export interface DataParallel {
  readonly workers: number;
  /**
   * The shards' results, in shard order; `sizes` their image counts.
   * `whileComputing` runs once the shards are out, while the workers compute
   * (the trainer prepares its next batch there).
   */
  gradients(model: tfl.LayersModel, batch: Pick<Batch, 'x' | 'y'>, context: StepContext, whileComputing?: () => void): Promise<{ parts: ShardGradients[]; sizes: number[] }>;
}

const gradientTask = (): TaskRef => ({ module: TRAIN_TASK_URL, name: 'gradientTask' });

/** Plain cross-entropy training on `pool`, one shard per worker (at most one per image). */
export function dataParallel(pool: TaskPool): DataParallel {
  const channel = new WeightsChannel();
  return {
    workers: pool.size,
    async gradients(model, batch, context, whileComputing) {
      const ref = await channel.publish(model);
      const [n, h, w, c] = batch.x.shape as [number, number, number, number];
      const size = h * w * c;
      const x = (await batch.x.data()) as Float32Array;
      const y = (await batch.y.data()) as Int32Array;
      const ranges = splitRanges(n, Math.min(pool.size, n));
      const payloads: GradientPayload[] = ranges.map(([from, to]) => ({
        ...ref,
        x: x.slice(from * size, to * size),
        y: y.slice(from, to),
        shape: [to - from, h, w, c],
        numClasses: context.numClasses,
        batchSize: n,
      }));
      const pending = pool.run<ShardGradients, GradientPayload>(gradientTask(), payloads, (p) => [p.x.buffer, p.y.buffer]);
      whileComputing?.();
      return { parts: await pending, sizes: ranges.map(([from, to]) => to - from) };
    },
  };
}

/**
 * One optimizer step from the shards' gradients: summed in shard order, applied
 * once; the non-trained weights of `stateOf` (default the trained model)
 * become the shards' average. Returns the batch loss (mean over its images),
 * the correct count and the summed extras.
 */
export function applyShardGradients(model: tfl.LayersModel, optimizer: tf.Optimizer, parts: ShardGradients[], sizes: number[], stateOf: tfl.LayersModel[] = [model]): { loss: number; correct: number; extras: number[] } {
  const figures = applyGradientSum(
    model.trainableWeights.map((w) => w.read() as tf.Variable),
    optimizer,
    parts,
  );
  const stateWeights = stateOf.flatMap((m) => m.nonTrainableWeights);
  if (stateWeights.length) {
    const total = sizes.reduce((a, b) => a + b, 0);
    const mean = new Float32Array(parts[0].state.length);
    parts.forEach((p, k) => {
      const share = sizes[k] / total;
      for (let i = 0; i < mean.length; i++) mean[i] += share * p.state[i];
    });
    let offset = 0;
    for (const w of stateWeights) {
      const size = (w.shape as number[]).reduce((a, b) => a * b, 1);
      const t = tf.tensor(mean.subarray(offset, offset + size), w.shape as number[]);
      w.write(t);
      t.dispose();
      offset += size;
    }
  }
  return figures;
}

/**
 * One optimizer step on `variables` from the shards' gradients (each
 * concatenated in `variables`' order), summed in shard order; returns the
 * summed loss, correct count and extras.
 */
export function applyGradientSum(variables: readonly tf.Variable[], optimizer: tf.Optimizer, parts: ShardGradients[]): { loss: number; correct: number; extras: number[] } {
  const sum = parts[0].grads.slice();
  for (let k = 1; k < parts.length; k++) {
    const g = parts[k].grads;
    for (let i = 0; i < sum.length; i++) sum[i] += g[i];
  }
  const named: tf.NamedTensorMap = {};
  let offset = 0;
  for (const v of variables) {
    named[v.name] = tf.tensor(sum.subarray(offset, offset + v.size), v.shape);
    offset += v.size;
  }
  try {
    optimizer.applyGradients(named);
  } finally {
    tf.dispose(Object.values(named));
  }
  return { loss: parts.reduce((a, p) => a + p.loss, 0), correct: parts.reduce((a, p) => a + p.correct, 0), extras: parts[0].extras.map((_, i) => parts.reduce((a, p) => a + p.extras[i], 0)) };
}

/**
 * Whether splitting a batch of these models over workers pays: only when a
 * convolution does most of the work. A dense-only network computes too little
 * per image for the weight exchange of every step (measured, mnist, 2
 * workers: an mlp GAN step 0.099 s on one thread against 0.145 s split;
 * small-cnn 0.55 against 0.48, dcgan 0.264 against 0.206). Jobs use it for
 * `--workers auto`; an explicit count always splits.
 */
export function worthSharding(models: tfl.LayersModel[]): boolean {
  return models.some((m) => m.layers.some((l) => /Conv/.test(l.getClassName())));
}
