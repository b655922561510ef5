/**
 * The pseudo-classes of the self-conditioned GAN (`scgan`, architectures.ts):
 * k-means on the training images' pixels, seeded. The labels are read once,
 * after clustering, only to report how well the clusters follow them.
 */
import type { ImageSet } from '../../data/types.js';
import { kMeans } from '../kmeans.js';

/** What the clustering found (stored in the run's result.json). */
export interface ClusteringSummary {
  /** Clusters. */
  k: number;
  /** What was clustered. */
  features: 'pixels';
  seed: number;
  /** Training images per cluster. */
  sizes: number[];
  /** sizes / images: the probabilities the generator draws its clusters with. */
  prior: number[];
  iterations: number;
  converged: boolean;
  seconds: number;
  /**
   * The fraction of training images whose label is their cluster's most
   * common label: how closely the clusters follow the classes (training
   * never reads the labels).
   */
  labelPurity: number;
}

/** The training set with each image's label replaced by its cluster, and the clustering's summary. */
export function clusterTrainingSet(train: ImageSet, k: number, seed: number, numLabels: number): { train: ImageSet; summary: ClusteringSummary } {
  const t0 = performance.now();
  const d = train.imageShape[0] * train.imageShape[1] * train.imageShape[2];
  const result = kMeans(train.images, d, { k, seed });
  const counts = Array.from({ length: k }, () => new Array<number>(Math.max(1, numLabels)).fill(0));
  for (let i = 0; i < train.count; i++) {
    const label = train.labels[i];
    if (label >= 0 && label < numLabels) counts[result.assignments[i]][label]++;
  }
  const majority = counts.reduce((sum, row) => sum + Math.max(...row), 0);
  const summary: ClusteringSummary = {
    k,
    features: 'pixels',
    seed,
    sizes: result.sizes,
    prior: result.sizes.map((s) => s / train.count),
    iterations: result.iterations,
    converged: result.converged,
    seconds: (performance.now() - t0) / 1000,
    labelPurity: majority / train.count,
  };
  return { train: { ...train, labels: result.assignments }, summary };
}
