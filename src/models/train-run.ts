import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { BackendInfo } from '../engine/backend.js';
import { loadDataset } from '../data/load.js';
import type { Dataset } from '../data/types.js';
import { resolveModel } from './resolve.js';
import { saveModel } from './io.js';
import { trainClassifier, type TrainEvent, type EpochRecord, type LearningRateSchedule } from './train.js';
import { parseAugmentations } from '../data/augment.js';
import { accuracy } from './evaluate.js';
import { runMeta, type RunMeta } from '../report/meta.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { InputError } from '../errors.js';

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
  /** Augmentations as written on the command line: `none`, `shift`, `shift:N` (default `shift:1`). */
  augment?: string;
  resume?: boolean;
  /** Stop after this many epochs in this call (simulates a kill, for tests). */
  stopAfterEpochs?: number;
  onProgress?: (event: TrainRunEvent) => void;
}

export type TrainRunEvent = TrainEvent | { type: 'dataset'; dataset: Dataset };

/** The content of `result.json` for `advlab train`. */
export interface TrainRunResult extends RunMeta {
  options: Required<Pick<TrainRunOptions, 'model' | 'dataset' | 'out' | 'epochs' | 'batchSize' | 'learningRate' | 'schedule' | 'augment' | 'seed' | 'resume'>>;
  dataset: { name: string; trainSize: number; testSize: number; skipped: number; numClasses: number; imageShape: number[] };
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
  if (!options.out) throw new InputError('out', 'an output folder is required');
  const seed = options.seed ?? TRAIN_DEFAULTS.seed;
  const data = loadDataset(options.dataset);
  options.onProgress?.({ type: 'dataset', dataset: data });
  const epochs = options.epochs ?? defaultEpochs(data.train.count);
  const batchSize = options.batchSize ?? TRAIN_DEFAULTS.batchSize;
  const learningRate = options.learningRate ?? TRAIN_DEFAULTS.learningRate;
  const schedule = options.schedule ?? TRAIN_DEFAULTS.schedule;
  const augmentSpec = options.augment ?? TRAIN_DEFAULTS.augment;
  const augment = parseAugmentations(augmentSpec);

  const { model } = await resolveModel(options.model, { imageShape: data.train.imageShape, numClasses: data.numClasses }, seed);
  try {
    const trained = await trainClassifier(model, data.train, {
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
      onProgress: options.onProgress,
    });
    const modelPath = join(options.out, 'model');
    await saveModel(model, modelPath);
    const last = trained.history[trained.history.length - 1];
    const cleanAccuracy = last?.epoch === epochs && last.testAccuracy !== undefined ? last.testAccuracy : accuracy(model, data.test);
    const result: TrainRunResult = {
      ...runMeta('train', backend, seed, startedAt),
      options: { model: options.model, dataset: options.dataset, out: options.out, epochs, batchSize, learningRate, schedule, augment: augmentSpec, seed, resume: !!options.resume },
      dataset: {
        name: data.name,
        trainSize: data.train.count,
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
