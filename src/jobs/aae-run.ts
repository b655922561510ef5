/**
 * The `advlab aae` job: trains an adversarial autoencoder (Makhzani et al.,
 * "Adversarial autoencoders", arXiv:1511.05644, 2015; architectures.ts,
 * train-aae.ts) on a dataset, checkpointed and resumable, and watches it
 * every epoch:
 *
 * - `grids/reconstruction-NNN.png`: 16 fixed class-balanced test images, each
 *   row of 8 inputs above the row of their reconstructions
 *   sigmoid(decoder(encoder(x))); `reconstruction.png` is the latest;
 * - `grids/samples-NNN.png`: the decoder's images of 64 fixed prior samples
 *   drawn once from the seed (8 x 8 for the gaussian prior; for mixture and
 *   swiss-roll 8 per component, one component per row); `samples.png` is the
 *   latest;
 * - on every test image: the reconstruction MSE (per pixel, on sigmoid
 *   images) and how well the aggregate posterior (the test codes) matches the
 *   prior (priors.ts, posteriorMatch: moments and a kernel MMD);
 * - `history.csv`: the epoch's losses, D's mean outputs, time and test
 *   figures, the whole file rewritten atomically each epoch.
 *
 * Two modes give the encoder a categorical head q(y | x) beside the style
 * code z (train-aae.ts; the paper's Figure 8), with a gaussian prior on z:
 * - `labels` (semi-supervised classification, section 5): the classes are the
 *   categories, and a seeded class-balanced subset of that many training
 *   images is labelled ({@link labelledSubset}); each epoch and at the end,
 *   the test classification error of argmax q(y | x) on the whole test split;
 * - `clusters` (unsupervised clustering, section 6): K categories, no labels
 *   in training; each epoch and at the end, the clustering error (each
 *   cluster takes the majority label of its training images, scored on the
 *   test split; clustering.ts) and the cluster sizes.
 * In both, the sample grid has one row per category (one-hot y) and one
 * column per fixed style z, the paper's Figure 9, and the run also writes
 * `category-discriminator/` and `test-categories.npy` (float32 [test images,
 * K], q(y | x)).
 *
 * At the end: `encoder/`, `decoder/`, `discriminator/` (Layers format),
 * `test-codes.npy` (float32 [test images, latent]: the style codes in the
 * categorical modes), `report.html` with the test codes' first two
 * coordinates over the prior's density, and, last, `result.json`
 * (schemas/aae.result.schema.json).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendInfo } from '../engine/backend.js';
import { loadDataset } from '../node/data/load.js';
import type { Dataset } from '../data/types.js';
import { balancedSubset } from '../data/subset.js';
import { writeNpy } from '../node/data/formats/npy.js';
import { saveModel } from '../node/model-files.js';
import { followHistory, prepareRunFolder, writeHistory } from '../node/run-folder.js';
import { packageVersions } from './train-run.js';
import { runMeta } from '../report/meta.js';
import { captionName, gridPng } from '../report/png-grid.js';
import { take } from '../data/split.js';
import { parseAugmentations } from '../data/augment.js';
import type { ImageSet } from '../data/types.js';
import { writeFileAtomic, writeJsonAtomic } from '../node/atomic.js';
import { checkOutputFolder, type OutputLayout } from '../node/paths.js';
import { Rng, deriveSeed } from '../util/rng.js';
import { InputError } from '../errors.js';
import { AAE_ARCHS, DEFAULT_AAE_LATENT_DIM, buildAae, categoricalCodes, decodeImages, encodeCategorical, encodeImages, reconstructImages, type AaeArch, type AaeModels } from '../generative/aae/architectures.js';
import { predictedCategories, classificationError, clusteringError, type ClassificationFigures, type ClusteringFigures } from '../generative/aae/clustering.js';
import { AAE_OPTIMIZER_DEFAULTS, trainAae, type AaeEpochRecord, type AaeTrainEvent } from '../generative/aae/train-aae.js';
import { parseReconstructionLoss } from '../generative/aae/losses.js';
import type { AaeRunResult, AaeTestFigures } from '../generative/aae/types.js';
import { DEFAULT_COMPONENTS, MIXTURE_RADIUS, parsePrior, posteriorMatch, priorLogDensity, samplePrior } from '../generative/aae/priors.js';
import { CheckpointFolder } from '../node/checkpoint.js';
import { startShardingPool } from '../node/workers.js';
import { worthShardingAae } from '../generative/aae/aae-pooled.js';
import type { WorkerPool } from '../node/worker-pool.js';
import { clearWorkerModels } from '../models/pool-model.js';

/** Options of {@link aaeRun} (the `advlab aae` job). */
export interface AaeRunOptions {
  /** Built-in dataset name or a path in a supported format. */
  dataset: string;
  /** Output folder. */
  out: string;
  /** One of {@link AAE_ARCHS} (default mlp). */
  arch?: string;
  /** One of the priors (default gaussian). */
  prior?: string;
  /** Code size (default 8; mixture needs >= 2, swiss-roll exactly 2). */
  latentDim?: number;
  /** Width multiplier of every hidden layer (default 1). */
  width?: number;
  /** Default 20. */
  epochs?: number;
  /** Default 100 (the paper's). */
  batchSize?: number;
  /** Adam's rate of the reconstruction phase (default 1e-3). */
  learningRate?: number;
  /** Adam's rate of the regularization phase's two players (default 3e-4). */
  adversarialLearningRate?: number;
  /** mse or bce (default bce). */
  reconstructionLoss?: string;
  /** Labels choose the prior's component, and the discriminator sees them (mixture and swiss-roll; the paper's Figure 4). */
  supervisedPrior?: boolean;
  /** Run the regularization phase (default true); false trains a plain autoencoder, the baseline. */
  regularization?: boolean;
  /** Train on a class-balanced subset of this many images of the train split (default: all of it). */
  trainSize?: number;
  /**
   * Semi-supervised mode (Makhzani et al. 2015, section 5): this many
   * training images (a seeded class-balanced subset, at least one per class)
   * are labelled; the encoder gets a class head over the dataset's classes.
   */
  labels?: number;
  /** Unsupervised clustering mode (section 6): the encoder's class head has this many categories (>= 2), trained without labels. */
  clusters?: number;
  /** Adam's rate of the semi-supervised classification phase (default 1e-3; only with `labels`). */
  classificationLearningRate?: number;
  /**
   * Weight of the batch-level balance term of the encoder's adversarial step
   * (train-aae.ts, losses.ts categoryBalanceLoss), in the two categorical
   * modes: default {@link DEFAULT_CLUSTER_BALANCE} with `clusters`, 0 with
   * `labels` (the labelled batches already spread the classes).
   */
  categoryBalance?: number;
  /** Sd of the Gaussian noise on the category discriminator's inputs (train-aae.ts), in the categorical modes; default 0. */
  categoryNoise?: number;
  /** From this epoch on, every Adam rate is cut tenfold (the paper's step decay; train-aae.ts); default none. */
  decayEpoch?: number;
  /** Augmentations of the labelled batches (only with `labels`), as `advlab train --augment`: e.g. `shift:2`; default none. */
  augment?: string;
  /** Default 0. */
  seed?: number;
  resume?: boolean;
  /**
   * Worker threads each phase's batch is split over (data-parallel, train-aae.ts):
   * a count, or `auto` (default): one per core when the nets are wide enough
   * for the split to pay ({@link worthShardingAae}), else one thread.
   */
  workers?: number | 'auto';
  /** Stop after this many epochs in this call (simulates a kill, for tests). */
  stopAfterEpochs?: number;
  onProgress?: (event: AaeRunEvent) => void;
}

