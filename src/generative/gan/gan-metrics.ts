/**
 * Quality metrics of a GAN generator against real images, through a trained
 * classifier (shared by the per-epoch monitor of `advlab gan` and by
 * `advlab gan eval`):
 * - FID (Heusel et al. 2017) on the classifier's penultimate features (the
 *   input of its last Dense layer), generated vs class-balanced real test images;
 * - Inception Score (Salimans et al. 2016) and class coverage from its softmax;
 * - improved precision and recall (Kynkäänniemi et al. 2019, k = 3) on the
 *   same features;
 * - for a conditional generator, how often a sample of class c is classified
 *   as c;
 * - the floor: the FID of real train images against the same real test
 *   images, which a perfect generator would reach at that sample size (FID is
 *   biased upwards for a finite n).
 */
import { tf, tfl } from '../../engine/tf.js';
import { readAndDispose } from '../../engine/read.js';
import type { Dataset } from '../../data/types.js';
import { imageSize } from '../../data/types.js';
import { balancedSubset } from '../../data/subset.js';
import { checkInputShape, isGraphModel, type ClassifierModel } from '../../models/artifacts.js';
import { sha256Hex, viewBytes } from '../../util/hash.js';
import { InputError } from '../../errors.js';
import { argmaxRows, classCoverage, frechetDistanceFromMoments, inceptionScore, meanAndCovariance, modeCollapse, precisionRecall, softmaxRows, type GaussianMoments, type SampleMatrix } from '../metrics/index.js';

/** The neighbour of the precision/recall balls (Kynkäänniemi et al. 2019). */
export const PRECISION_RECALL_K = 3;

/** The metrics of one evaluation of the generator. */
export interface GanMetrics {
  /** Epoch after which they were measured. */
  epoch: number;
  /** Generated images. */
  samples: number;
  /** Real test images they are compared with (class-balanced). */
  realSamples: number;
  /** Fréchet distance of the classifier's penultimate features, generated vs real test images. */
  fid: number;
  /** exp(E KL(p(y|x) || p(y))) of the classifier's softmax on the generated images, one split over all of them. */
  inceptionScore: number;
  /** Classes the classifier assigns to the generated images. */
  coverage: { counts: number[]; fractions: number[]; klFromUniform: number; minFraction: number; minClass: number; missing: number[]; modeCollapse: boolean };
  /** Improved precision and recall (k-NN manifolds of the same features). */
  precision: number;
  recall: number;
  k: number;
  /**
   * Conditional generators: the fraction of samples the classifier assigns to
   * the class they were generated for, overall and per class; null for
   * unconditional ones.
   */
  classAccuracy: { overall: number; perClass: number[] } | null;
}

/** The classifier the metrics used. */
export interface MetricsClassifier {
  path: string;
  /** The last Dense layer, whose INPUT gives the features. */
  featureLayer: string;
  featureDim: number;
  /** Whether the classifier outputs logits (softmax applied here) or probabilities. */
  outputs: 'logits' | 'probabilities';
}

/** A loaded metric classifier and the real test features, computed once. */
export interface MetricsContext {
  /** The classifier as loaded (the probe shares its layers); dispose with {@link closeMetrics}. */
  model: tfl.LayersModel;
  /** Outputs [features, scores] in one pass. */
  probe: tfl.LayersModel;
  info: MetricsClassifier;
  numClasses: number;
  imageShape: [number, number, number];
  /** Features of the real test images and their moments. */
  real: SampleMatrix;
  realMoments: GaussianMoments;
  realHash: string;
}

/**
 * Takes the classifier (loaded from `path`), checks it against the data, builds the probe model
 * with two outputs (the input of the last Dense layer, the features, and the
 * classifier's output, logits or probabilities) and embeds `realSamples`
 * class-balanced test images.
 * @param argument names `realSamples` in the error when the test split is too small
 * @throws InputError naming `classifier` (unusable model) or `argument`.
 */
