import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { BackendInfo } from '../engine/backend.js';
import { loadDataset } from '../data/load.js';
import type { Dataset, ImageSet } from '../data/types.js';
import { take } from '../data/split.js';
import { balancedSubset } from '../data/subset.js';
import type { tfl } from '../engine/tf.js';
import { resolveModel } from './resolve.js';
import type { ZooActivation } from './zoo.js';
import { saveModel } from './io.js';
import { trainClassifier, type TrainEvent, type EpochRecord, type LearningRateSchedule, type TrainingDefense } from './train.js';
import { parseAugmentations } from '../data/augment.js';
import { accuracy } from './evaluate.js';
import { runMeta, type RunMeta } from '../report/meta.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { checkOutputFolder, type OutputLayout } from '../util/paths.js';
import { InputError, rethrowFor } from '../errors.js';

const require = createRequire(import.meta.url);

/** Options of {@link trainRun} (the `advlab train` job). */
export interface TrainRunOptions {
  /** Zoo model name, or a saved model folder to train further. */
  model: string;
  /** Built-in dataset name or a path in a supported format. */
  dataset: string;
  /** Output folder: model/, checkpoint/, result.json. */
  out: string;
  /** Defaults to {@link defaultEpochs}. */
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  seed?: number;
  /** Learning-rate schedule (default cosine). */
  schedule?: LearningRateSchedule;
  /** Augmentations as written on the command line: `none`, or a list of `shift[:N]`, `noise:SIGMA`, `cutout:N` (default `shift:1`). */
  augment?: string;
  /** Train on a class-balanced subset of this many images of the train split (default: all of it). */
  trainSize?: number;
  /** Zoo models only: hidden activation (default relu; smooth ones help adversarial training, Xie et al. 2020). */
  activation?: ZooActivation;
  /** Zoo models only: width multiplier of every hidden layer (default 1). */
  width?: number;
  resume?: boolean;
  /** Stop after this many epochs in this call (simulates a kill, for tests). */
  stopAfterEpochs?: number;
  /** Adversarial training (built by src/defenses; the CLI's --defense). */
  defense?: TrainingDefense;
  /** Images of the train split held out (class-balanced, the last of each class) for `monitor`; default 0. */
  validation?: number;
  /** Per-epoch figures on the held-out images (see TrainOptions.monitor). */
  monitor?: (model: tfl.LayersModel, epoch: number, validation: ImageSet) => Promise<Record<string, number>>;
  /**
   * Called once the dataset is loaded, before the model is built and trained:
   * checks of inputs the job reads only later (e.g. the baseline model of a
   * defended run, checked against the data), so they fail before the first epoch.
   */
  checkInputs?: (data: Dataset) => Promise<void>;
  /** Called after training, before the model is saved (e.g. to restore the best epoch's weights). */
  beforeSave?: (model: tfl.LayersModel, history: EpochRecord[]) => Promise<void>;
  onProgress?: (event: TrainRunEvent) => void;
}

export type TrainRunEvent = TrainEvent | { type: 'dataset'; dataset: Dataset };

/** The content of `result.json` for `advlab train`. */
export interface TrainRunResult extends RunMeta {
  options: Required<Pick<TrainRunOptions, 'model' | 'dataset' | 'out' | 'epochs' | 'batchSize' | 'learningRate' | 'schedule' | 'augment' | 'seed' | 'resume' | 'activation' | 'width'>> & { trainSize: number | null };
  dataset: { name: string; trainSize: number; validationSize?: number; testSize: number; skipped: number; numClasses: number; imageShape: number[] };
  model: string;
  modelPath: string;
  parameters: number;
  cleanAccuracy: number;
  secondsPerEpoch: number;
  epochs: number;
  resumedFromEpoch: number;
  history: EpochRecord[];
  packages: Record<string, string>;
}

/** What `advlab train` writes in its output folder (checked before any work, see util/paths.ts). */
export const TRAIN_OUTPUT: OutputLayout = { folders: ['checkpoint', 'model'], files: ['result.json'] };

export const TRAIN_DEFAULTS = { batchSize: 64, learningRate: 1e-3, schedule: 'cosine', augment: 'shift:1', seed: 0 } as const;

/**
 * Default epochs: small training sets (mnist's 7,996 images) need more passes
 * than large ones (fashion-mnist's 56,000) for the same number of steps.
 */
export function defaultEpochs(trainSize: number): number {
  return trainSize < 20000 ? 10 : 5;
}

/**
 * Trains a zoo model on a dataset, checkpointing each epoch into `out/checkpoint`,
 * then saves the model into `out/model` and writes `out/result.json`. With
 * `resume`, continues from the last finished epoch.
 */
