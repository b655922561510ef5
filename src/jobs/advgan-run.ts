/**
 * `advlab advgan`: trains AdvGAN's generator (generative/advgan) against a
 * saved classifier on the dataset's training split, checkpointed every epoch
 * and resumable, then saves the generator (`generator/`, with `advgan.json`:
 * its eps and target class) and attacks the class-balanced `--n` test images
 * with it through the shared attack driver (attacks/advgan.ts: one forward
 * pass, every candidate re-verified): success rate, median L2, images per
 * second; `samples.png` (clean, perturbation, adversarial), `report.html`,
 * and `result.json` last.
 */
import { join } from 'node:path';
import type { BackendInfo } from '../engine/backend.js';
import { Classifier } from '../models/classifier.js';
import { loadModelJob, type ModelJobOptions } from './job-options.js';
import { packageVersions } from './train-run.js';
import { attackGrid } from './attack-run.js';
import { runMeta, type RunMeta } from '../report/meta.js';
import { writeFileAtomic, writeJsonAtomic } from '../node/atomic.js';
import { checkOutputFolder, type OutputLayout } from '../node/paths.js';
import { saveModel } from '../node/model-files.js';
import { CheckpointFolder } from '../node/checkpoint.js';
import { InputError } from '../errors.js';
import { buildAdvGan } from '../generative/advgan/architectures.js';
import { ADVGAN_DEFAULTS, trainAdvGan, type AdvGanEpochRecord, type AdvGanTrainEvent, type AdvGanTrainOptions } from '../generative/advgan/train-advgan.js';
import { advganAttack, type AdvGanGeneratorInfo } from '../attacks/advgan.js';
import { runAttack } from '../attacks/run.js';
import type { AttackSummary } from '../attacks/types.js';
import { countParameters } from '../models/artifacts.js';
import { balancedSubset } from '../data/subset.js';
import { tf } from '../engine/tf.js';
import { readOne } from '../engine/read.js';
import { buildModel, type ZooName } from '../models/zoo.js';
import { deriveSeed } from '../util/rng.js';
import { DISTILLATION_DEFAULTS, DynamicDistillation, type BlackBox } from '../generative/advgan/distillation.js';

/** Options of {@link advganRun}. */
export interface AdvGanRunOptions extends Omit<ModelJobOptions, 'queue' | 'workers'>, Pick<AdvGanTrainOptions, 'learningRate' | 'ganLoss' | 'alpha' | 'beta' | 'hingeBound' | 'kappa' | 'targetClass'> {
  /** Linf budget in the input's scale. */
  eps: number;
  /** Default 15. */
  epochs?: number;
  /** Training batch size (default 64). */
  trainBatchSize?: number;
  /** Train on a class-balanced subset of this many train-split images (default: all of it). */
  trainSize?: number;
  resume?: boolean;
  /**
   * Black-box mode (dynamic distillation, generative/advgan/distillation.ts):
   * the generator trains against a surrogate of this zoo architecture that
   * learns from the model's predicted labels only; every query is counted.
   * Omitted: white-box, against the model's own gradients.
   */
  blackBox?: { surrogate?: ZooName; staticEpochs?: number; learningRate?: number };
  /** Stop after this many epochs in this call (simulates a kill, for tests). */
  stopAfterEpochs?: number;
  onProgress?: (event: AdvGanRunEvent) => void;
}

export type AdvGanRunEvent = AdvGanTrainEvent | { type: 'model'; path: string; parameters: number } | { type: 'evaluated'; summary: AttackSummary };