export async function openMetrics(loaded: ClassifierModel, path: string, data: Dataset, realSamples: number, argument = 'realSamples'): Promise<MetricsContext> {
  if (isGraphModel(loaded)) {
    loaded.dispose();
    throw new InputError('classifier', `${path} is a graph model; the metrics need a Layers model (advlab train output) to read its penultimate layer`);
  }
  const model = loaded;
  try {
    checkInputShape(model, data.train.imageShape, 'classifier');
    const outShape = model.outputs.length === 1 ? model.outputs[0].shape : null;
    if (!outShape || outShape.length !== 2 || outShape[1] !== data.numClasses) {
      throw new InputError('classifier', `the model in ${path} outputs ${outShape ? `shape [${outShape.map((d) => d ?? 'batch').join(', ')}]` : `${model.outputs.length} tensors`}, but the dataset has ${data.numClasses} classes`);
    }
    const dense = [...model.layers].reverse().find((l) => l.getClassName() === 'Dense');
    if (!dense) throw new InputError('classifier', `the model in ${path} has no Dense layer whose input could serve as features`);
    let features: tfl.SymbolicTensor;
    try {
      const input = dense.input;
      if (Array.isArray(input)) throw new Error('several inputs');
      features = input;
    } catch (e) {
      throw new InputError('classifier', `the last Dense layer ("${dense.name}") of ${path} has no single input tensor: ${(e as Error).message}`);
    }
    const featureDim = features.shape.slice(1).reduce((a: number, d) => a * (d ?? NaN), 1);
    if (!Number.isFinite(featureDim)) throw new InputError('classifier', `the features (input of "${dense.name}") have no fixed size: [${features.shape.join(', ')}]`);
    const last = model.layers[model.layers.length - 1];
    const activation = (last.getConfig() as { activation?: unknown }).activation;
    const outputs = activation === 'softmax' || last.getClassName() === 'Softmax' ? 'probabilities' : 'logits';
    const probe = tfl.model({ inputs: model.inputs, outputs: [features, model.outputs[0]], name: 'gan_metrics_probe' });
    const ctx: Omitted<MetricsContext> = { model, probe, numClasses: data.numClasses, imageShape: data.train.imageShape, info: { path, featureLayer: dense.name, featureDim, outputs } };
    const testSet = balancedSubset(data.test, data.numClasses, realSamples, argument, 'test');
    const real = (await embed(ctx, testSet.images, testSet.count)).features;
    return { ...ctx, real, realMoments: meanAndCovariance(real), realHash: sha256Hex(viewBytes(real.data)) };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** Releases the classifier of {@link openMetrics}. */
export function closeMetrics(ctx: MetricsContext | null | undefined): void {
  ctx?.model.dispose();
}

type Omitted<T> = Omit<T, 'real' | 'realMoments' | 'realHash'>;

/** Features and class scores of images (NHWC float32) through the probe, in batches (one wait each). */
async function embed(ctx: Omitted<MetricsContext>, images: Float32Array, count: number, batchSize = 256): Promise<{ features: SampleMatrix; scores: SampleMatrix }> {
  const size = imageSize(ctx.imageShape);
  const d = ctx.info.featureDim;
  const k = ctx.numClasses;
  const features = new Float32Array(count * d);
  const scores = new Float32Array(count * k);
  for (let start = 0; start < count; start += batchSize) {
    const m = Math.min(batchSize, count - start);
    const [f, s] = await readAndDispose(
      tf.tidy(() => {
        const x = tf.tensor4d(images.subarray(start * size, (start + m) * size), [m, ...ctx.imageShape]);
        return ctx.probe.apply(x, { training: false }) as tf.Tensor[];
      }),
    );
    features.set(f as Float32Array, start * d);
    scores.set(s as Float32Array, start * k);
  }
  return { features: { data: features, n: count, d }, scores: { data: scores, n: count, d: k } };
}

/**
 * Every metric of `count` generated images (NHWC float32 in [0, 1]) against
 * the real test features; `classes`, for a conditional generator, are the
 * classes the images were generated for.
 */
export async function generatorMetrics(ctx: MetricsContext, images: Float32Array, count: number, epoch: number, classes?: Int32Array): Promise<GanMetrics> {
  const { features, scores } = await embed(ctx, images, count);
  const probabilities = ctx.info.outputs === 'logits' ? softmaxRows(scores) : scores;
  const coverage = classCoverage(probabilities);
  const pr = precisionRecall(ctx.real, features, { k: PRECISION_RECALL_K });
  return {
    epoch,
    samples: count,
    realSamples: ctx.real.n,
    fid: frechetDistanceFromMoments(ctx.realMoments, meanAndCovariance(features)),
    inceptionScore: inceptionScore(probabilities).mean,
    coverage: {
      counts: coverage.counts,
      fractions: coverage.fractions,
      klFromUniform: coverage.klFromUniform,
      minFraction: coverage.minFraction,
      minClass: coverage.minClass,
      missing: coverage.missing,
      modeCollapse: modeCollapse(coverage),
    },
    precision: pr.precision,
    recall: pr.recall,
    k: pr.k,
    classAccuracy: classes ? conditionalAccuracy(probabilities, classes, ctx.numClasses) : null,
  };
}

/** Fraction of rows whose arg-max is the class asked for, overall and per asked class (NaN for a class never asked). */
export function conditionalAccuracy(probabilities: SampleMatrix, classes: Int32Array, numClasses: number): { overall: number; perClass: number[] } {
  if (classes.length !== probabilities.n) throw new InputError('classes', `expected one class per sample (${probabilities.n}), got ${classes.length}`);
  const hits = new Array<number>(numClasses).fill(0);
  const asked = new Array<number>(numClasses).fill(0);
  const predicted = argmaxRows(probabilities);
  classes.forEach((c, i) => {
    asked[c]++;
    if (predicted[i] === c) hits[c]++;
  });
  const total = hits.reduce((a, b) => a + b, 0);
  return { overall: total / probabilities.n, perClass: hits.map((h, c) => (asked[c] ? h / asked[c] : NaN)) };
}

/**
/** Where {@link realFidFloor} keeps its figure between runs (e.g. a file of the run folder). */
export interface FidFloorCache {
  /** The figure stored under `key`, if any. */
  get(key: string): number | undefined;
  set(key: string, fid: number): void;
}

/**
 * FID of `trainSamples` class-balanced real train images against the real
 * test features of `ctx`: the floor of the FID figures. With a `cache`, the
 * figure is kept there under a key of the dataset, the classifier and a
 * hash of the test features (a changed classifier or dataset is recomputed).
 * @returns the FID and whether it came from the cache
 */
export async function realFidFloor(ctx: MetricsContext, data: Dataset, trainSamples: number, cache?: FidFloorCache, argument = 'realSamples'): Promise<{ fid: number; cached: boolean }> {
  const key = JSON.stringify({ dataset: data.name, classifier: ctx.info.path, samples: trainSamples, realSamples: ctx.real.n, realFeatures: ctx.realHash });
  const cached = cache?.get(key);
  if (cached !== undefined && Number.isFinite(cached)) return { fid: cached, cached: true };
  const trainSet = balancedSubset(data.train, data.numClasses, trainSamples, argument, 'train');
  const trainFeatures = (await embed(ctx, trainSet.images, trainSet.count)).features;
  const fid = frechetDistanceFromMoments(meanAndCovariance(trainFeatures), ctx.realMoments);
  cache?.set(key, fid);
  return { fid, cached: false };
}

/** The figures of {@link GanMetrics} kept in each epoch's record (history.csv). */
export function monitorFigures(m: GanMetrics): Record<string, number> {
  return {
    fid: m.fid,
    inceptionScore: m.inceptionScore,
    klFromUniform: m.coverage.klFromUniform,
    minClassFraction: m.coverage.minFraction,
    modeCollapse: m.coverage.modeCollapse ? 1 : 0,
    precision: m.precision,
    recall: m.recall,
    ...(m.classAccuracy ? { classAccuracy: m.classAccuracy.overall } : {}),
  };
}
