/**
 * A pool of generated training images with labels, for robust training with
 * generated data (Gowal et al., NeurIPS 2021, "Improving Robustness using
 * Generated Data"; Wang et al., ICML 2023): drawn once, seeded, before
 * training (data/mix.ts then fills a share of every batch from it).
 *
 * Labels: a class-conditional generator (cgan, acgan) is asked for classes
 * drawn uniformly and its images carry them; any other generator's images are
 * pseudo-labelled by a classifier's argmax, as Gowal et al. label theirs with
 * a non-robust classifier trained on the real data. A labeller given with a
 * class-conditional generator replaces the class asked for (and how often the
 * two agree is reported: a measure of the generator's class fidelity).
 */
import type { tfl } from '../../engine/tf.js';
import type { ImageSet } from '../../data/types.js';
import { imageSize } from '../../data/types.js';
import { poolFingerprint } from '../../data/mix.js';
import type { Classifier } from '../../models/classifier.js';
import { classifierPredictions } from '../../models/evaluate.js';
import { Rng, deriveSeed } from '../../util/rng.js';
import { InputError } from '../../errors.js';
import { clusterDraws, generateImages, latentCodes, type GeneratorSpec } from './sample.js';

/** GAN architectures whose one-hot input is the class (infogan's is an unsupervised code, scgan's a k-means cluster). */
export const CLASS_CONDITIONAL_ARCHS: readonly string[] = ['cgan', 'acgan'];

/** Default pool: this many times the real training set ... */
export const GENERATED_PER_REAL = 10;
/** ... capped at this many bytes of float32 images (85,598 mnist images; 21,845 of CIFAR-10's size). */
export const DEFAULT_POOL_BYTES = 256 * 2 ** 20;
/** An explicit count may reach this many bytes of images. */
export const MAX_POOL_BYTES = 2 ** 31;

/** The default pool size for `realCount` real training images of `imageShape`: 10x, capped at {@link DEFAULT_POOL_BYTES}. */
export function defaultGeneratedCount(realCount: number, imageShape: readonly [number, number, number]): number {
  return Math.max(1, Math.min(GENERATED_PER_REAL * realCount, Math.floor(DEFAULT_POOL_BYTES / (4 * imageSize(imageShape)))));
}

/** Options of {@link generatePool}. */
export interface GeneratedPoolOptions {
  /** Images in the pool. */
  n: number;
  /** Seeds the latent codes and the classes (or codes) asked for. */
  seed: number;
  /** The generator's one-hot input is the class (cgan, acgan; see {@link CLASS_CONDITIONAL_ARCHS}). */
  classConditional: boolean;
  /** Pseudo-labels the images by its argmax: required unless `classConditional`. The caller disposes it. */
  labeller?: Classifier;
  /** The training data the images join: their shape and class count are checked against it. */
  data: { imageShape: readonly [number, number, number]; numClasses: number };
  /** Images generated (and labelled) per chunk, the unit of progress (default 1024). */
  chunk?: number;
  /** Called with 0 before the first chunk, then after each. */
  onProgress?: (done: number, total: number) => void;
}

/** What {@link generatePool} made. */
export interface GeneratedPool {
  /** The images (NHWC float32 in [0, 1]) and their labels. */
  set: ImageSet;
  /** Where the labels come from: the class the generator was asked for, or the labeller's argmax. */
  labels: 'generator' | 'labeller';
  /** A class-conditional generator with a labeller: the share of images the labeller reads as the class asked for; else null. */
  classAgreement: number | null;
  /** Images per label. */
  classCounts: number[];
  /** SHA-256 of the pool (data/mix.ts's poolFingerprint), for checkpoints and the run's record. */
  fingerprint: string;
}

/**
 * Checks that a generator can feed training on `data`, before any image is made.
 * @throws InputError naming `generated` (another image shape; a class input
 *   whose classes are not the data's; a class-conditional use of a generator
 *   without a class input), `generatedLabeller` (missing for a generator that
 *   is not class-conditional; not taking the images or not giving the data's
 *   classes) or `generatedN` (not a count that fits in memory).
 */
