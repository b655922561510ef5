/**
 * Adversarial training with its inner attack on a worker pool: the attack is
 * most of an adversarial-training step (10 PGD steps against 1 weight
 * update), and each example's attack depends only on that example, so the
 * batch is split over the workers, each running the attack on its own copy of
 * the model with the current weights. The random start is drawn here, so the
 * result is the same as without a pool. The weight update stays in this
 * thread (no gradient averaging needed).
 */
import { tf, type tfl } from '../engine/tf.js';
import { readOne } from '../engine/read.js';
import { splitRanges, type TaskPool, type TaskRef } from '../engine/task-pool.js';
import { shareModel, type SharedModel } from '../models/pool-model.js';
import { concatArrays } from '../util/arrays.js';
import { attackStart } from './defenses.js';
import { DEFENSE_TASK_URL, type AscentPayload } from './pool-task.js';
import type { Defense } from './types.js';

const ascentTask = (): TaskRef => ({ module: DEFENSE_TASK_URL, name: 'ascentTask' });

/**
 * `defense` with its perturbation spread over `pool`. The model being trained
 * is shared with the workers on the first batch (its topology, once); its
 * weights are published to them before every batch.
 */
export function pooledDefense(defense: Defense, pool: TaskPool): Defense {
  let state: { model: tfl.LayersModel; shared: SharedModel; sizes: number[]; buffer: SharedArrayBuffer; all: Float32Array } | undefined;
  let version = 0;
  return {
    ...defense,
    async perturb(m, b) {
      if (!state || state.model !== m) {
        const sizes = m.weights.map((w) => (w.shape as number[]).reduce((a, c) => a * c, 1));
        const buffer = new SharedArrayBuffer(4 * sizes.reduce((a, c) => a + c, 0));
        state = { model: m, shared: await shareModel(m), sizes, buffer, all: new Float32Array(buffer) };
      }
      const { shared, sizes, buffer, all } = state;
      // Publish the current weights (they changed with the last step).
      let offset = 0;
      for (let i = 0; i < m.weights.length; i++) {
        all.set((await m.weights[i].read().data()) as Float32Array, offset);
        offset += sizes[i];
      }
      version++;
      const start = attackStart(defense.config, b.x, b.eps, b.seed);
      const [n, h, wd, c] = b.x.shape;
      const size = h * wd * c;
      const x = (await b.x.data()) as Float32Array;
      const s = (await readOne(start)) as Float32Array;
      const y = (await b.y.data()) as Int32Array;
      const payloads: AscentPayload[] = splitRanges(n, Math.min(pool.size, n)).map(([from, to]) => ({
        model: shared,
        weights: buffer,
        version,
        config: defense.config,
        x: x.slice(from * size, to * size),
        start: s.slice(from * size, to * size),
        y: y.slice(from, to),
        shape: [to - from, h, wd, c],
        eps: b.eps,
      }));
      const parts = await pool.run<Float32Array, AscentPayload>(ascentTask(), payloads, (p) => [p.x.buffer, p.start.buffer, p.y.buffer]);
      return tf.tensor4d(concatArrays(parts, Float32Array), [n, h, wd, c]);
    },
  };
}
