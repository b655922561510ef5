/**
 * `advlab gan eval`: the quality metrics of a trained generator (gan-metrics.ts)
 * on as many samples as asked, with the real-vs-real FID floor next to them.
 * A conditional generator is asked for the classes in turn, and its samples'
 * class accuracy is reported.
 */
import type { BackendInfo } from '../engine/backend.js';
import { loadDataset } from '../node/data/load.js';
import { runMeta, type RunMeta } from '../report/meta.js';
import { writeJsonAtomic } from '../node/atomic.js';
import { checkOutputFile } from '../node/paths.js';
import { checkSavedClassifier } from '../node/resolve.js';
import { Rng, deriveSeed } from '../util/rng.js';
import { InputError, rethrowFor } from '../errors.js';
import { shippedMetricClassifier } from '../node/metric-classifier.js';
import { openMetricsAt } from '../node/metrics-files.js';
import { closeMetrics, generatorMetrics, PRECISION_RECALL_K, realFidFloor, type GanMetrics, type MetricsClassifier, type MetricsContext } from '../generative/gan/gan-metrics.js';
import { generateImages, generatorClasses, latentCodes } from '../generative/gan/sample.js';
import { loadGenerator, MAX_SAMPLES } from './gan-sample.js';

/** Options of {@link evaluateGan}. */
export interface EvaluateGanOptions {
  /** An `advlab gan` run folder (or its generator folder). */
  model: string;
  /** Dataset of the real images; default: the run's (from its result.json). */
  dataset?: string;
  /** A saved advlab classifier; default: the run's, else the one advlab ships for the dataset. */
  classifier?: string;
  /** Generated images (default 10,000, the count the class-coverage figure uses). */
  n?: number;
  /** Class-balanced real images, test split for the metrics and train split for the floor (default: min(n, test split size)). */
  realSamples?: number;
  /** Seed of the latent codes (default 0). */
  seed?: number;
  /** Also write the result to this JSON file (atomically). */
  out?: string;
}

/** What {@link evaluateGan} measured (the content of its JSON file). */
export interface GanEvalResult extends RunMeta {
  options: { model: string; dataset: string; classifier: string; n: number; realSamples: number; seed: number };
  generator: { path: string; arch: string | null; conditional: boolean; latentDim: number; numClasses: number; imageShape: number[]; epochs: number | null };
  metricsClassifier: MetricsClassifier;
  /** FID of `realSamples` real train images against the real test images. */
  fidFloor: number;
  metrics: GanMetrics;
}

/**
 * Measures a trained generator: FID (with its real-vs-real floor), Inception
 * Score, class coverage and mode collapse, precision/recall and, for a
 * conditional generator, class accuracy.
 * @throws InputError naming `model`, `dataset`, `classifier`, `n`, `realSamples`, `seed` or `out`.
 */
export async function evaluateGan(options: EvaluateGanOptions, backend: BackendInfo): Promise<GanEvalResult> {
  const startedAt = new Date();
  const n = options.n ?? 10_000;
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(n) || n < PRECISION_RECALL_K + 1 || n > MAX_SAMPLES) throw new InputError('n', `expected an integer in [${PRECISION_RECALL_K + 1}, ${MAX_SAMPLES}], got ${n}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new InputError('seed', `expected an integer in [0, 2^32), got ${seed}`);
  if (options.out !== undefined) {
    if (!/\.json$/i.test(options.out)) throw new InputError('out', `expected a file name ending in .json, got "${options.out}"`);
    checkOutputFile(options.out, 'out');
  }
  const { generator, spec, generatorPath, runResult } = await loadGenerator(options.model).catch(rethrowFor('model'));
  let metrics: MetricsContext | null = null;
  try {
    const dataset = options.dataset ?? runResult?.dataset;
    if (!dataset) throw new InputError('dataset', `required: ${generatorPath} has no advlab gan result.json to take the dataset from`);
    // The classifier is opened before the data: a missing or corrupt one is named at once.
    const runClassifier = runResult?.classifier && runResult.classifier !== 'none' ? runResult.classifier : undefined;
    const classifier = options.classifier ?? runClassifier ?? shippedMetricClassifier(dataset)?.path;
    if (!classifier) throw new InputError('classifier', `required: advlab ships a metric classifier for the built-in datasets only; give a saved advlab classifier for ${dataset}`);
    await checkSavedClassifier(classifier, 'classifier');
    const data = loadDataset(dataset);
    if (data.train.imageShape.some((d, i) => d !== spec.imageShape[i])) {
      throw new InputError('dataset', `${dataset} has images of ${data.train.imageShape.join('x')}, the generator makes ${spec.imageShape.join('x')}`);
    }
    if (spec.conditional && !spec.clusterPrior && spec.numClasses !== data.numClasses) throw new InputError('dataset', `${dataset} has ${data.numClasses} classes, the generator ${spec.numClasses}`);
    const realSamples = options.realSamples ?? Math.min(n, data.test.count, data.train.count);
    if (!Number.isSafeInteger(realSamples) || realSamples < PRECISION_RECALL_K + 1) throw new InputError('realSamples', `expected an integer >= ${PRECISION_RECALL_K + 1}, got ${realSamples}`);

    metrics = await openMetricsAt(classifier, data, realSamples).catch(rethrowFor('classifier'));
    const floor = await realFidFloor(metrics, data, realSamples);
    const z = latentCodes(new Rng(deriveSeed(seed, 'gan-eval')), n, spec.latentDim);
    // A self-conditioned generator draws its clusters from its prior; a conditional one is asked for the classes in turn.
    const classes = generatorClasses(spec, n, new Rng(deriveSeed(seed, 'gan-eval-clusters')));
    const images = await generateImages(generator, spec, z, classes);
    // InfoGAN's codes are drawn in turn too, but neither they nor scgan's clusters are labels: no class accuracy.
    const measured = await generatorMetrics(metrics, images, n, runResult?.epochs ?? 0, runResult?.arch === 'infogan' || spec.clusterPrior ? undefined : classes);
    const result: GanEvalResult = {
      ...runMeta('gan eval', backend, seed, startedAt),
      options: { model: options.model, dataset, classifier, n, realSamples, seed },
      generator: { path: generatorPath, arch: runResult?.arch ?? null, conditional: spec.conditional && !spec.clusterPrior, latentDim: spec.latentDim, numClasses: spec.clusterPrior ? data.numClasses : spec.numClasses || data.numClasses, imageShape: [...spec.imageShape], epochs: runResult?.epochs ?? null },
      metricsClassifier: metrics.info,
      fidFloor: floor.fid,
      metrics: measured,
    };
    if (options.out) writeJsonAtomic(options.out, result);
    return result;
  } finally {
    generator.dispose();
    closeMetrics(metrics);
  }
}
