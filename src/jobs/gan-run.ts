/**
 * The `advlab gan` job: trains a GAN (architectures.ts, train-gan.ts) on a
 * dataset, checkpointed and resumable, and watches it every epoch:
 *
 * - `grids/epoch-NNN.png`: G's images from one FIXED batch of latent codes
 *   drawn once from the seed (64 codes in an 8 x 8 grid; for the conditional
 *   GAN 8 codes, repeated in one row per class, so a column keeps its code
 *   and a row its class), and `samples.png`, the latest of them;
 * - `history.csv`: the epoch's losses, mean discriminator outputs, time and
 *   metrics, the whole file rewritten atomically each epoch;
 * - with a classifier (`classifier`, a saved advlab classifier): quality
 *   metrics on `metricSamples` generated images (G in inference mode, the
 *   same seeded codes every epoch) against as many class-balanced real test
 *   images: FID on the classifier's penultimate features (the input of its
 *   last Dense layer), Inception Score and class coverage from its softmax,
 *   improved precision/recall (k = 3) on the same features; and once per run
 *   (cached in `fid-floor.json`, so a resume does not redo it) the FID of real
 *   train images against the real test images: the floor a perfect generator
 *   would reach with this many samples (FID is biased upwards for finite n).
 *
 * For scgan, the training images' labels are first replaced by their k-means
 * clusters (clustering.ts); the clusters' sizes are the generator's class
 * prior in training, in the grids and metrics, and in the saved generator's
 * model.json (so `gan sample` and `gan eval` draw clusters the same way).
 *
 * At the end: `generator/`, `discriminator/` (Layers format), `report.html`
 * and, last, `result.json`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendInfo } from '../engine/backend.js';
import { startShardingPool } from '../node/workers.js';
import { worthSharding } from '../models/data-parallel.js';
import type { WorkerPool } from '../node/worker-pool.js';
import { clearWorkerModels } from '../models/pool-model.js';
import { loadDataset } from '../node/data/load.js';
import type { Dataset } from '../data/types.js';
import { balancedSubset } from '../data/subset.js';
import { saveModel } from '../node/model-files.js';
import { followHistory, prepareRunFolder, writeHistory } from '../node/run-folder.js';
import { packageVersions } from './train-run.js';
import { runMeta } from '../report/meta.js';
import { captionName, gridPng } from '../report/png-grid.js';
import { writeFileAtomic, writeJsonAtomic } from '../node/atomic.js';
import { checkOutputFolder, type OutputLayout } from '../node/paths.js';
import { checkSavedClassifier } from '../node/resolve.js';
import { Rng, deriveSeed } from '../util/rng.js';
import { InputError, rethrowFor } from '../errors.js';
import { DEFAULT_GAN_LOSS, DEFAULT_GP_LAMBDA, parseGanLoss } from '../generative/losses.js';
import { openMetricsAt, fidFloorFile } from '../node/metrics-files.js';
import { closeMetrics, generatorMetrics, monitorFigures, PRECISION_RECALL_K, realFidFloor, type GanMetrics } from '../generative/gan/gan-metrics.js';
import { shippedMetricClassifier } from '../node/metric-classifier.js';
import { buildGan, DEFAULT_LATENT_DIM, GAN_ARCHS, type GanArch, type GanModels } from '../generative/gan/architectures.js';
import { ganOptimizerDefaults, trainGan, type GanEpochRecord, type GanTrainEvent, type GanTrainOptions } from '../generative/gan/train-gan.js';
import { clusterDraws, generateImages, generatorClasses, GENERATOR_METADATA_KEY, gridScale, latentCodes, type GeneratorMetadata, type GeneratorSpec } from '../generative/gan/sample.js';
import { clusterTrainingSet, type ClusteringSummary } from '../generative/gan/clustering.js';
import type { GanRunResult } from '../generative/gan/types.js';
import { CheckpointFolder } from '../node/checkpoint.js';

/** Options of {@link ganRun} (the `advlab gan` job); the optimizer's as in {@link trainGan}, whose defaults depend on the loss. */
export interface GanRunOptions extends Pick<GanTrainOptions, 'learningRate' | 'beta1' | 'beta2' | 'criticSteps' | 'labelSmoothing' | 'gpLambda' | 'emaDecay'> {
  /** Built-in dataset name or a path in a supported format. */
  dataset: string;
  /** Output folder. */
  out: string;
  /** One of {@link GAN_ARCHS} (default scgan). */
  arch?: string;
  /** One of the GAN losses (default ns). */
  loss?: string;
  /** Latent size (default 64). */
  latentDim?: number;
  /** Width multiplier of every hidden layer (default 1). */
  width?: number;
  /** scgan only: k-means clusters of the training images (default {@link DEFAULT_CLUSTERS}). */
  clusters?: number;
  /** Default 20. */
  epochs?: number;
  /** Default 64. */
  batchSize?: number;
  /** Worker threads for data-parallel steps (default auto: one per core on wasm/cpu, up to 2 shards of a batch). */
  workers?: number | 'auto';
  /** Train on a class-balanced subset of this many images of the train split (default: all of it). */
  trainSize?: number;
  /** Default 0. */
  seed?: number;
  resume?: boolean;
  /** A saved advlab classifier (Layers model folder or `advlab train` run folder) for the metrics; without one they are skipped. */
  classifier?: string;
  /** Generated and real images per metric evaluation (default 2000). */
  metricSamples?: number;
  /** Stop after this many epochs in this call (simulates a kill, for tests). */
  stopAfterEpochs?: number;
  onProgress?: (event: GanRunEvent) => void;
}

