import { initBackend } from '../src/node/backend.js';
import { loadBuiltinDataset } from '../src/node/data/builtin.js';
import { take } from '../src/data/split.js';
import { buildAae } from '../src/generative/aae/architectures.js';
import { trainAae, type AaeTrainOptions } from '../src/generative/aae/train-aae.js';
import { AAE_RUN_DEFAULTS, DEFAULT_CLUSTER_BALANCE, labelledSubset } from '../src/jobs/aae-run.js';
import { machine, round, stepTimer } from './measure.js';
import { WorkerPool } from '../src/node/worker-pool.js';
import { clearWorkerModels } from '../src/models/pool-model.js';
import { parseAugmentations } from '../src/data/augment.js';

const BATCH = AAE_RUN_DEFAULTS.batchSize;
const LATENT = 8;
/** Steps timed per configuration (after one warm-up step); seconds per epoch are extrapolated to mnist's split. */
const STEPS = 8;

/**
 * Issue 9: seconds per epoch of `advlab aae` training on mnist's training
 * split (7,996 images, batch 100, latent 8, mlp, one thread) for the plain
 * AAE (gaussian prior: a reconstruction step, a discriminator step and an
 * encoder step per batch), the semi-supervised mode (1,000 labels: a second
 * discriminator step, the encoder against both, and a classification step)
 * and the clustering mode (16 clusters: the same without the classification
 * step, with the default balance term). The per-epoch test figures (the
 * monitor) are not included. Each configuration trains fresh models on the
 * same images.
 */
export async function benchAae(log: (s: string) => void) {
  const backend = await initBackend({ backend: 'wasm' });
  const data = loadBuiltinDataset('mnist');
  const batchesPerEpoch = Math.ceil(data.train.count / BATCH);
  const subset = take(data.train, Int32Array.from({ length: (STEPS + 1) * BATCH }, (_, i) => i));
  const labelled = labelledSubset(data.train, data.numClasses, 1000, 0);
  const out: Record<string, unknown> = { machine: machine(), backend: backend.name, threads: backend.threads, kernels: backend.kernels, dataset: 'mnist', arch: 'mlp', latent: LATENT, batch: BATCH, trainImages: data.train.count, batchesPerEpoch, timedSteps: STEPS };
  // Issue 22: issue 9's semi-supervised recipe (--labels 1000 --width 4 --augment shift:2) on one thread and data-parallel on 2 workers.
  const recipe = { labelled, labelledAugment: parseAugmentations('shift:2') };
  const configs: [string, number, number, Partial<AaeTrainOptions>, boolean][] = [
    ['gaussian', 0, 1, {}, false],
    ['semi-supervised-1000', data.numClasses, 1, { labelled }, true],
    ['clusters-16', 16, 1, { categoryBalance: DEFAULT_CLUSTER_BALANCE }, false],
    ['semi-supervised-1000-width4', data.numClasses, 4, recipe, true],
  ];
  const pool = await WorkerPool.start({ size: 2, backend: 'wasm', kernels: 'advlab' });
  try {
    for (const [key, categories, width, extra, split] of configs) {
      const time = async (withPool: boolean) => {
        const models = buildAae('mlp', { imageShape: data.train.imageShape, latentDim: LATENT, seed: 0, categories, width });
        const timer = stepTimer();
        try {
          await trainAae(models, subset, { epochs: 1, batchSize: BATCH, prior: 'gaussian', seed: 0, ...extra, ...(withPool ? { pool } : {}), onProgress: (e) => e.type === 'batch' && timer.batch() });
        } finally {
          for (const m of [models.encoder, models.decoder, models.discriminator, models.categoryDiscriminator]) m?.dispose();
        }
        return timer.meanSeconds();
      };
      const perStep = await time(false);
      const entry: Record<string, number> = { width, secondsPerStep: round(perStep, 3), secondsPerEpoch: round(perStep * batchesPerEpoch, 1) };
      let line = `${key}: ${round(perStep, 3)} s/step, ${round(perStep * batchesPerEpoch, 1)} s/epoch`;
      if (split) {
        const two = await time(true);
        Object.assign(entry, { twoWorkersSecondsPerStep: round(two, 3), twoWorkersSecondsPerEpoch: round(two * batchesPerEpoch, 1), speedup: round(perStep / two, 2) });
        line += `; 2 workers ${round(two, 3)} s/step (${round(perStep / two, 2)}x)`;
      }
      out[key] = entry;
      log(line);
    }
  } finally {
    await pool.close();
    await clearWorkerModels();
  }
  return out;
}
