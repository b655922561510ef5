/**
 * The figures of the categorical + style AAE (Makhzani et al., "Adversarial
 * autoencoders", arXiv:1511.05644, 2015), on plain arrays:
 * - semi-supervised classification (section 5): the test error of the
 *   predicted class argmax q(y | x) ({@link classificationError});
 * - unsupervised clustering (section 6): each of the K clusters (the
 *   categories of q(y | x)) takes the majority label of the TRAINING images
 *   assigned to it, and the clustering error is the error of that mapping on
 *   the test images ({@link clusteringError}), the paper's "we assign the
 *   cluster label to each of the training points ... then evaluate the test
 *   error based on the assigned class labels".
 */
import { argmaxRows } from '../metrics/index.js';
import { InputError } from '../../errors.js';

/**
 * The predicted category of each image from its class logits, [n, k]
 * row-major (the argmax; the softmax keeps the order; ties go to the lowest
 * index).
 *
 * @param logits n rows of k values
 * @param k values per row, >= 1
 */
export function predictedCategories(logits: Float32Array | Float64Array, k: number): Int32Array {
  if (!Number.isSafeInteger(k) || k < 1) throw new InputError('k', `expected an integer >= 1, got ${k}`);
  const n = logits.length / k;
  if (!Number.isInteger(n)) throw new InputError('values', `expected a multiple of k = ${k} values, got ${logits.length}`);
  return argmaxRows({ data: logits, n, d: k });
}

/** A classifier's error on a labelled set. */
export interface ClassificationFigures {
  /** Images scored. */
  images: number;
  /** Images whose predicted class is not their label. */
  errors: number;
  /** errors / images. */
  error: number;
}

/**
 * The error of predicted classes against labels (the semi-supervised AAE's
 * test error: predicted = argmax of q(y | x), section 5).
 *
 * @param predicted one class per image
 * @param labels one label per image
 */
export function classificationError(predicted: ArrayLike<number>, labels: ArrayLike<number>): ClassificationFigures {
  if (predicted.length !== labels.length) throw new InputError('predicted', `expected one prediction per label (${labels.length}), got ${predicted.length}`);
  if (labels.length === 0) throw new InputError('labels', 'expected at least one image');
  let errors = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] !== labels[i]) errors++;
  return { images: labels.length, errors, error: errors / labels.length };
}

/** The clustering figures of {@link clusteringError}. */
export interface ClusteringFigures {
  /** K, the clusters. */
  clusters: number;
  /** Test images scored. */
  images: number;
  /** Test images whose cluster's label is not theirs (every test image in a cluster without training images counts). */
  errors: number;
  /** errors / images. */
  error: number;
  /** The label each cluster stands for: the majority label of its training images (ties: the lowest label); null for a cluster no training image fell in. */
  clusterLabels: (number | null)[];
  /** Training images per cluster. */
  trainSizes: number[];
  /** Test images per cluster. */
  testSizes: number[];
  /** Clusters without training images. */
  emptyClusters: number;
}

/**
 * The clustering error of the paper's section 6. Each cluster k takes the
 * label held by most of the training images assigned to it (ties go to the
 * lowest label, so the result is deterministic); a cluster no training image
 * fell in has no label, and a test image assigned to it counts as an error
 * (it cannot be labelled by the training data). The error is the fraction of
 * test images whose cluster's label differs from their own.
 *
 * @param trainClusters the cluster of each training image, in [0, clusters)
 * @param trainLabels the label of each training image, in [0, classes)
 * @param testClusters the cluster of each test image
 * @param testLabels the label of each test image
 * @param clusters K
 * @param classes the number of labels
 */
export function clusteringError(
  trainClusters: ArrayLike<number>,
  trainLabels: ArrayLike<number>,
  testClusters: ArrayLike<number>,
  testLabels: ArrayLike<number>,
  clusters: number,
  classes: number,
): ClusteringFigures {
  if (!Number.isSafeInteger(clusters) || clusters < 1) throw new InputError('clusters', `expected an integer >= 1, got ${clusters}`);
  if (!Number.isSafeInteger(classes) || classes < 1) throw new InputError('classes', `expected an integer >= 1, got ${classes}`);
  if (trainClusters.length !== trainLabels.length) throw new InputError('trainClusters', `expected one cluster per training label (${trainLabels.length}), got ${trainClusters.length}`);
  if (testClusters.length !== testLabels.length) throw new InputError('testClusters', `expected one cluster per test label (${testLabels.length}), got ${testClusters.length}`);
  if (testLabels.length === 0) throw new InputError('testLabels', 'expected at least one test image');
  const check = (values: ArrayLike<number>, max: number, argument: string) => {
    for (let i = 0; i < values.length; i++) {
      if (!Number.isInteger(values[i]) || values[i] < 0 || values[i] >= max) throw new InputError(argument, `value ${values[i]} at ${i} is outside [0, ${max})`);
    }
  };
  check(trainClusters, clusters, 'trainClusters');
  check(testClusters, clusters, 'testClusters');
  check(trainLabels, classes, 'trainLabels');
  check(testLabels, classes, 'testLabels');

  // counts[k][c]: training images of label c in cluster k.
  const counts = Array.from({ length: clusters }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < trainClusters.length; i++) counts[trainClusters[i]][trainLabels[i]]++;
  const trainSizes = counts.map((row) => row.reduce((a, b) => a + b, 0));
  const clusterLabels = counts.map((row, k) => {
    if (trainSizes[k] === 0) return null;
    let best = 0;
    for (let c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
    return best;
  });
  const testSizes = new Array<number>(clusters).fill(0);
  let errors = 0;
  for (let i = 0; i < testClusters.length; i++) {
    const k = testClusters[i];
    testSizes[k]++;
    if (clusterLabels[k] !== testLabels[i]) errors++;
  }
  return {
    clusters,
    images: testLabels.length,
    errors,
    error: errors / testLabels.length,
    clusterLabels,
    trainSizes,
    testSizes,
    emptyClusters: trainSizes.filter((s) => s === 0).length,
  };
}