/** What `advlab gan` writes in its output folder (checked before any work, see node/paths.ts). */
export const GAN_OUTPUT: OutputLayout = {
  folders: ['checkpoint', 'grids', 'generator', 'discriminator'],
  files: ['samples.png', 'history.csv', 'fid-floor.json', 'report.html', 'result.json'],
};

/** scgan's default number of k-means clusters. */
export const DEFAULT_CLUSTERS = 100;

export const GAN_RUN_DEFAULTS = { arch: 'scgan', loss: DEFAULT_GAN_LOSS, epochs: 20, batchSize: 64, seed: 0, metricSamples: 2000, emaDecay: 0.999 } as const;

/** Latent codes of the per-epoch grid (unconditional), and codes per class row (conditional). */
export const GRID_CODES = 64;
export const GRID_CODES_PER_CLASS = 8;

/** What {@link ganRun} reports while it runs. */
export type GanRunEvent =
  | GanTrainEvent
  | { type: 'dataset'; dataset: Dataset; trainSize: number }
  | { type: 'classifier'; path: string; featureLayer: string; featureDim: number; outputs: 'logits' | 'probabilities' }
  | { type: 'fid-floor'; fid: number; samples: number; cached: boolean }
  | { type: 'clustering'; clustering: ClusteringSummary };

/** The columns of history.csv, in order. */
export const HISTORY_COLUMNS = ['epoch', 'dLoss', 'gLoss', 'dReal', 'dFake', 'seconds', 'fid', 'inceptionScore', 'klFromUniform', 'minClassFraction', 'modeCollapse', 'precision', 'recall', 'classAccuracy', 'metricSeconds'] as const;

/** The settings that shape training: a resume must keep them. */
type TrainingSettings = Omit<Resolved, 'out' | 'epochs' | 'resume' | 'classifier' | 'metricSamples'>;

type Resolved = GanRunResult['options'];

