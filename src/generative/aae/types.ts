/** The result types of the `advlab aae` job, which its report renders. */
import type { RunMeta } from '../../report/meta.js';
import type { AaeArch } from './architectures.js';
import type { AaeEpochRecord } from './train-aae.js';
import type { ClassificationFigures, ClusteringFigures } from './clustering.js';
import type { PosteriorMatch, PriorName } from './priors.js';
import type { ReconstructionLoss } from './losses.js';

/** The test figures of one epoch, or of the end of the run. */
export interface AaeTestFigures {
  /** Test images measured (the whole test split). */
  images: number;
  /** Mean squared error per pixel of sigmoid(decoder(encoder(x))) against x. */
  reconstructionMse: number;
  /** The test codes (the style codes in the categorical modes) against the prior. */
  posterior: PosteriorMatch;
  /** Semi-supervised mode: the error of argmax q(y | x) against the test labels; else null. */
  classification: ClassificationFigures | null;
  /** Clustering mode: the clustering error (majority label of each cluster's training images, scored on the test split) and the cluster sizes; else null. */
  clustering: ClusteringFigures | null;
}

/** The content of `result.json` for `advlab aae`. */
export interface AaeRunResult extends RunMeta {
  options: {
    dataset: string;
    out: string;
    arch: AaeArch;
    prior: PriorName;
    /** Mixture components or swiss-roll segments; null for gaussian. */
    components: number | null;
    supervisedPrior: boolean;
    regularization: boolean;
    latentDim: number;
    width: number;
    epochs: number;
    batchSize: number;
    learningRate: number;
    adversarialLearningRate: number;
    beta1: number;
    adversarialBeta1: number;
    reconstructionLoss: ReconstructionLoss;
    trainSize: number | null;
    /** Labelled training images of the semi-supervised mode; null otherwise. */
    labels: number | null;
    /** Categories of the clustering mode; null otherwise. */
    clusters: number | null;
    /** Adam's rate of the semi-supervised phase; null outside that mode. */
    classificationLearningRate: number | null;
    /** Augmentations of the labelled batches (e.g. `shift:2`); null for none. */
    augment: string | null;
    /** Weight of the balance term of the categorical modes; null outside them. */
    categoryBalance: number | null;
    /** Sd of the noise on the category discriminator's inputs; null outside the categorical modes. */
    categoryNoise: number | null;
    /** The epoch from which the learning rates are cut tenfold; null for none. */
    decayEpoch: number | null;
    seed: number;
    resume: boolean;
  };
  dataset: { name: string; trainSize: number; testSize: number; skipped: number; numClasses: number; imageShape: number[]; classNames: string[] };
  models: {
    arch: AaeArch;
    latentDim: number;
    imageShape: number[];
    /** Classes of the discriminator's one-hot label input (supervised prior), 0 without. */
    labelClasses: number;
    /** Categories of the encoder's class head (the categorical modes), 0 without. */
    categories: number;
    encoder: { parameters: number; path: string };
    decoder: { parameters: number; path: string };
    discriminator: { parameters: number; path: string };
    /** The discriminator of y against Cat(K) (the categorical modes); null otherwise. */
    categoryDiscriminator: { parameters: number; path: string } | null;
  };
  epochs: number;
  resumedFromEpoch: number;
  /** Mean seconds of training per epoch (the test figures' time is in each record's monitor.metricSeconds). */
  secondsPerEpoch: number;
  /** Workers each phase's gradients were computed on (1: one thread); the same seed and count give the same weights. */
  workers: number;
  history: AaeEpochRecord[];
  /** The trained models on the test split. */
  test: AaeTestFigures;
  /** Files of the run, relative to its folder. */
  files: { reconstructionGrids: string[]; sampleGrids: string[]; reconstruction: string; samples: string; history: string; testCodes: string; testCategories: string | null; report: string; checkpoint: string };
  packages: Record<string, string>;
}
