/**
 * One small-cnn Adam step at batch 128 with its gradients computed in two
 * shards on a 2-worker pool (models/data-parallel.ts), as `advlab train`
 * runs it on 2 cores: publishing the weights, the shards' forward and
 * backward passes, the sum and the update.
 */
import { tf } from '../src/engine/tf.js';
import { WorkerPool } from '../src/node/worker-pool.js';
import { buildModel } from '../src/models/zoo.js';
import { applyShardGradients, dataParallel } from '../src/models/data-parallel.js';
import { clearWorkerModels } from '../src/models/pool-model.js';
import { Rng } from '../src/util/rng.js';
import { round } from './measure.js';

const BATCH = 128;

export async function benchDataParallel(log: (s: string) => void, singleThreadMs: number | null): Promise<Record<string, unknown>> {
  const pool = await WorkerPool.start({ size: 2, backend: 'wasm', kernels: 'advlab' });
  const model = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
  const optimizer = tf.train.adam(1e-3);
  const parallel = dataParallel(pool);
  const rng = new Rng(0);
  const images = Float32Array.from({ length: BATCH * 784 }, () => rng.next());
  const labels = Int32Array.from({ length: BATCH }, () => rng.int(10));
  const step = async () => {
    const batch = { x: tf.tensor4d(images, [BATCH, 28, 28, 1]), y: tf.tensor1d(labels, 'int32') };
    try {
      const { parts, sizes } = await parallel.gradients(model, batch, { numClasses: 10, eps: 0, seed: 0, step: 0, stepsPerEpoch: 1 });
      applyShardGradients(model, optimizer, parts, sizes);
    } finally {
      tf.dispose([batch.x, batch.y]);
    }
  };
  try {
    for (let i = 0; i < 3; i++) await step();
    const runs: number[] = [];
    for (let i = 0; i < 9; i++) {
      const t0 = performance.now();
      await step();
      runs.push(performance.now() - t0);
    }
    runs.sort((a, b) => a - b);
    const ms = round(runs[runs.length >> 1]);
    const out = { workers: 2, batch: BATCH, trainStepMs: ms, repeats: runs.length, singleThreadTrainStepMs: singleThreadMs, speedup: singleThreadMs ? round(singleThreadMs / ms, 2) : null };
    log(`engine.dataParallel: train step on 2 workers ${ms} ms (one thread ${singleThreadMs} ms)`);
    return out;
  } finally {
    optimizer.dispose();
    model.dispose();
    await pool.close();
    await clearWorkerModels();
  }
}
