import { initBackend } from '../src/node/backend.js';
import { loadBuiltinDataset } from '../src/node/data/builtin.js';
import { take } from '../src/data/split.js';
import { buildAae } from '../src/generative/aae/architectures.js';
import { trainAae, type AaeTrainOptions } from '../src/generative/aae/train-aae.js';
import { AAE_RUN_DEFAULTS, DEFAULT_CLUSTER_BALANCE, labelledSubset } from '../src/jobs/aae-run.js';
import { machine, round, stepTimer } from './measure.js';

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
  const configs: [string, number, Partial<AaeTrainOptions>][] = [
    ['gaussian', 0, {}],
    ['semi-supervised-1000', data.numClasses, { labelled }],
    ['clusters-16', 16, { categoryBalance: DEFAULT_CLUSTER_BALANCE }],
  ];
  for (const [key, categories, extra] of configs) {
    const models = buildAae('mlp', { imageShape: data.train.imageShape, latentDim: LATENT, seed: 0, categories });
    const timer = stepTimer();
    try {
      await trainAae(models, subset, { epochs: 1, batchSize: BATCH, prior: 'gaussian', seed: 0, ...extra, onProgress: (e) => e.type === 'batch' && timer.batch() });
    } finally {
      for (const m of [models.encoder, models.decoder, models.discriminator, models.categoryDiscriminator]) m?.dispose();
    }
    const perStep = timer.meanSeconds();
    out[key] = { secondsPerStep: round(perStep, 3), secondsPerEpoch: round(perStep * batchesPerEpoch, 1) };
    log(`${key}: ${round(perStep, 3)} s/step, ${round(perStep * batchesPerEpoch, 1)} s/epoch`);
  }
  return out;
}
