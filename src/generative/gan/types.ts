/** The result types of the `advlab gan` job, which its report renders. */
import type { RunMeta } from '../../report/meta.js';
import type { GanArch } from './architectures.js';
import type { GanEpochRecord } from './train-gan.js';
import type { ClusteringSummary } from './clustering.js';
import type { GanMetrics, MetricsClassifier } from './gan-metrics.js';
import type { GanLoss } from '../losses.js';

/** The content of `result.json` for `advlab gan`. */
export interface GanRunResult extends RunMeta {
  options: {
    dataset: string;
    out: string;
    arch: GanArch;
    loss: GanLoss;
    latentDim: number;
    width: number;
    /** scgan's k-means clusters (null for the other architectures). */
    clusters: number | null;
    epochs: number;
    batchSize: number;
    learningRate: number;
    beta1: number;
    beta2: number;
    criticSteps: number;
    labelSmoothing: number | null;
    gpLambda: number | null;
    /** Decay of the generator's weight average (0: none). */
    emaDecay: number;
    trainSize: number | null;
    seed: number;
    resume: boolean;
    classifier: string | null;
    metricSamples: number;
  };
  dataset: { name: string; trainSize: number; testSize: number; skipped: number; numClasses: number; imageShape: number[]; classNames: string[] };
  generator: { arch: GanArch; conditional: boolean; latentDim: number; numClasses: number; imageShape: number[]; parameters: number; path: string };
  /** scgan: the k-means clustering its classes are (null for the other architectures). */
  clustering: ClusteringSummary | null;
  discriminator: { parameters: number; path: string };
  epochs: number;
  resumedFromEpoch: number;
  /** Mean seconds of training per epoch (the metrics' time is in each record's monitor.metricSeconds). */
  secondsPerEpoch: number;
  /** Workers each step's gradients were computed on (1: one thread); the same seed and count give the same weights. */
  workers: number;
  history: GanEpochRecord[];
  /** The last epoch's metrics, or null without a classifier. */
  metrics: GanMetrics | null;
  /** Why there are no metrics (null when there are). */
  metricsSkipped: string | null;
  /** FID of real train vs real test images (metricSamples each): the floor of the FID figures; null without a classifier. */
  fidFloor: number | null;
  metricsClassifier: MetricsClassifier | null;
  /** Files of the run, relative to its folder. */
  files: { grids: string[]; samples: string; history: string; report: string; checkpoint: string };
  packages: Record<string, string>;
}