/** What `advlab aae` writes in its output folder (checked before any work, see node/paths.ts). */
export const AAE_OUTPUT: OutputLayout = {
  folders: ['checkpoint', 'grids', 'encoder', 'decoder', 'discriminator', 'category-discriminator'],
  files: ['reconstruction.png', 'samples.png', 'history.csv', 'test-codes.npy', 'test-categories.npy', 'report.html', 'result.json'],
};

/** The defaults of {@link AaeRunOptions}. */
export const AAE_RUN_DEFAULTS = { arch: 'mlp', prior: 'gaussian', latentDim: DEFAULT_AAE_LATENT_DIM, epochs: 20, batchSize: 100, reconstructionLoss: 'bce', seed: 0 } as const;

/**
 * The clustering mode's default weight of the balance term (train-aae.ts).
 * Without it (the paper's section 6 game as written) 16 clusters on mnist's
 * 7,996 training images collapse in the first epoch: the encoder's Adam
 * steps follow the still-untrained category discriminator's gradient to one
 * vertex of the simplex, the softmax saturates there and passes almost no
 * gradient back (1 cluster used and 88.7% error at every epoch to 8; the
 * same with the category discriminator's rate cut tenfold, so it is not the
 * discriminator winning). Measured on that split, seed 0, mlp, latent 8:
 * weight 1 gives 11 clusters used and 44.8% error after 15 epochs; weight 3
 * all 16 clusters (the smallest 254 images) and 41.8% after 20 epochs.
 */
