import { initBackend } from '../src/node/backend.js';
import { WorkerPool } from '../src/node/worker-pool.js';
import { clearWorkerModels } from '../src/models/pool-model.js';
import { loadBuiltinDataset } from '../src/node/data/builtin.js';
import { take } from '../src/data/split.js';
import { buildGan, type GanArch } from '../src/generative/gan/architectures.js';
import { trainGan } from '../src/generative/gan/train-gan.js';
import { DEFAULT_CLUSTERS, GAN_RUN_DEFAULTS } from '../src/jobs/gan-run.js';
import { clusterTrainingSet } from '../src/generative/gan/clustering.js';
import { closeMetrics, generatorMetrics } from '../src/generative/gan/gan-metrics.js';
import { openMetricsAt } from '../src/node/metrics-files.js';
import { generateImages, latentCodes } from '../src/generative/gan/sample.js';
import { shippedMetricClassifier } from '../src/node/metric-classifier.js';
import type { GanLoss } from '../src/generative/losses.js';
import { Rng } from '../src/util/rng.js';
import { machine, round, stepTimer } from './measure.js';

const BATCH = GAN_RUN_DEFAULTS.batchSize;
/** Steps timed per configuration (after one warm-up step); seconds per epoch are extrapolated to mnist's split. */
const STEPS = 8;
const METRIC_SAMPLES = GAN_RUN_DEFAULTS.metricSamples;

/**
 * Issues 8 and 22: seconds per epoch of `advlab gan` on mnist's training split (7,996
 * images, batch 64), on one thread and data-parallel on 2 workers, for each architecture with the default loss,
 * and for wgan-gp (5 critic steps and a double backward pass per generator
 * step); scgan's k-means of the split; plus the seconds of one metric evaluation (2,000 samples, the
 * per-epoch monitor's default). Each configuration trains fresh models on the
 * same images.
 */
export async function benchGan(log: (s: string) => void) {
  const backend = await initBackend({ backend: 'wasm' });
  const data = loadBuiltinDataset('mnist');
  const batchesPerEpoch = Math.ceil(data.train.count / BATCH);
  const subset = take(data.train, Int32Array.from({ length: (STEPS + 1) * BATCH }, (_, i) => i));
  const out: Record<string, unknown> = { machine: machine(), backend: backend.name, threads: backend.threads, kernels: backend.kernels, dataset: 'mnist', batch: BATCH, trainImages: data.train.count, batchesPerEpoch, timedSteps: STEPS };
  const configs: [GanArch, GanLoss][] = [['mlp', 'ns'], ['dcgan', 'ns'], ['cgan', 'ns'], ['acgan', 'ns'], ['infogan', 'ns'], ['scgan', 'ns'], ['dcgan', 'wgan-gp']];
  // One thread, and data-parallel on 2 workers as `advlab gan` runs on 2 cores (issue 22).
  const pool = await WorkerPool.start({ size: 2, backend: 'wasm' });
  try {
    for (const [arch, loss] of configs) {
      const time = async (parallel: boolean) => {
        // scgan's classes are its default number of clusters (the labels stand in for them here: same cost).
        const models = buildGan(arch, { imageShape: [28, 28, 1], numClasses: arch === 'scgan' ? DEFAULT_CLUSTERS : 10, seed: 0, discriminatorNorm: loss === 'wgan-gp' ? 'none' : 'batch' });
        const timer = stepTimer();
        try {
          await trainGan(models, subset, { epochs: 1, batchSize: BATCH, loss, seed: 0, ...(parallel ? { pool } : {}), onProgress: (e) => e.type === 'batch' && timer.batch() });
        } finally {
          models.generator.dispose();
          models.discriminator.dispose();
        }
        return timer.meanSeconds();
      };
      const perStep = await time(false);
      const parallelStep = await time(true);
      const key = `${arch}-${loss}`;
      out[key] = {
        secondsPerStep: round(perStep, 3),
        secondsPerEpoch: round(perStep * batchesPerEpoch, 1),
        twoWorkersSecondsPerStep: round(parallelStep, 3),
        twoWorkersSecondsPerEpoch: round(parallelStep * batchesPerEpoch, 1),
        speedup: round(perStep / parallelStep, 2),
      };
      log(`${key}: ${round(perStep, 3)} s/step (${round(perStep * batchesPerEpoch, 1)} s/epoch), 2 workers ${round(parallelStep, 3)} s/step (${round(parallelStep * batchesPerEpoch, 1)} s/epoch)`);
    }
  } finally {
    await pool.close();
    await clearWorkerModels();
  }

  // scgan's k-means of the whole training split, once per run (and per resume).
  const clustering = clusterTrainingSet(data.train, DEFAULT_CLUSTERS, 0, data.numClasses).summary;
  out.scganClustering = { k: clustering.k, seconds: round(clustering.seconds, 1), iterations: clustering.iterations, converged: clustering.converged, labelPurity: round(clustering.labelPurity, 3) };
  log(`scgan k-means (k = ${clustering.k}, ${data.train.count} images): ${round(clustering.seconds, 1)} s, ${clustering.iterations} iterations, label purity ${round(clustering.labelPurity, 3)}`);

  // One metric evaluation as the per-epoch monitor runs it: generate, embed, FID, IS, coverage, precision/recall.
  const models = buildGan('dcgan', { imageShape: [28, 28, 1], numClasses: 10, seed: 0 });
  const ctx = await openMetricsAt(shippedMetricClassifier('mnist')!.path, data, METRIC_SAMPLES);
  try {
    const spec = { latentDim: models.latentDim, numClasses: 10, conditional: false, imageShape: models.imageShape };
    const t0 = performance.now();
    const images = await generateImages(models.generator, spec, latentCodes(new Rng(0), METRIC_SAMPLES, models.latentDim));
    await generatorMetrics(ctx, images, METRIC_SAMPLES, 0);
    const seconds = (performance.now() - t0) / 1000;
    out.metrics = { samples: METRIC_SAMPLES, seconds: round(seconds, 2) };
    log(`metrics on ${METRIC_SAMPLES} samples: ${round(seconds, 2)} s`);
  } finally {
    closeMetrics(ctx);
    models.generator.dispose();
    models.discriminator.dispose();
  }
  return out;
}
