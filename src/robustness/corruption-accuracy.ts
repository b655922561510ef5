/**
 * Accuracy under common corruptions, the measurement behind MNIST-C (Mu &
 * Gilmer 2019) and CIFAR-10-C (Hendrycks & Dietterich 2019): the classifier's
 * accuracy on the clean images, then on each corruption at each severity.
 */
import { tf } from '../engine/tf.js';
import type { Classifier } from '../models/classifier.js';
import { Rng, deriveSeed } from '../util/rng.js';
import { InputError } from '../errors.js';
import { CORRUPTIONS, CORRUPTION_NAMES, SEVERITIES, checkImages, checkSeverity, isCorruptionName, type CorruptionName, type ImageShape } from './corruptions.js';

/** Options of {@link corruptionAccuracy}. */
export interface CorruptionAccuracyOptions {
  /** Which corruptions (default: all, in {@link CORRUPTION_NAMES} order). */
  corruptions?: readonly string[];
  /** Which severities, integers 1..5 (default: all five). */
  severities?: readonly number[];
  /**
   * Seed of the random corruptions (default 0). Corruption c at severity s draws
   * from `new Rng(deriveSeed(seed, "corruption:c:s"))`, so adding or dropping
   * other corruptions or severities never changes its images.
   */
  seed?: number;
  /** Images per forward pass (default 256); does not change the results. */
  batchSize?: number;
  /** Called after the clean pass and after each (corruption, severity); the library never prints. */
  onProgress?: (event: CorruptionProgress) => void;
}

/** One finished step of {@link corruptionAccuracy}. */
export interface CorruptionProgress {
  /** Steps done and in total (the clean pass plus one per corruption and severity). */
  done: number;
  total: number;
  /** `clean` for the first step. */
  corruption: CorruptionName | 'clean';
  /** null for the clean step. */
  severity: number | null;
  accuracy: number;
}

/** Accuracy on one corruption at one severity. */
export interface CorruptionResult {
  corruption: CorruptionName;
  severity: number;
  /** The corruption's parameter at this severity (see the table in corruptions.ts). */
  parameter: number;
  /** correct / count. */
  accuracy: number;
  correct: number;
  count: number;
}

/** What {@link corruptionAccuracy} returns. */
export interface CorruptionAccuracyResult {
  /** Number of images. */
  count: number;
  /** Accuracy on the clean images. */
  clean: number;
  cleanCorrect: number;
  /** One entry per corruption and severity, corruptions in the order asked, severities inside. */
  results: CorruptionResult[];
  /** Per corruption: the mean accuracy over the severities evaluated. */
  meanAccuracy: Partial<Record<CorruptionName, number>>;
  /** Mean of all `results` accuracies (the headline "corruption accuracy"). */
  overallMeanAccuracy: number;
  seed: number;
  severities: number[];
}

/**
 * Measures `classifier`'s accuracy on `images` (NHWC float32 in the
 * classifier's bounds, shape `imageShape` = the classifier's input) clean and
 * under each requested corruption and severity. Images are corrupted batch by
 * batch (plain JS, see corruptions.ts) and predicted with `classifier.predict`
 * inside tf.tidy; no tensor outlives a batch. Counts queries on the classifier.
 */
export async function corruptionAccuracy(
  classifier: Classifier,
  images: Float32Array,
  labels: ArrayLike<number>,
  imageShape: ImageShape,
  options: CorruptionAccuracyOptions = {},
): Promise<CorruptionAccuracyResult> {
  const [h, w, c] = classifier.inputShape;
  if (!Array.isArray(imageShape) || imageShape.length !== 3 || imageShape[0] !== h || imageShape[1] !== w || imageShape[2] !== c) {
    throw new InputError('imageShape', `expected [${h}, ${w}, ${c}] (the classifier's input), got [${Array.isArray(imageShape) ? imageShape.join(', ') : String(imageShape)}]`);
  }
  const bounds = classifier.bounds;
  const count = checkImages(images, imageShape, bounds);
  if (count < 1) throw new InputError('images', 'expected at least one image');
  if (!labels || labels.length !== count) throw new InputError('labels', `expected ${count} labels (one per image), got ${labels?.length}`);
  for (let i = 0; i < count; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < 0 || l >= classifier.numClasses) throw new InputError('labels', `label ${l} at index ${i} is outside [0, ${classifier.numClasses - 1}]`);
  }
  const names = options.corruptions ?? CORRUPTION_NAMES;
  if (names.length === 0) throw new InputError('corruptions', `expected at least one of ${CORRUPTION_NAMES.join(', ')}`);
  const corruptions: CorruptionName[] = [];
  for (const name of names) {
    if (!isCorruptionName(name)) throw new InputError('corruptions', `unknown corruption "${name}"; expected any of ${CORRUPTION_NAMES.join(', ')}`);
    if (!corruptions.includes(name)) corruptions.push(name);
  }
  const severities: number[] = [];
  for (const s of options.severities ?? SEVERITIES) {
    checkSeverity(s, 'severities');
    if (!severities.includes(s)) severities.push(s);
  }
  if (severities.length === 0) throw new InputError('severities', 'expected at least one severity from 1 to 5');
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new InputError('seed', `expected an integer in [0, 2^32), got ${seed}`);
  const batchSize = options.batchSize ?? 256;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError('batchSize', `expected a positive integer, got ${batchSize}`);

  const size = h * w * c;
  const total = 1 + corruptions.length * severities.length;
  let done = 0;

  /** Correct predictions on all images, each batch transformed by `transform` first. */
  const countCorrect = async (transform: (batch: Float32Array) => Float32Array): Promise<number> => {
    let correct = 0;
    for (let start = 0; start < count; start += batchSize) {
      const end = Math.min(count, start + batchSize);
      const batch = transform(images.subarray(start * size, end * size));
      const pred = tf.tidy(() => classifier.predict(tf.tensor4d(batch, [end - start, h, w, c])));
      let values: Int32Array;
      try {
        values = (await pred.data()) as Int32Array;
      } finally {
        pred.dispose();
      }
      for (let i = 0; i < end - start; i++) if (values[i] === labels[start + i]) correct++;
    }
    return correct;
  };

  const cleanCorrect = await countCorrect((b) => b);
  const clean = cleanCorrect / count;
  options.onProgress?.({ done: ++done, total, corruption: 'clean', severity: null, accuracy: clean });

  const results: CorruptionResult[] = [];
  const meanAccuracy: Partial<Record<CorruptionName, number>> = {};
  for (const name of corruptions) {
    const corruption = CORRUPTIONS[name];
    let sum = 0;
    for (const severity of severities) {
      // One Rng per (corruption, severity), consumed image by image across batches.
      const rng = new Rng(deriveSeed(seed, `corruption:${name}:${severity}`));
      const correct = await countCorrect((b) => corruption.apply(b, imageShape, severity, rng, bounds));
      const accuracy = correct / count;
      results.push({ corruption: name, severity, parameter: corruption.severities[severity - 1], accuracy, correct, count });
      sum += accuracy;
      options.onProgress?.({ done: ++done, total, corruption: name, severity, accuracy });
    }
    meanAccuracy[name] = sum / severities.length;
  }
  const overallMeanAccuracy = results.reduce((s, r) => s + r.accuracy, 0) / results.length;
  return { count, clean, cleanCorrect, results, meanAccuracy, overallMeanAccuracy, seed, severities };
}