export const DEFAULT_CLUSTER_BALANCE = 3;

/** Test images in the reconstruction grid: two rows of 8 inputs, each above its reconstructions. */
export const RECONSTRUCTION_IMAGES = 16;
const GRID_COLUMNS = 8;
/** Prior samples in the sample grid (gaussian), or per component row (mixture, swiss-roll). */
export const SAMPLE_CODES = 64;
/** Codes and prior samples of the MMD (it costs O(samples^2)). */
export const MMD_SAMPLES = 1000;

/** What {@link aaeRun} reports while it runs. */
export type AaeRunEvent = AaeTrainEvent | { type: 'dataset'; dataset: Dataset; trainSize: number; labelled: number | null };

/** The columns of history.csv, in order. */
export const HISTORY_COLUMNS = [
  'epoch',
  'reconstruction',
  'dLoss',
  'gLoss',
  'dPrior',
  'dCode',
  'catDLoss',
  'catGLoss',
  'catDPrior',
  'catDCode',
  'classification',
  'seconds',
  'testMse',
  'meanError',
  'logVarianceRatio',
  'mmd',
  'testError',
  'clusteringError',
  'metricSeconds',
] as const;

type Resolved = AaeRunResult['options'];

/** Checks every option up front (before any data is read) and fills in the defaults (components after the data is read). */
function resolveOptions(o: AaeRunOptions): Resolved {
  if (!o || typeof o.out !== 'string' || o.out === '') throw new InputError('out', 'an output folder is required');
  if (typeof o.dataset !== 'string' || o.dataset === '') throw new InputError('dataset', 'required: a built-in dataset name or a path');
  const arch = o.arch ?? AAE_RUN_DEFAULTS.arch;
  if (!(AAE_ARCHS as readonly string[]).includes(arch)) throw new InputError('arch', `unknown AAE architecture "${arch}"; expected one of ${AAE_ARCHS.join(', ')}`);
  const prior = parsePrior(o.prior ?? AAE_RUN_DEFAULTS.prior, 'prior');
  const reconstructionLoss = parseReconstructionLoss(o.reconstructionLoss ?? AAE_RUN_DEFAULTS.reconstructionLoss, 'reconstructionLoss');
  const int = (name: keyof AaeRunOptions, value: unknown, min: number, max?: number): number => {
    if (!Number.isSafeInteger(value) || (value as number) < min || (max !== undefined && (value as number) > max)) {
      throw new InputError(name, max === undefined ? `expected an integer >= ${min}, got ${value}` : `expected an integer in [${min}, ${max}], got ${value}`);
    }
    return value as number;
  };
  const latentDim = int('latentDim', o.latentDim ?? AAE_RUN_DEFAULTS.latentDim, 1, 4096);
  if (prior === 'mixture' && latentDim < 2) throw new InputError('latentDim', `the mixture prior lives in the first two coordinates: expected a latent size >= 2, got ${latentDim}`);
  if (prior === 'swiss-roll' && latentDim !== 2) throw new InputError('latentDim', `the swiss-roll prior is 2-D: expected a latent size of 2, got ${latentDim}`);
  const supervisedPrior = !!o.supervisedPrior;
  if (supervisedPrior && prior === 'gaussian') throw new InputError('supervisedPrior', 'the gaussian prior has no components for the labels to choose; use --prior mixture or swiss-roll');
  const regularization = o.regularization ?? true;
  if (supervisedPrior && !regularization) throw new InputError('supervisedPrior', 'the labels act through the regularization phase, which is turned off');
  const width = int('width', o.width ?? 1, 1, 16);
  const epochs = int('epochs', o.epochs ?? AAE_RUN_DEFAULTS.epochs, 1);
  const batchSize = int('batchSize', o.batchSize ?? AAE_RUN_DEFAULTS.batchSize, 1);
  const seed = int('seed', o.seed ?? AAE_RUN_DEFAULTS.seed, 0, 0xffffffff);
  const learningRate = o.learningRate ?? AAE_OPTIMIZER_DEFAULTS.learningRate;
  const adversarialLearningRate = o.adversarialLearningRate ?? AAE_OPTIMIZER_DEFAULTS.adversarialLearningRate;
  for (const [name, v] of [['learningRate', learningRate], ['adversarialLearningRate', adversarialLearningRate]] as const) {
    if (!(Number.isFinite(v) && v > 0)) throw new InputError(name, `expected a positive number, got ${v}`);
  }
  if (o.trainSize !== undefined) int('trainSize', o.trainSize, 1);
  const decayEpoch = o.decayEpoch === undefined ? null : int('decayEpoch', o.decayEpoch, 1);
  if (o.stopAfterEpochs !== undefined) int('stopAfterEpochs', o.stopAfterEpochs, 1);
  const labels = o.labels === undefined ? null : int('labels', o.labels, 1);
  const clusters = o.clusters === undefined ? null : int('clusters', o.clusters, 2);
  if (labels !== null && clusters !== null) throw new InputError('clusters', 'semi-supervised classification (labels) and clustering (clusters) are two modes of the class head: give one of them');
  const mode = labels !== null ? 'semi-supervised classification' : 'clustering';
  if ((labels !== null || clusters !== null) && prior !== 'gaussian') throw new InputError('prior', `${mode} puts a gaussian prior on the style code (and a categorical one on the class head): expected gaussian, got ${prior}`);
  if ((labels !== null || clusters !== null) && supervisedPrior) throw new InputError('supervisedPrior', `${mode} has its own categorical head; the supervised prior is a mode of the mixture and swiss-roll priors`);
  let classificationLearningRate: number | null = null;
  if (o.classificationLearningRate !== undefined) {
    if (labels === null) throw new InputError('classificationLearningRate', 'only the semi-supervised mode (labels) has a classification phase');
    if (!(Number.isFinite(o.classificationLearningRate) && o.classificationLearningRate > 0)) throw new InputError('classificationLearningRate', `expected a positive number, got ${o.classificationLearningRate}`);
  }
  if (labels !== null) classificationLearningRate = o.classificationLearningRate ?? AAE_OPTIMIZER_DEFAULTS.classificationLearningRate;
  const categorical = labels !== null || clusters !== null;
  const nonNegative = (name: 'categoryBalance' | 'categoryNoise', value: number | undefined, fallback: number): number | null => {
    if (value !== undefined) {
      if (!categorical) throw new InputError(name, 'acts on the class head: only with labels or clusters');
      if (!(Number.isFinite(value) && value >= 0)) throw new InputError(name, `expected a number >= 0, got ${value}`);
    }
    return categorical ? (value ?? fallback) : null;
  };
  const categoryBalance = nonNegative('categoryBalance', o.categoryBalance, clusters !== null ? DEFAULT_CLUSTER_BALANCE : 0);
  const categoryNoise = nonNegative('categoryNoise', o.categoryNoise, 0);
  const augmentations = o.augment === undefined ? [] : parseAugmentations(o.augment, 'augment');
  if (augmentations.length && labels === null) throw new InputError('augment', 'augments the labelled batches of the semi-supervised mode (labels)');
  return {
    dataset: o.dataset,
    out: o.out,
    arch: arch as AaeArch,
    prior,
    components: null,
    supervisedPrior,
    regularization,
    latentDim,
    width,
    epochs,
    batchSize,
    learningRate,
    adversarialLearningRate,
    beta1: AAE_OPTIMIZER_DEFAULTS.beta1,
    adversarialBeta1: AAE_OPTIMIZER_DEFAULTS.adversarialBeta1,
    reconstructionLoss,
    trainSize: o.trainSize ?? null,
    labels,
    clusters,
    classificationLearningRate,
    augment: augmentations.length ? augmentations.map((a) => a.name).join(',') : null,
    categoryBalance,
    categoryNoise,
    decayEpoch,
    seed,
    resume: !!o.resume,
  };
}