export async function trainRun(options: TrainRunOptions, backend: BackendInfo): Promise<TrainRunResult> {
  const startedAt = new Date();
  // Before the data is read: a bad output folder would otherwise fail at the first checkpoint, after an epoch's work.
  checkOutputFolder(options.out, 'out', TRAIN_OUTPUT);
  const seed = options.seed ?? TRAIN_DEFAULTS.seed;
  const data = loadDataset(options.dataset);
  options.onProgress?.({ type: 'dataset', dataset: data });
  await options.checkInputs?.(data);
  const epochs = options.epochs ?? defaultEpochs(data.train.count);
  const batchSize = options.batchSize ?? TRAIN_DEFAULTS.batchSize;
  const learningRate = options.learningRate ?? TRAIN_DEFAULTS.learningRate;
  const schedule = options.schedule ?? TRAIN_DEFAULTS.schedule;
  const augmentSpec = options.augment ?? TRAIN_DEFAULTS.augment;
  const augment = parseAugmentations(augmentSpec);

  const source = options.trainSize === undefined ? data.train : balancedSubset(data.train, data.numClasses, options.trainSize, 'trainSize', 'train');
  const { train, validation } = holdOut(source, data.numClasses, options.validation ?? 0);
  if (options.width !== undefined && (!Number.isSafeInteger(options.width) || options.width < 1 || options.width > 16)) throw new InputError('width', `expected an integer in [1, 16], got ${options.width}`);
  const zoo = { ...(options.activation !== undefined ? { activation: options.activation } : {}), ...(options.width !== undefined ? { width: options.width } : {}) };
  const { model } = await resolveModel(options.model, { imageShape: data.train.imageShape, numClasses: data.numClasses }, seed, 'model', zoo).catch(rethrowFor('model'));
  try {
    const trained = await trainClassifier(model, train, {
      epochs,
      batchSize,
      learningRate,
      schedule,
      augment,
      seed,
      test: data.test,
      checkpointDir: join(options.out, 'checkpoint'),
      resume: options.resume,
      stopAfterEpochs: options.stopAfterEpochs,
      defense: options.defense,
      monitor: options.monitor && validation ? (m, epoch) => options.monitor!(m, epoch, validation) : undefined,
      onProgress: options.onProgress,
    });
    await options.beforeSave?.(model, trained.history);
    const modelPath = join(options.out, 'model');
    await saveModel(model, modelPath);
    const last = trained.history[trained.history.length - 1];
    const cleanAccuracy = last?.epoch === epochs && last.testAccuracy !== undefined ? last.testAccuracy : accuracy(model, data.test);
    const result: TrainRunResult = {
      ...runMeta('train', backend, seed, startedAt),
      options: { model: options.model, dataset: options.dataset, out: options.out, epochs, batchSize, learningRate, schedule, augment: augmentSpec, seed, resume: !!options.resume, activation: options.activation ?? 'relu', width: options.width ?? 1, trainSize: options.trainSize ?? null },
      dataset: {
        name: data.name,
        trainSize: train.count,
        ...(validation ? { validationSize: validation.count } : {}),
        testSize: data.test.count,
        skipped: data.skipped,
        numClasses: data.numClasses,
        imageShape: data.train.imageShape,
      },
      model: options.model,
      modelPath,
      parameters: model.countParams(),
      cleanAccuracy,
      secondsPerEpoch: trained.secondsPerEpoch,
      epochs: trained.history.length ? trained.history[trained.history.length - 1].epoch : 0,
      resumedFromEpoch: trained.resumedFromEpoch,
      history: trained.history,
      packages: packageVersions(),
    };
    writeJsonAtomic(join(options.out, 'result.json'), result);
    return result;
  } finally {
    model.dispose();
  }
}

/** Versions of the packages that shape a result (for reproducibility). */
export function packageVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-backend-cpu', 'mnist', 'fashion-mnist']) {
    try {
      out[name] = (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      /* not installed */
    }
  }
  return out;
}

/**
 * Splits off `k` images of `train` for validation: the last images of each
 * class in turn (a class-balanced tail), so the split is fixed by the data.
 */
function holdOut(train: ImageSet, numClasses: number, k: number): { train: ImageSet; validation: ImageSet | null } {
  if (!Number.isSafeInteger(k) || k < 0 || k >= train.count) throw new InputError('validation', `expected an integer in [0, ${train.count - 1}], got ${k}`);
  if (k === 0) return { train, validation: null };
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  train.labels.forEach((l, i) => byClass[l].push(i));
  const held = new Set<number>();
  for (let round = 0; held.size < k; round++) {
    for (const idx of byClass) {
      if (held.size >= k) break;
      const i = idx[idx.length - 1 - round];
      if (i !== undefined) held.add(i);
    }
  }
  const keep = Int32Array.from({ length: train.count }, (_, i) => i).filter((i) => !held.has(i));
  return { train: take(train, keep), validation: take(train, Int32Array.from([...held].sort((a, b) => a - b))) };
}
