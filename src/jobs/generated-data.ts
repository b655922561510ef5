/**
 * `advlab train --generated <gan run>`: the Node side of training with
 * generated data (Gowal et al. 2021): the generator read from its folder (and
 * the run's result.json, which says whether its one-hot input is a class),
 * the labeller from its folder, the pool drawn by the core
 * (generative/gan/generated-data.ts) and what the run records of it.
 */
import type { Dataset } from '../data/types.js';
import { checkGeneratedFraction, generatedInBatch, type GeneratedMix } from '../data/mix.js';
import { CLASS_CONDITIONAL_ARCHS, defaultGeneratedCount, generatePool } from '../generative/gan/generated-data.js';
import { Classifier } from '../models/classifier.js';
import type { ClassifierModel } from '../models/artifacts.js';
import type { GeneratedDataRecord, TrainRunOptions } from '../models/types.js';
import { loadSavedClassifier } from '../node/resolve.js';
import { loadGenerator, type LoadedGenerator } from './gan-sample.js';
import { savedModelPath } from './job-options.js';
import { forArgument, InputError } from '../errors.js';

/** Default share of every batch that is generated: Gowal et al.'s 70%. */
export const DEFAULT_GENERATED_FRACTION = 0.7;

type GeneratedOptions = Pick<TrainRunOptions, 'generated' | 'generatedFraction' | 'generatedN' | 'generatedLabeller'>;

/**
 * The generated-data options that can be checked without reading anything, so
 * a typo fails before the dataset is loaded.
 * @throws InputError naming `generatedFraction`, `generatedN` or `generatedLabeller` (given without `generated`, or out of range).
 */
export function checkGeneratedOptions(o: GeneratedOptions): void {
  if (o.generated === undefined) {
    for (const key of ['generatedFraction', 'generatedN', 'generatedLabeller'] as const) if (o[key] !== undefined) throw new InputError(key, 'only applies with --generated');
    return;
  }
  if (typeof o.generated !== 'string' || o.generated === '') throw new InputError('generated', 'expected an advlab gan run folder or a generator folder');
  checkGeneratedFraction(o.generatedFraction ?? DEFAULT_GENERATED_FRACTION);
  if (o.generatedN !== undefined && (!Number.isSafeInteger(o.generatedN) || o.generatedN < 1)) throw new InputError('generatedN', `expected a positive integer, got ${o.generatedN}`);
}

/**
 * Loads the generator (and the labeller), draws the pool of generated images
 * for `realCount` real training images of `data` (the default size is 10x
 * that), seeded by `seed`, and describes it for result.json (`realTrainSize`:
 * the run's real images, held-out ones included). Leaves no model or tensor behind.
 * @throws InputError naming `generated`, `generatedN` or `generatedLabeller` (see checkGeneratedSource).
 */
export async function loadGeneratedData(
  o: GeneratedOptions & { generated: string },
  data: Pick<Dataset, 'numClasses'> & { imageShape: [number, number, number] },
  realCount: number,
  realTrainSize: number,
  batchSize: number,
  seed: number,
  onProgress?: (done: number, total: number) => void,
): Promise<{ mix: GeneratedMix; record: GeneratedDataRecord }> {
  checkGeneratedOptions(o);
  const t0 = performance.now();
  const fraction = o.generatedFraction ?? DEFAULT_GENERATED_FRACTION;
  const n = o.generatedN ?? defaultGeneratedCount(realCount, data.imageShape);
  let loaded: LoadedGenerator | undefined;
  let labellerModel: ClassifierModel | undefined;
  let labeller: Classifier | undefined;
  try {
    loaded = await loadGenerator(o.generated).catch(renamed('model', 'generated'));
    const { spec, runResult, generatorPath } = loaded;
    const arch = runResult?.arch ?? null;
    // A one-hot input is a class only for cgan and acgan; a bare generator folder cannot say which it is.
    const oneHotIsClass = spec.conditional && !spec.clusterPrior;
    if (oneHotIsClass && arch === null && o.generatedLabeller === undefined) {
      throw new InputError('generated', `the generator in ${generatorPath} has a one-hot input, but no advlab gan result.json beside it says whether that is a class (cgan, acgan) or an InfoGAN code: give its run folder, or pseudo-label its images with --generated-labeller`);
    }
    const classConditional = oneHotIsClass && arch !== null && CLASS_CONDITIONAL_ARCHS.includes(arch);
    if (o.generatedLabeller !== undefined) {
      const path = savedModelPath(o.generatedLabeller, 'generatedLabeller');
      labellerModel = await loadSavedClassifier(path, { imageShape: data.imageShape, numClasses: data.numClasses }, 'generatedLabeller').catch(renamed('dataset', 'generatedLabeller'));
      labeller = Classifier.fromModel(labellerModel);
    }
    const pool = await generatePool(loaded.generator, spec, { n, seed, classConditional, labeller, data, onProgress });
    const record: GeneratedDataRecord = {
      generator: o.generated,
      generatorPath,
      arch,
      generatorTrainSize: typeof runResult?.trainSize === 'number' ? runResult.trainSize : null,
      realTrainSize,
      fraction,
      perBatch: generatedInBatch(batchSize, fraction),
      n,
      labels: pool.labels,
      labeller: o.generatedLabeller ?? null,
      classAgreement: pool.classAgreement,
      classCounts: pool.classCounts,
      sha256: pool.fingerprint,
      seconds: (performance.now() - t0) / 1000,
    };
    return { mix: { pool: pool.set, fraction, fingerprint: pool.fingerprint }, record };
  } finally {
    labeller?.dispose();
    labellerModel?.dispose();
    loaded?.generator.dispose();
  }
}

/** Rethrows an InputError about `from` (how the loaders name their argument) as one about `to`; file errors name `to` too. */
function renamed(from: string, to: string): (e: unknown) => never {
  return (e) => {
    if (e instanceof InputError && e.argument === from) throw new InputError(to, e.message.slice(from.length + 2), { cause: e });
    throw forArgument(to, e);
  };
}
