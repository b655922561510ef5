/**
 * Adversarial training on a worker pool. The inner attack is most of an
 * adversarial-training step (10 PGD steps against 1 weight update), and each
 * example's attack depends only on that example, so the batch is split over
 * the workers, each running the attack on its own copy of the model with the
 * current weights. The random start is drawn here, so the perturbed batch is
 * the same as without a pool.
 *
 * {@link pooledDefense} brings the perturbed batch back and updates the
 * weights here; {@link pooledTraining} keeps each slice in its worker for the
 * outer step too (its gradient, summed here in slice order; see
 * models/data-parallel.ts), so no core waits for this thread's update.
 */
import { tf, type tfl } from '../engine/tf.js';
import { readOne } from '../engine/read.js';
import { splitRanges, type TaskPool, type TaskRef } from '../engine/task-pool.js';
import type { DataParallel } from '../models/data-parallel.js';
import { WeightsChannel } from '../models/published-weights.js';
import type { ShardGradients } from '../models/train-task.js';
import { concatArrays } from '../util/arrays.js';
import { attackStart } from './defenses.js';
import { DEFENSE_TASK_URL, type AscentPayload, type DefendedGradientPayload } from './pool-task.js';
import type { Defense } from './types.js';

const ascentTask = (): TaskRef => ({ module: DEFENSE_TASK_URL, name: 'ascentTask' });
const defendedGradientTask = (): TaskRef => ({ module: DEFENSE_TASK_URL, name: 'defendedGradientTask' });

/** A batch cut into one slice per worker, with the attack's random start drawn here. */
async function slices(defense: Defense, pool: TaskPool, x4: tf.Tensor4D, y1: tf.Tensor1D, eps: number, seed: number) {
  const start = attackStart(defense.config, x4, eps, seed);
  const [n, h, w, c] = x4.shape;
  const size = h * w * c;
  const x = (await x4.data()) as Float32Array;
  const s = (await readOne(start)) as Float32Array;
  const y = (await y1.data()) as Int32Array;
  // Floats of the start per image: an image's size, or several (consistency's copies, image-major).
  const startSize = s.length / n;
  return splitRanges(n, Math.min(pool.size, n)).map(([from, to]) => ({
    x: x.slice(from * size, to * size),
    start: s.slice(from * startSize, to * startSize),
    y: y.slice(from, to),
    shape: [to - from, h, w, c] as [number, number, number, number],
  }));
}

/** `defense` with its perturbation spread over `pool`; the weights are published to the workers before every batch. */
export function pooledDefense(defense: Defense, pool: TaskPool): Defense {
  const channel = new WeightsChannel();
  return {
    ...defense,
    async perturb(m, b) {
      const ref = await channel.publish(m);
      const parts = await slices(defense, pool, b.x, b.y, b.eps, b.seed);
      const payloads: AscentPayload[] = parts.map((p) => ({ ...ref, config: defense.config, ...p, eps: b.eps }));
      const out = await pool.run<Float32Array, AscentPayload>(ascentTask(), payloads, (p) => [p.x.buffer, p.start.buffer, p.y.buffer]);
      const [, h, w, c] = b.x.shape;
      const all = concatArrays(out, Float32Array);
      return tf.tensor4d(all, [all.length / (h * w * c), h, w, c]);
    },
  };
}

/** Data-parallel adversarial training with `defense` on `pool`: attack and loss gradient of each slice in one task. */
export function pooledTraining(defense: Defense, pool: TaskPool): DataParallel {
  const channel = new WeightsChannel();
  return {
    workers: pool.size,
    async gradients(model: tfl.LayersModel, batch, context, whileComputing) {
      const ref = await channel.publish(model);
      const n = batch.x.shape[0];
      const parts = await slices(defense, pool, batch.x as tf.Tensor4D, batch.y as tf.Tensor1D, context.eps, context.seed);
      const payloads: DefendedGradientPayload[] = parts.map((p) => ({ ...ref, config: defense.config, ...p, eps: context.eps, numClasses: context.numClasses, batchSize: n, step: context.step, stepsPerEpoch: context.stepsPerEpoch }));
      const pending = pool.run<ShardGradients, DefendedGradientPayload>(defendedGradientTask(), payloads, (p) => [p.x.buffer, p.start.buffer, p.y.buffer]);
      whileComputing?.();
      return { parts: await pending, sizes: parts.map((p) => p.shape[0]) };
    },
  };
}