/** result.json of `advlab advgan`. */
export interface AdvGanRunResult extends RunMeta {
  options: { model: string; dataset: string; eps: number; epochs: number; trainBatchSize: number; learningRate: number; ganLoss: string; alpha: number; beta: number; hingeBound: number; kappa: number; targetClass: number | null; n: number; seed: number; bounds: [number, number]; out: string };
  model: { path: string; parameters: number };
  dataset: { name: string; trainSize: number; testSize: number; numClasses: number; imageShape: number[] };
  generator: { path: string; parameters: number };
  history: AdvGanEpochRecord[];
  resumedFromEpoch: number;
  /** The generator as an attack on the `n` test images (re-verified by the driver). */
  attack: AttackSummary & { count: number; seconds: number };
  /** Black-box mode: the surrogate, the queries the training made (the final attack's verification queries are the driver's, in `attack`), and the surrogate's agreement with the model. */
  blackBox: { surrogate: ZooName; staticEpochs: number; learningRate: number; queries: number; queriesPerTrainingImage: number; staticAgreement: number; finalAgreement: number } | null;
  files: { generator: string; samples: string; report: string; checkpoint: string };
  packages: Record<string, string>;
}

export const ADVGAN_OUTPUT: OutputLayout = { folders: ['checkpoint', 'generator'], files: ['samples.png', 'report.html', 'result.json'] };
export const ADVGAN_RUN_DEFAULTS = { dataset: 'mnist', n: 1000, epochs: 15, trainBatchSize: 64, batchSize: 256, seed: 0 } as const;

