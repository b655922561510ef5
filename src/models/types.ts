/** The options and result types of the `advlab train` job, which the defense report renders. */
import type { RunMeta } from '../report/meta.js';
import type { Dataset, ImageSet } from '../data/types.js';
import type { tfl } from '../engine/tf.js';
import type { ZooActivation } from './zoo.js';
import type { EpochRecord, LearningRateSchedule, TrainEvent, TrainingDefense } from './train.js';
import type { DataParallel } from './data-parallel.js';

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
  /** Data-parallel steps (see models/data-parallel.ts); without it, plain training starts its own pool of `workers`. */
  parallel?: DataParallel;
  /** Worker threads of plain training's data-parallel steps (default auto: one per core on wasm/cpu, up to 2 shards of a batch). */
  workers?: number | 'auto';
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
  /**
   * Robust training with generated data (Gowal et al. 2021): an `advlab gan`
   * run folder or a generator folder whose images fill `generatedFraction`
   * of every batch. A class-conditional generator (cgan, acgan) labels its
   * images with the class asked for; any other needs `generatedLabeller`.
   * An epoch keeps the steps of a pass over the real data (see data/mix.ts),
   * so runs with and without it at the same `epochs` take the same steps.
   */
  generated?: string;
  /** Share of every batch that is generated, in [0, 1) (default 0.7, Gowal et al.'s). */
  generatedFraction?: number;
  /** Generated images drawn (seeded) before training (default: 10x the real training set, capped at 256 MiB of images). */
  generatedN?: number;
  /** A classifier (saved model or run folder) whose argmax labels the generated images; required unless the generator is class-conditional. */
  generatedLabeller?: string;
  onProgress?: (event: TrainRunEvent) => void;
}

/** What a run trained with generated data records of it (result.json's `generated`). */
export interface GeneratedDataRecord {
  /** The generator as given, and the folder it was loaded from. */
  generator: string;
  generatorPath: string;
  /** The GAN architecture from the run's result.json; null for a bare generator folder. */
  arch: string | null;
  /**
   * Real images the generator was trained on (its run's result.json; null
   * when unknown). More than `realTrainSize` means its images bring in
   * information from beyond this run's real data.
   */
  generatorTrainSize: number | null;
  /** Real training images of this run (its --train-n subset, held-out images included). */
  realTrainSize: number;
  /** Share of every batch that is generated, and the generated images in a full batch (round(fraction x batch size)). */
  fraction: number;
  perBatch: number;
  /** Images in the pool, drawn once from the run's seed. */
  n: number;
  /** Where the labels come from: the class asked of a class-conditional generator, or the labeller's argmax. */
  labels: 'generator' | 'labeller';
  labeller: string | null;
  /** A class-conditional generator with a labeller: the share of images the labeller reads as the class asked for. */
  classAgreement: number | null;
  /** Generated images per label. */
  classCounts: number[];
  /** SHA-256 of the pool (images and labels): a resume regenerates it and must find the same. */
  sha256: string;
  /** Seconds spent loading, generating and labelling. */
  seconds: number;
}

/** The content of `result.json` for `advlab train`. */
export interface TrainRunResult extends RunMeta {
  options: Required<Pick<TrainRunOptions, 'model' | 'dataset' | 'out' | 'epochs' | 'batchSize' | 'learningRate' | 'schedule' | 'augment' | 'seed' | 'resume' | 'activation' | 'width'>> & { trainSize: number | null };
  dataset: { name: string; trainSize: number; validationSize?: number; testSize: number; skipped: number; numClasses: number; imageShape: number[] };
  model: string;
  modelPath: string;
  parameters: number;
  /** Workers each batch's gradients were computed on (1: this thread); the same seed and count give the same weights. */
  workers: number;
  cleanAccuracy: number;
  secondsPerEpoch: number;
  epochs: number;
  resumedFromEpoch: number;
  history: EpochRecord[];
  packages: Record<string, string>;
  /** The generated data mixed into every batch; absent without `generated`. */
  generated?: GeneratedDataRecord;
}

export type TrainRunEvent =
  | TrainEvent
  | { type: 'dataset'; dataset: Dataset }
  /** Generated images drawn so far, before training. */
  | { type: 'generating'; done: number; total: number }
  | { type: 'generated'; generated: GeneratedDataRecord };
