import { initBackend } from '../src/node/backend.js';
import { WorkerPool } from '../src/node/worker-pool.js';
import { clearWorkerModels } from '../src/models/pool-model.js';
import { loadBuiltinDataset } from '../src/node/data/builtin.js';
import { take } from '../src/data/split.js';
import { buildModel } from '../src/models/zoo.js';
import { trainClassifier } from '../src/models/train.js';
import { createDefense, defaultDefenseConfig } from '../src/defenses/defenses.js';
import { pooledDefense, pooledTraining } from '../src/defenses/pooled.js';
import { dataParallel } from '../src/models/data-parallel.js';
import type { DefenseName } from '../src/defenses/types.js';
import { machine, round, stepTimer } from './measure.js';

const BATCH = 128;
/** Batches timed per method (after one warm-up batch); seconds per epoch are extrapolated to mnist's split. */
const BATCHES = 6;

/**
 * Issues 7 and 22: seconds per epoch of `small-cnn` on mnist's training split
 * (7,996 images, batch 128) for plain training and each defense (eps 0.3;
 * pgd-at and trades with 10 steps) on 2 workers, two ways: data-parallel (each
 * worker attacks its half of the batch and takes its gradient; one update
 * here), as `advlab train` runs now, and the earlier way (the inner attack on
 * the workers, the outer step on this thread; plain training on this thread
 * alone). Each method trains a fresh model on the same images; per-batch time
 * is measured over BATCHES batches after a warm-up batch. The 12-epoch
 * projection is issue 7's PGD-AT recipe.
 */
export async function benchDefenses(log: (s: string) => void) {
  const backend = await initBackend({ backend: 'wasm' });
  const data = loadBuiltinDataset('mnist');
  const batchesPerEpoch = Math.ceil(data.train.count / BATCH);
  const subset = take(data.train, Int32Array.from({ length: (BATCHES + 1) * BATCH }, (_, i) => i));
  const pool = await WorkerPool.start({ size: 2, backend: 'wasm' });
  const out: Record<string, unknown> = { machine: machine(), backend: backend.name, threads: backend.threads, kernels: backend.kernels, workers: 2, model: 'small-cnn', dataset: 'mnist', batch: BATCH, trainImages: data.train.count, batchesPerEpoch, timedBatches: BATCHES };
  try {
    const methods: ('none' | DefenseName)[] = ['none', 'fgsm-rs', 'pgd-at', 'trades'];
    const perBatch: Record<string, { dataParallel: number; earlier: number }> = {};
    for (const name of methods) {
      const time = async (parallel: boolean) => {
        const model = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
        const base = name === 'none' ? undefined : createDefense(defaultDefenseConfig(name, { eps: 0.3 }));
        const timer = stepTimer();
        await trainClassifier(model, subset, {
          epochs: 1,
          batchSize: BATCH,
          learningRate: 1e-3,
          seed: 0,
          ...(base ? { defense: parallel ? base : pooledDefense(base, pool) } : {}),
          ...(parallel ? { parallel: base ? pooledTraining(base, pool) : dataParallel(pool) } : {}),
          onProgress: (e) => e.type === 'batch' && timer.batch(),
        });
        model.dispose();
        return timer.meanSeconds();
      };
      perBatch[name] = { earlier: await time(false), dataParallel: await time(true) };
      const key = name === 'none' ? 'plain' : name;
      const p = perBatch[name];
      out[key] = {
        secondsPerBatch: round(p.dataParallel, 3),
        secondsPerEpoch: round(p.dataParallel * batchesPerEpoch, 1),
        ratioToPlain: round(p.dataParallel / perBatch.none.dataParallel, 2),
        earlierSecondsPerBatch: round(p.earlier, 3),
        earlierSecondsPerEpoch: round(p.earlier * batchesPerEpoch, 1),
        speedupOverEarlier: round(p.earlier / p.dataParallel, 2),
        ...(name === 'pgd-at' ? { recipeMinutes12Epochs: round((p.dataParallel * batchesPerEpoch * 12) / 60, 1), earlierRecipeMinutes12Epochs: round((p.earlier * batchesPerEpoch * 12) / 60, 1) } : {}),
      };
      log(`${key}: data-parallel ${round(p.dataParallel, 2)} s/batch (${round(p.dataParallel * batchesPerEpoch, 0)} s/epoch), earlier ${round(p.earlier, 2)} s/batch: x${round(p.earlier / p.dataParallel, 2)}`);
    }
  } finally {
    await pool.close();
    await clearWorkerModels();
  }
  return out;
}