/**
 * The labelled images of the semi-supervised mode: a class-balanced subset of
 * `count` images (the first `count` of {@link balancedSubset}'s order, so the
 * classes differ in size by at most one while they last) of the training
 * set shuffled by an Rng of the seed, so a seed fixes the subset and another
 * seed picks other images.
 *
 * @param train the training set
 * @param numClasses the classes
 * @param count labelled images, in [numClasses, train.count]
 * @param seed the run's seed
 * @throws InputError naming `labels` when count is out of that range
 */
export function labelledSubset(train: ImageSet, numClasses: number, count: number, seed: number): ImageSet {
  if (!Number.isSafeInteger(count) || count < numClasses) throw new InputError('labels', `the semi-supervised mode needs at least one labelled image per class: expected an integer >= ${numClasses}, got ${count}`);
  if (count > train.count) throw new InputError('labels', `asked for ${count} labelled images but the training set has only ${train.count}`);
  const shuffled = take(train, new Rng(deriveSeed(seed, 'aae-labels')).permutation(train.count));
  return balancedSubset(shuffled, numClasses, count, 'labels', 'train');
}

/**
 * Trains an adversarial autoencoder with per-epoch grids, test figures and
 * history (see the module comment); checkpoints each epoch into
 * `out/checkpoint`; with `resume`, continues from the last finished epoch
 * (bit-identical to an uninterrupted run on the same backend).
 * @throws InputError naming the option at fault.
 */