export function checkGeneratedSource(spec: GeneratorSpec, options: Pick<GeneratedPoolOptions, 'n' | 'classConditional' | 'labeller' | 'data'>): void {
  const { data } = options;
  const shape = (s: readonly number[]) => `[${s.join(', ')}]`;
  if (spec.imageShape.join('x') !== data.imageShape.join('x')) throw new InputError('generated', `the generator makes images of shape ${shape(spec.imageShape)} but the training images are ${shape(data.imageShape)}`);
  if (options.classConditional) {
    if (!spec.conditional || spec.clusterPrior) throw new InputError('generated', 'the generator has no class input: it cannot label its images; pseudo-label them with --generated-labeller');
    if (spec.numClasses !== data.numClasses) throw new InputError('generated', `the generator's class input has ${spec.numClasses} classes but the dataset has ${data.numClasses}`);
  } else if (!options.labeller) {
    throw new InputError('generatedLabeller', 'required for a generator that is not class-conditional (only cgan and acgan are asked for a class): a classifier trained on the real data that pseudo-labels the generated images (Gowal et al. 2021)');
  }
  const l = options.labeller;
  if (l) {
    if (l.inputShape.join('x') !== data.imageShape.join('x')) throw new InputError('generatedLabeller', `the labeller takes images of shape ${shape(l.inputShape)} but the training images are ${shape(data.imageShape)}`);
    if (l.numClasses !== data.numClasses) throw new InputError('generatedLabeller', `the labeller gives ${l.numClasses} classes but the dataset has ${data.numClasses}`);
  }
  const max = Math.floor(MAX_POOL_BYTES / (4 * imageSize(data.imageShape)));
  if (!Number.isSafeInteger(options.n) || options.n < 1 || options.n > max) throw new InputError('generatedN', `expected an integer in [1, ${max}] (2 GiB of images), got ${options.n}`);
}

/**
 * Draws `n` images from `generator` (inference mode) in chunks, seeded, and
 * labels them (see the module comment). The one-hot input, when the
 * generator has one: uniform classes (class-conditional), clusters from
 * scgan's prior, or uniform codes (infogan). The same seed, generator,
 * labeller and backend give the same pool. No tensor outlives the call.
 * @throws InputError as {@link checkGeneratedSource}.
 */
export async function generatePool(generator: tfl.LayersModel, spec: GeneratorSpec, options: GeneratedPoolOptions): Promise<GeneratedPool> {
  checkGeneratedSource(spec, options);
  const { n, labeller } = options;
  const chunk = options.chunk ?? 1024;
  const size = imageSize(spec.imageShape);
  const zRng = new Rng(deriveSeed(options.seed, 'generated-z'));
  const codeRng = new Rng(deriveSeed(options.seed, 'generated-classes'));
  const images = new Float32Array(n * size);
  const labels = new Int32Array(n);
  let agree = 0;
  options.onProgress?.(0, n);
  for (let start = 0; start < n; start += chunk) {
    const m = Math.min(chunk, n - start);
    const z = latentCodes(zRng, m, spec.latentDim);
    const codes = !spec.conditional ? undefined : spec.clusterPrior ? clusterDraws(spec.clusterPrior, m, codeRng) : Int32Array.from({ length: m }, () => codeRng.int(spec.numClasses));
    const x = await generateImages(generator, spec, z, codes);
    images.set(x, start * size);
    if (labeller) {
      const chunkSet: ImageSet = { images: x, labels: new Int32Array(m), count: m, imageShape: [...spec.imageShape] };
      const pseudo = await classifierPredictions(labeller, chunkSet);
      labels.set(pseudo, start);
      if (options.classConditional) for (let i = 0; i < m; i++) if (pseudo[i] === codes![i]) agree++;
    } else {
      labels.set(codes!, start);
    }
    options.onProgress?.(start + m, n);
  }
  const classCounts = new Array<number>(options.data.numClasses).fill(0);
  for (const l of labels) classCounts[l]++;
  const set: ImageSet = { images, labels, count: n, imageShape: [...spec.imageShape] };
  return {
    set,
    labels: labeller ? 'labeller' : 'generator',
    classAgreement: labeller && options.classConditional ? agree / n : null,
    classCounts,
    fingerprint: poolFingerprint(set),
  };
}