/** Checks every option up front (before any data is read) and fills in the defaults. */
function resolveOptions(o: GanRunOptions): Resolved {
  if (!o || typeof o.out !== 'string' || o.out === '') throw new InputError('out', 'an output folder is required');
  if (typeof o.dataset !== 'string' || o.dataset === '') throw new InputError('dataset', 'required: a built-in dataset name or a path');
  const arch = o.arch ?? GAN_RUN_DEFAULTS.arch;
  if (!(GAN_ARCHS as readonly string[]).includes(arch)) throw new InputError('arch', `unknown GAN architecture "${arch}"; expected one of ${GAN_ARCHS.join(', ')}`);
  const loss = parseGanLoss(o.loss ?? GAN_RUN_DEFAULTS.loss, 'loss');
  const defaults = ganOptimizerDefaults(loss);
  const int = (name: keyof GanRunOptions, value: unknown, min: number, max?: number): number => {
    if (!Number.isSafeInteger(value) || (value as number) < min || (max !== undefined && (value as number) > max)) {
      throw new InputError(name, max === undefined ? `expected an integer >= ${min}, got ${value}` : `expected an integer in [${min}, ${max}], got ${value}`);
    }
    return value as number;
  };
  const latentDim = int('latentDim', o.latentDim ?? DEFAULT_LATENT_DIM, 1, 4096);
  const width = int('width', o.width ?? 1, 1, 16);
  if (o.clusters !== undefined && arch !== 'scgan') throw new InputError('clusters', `applies to the scgan architecture only, not ${arch}`);
  const clusters = arch === 'scgan' ? int('clusters', o.clusters ?? DEFAULT_CLUSTERS, 2, 1000) : null;
  const epochs = int('epochs', o.epochs ?? GAN_RUN_DEFAULTS.epochs, 1);
  const batchSize = int('batchSize', o.batchSize ?? GAN_RUN_DEFAULTS.batchSize, 1);
  const criticSteps = int('criticSteps', o.criticSteps ?? defaults.criticSteps, 1, 100);
  const seed = int('seed', o.seed ?? GAN_RUN_DEFAULTS.seed, 0, 0xffffffff);
  const metricSamples = o.metricSamples ?? GAN_RUN_DEFAULTS.metricSamples;
  if (!Number.isSafeInteger(metricSamples) || metricSamples < PRECISION_RECALL_K + 1) {
    throw new InputError('metricSamples', `expected an integer >= ${PRECISION_RECALL_K + 1} (FID needs 2 samples, precision/recall with k = ${PRECISION_RECALL_K} needs ${PRECISION_RECALL_K + 1}), got ${metricSamples}`);
  }
  const learningRate = o.learningRate ?? defaults.learningRate;
  if (!(Number.isFinite(learningRate) && learningRate > 0)) throw new InputError('learningRate', `expected a positive number, got ${learningRate}`);
  const beta1 = o.beta1 ?? defaults.beta1;
  const beta2 = o.beta2 ?? defaults.beta2;
  for (const [name, v] of [['beta1', beta1], ['beta2', beta2]] as const) if (!(v >= 0 && v < 1)) throw new InputError(name, `expected a number in [0, 1), got ${v}`);
  if (o.labelSmoothing !== undefined) {
    if (loss !== 'minimax' && loss !== 'ns') throw new InputError('labelSmoothing', `applies to the minimax and ns losses only, not ${loss}`);
    if (!(o.labelSmoothing > 0 && o.labelSmoothing <= 1)) throw new InputError('labelSmoothing', `expected a number in (0, 1], got ${o.labelSmoothing}`);
  }
  if (o.gpLambda !== undefined) {
    if (loss !== 'wgan-gp') throw new InputError('gpLambda', `applies to the wgan-gp loss only, not ${loss}`);
    if (!(Number.isFinite(o.gpLambda) && o.gpLambda >= 0)) throw new InputError('gpLambda', `expected a finite number >= 0, got ${o.gpLambda}`);
  }
  const emaDecay = o.emaDecay ?? GAN_RUN_DEFAULTS.emaDecay;
  if (!(emaDecay >= 0 && emaDecay < 1)) throw new InputError('emaDecay', `expected a number in [0, 1), got ${emaDecay}`);
  if (o.trainSize !== undefined) int('trainSize', o.trainSize, 1);
  if (o.stopAfterEpochs !== undefined) int('stopAfterEpochs', o.stopAfterEpochs, 1);
  if (o.classifier !== undefined && o.classifier !== 'none') {
    if (typeof o.classifier !== 'string' || o.classifier === '') throw new InputError('classifier', 'expected the path of a saved classifier');
    if (!existsSync(o.classifier)) throw new InputError('classifier', `"${o.classifier}" does not exist; expected a saved advlab classifier (a model folder or an advlab train run folder)`);
  }
  return {
    dataset: o.dataset,
    out: o.out,
    arch: arch as GanArch,
    loss,
    latentDim,
    width,
    clusters,
    epochs,
    batchSize,
    learningRate,
    beta1,
    beta2,
    criticSteps,
    labelSmoothing: o.labelSmoothing ?? null,
    gpLambda: loss === 'wgan-gp' ? (o.gpLambda ?? DEFAULT_GP_LAMBDA) : null,
    emaDecay,
    trainSize: o.trainSize ?? null,
    seed,
    resume: !!o.resume,
    classifier: o.classifier ?? null,
    metricSamples,
  };
}