export async function aaeRun(options: AaeRunOptions, backend: BackendInfo): Promise<AaeRunResult> {
  const startedAt = new Date();
  const o = resolveOptions(options);
  const out = o.out;
  // Before the data is read: a bad output folder would otherwise fail at the first grid, after an epoch's work.
  checkOutputFolder(out, 'out', AAE_OUTPUT);
  const data = loadDataset(o.dataset);
  const K = data.numClasses;
  // One component per class when the labels choose it; else the paper's 10.
  o.components = o.prior === 'gaussian' ? null : o.supervisedPrior ? K : DEFAULT_COMPONENTS;
  const train = o.trainSize === null ? data.train : balancedSubset(data.train, K, o.trainSize, 'trainSize', 'train');
  if (data.test.count < 2) throw new InputError('dataset', `the test split has ${data.test.count} images; the test figures need at least 2`);
  const labelled = o.labels === null ? undefined : labelledSubset(train, K, o.labels, o.seed);
  if (o.clusters !== null && o.clusters > train.count) throw new InputError('clusters', `expected at most one cluster per training image (${train.count}), got ${o.clusters}`);
  // The class head's categories: the classes (semi-supervised), the clusters, or none.
  const categories = o.labels !== null ? K : (o.clusters ?? 0);
  options.onProgress?.({ type: 'dataset', dataset: data, trainSize: train.count, labelled: labelled?.count ?? null });

  const checkpointDir = join(out, 'checkpoint');
  const { out: _o, epochs: _e, resume: _r, components: _c, ...settings } = o;
  let models: AaeModels | undefined;
  let pool: WorkerPool | undefined;
  try {
    // Built first: an image shape the architecture cannot take is refused before anything is written.
    models = buildAae(o.arch, { imageShape: data.train.imageShape, latentDim: o.latentDim, seed: deriveSeed(o.seed, 'aae-init'), width: o.width, labelClasses: o.supervisedPrior ? K : 0, categories });
    prepareRunFolder(out, checkpointDir, settings, o.resume, /^(reconstruction|samples)-\d+\.png$/);
    const components = o.components ?? undefined;
    const shape = models.imageShape;
    const recInputs = balancedSubset(data.test, K, Math.min(RECONSTRUCTION_IMAGES, data.test.count), 'dataset', 'test');
    const sampleGrid = fixedSamples(o, models.latentDim, categories, data);
    const scale = gridScale(shape);

    const evaluate = async (m: AaeModels): Promise<{ figures: AaeTestFigures; codes: Float32Array; categories: Float32Array | null }> => {
      let codes: Float32Array;
      let images: Float32Array;
      let probabilities: Float32Array | null = null;
      let classification: ClassificationFigures | null = null;
      let clustering: ClusteringFigures | null = null;
      if (categories === 0) {
        codes = await encodeImages(m.encoder, data.test.images, shape);
        images = await decodeImages(m.decoder, codes, m.latentDim);
      } else {
        const c = await encodeCategorical(m.encoder, data.test.images, shape);
        codes = c.z;
        const input = categoricalCodes(c.logits, c.z, categories, m.latentDim);
        images = await decodeImages(m.decoder, input, categories + m.latentDim);
        probabilities = new Float32Array(data.test.count * categories);
        for (let i = 0; i < data.test.count; i++) probabilities.set(input.subarray(i * (categories + m.latentDim), i * (categories + m.latentDim) + categories), i * categories);
        const predicted = predictedCategories(c.logits, categories);
        // Section 5: the class is argmax q(y | x). Section 6: clusters labelled by the majority of their training images.
        if (o.labels !== null) classification = classificationError(predicted, data.test.labels);
        else clustering = clusteringError(predictedCategories((await encodeCategorical(m.encoder, train.images, shape)).logits, categories), train.labels, predicted, data.test.labels, categories, K);
      }
      let sum = 0;
      for (let i = 0; i < images.length; i++) sum += (images[i] - data.test.images[i]) ** 2;
      // The same prior samples every epoch: the MMD changes only with the codes.
      const posterior = posteriorMatch(o.prior, codes, m.latentDim, { rng: new Rng(deriveSeed(o.seed, 'aae-mmd')), components, samples: MMD_SAMPLES });
      return { figures: { images: data.test.count, reconstructionMse: sum / images.length, posterior, classification, clustering }, codes, categories: probabilities };
    };
    const monitor = async (m: AaeModels, epoch: number): Promise<Record<string, number>> => {
      const t0 = performance.now();
      const rec = await reconstructImages(m, recInputs.images);
      const recPng = gridPng(interleaveRows(recInputs.images, rec, recInputs.count, GRID_COLUMNS), { imageShape: shape, columns: GRID_COLUMNS, scale, fontScale: scale, spacing: 2, rowLabels: Array.from({ length: 2 * Math.ceil(recInputs.count / GRID_COLUMNS) }, (_, r) => (r % 2 === 0 ? 'IN' : 'OUT')) });
      writeFileAtomic(join(out, gridFile('reconstruction', epoch)), recPng);
      writeFileAtomic(join(out, 'reconstruction.png'), recPng);
      const samplePng = gridPng(await decodeImages(m.decoder, sampleGrid.z, sampleGrid.width), { imageShape: shape, columns: GRID_COLUMNS, scale, fontScale: scale, spacing: 2, ...(sampleGrid.rowLabels ? { rowLabels: sampleGrid.rowLabels } : {}) });
      writeFileAtomic(join(out, gridFile('samples', epoch)), samplePng);
      writeFileAtomic(join(out, 'samples.png'), samplePng);
      const { figures } = await evaluate(m);
      return {
        testMse: figures.reconstructionMse,
        meanError: figures.posterior.meanError,
        logVarianceRatio: figures.posterior.logVarianceRatio,
        mmd: figures.posterior.mmd,
        ...(figures.classification ? { testError: figures.classification.error } : {}),
        ...(figures.clustering ? { clusteringError: figures.clustering.error } : {}),
        metricSeconds: (performance.now() - t0) / 1000,
      };
    };

    const followCsv = followHistory<AaeEpochRecord>(out, checkpointDir, HISTORY_COLUMNS);
    const onProgress = (e: AaeTrainEvent) => {
      followCsv(e);
      options.onProgress?.(e);
    };

    // Each phase's batch in shards, one per worker (train-aae.ts).
    pool = await startShardingPool(options.workers, backend, worthShardingAae(models));
    const trained = await trainAae(models, train, {
      ...(pool ? { pool } : {}),
      epochs: o.epochs,
      batchSize: o.batchSize,
      prior: o.prior,
      components,
      supervisedPrior: o.supervisedPrior,
      regularization: o.regularization,
      reconstructionLoss: o.reconstructionLoss,
      learningRate: o.learningRate,
      adversarialLearningRate: o.adversarialLearningRate,
      beta1: o.beta1,
      adversarialBeta1: o.adversarialBeta1,
      ...(o.decayEpoch !== null ? { decayEpoch: o.decayEpoch } : {}),
      ...(o.categoryBalance !== null ? { categoryBalance: o.categoryBalance, categoryNoise: o.categoryNoise! } : {}),
      ...(labelled ? { labelled, classificationLearningRate: o.classificationLearningRate!, labelledAugment: o.augment === null ? [] : parseAugmentations(o.augment, 'augment') } : {}),
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
    // Measured again on the final models (deterministic: the last epoch's figures; also after a resume with nothing left to train).
    const final = await evaluate(models);
    writeNpy(join(out, 'test-codes.npy'), final.codes, [data.test.count, models.latentDim]);
    if (final.categories) writeNpy(join(out, 'test-categories.npy'), final.categories, [data.test.count, categories]);

    const paths = { encoder: join(out, 'encoder'), decoder: join(out, 'decoder'), discriminator: join(out, 'discriminator'), categoryDiscriminator: join(out, 'category-discriminator') };
    await saveModel(models.encoder, paths.encoder);
    await saveModel(models.decoder, paths.decoder);
    await saveModel(models.discriminator, paths.discriminator);
    if (models.categoryDiscriminator) await saveModel(models.categoryDiscriminator, paths.categoryDiscriminator);
    const grids = (kind: GridKind) => history.map((h) => gridFile(kind, h.epoch)).filter((f) => existsSync(join(out, f)));
    const result: AaeRunResult = {
      ...runMeta('aae', backend, o.seed, startedAt),
      options: o,
      dataset: { name: data.name, trainSize: train.count, testSize: data.test.count, skipped: data.skipped, numClasses: K, imageShape: [...data.train.imageShape], classNames: data.classNames },
      models: {
        arch: o.arch,
        latentDim: models.latentDim,
        imageShape: [...shape],
        labelClasses: models.labelClasses,
        categories: models.categories,
        encoder: { parameters: models.encoder.countParams(), path: paths.encoder },
        decoder: { parameters: models.decoder.countParams(), path: paths.decoder },
        discriminator: { parameters: models.discriminator.countParams(), path: paths.discriminator },
        categoryDiscriminator: models.categoryDiscriminator ? { parameters: models.categoryDiscriminator.countParams(), path: paths.categoryDiscriminator } : null,
      },
      epochs: lastEpoch,
      resumedFromEpoch: trained.resumedFromEpoch,
      secondsPerEpoch: trained.secondsPerEpoch,
      workers: pool?.size ?? 1,
      history,
      test: final.figures,
      files: {
        reconstructionGrids: grids('reconstruction'),
        sampleGrids: grids('samples'),
        reconstruction: 'reconstruction.png',
        samples: 'samples.png',
        history: 'history.csv',
        testCodes: 'test-codes.npy',
        testCategories: final.categories ? 'test-categories.npy' : null,
        report: 'report.html',
        checkpoint: 'checkpoint',
      },
      packages: packageVersions(),
    };
    const { renderAaeReport } = await import('../report/aae-report.js');
    const read = (f: string) => ({ epoch: Number(/-(\d+)\.png$/.exec(f)![1]), png: readFileSync(join(out, f)) });
    const report = await renderAaeReport(result, {
      reconstructions: pickGrids(result.files.reconstructionGrids).map(read),
      samples: pickGrids(result.files.sampleGrids).map(read),
      codes: final.codes,
      labels: data.test.labels,
      density: densityGrid(o, final.codes, models.latentDim),
    });
    writeFileAtomic(join(out, 'report.html'), report);
    writeJsonAtomic(join(out, 'result.json'), result);
    return result;
  } finally {
    await pool?.close();
    if (pool) await clearWorkerModels();
    models?.encoder.dispose();
    models?.decoder.dispose();
    models?.discriminator.dispose();
    models?.categoryDiscriminator?.dispose();
  }
}

type GridKind = 'reconstruction' | 'samples';

/** `grids/<kind>-NNN.png`. */
export function gridFile(kind: GridKind, epoch: number): string {
  return `grids/${kind}-${String(epoch).padStart(3, '0')}.png`;
}

/** Grids shown in the report: all up to 4, else the first, two in between and the last. */
function pickGrids<T>(grids: readonly T[]): T[] {
  if (grids.length <= 4) return [...grids];
  const n = grids.length - 1;
  return [...new Set([0, Math.round(n / 3), Math.round((2 * n) / 3), n])].map((i) => grids[i]);
}

/** Pixel scale of grids: small images (mnist's 28x28) are drawn twice their size. */
function gridScale(imageShape: readonly number[]): number {
  return Math.max(1, Math.floor(64 / Math.max(imageShape[0], imageShape[1])));
}

/** Rows of `columns` inputs, each followed by the row of their reconstructions (the last rows padded with blank cells). */
function interleaveRows(inputs: Float32Array, outputs: Float32Array, count: number, columns: number): Float32Array {
  const size = inputs.length / count;
  const rows = Math.ceil(count / columns);
  const out = new Float32Array(2 * rows * columns * size).fill(1);
  for (let i = 0; i < count; i++) {
    const r = Math.floor(i / columns);
    const c = i % columns;
    out.set(inputs.subarray(i * size, (i + 1) * size), ((2 * r) * columns + c) * size);
    out.set(outputs.subarray(i * size, (i + 1) * size), ((2 * r + 1) * columns + c) * size);
  }
  return out;
}

/** Cells per side of the report's density background. */
const DENSITY_CELLS = 40;

/**
 * The prior's density behind the report's scatter of the test codes (first
 * two coordinates; for d > 2 the prior's marginal there, which is its 2-D
 * form: priors.ts), relative to its peak. The square spans the prior (4 sd of
 * the gaussian; the mixture's and swiss roll's radius plus 2.5) or the codes'
 * 99th percentile, whichever is wider, so a plain autoencoder's spread-out
 * codes stay in view.
 */
function densityGrid(o: Resolved, codes: Float32Array, d: number): { extent: number; cells: number; values: number[] } {
  const n = codes.length / d;
  const extents: number[] = [];
  for (let i = 0; i < n; i++) extents.push(Math.max(Math.abs(codes[i * d]), d > 1 ? Math.abs(codes[i * d + 1]) : 0));
  extents.sort((a, b) => a - b);
  const priorExtent = o.prior === 'gaussian' ? 4 : MIXTURE_RADIUS + 2.5;
  const extent = Math.ceil(Math.max(priorExtent, extents[Math.floor(0.99 * (n - 1))] ?? 0));
  const step = (2 * extent) / DENSITY_CELLS;
  const centres: number[] = [];
  for (let r = 0; r < DENSITY_CELLS; r++) for (let c = 0; c < DENSITY_CELLS; c++) centres.push(-extent + (c + 0.5) * step, -extent + (r + 0.5) * step);
  const logDensity = priorLogDensity(o.prior, centres, o.components ?? undefined);
  const top = Math.max(...logDensity);
  return { extent, cells: DENSITY_CELLS, values: Array.from(logDensity, (v) => Math.exp(v - top)) };
}

/**
 * The fixed codes of the per-epoch sample grid (`width` values each): 64
 * prior samples, or 8 per component (row) for mixture and swiss-roll; in the
 * categorical modes, one row per category (one-hot y) and one column per
 * style z, the same 8 styles in every row (the paper's Figure 9: content in
 * the rows, style in the columns).
 */
function fixedSamples(o: Resolved, d: number, categories: number, data: Dataset): { z: Float32Array; width: number; rowLabels?: string[] } {
  const rng = new Rng(deriveSeed(o.seed, 'aae-grid'));
  const name = captionName(data.classNames);
  if (categories > 0) {
    const styles = samplePrior('gaussian', { n: GRID_COLUMNS, d, rng }).z;
    const y = new Float32Array(categories * GRID_COLUMNS * categories);
    const z = new Float32Array(categories * GRID_COLUMNS * d);
    for (let k = 0; k < categories; k++) {
      for (let c = 0; c < GRID_COLUMNS; c++) {
        const row = k * GRID_COLUMNS + c;
        y[row * categories + k] = 1;
        z.set(styles.subarray(c * d, (c + 1) * d), row * d);
      }
    }
    return { z: categoricalCodes(y, z, categories, d, false), width: categories + d, rowLabels: Array.from({ length: categories }, (_, k) => (o.labels !== null ? name(k) : String(k))) };
  }
  if (o.prior === 'gaussian') return { z: samplePrior('gaussian', { n: SAMPLE_CODES, d, rng }).z, width: d };
  const k = o.components!;
  const labels = Int32Array.from({ length: k * GRID_COLUMNS }, (_, i) => Math.floor(i / GRID_COLUMNS));
  return { z: samplePrior(o.prior, { n: labels.length, d, rng, components: k, labels }).z, width: d, rowLabels: Array.from({ length: k }, (_, c) => (o.supervisedPrior ? name(c) : String(c))) };
}