/** Trains the generator and measures it (see the module comment). */
export async function advganRun(options: AdvGanRunOptions, backend: BackendInfo): Promise<AdvGanRunResult> {
  const startedAt = new Date();
  checkOutputFolder(options.out, 'out', ADVGAN_OUTPUT);
  if (!(options.eps > 0 && Number.isFinite(options.eps))) throw new InputError('eps', `expected a positive Linf budget, got ${options.eps}`);
  const epochs = options.epochs ?? ADVGAN_RUN_DEFAULTS.epochs;
  const trainBatchSize = options.trainBatchSize ?? ADVGAN_RUN_DEFAULTS.trainBatchSize;
  const seed = options.seed ?? ADVGAN_RUN_DEFAULTS.seed;
  const job = await loadModelJob(options, ADVGAN_RUN_DEFAULTS, (e) => e.type === 'model' && options.onProgress?.(e));
  const { subset, data } = job;
  const classifier = Classifier.fromModel(job.model, { bounds: job.bounds, ...(options.preprocess ? { preprocess: options.preprocess } : {}) });
  const train = options.trainSize === undefined ? data.train : balancedSubset(data.train, data.numClasses, options.trainSize, 'trainSize', 'train');
  const models = buildAdvGan(data.train.imageShape as [number, number, number], seed);
  const blackBox = options.blackBox ? { surrogate: options.blackBox.surrogate ?? 'lenet', staticEpochs: options.blackBox.staticEpochs ?? DISTILLATION_DEFAULTS.staticEpochs, learningRate: options.blackBox.learningRate ?? DISTILLATION_DEFAULTS.learningRate } : null;
  let distillation: DynamicDistillation | undefined;
  try {
    if (blackBox) {
      const [h, w, c] = data.train.imageShape;
      // The model answers with its predicted class only; the trainer never sees it otherwise.
      const oracle: BlackBox = { labels: async (x) => (await readOne(tf.tidy(() => classifier.predict(x)))) as Int32Array, bounds: classifier.bounds, numClasses: classifier.numClasses, inputShape: [h, w, c] };
      const surrogate = buildModel(blackBox.surrogate, { inputShape: [h, w, c], numClasses: data.numClasses, seed: deriveSeed(seed, 'surrogate') });
      distillation = new DynamicDistillation(surrogate, oracle, { seed, staticEpochs: blackBox.staticEpochs, learningRate: blackBox.learningRate });
    }
    const trained = await trainAdvGan(models, distillation?.classifier ?? classifier, train, {
      eps: options.eps,
      epochs,
      batchSize: trainBatchSize,
      seed,
      ...(options.learningRate !== undefined ? { learningRate: options.learningRate } : {}),
      ...(options.ganLoss !== undefined ? { ganLoss: options.ganLoss } : {}),
      ...(options.alpha !== undefined ? { alpha: options.alpha } : {}),
      ...(options.beta !== undefined ? { beta: options.beta } : {}),
      ...(options.hingeBound !== undefined ? { hingeBound: options.hingeBound } : {}),
      ...(options.kappa !== undefined ? { kappa: options.kappa } : {}),
      ...(options.targetClass !== undefined ? { targetClass: options.targetClass } : {}),
      checkpoints: new CheckpointFolder(join(options.out, 'checkpoint')),
      resume: options.resume,
      stopAfterEpochs: options.stopAfterEpochs,
      onProgress: options.onProgress,
      ...(distillation ? { distillation } : {}),
    });
    const info: AdvGanGeneratorInfo = { eps: options.eps, targetClass: options.targetClass ?? null };
    const generatorDir = join(options.out, 'generator');
    await saveModel(models.generator, generatorDir);
    writeJsonAtomic(join(generatorDir, 'advgan.json'), { ...info, attackedModel: job.modelPath });

    const batchSize = options.batchSize ?? ADVGAN_RUN_DEFAULTS.batchSize;
    const targets = info.targetClass === null ? undefined : new Int32Array(subset.count).fill(info.targetClass);
    const attack = await runAttack(advganAttack(models.generator, info), classifier, subset, { eps: options.eps, norm: 'linf', seed, batchSize, ...(targets ? { targeted: targets } : {}) });
    options.onProgress?.({ type: 'evaluated', summary: attack.summary });
    const grid = attackGrid(subset.images, attack, Math.min(10, subset.count), data.classNames);
    if (grid) writeFileAtomic(join(options.out, 'samples.png'), grid.png);
    const result: AdvGanRunResult = {
      ...runMeta('advgan', backend, seed, startedAt),
      options: {
        model: options.model,
        dataset: job.datasetSpec,
        eps: options.eps,
        epochs,
        trainBatchSize,
        learningRate: options.learningRate ?? ADVGAN_DEFAULTS.learningRate,
        ganLoss: options.ganLoss ?? ADVGAN_DEFAULTS.ganLoss,
        alpha: options.alpha ?? ADVGAN_DEFAULTS.alpha,
        beta: options.beta ?? ADVGAN_DEFAULTS.beta,
        hingeBound: options.hingeBound ?? ADVGAN_DEFAULTS.hingeBound,
        kappa: options.kappa ?? ADVGAN_DEFAULTS.kappa,
        targetClass: info.targetClass,
        n: job.n,
        seed,
        bounds: job.bounds,
        out: options.out,
      },
      model: { path: job.modelPath, parameters: countParameters(job.model) },
      dataset: { name: data.name, trainSize: train.count, testSize: data.test.count, numClasses: data.numClasses, imageShape: [...data.train.imageShape] },
      generator: { path: generatorDir, parameters: models.generator.countParams() },
      history: trained.history,
      resumedFromEpoch: trained.resumedFromEpoch,
      attack: { ...attack.summary, count: attack.count, seconds: attack.seconds },
      blackBox: blackBox && distillation ? { ...blackBox, queries: distillation.queries, queriesPerTrainingImage: distillation.queries / train.count, ...agreements(trained.history) } : null,
      files: { generator: 'generator', samples: 'samples.png', report: 'report.html', checkpoint: 'checkpoint' },
      packages: packageVersions(),
    };
    const { renderAdvGanReport } = await import('../report/advgan-report.js');
    writeFileAtomic(join(options.out, 'report.html'), renderAdvGanReport(result, grid?.png ?? null));
    writeJsonAtomic(join(options.out, 'result.json'), result);
    return result;
  } finally {
    if (distillation) {
      distillation.dispose();
      distillation.surrogate.dispose();
    }
    models.generator.dispose();
    models.discriminator.dispose();
    classifier.dispose();
    job.model.dispose();
  }
}

/** The surrogate's agreement with the model after the static phase and in the last epoch. */
function agreements(history: AdvGanEpochRecord[]): { staticAgreement: number; finalAgreement: number } {
  const last = history[history.length - 1]?.blackBox;
  return { staticAgreement: last?.staticAgreement ?? NaN, finalAgreement: last?.surrogateAgreement ?? NaN };
}