/**
 * Trains a GAN with per-epoch sample grids, history and metrics (see the
 * module comment); checkpoints each epoch into `out/checkpoint`; with
 * `resume`, continues from the last finished epoch (bit-identical to an
 * uninterrupted run on the same backend).
 * @throws InputError naming the option at fault.
 */
export async function ganRun(options: GanRunOptions, backend: BackendInfo): Promise<GanRunResult> {
  const startedAt = new Date();
  const o = resolveOptions(options);
  const out = o.out;
  // Before the data is read: what the run writes, and the classifier it reads only for the metrics.
  checkOutputFolder(out, 'out', GAN_OUTPUT);
  if (o.classifier !== null && o.classifier !== 'none') await checkSavedClassifier(o.classifier, 'classifier');
  const data = loadDataset(o.dataset);
  const K = data.numClasses;
  const subset = o.trainSize === null ? data.train : balancedSubset(data.train, K, o.trainSize, 'trainSize', 'train');
  options.onProgress?.({ type: 'dataset', dataset: data, trainSize: subset.count });

  const checkpointDir = join(out, 'checkpoint');
  const settings: TrainingSettings = {
    dataset: o.dataset, arch: o.arch, loss: o.loss, latentDim: o.latentDim, width: o.width, clusters: o.clusters, batchSize: o.batchSize, learningRate: o.learningRate,
    beta1: o.beta1, beta2: o.beta2, criticSteps: o.criticSteps, labelSmoothing: o.labelSmoothing, gpLambda: o.gpLambda, emaDecay: o.emaDecay, trainSize: o.trainSize, seed: o.seed,
  };

  // Default: the classifier advlab ships for a built-in dataset (metric-classifier.ts); 'none' skips the metrics.
  const classifierPath = o.classifier === 'none' ? null : (o.classifier ?? shippedMetricClassifier(o.dataset)?.path ?? null);
  const metrics = classifierPath !== null ? await openMetricsAt(classifierPath, data, o.metricSamples, 'metricSamples').catch(rethrowFor('classifier')) : null;
  let models: GanModels | undefined;
  let pool: WorkerPool | undefined;
  try {
    if (o.clusters !== null && o.clusters > subset.count) throw new InputError('clusters', `expected at most the number of training images (${subset.count}), got ${o.clusters}`);
    // Built first: an image shape the architecture cannot take is refused before anything is written.
    models = buildGan(o.arch, { imageShape: data.train.imageShape, numClasses: o.clusters ?? K, seed: deriveSeed(o.seed, 'gan-init'), latentDim: o.latentDim, width: o.width, discriminatorNorm: o.loss === 'wgan-gp' ? 'none' : 'batch' });
    prepareRunFolder(out, checkpointDir, settings, o.resume, /^epoch-\d+\.png$/);
    // scgan trains on k-means clusters in place of the labels (deterministic from the seed, so a resume recomputes the same ones).
    const clustered = o.clusters !== null ? clusterTrainingSet(subset, o.clusters, deriveSeed(o.seed, 'gan-clusters'), K) : null;
    if (clustered) options.onProgress?.({ type: 'clustering', clustering: clustered.summary });
    const train = clustered ? clustered.train : subset;
    if (metrics) options.onProgress?.({ type: 'classifier', path: classifierPath!, featureLayer: metrics.info.featureLayer, featureDim: metrics.info.featureDim, outputs: metrics.info.outputs });
    let fidFloor: number | null = null;
    if (metrics) {
      // Cached in the run folder, so a resume does not redo it.
      const floor = await realFidFloor(metrics, data, o.metricSamples, fidFloorFile(join(out, 'fid-floor.json')), 'metricSamples');
      fidFloor = floor.fid;
      options.onProgress?.({ type: 'fid-floor', fid: floor.fid, samples: o.metricSamples, cached: floor.cached });
    }
    const clusterPrior = clustered?.summary.prior;
    const spec: GeneratorSpec = { latentDim: models.latentDim, numClasses: models.numClasses, conditional: models.conditional, imageShape: models.imageShape, ...(clusterPrior ? { clusterPrior } : {}) };
    // Saved with the generator, so sampling it needs nothing else.
    if (clusterPrior) models.generator.setUserDefinedMetadata({ [GENERATOR_METADATA_KEY]: { clusterPrior } satisfies GeneratorMetadata });

    // The fixed codes of the per-epoch grid, and of the metrics (the same every epoch).
    const grid = fixedGrid(models, data, o.seed, clusterPrior);
    const metricZ = latentCodes(new Rng(deriveSeed(o.seed, 'gan-metrics')), o.metricSamples, o.latentDim);
    const metricClasses = generatorClasses(spec, o.metricSamples, new Rng(deriveSeed(o.seed, 'gan-metric-clusters')));

    let lastMetrics: GanMetrics | null = null;
    const measure = async (m: GanModels, epoch: number): Promise<GanMetrics> => {
      const images = await generateImages(m.generator, spec, metricZ, metricClasses);
      // InfoGAN's codes and scgan's clusters are not labels: no class accuracy for them.
      return generatorMetrics(metrics!, images, o.metricSamples, epoch, m.categoricalCode || m.clusterCode ? undefined : metricClasses);
    };
    const monitor = async (m: GanModels, epoch: number): Promise<Record<string, number>> => {
      const png = gridPng(await generateImages(m.generator, spec, grid.z, grid.classes), grid.layout);
      writeFileAtomic(join(out, gridFile(epoch)), png);
      writeFileAtomic(join(out, 'samples.png'), png);
      if (!metrics) return {};
      const t0 = performance.now();
      lastMetrics = await measure(m, epoch);
      return { ...monitorFigures(lastMetrics), metricSeconds: (performance.now() - t0) / 1000 };
    };

    const followCsv = followHistory<GanEpochRecord>(out, checkpointDir, HISTORY_COLUMNS);
    const onProgress = (e: GanTrainEvent) => {
      followCsv(e);
      options.onProgress?.(e);
    };

    // Each step's batch in shards, one per worker (their batch norm on their own shard; see models/data-parallel.ts).
    pool = await startShardingPool(options.workers, backend, worthSharding([models.generator, models.discriminator]));
    const trained = await trainGan(models, train, {
      ...(pool ? { pool } : {}),
      epochs: o.epochs,
      batchSize: o.batchSize,
      loss: o.loss,
      learningRate: o.learningRate,
      beta1: o.beta1,
      beta2: o.beta2,
      criticSteps: o.criticSteps,
      ...(o.labelSmoothing !== null ? { labelSmoothing: o.labelSmoothing } : {}),
      ...(o.gpLambda !== null ? { gpLambda: o.gpLambda } : {}),
      ...(o.emaDecay ? { emaDecay: o.emaDecay } : {}),
      ...(clusterPrior ? { generatorClassPrior: clusterPrior } : {}),
      seed: o.seed,
      checkpoints: new CheckpointFolder(checkpointDir),
      resume: o.resume,
      stopAfterEpochs: options.stopAfterEpochs,
      monitor,
      onProgress,
    });
    const history = trained.history;
    writeHistory(out, HISTORY_COLUMNS, history);
    const lastEpoch = history.length ? history[history.length - 1].epoch : 0;
    // A resume with nothing left to train measures the restored generator here (deterministic: the same figures).
    const final = metrics ? ((lastMetrics as GanMetrics | null)?.epoch === lastEpoch ? lastMetrics : await measure(models, lastEpoch)) : null;

    const generatorPath = join(out, 'generator');
    const discriminatorPath = join(out, 'discriminator');
    await saveModel(models.generator, generatorPath);
    await saveModel(models.discriminator, discriminatorPath);
    const grids = history.map((h) => gridFile(h.epoch)).filter((f) => existsSync(join(out, f)));
    const result: GanRunResult = {
      ...runMeta('gan', backend, o.seed, startedAt),
      options: o,
      dataset: { name: data.name, trainSize: train.count, testSize: data.test.count, skipped: data.skipped, numClasses: K, imageShape: [...data.train.imageShape], classNames: data.classNames },
      // scgan's one-hot input is its own cluster draw: to a user it is unconditional.
      generator: { arch: o.arch, conditional: models.conditional && !models.clusterCode, latentDim: models.latentDim, numClasses: models.numClasses, imageShape: [...models.imageShape], parameters: models.generator.countParams(), path: generatorPath },
      discriminator: { parameters: models.discriminator.countParams(), path: discriminatorPath },
      clustering: clustered?.summary ?? null,
      epochs: lastEpoch,
      resumedFromEpoch: trained.resumedFromEpoch,
      secondsPerEpoch: trained.secondsPerEpoch,
      workers: pool?.size ?? 1,
      history,
      metrics: final,
      metricsSkipped: metrics ? null : o.classifier === 'none' ? 'metrics turned off (classifier none)' : 'no classifier: advlab ships one for the built-in datasets only; give one (the classifier option, --classifier) for FID, Inception Score, class coverage and precision/recall',
      fidFloor,
      metricsClassifier: metrics ? metrics.info : null,
      files: { grids, samples: 'samples.png', history: 'history.csv', report: 'report.html', checkpoint: 'checkpoint' },
      packages: packageVersions(),
    };
    const { renderGanReport } = await import('../report/gan-report.js');
    const shown = pickGrids(grids).map((f) => ({ epoch: Number(/epoch-(\d+)\.png$/.exec(f)![1]), png: readFileSync(join(out, f)) }));
    writeFileAtomic(join(out, 'report.html'), await renderGanReport(result, shown));
    writeJsonAtomic(join(out, 'result.json'), result);
    return result;
  } finally {
    await pool?.close();
    if (pool) await clearWorkerModels();
    models?.generator.dispose();
    models?.discriminator.dispose();
    closeMetrics(metrics);
  }
}

