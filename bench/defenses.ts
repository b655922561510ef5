import { initBackend } from '../src/node/backend.js';
import { WorkerPool } from '../src/node/worker-pool.js';
import { clearWorkerModels } from '../src/models/pool-model.js';
import { loadBuiltinDataset } from '../src/node/data/builtin.js';
import { take } from '../src/data/split.js';
import { buildModel } from '../src/models/zoo.js';
import { trainClassifier } from '../src/models/train.js';
import { createDefense, defaultDefenseConfig } from '../src/defenses/defenses.js';
import { pooledDefense } from '../src/defenses/pooled.js';
import type { DefenseName } from '../src/defenses/types.js';
import { machine, round, stepTimer } from './measure.js';

const BATCH = 128;
/** Batches timed per method (after one warm-up batch); seconds per epoch are extrapolated to mnist's split. */
const BATCHES = 6;

/**
 * Issue 7: seconds per epoch of `small-cnn` on mnist's training split
 * (7,996 images, batch 128) for plain training and each defense (eps 0.3;
 * pgd-at and trades with 10 steps), with the inner attack on a 2-worker pool
 * as `advlab train --defense` runs it, and each one's ratio to plain training.
 * Each method trains a fresh model on the same images; per-batch time is
 * measured over BATCHES batches after a warm-up batch.
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
    const perBatch: Record<string, number> = {};
    for (const name of methods) {
      const model = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
      const defense = name === 'none' ? undefined : pooledDefense(createDefense(defaultDefenseConfig(name, { eps: 0.3 })), pool);
      const timer = stepTimer();
      await trainClassifier(model, subset, { epochs: 1, batchSize: BATCH, learningRate: 1e-3, seed: 0, defense, onProgress: (e) => e.type === 'batch' && timer.batch() });
      model.dispose();
      perBatch[name] = timer.meanSeconds();
      const key = name === 'none' ? 'plain' : name;
      out[key] = { secondsPerBatch: round(perBatch[name], 3), secondsPerEpoch: round(perBatch[name] * batchesPerEpoch, 1), ratioToPlain: round(perBatch[name] / perBatch.none, 2) };
      log(`${key}: ${round(perBatch[name], 2)} s/batch, ${round(perBatch[name] * batchesPerEpoch, 0)} s/epoch, x${round(perBatch[name] / perBatch.none, 2)} plain`);
    }
  } finally {
    await pool.close();
    await clearWorkerModels();
  }
  return out;
}