/** `grids/epoch-NNN.png`. */
export function gridFile(epoch: number): string {
  return `grids/epoch-${String(epoch).padStart(3, '0')}.png`;
}

/** Grids shown in the report: all up to 5, else the first, three in between and the last. */
export function pickGrids<T>(grids: readonly T[]): T[] {
  if (grids.length <= 5) return [...grids];
  const n = grids.length - 1;
  const picks = [0, Math.round(n / 4), Math.round(n / 2), Math.round((3 * n) / 4), n];
  return [...new Set(picks)].map((i) => grids[i]);
}

/** The fixed latent batch of the per-epoch grid and its layout. */
function fixedGrid(models: GanModels, data: Dataset, seed: number, clusterPrior?: number[]): { z: Float32Array; classes?: Int32Array; layout: Parameters<typeof gridPng>[1] } {
  const rng = new Rng(deriveSeed(seed, 'gan-grid'));
  const scale = gridScale(models.imageShape);
  const common = { imageShape: models.imageShape, scale, fontScale: scale, spacing: 2 };
  if (!models.conditional) return { z: latentCodes(rng, GRID_CODES, models.latentDim), layout: { ...common, columns: 8 } };
  // Self-conditioned: an unconditional grid, each code with a cluster drawn (once) from the prior.
  if (clusterPrior) return { z: latentCodes(rng, GRID_CODES, models.latentDim), classes: clusterDraws(clusterPrior, GRID_CODES, rng), layout: { ...common, columns: 8 } };
  const K = models.numClasses;
  const codes = latentCodes(rng, GRID_CODES_PER_CLASS, models.latentDim);
  const z = new Float32Array(K * codes.length);
  for (let c = 0; c < K; c++) z.set(codes, c * codes.length);
  const classes = Int32Array.from({ length: K * GRID_CODES_PER_CLASS }, (_, i) => Math.floor(i / GRID_CODES_PER_CLASS));
  const name = models.categoricalCode ? (c: number) => `code ${c}` : captionName(data.classNames);
  return { z, classes, layout: { ...common, columns: GRID_CODES_PER_CLASS, rowLabels: Array.from({ length: K }, (_, c) => name(c)) } };
}

