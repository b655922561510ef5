import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { BackendInfo } from '../engine/backend.js';
import { loadDataset } from '../node/data/load.js';
import type { ImageSet } from '../data/types.js';
import { take } from '../data/split.js';
import { balancedSubset } from '../data/subset.js';
import { resolveModel } from '../node/resolve.js';
import { saveModel } from '../node/model-files.js';
import { trainClassifier } from '../models/train.js';
import { parseAugmentations } from '../data/augment.js';
import { accuracy } from '../models/evaluate.js';
import { runMeta } from '../report/meta.js';
import { writeJsonAtomic } from '../node/atomic.js';
import { checkOutputFolder, type OutputLayout } from '../node/paths.js';
import { InputError, rethrowFor } from '../errors.js';
import type { TrainRunOptions, TrainRunResult } from '../models/types.js';
import { CheckpointFolder } from '../node/checkpoint.js';
import { startShardingPool } from '../node/workers.js';
import type { WorkerPool } from '../node/worker-pool.js';
import { dataParallel, worthSharding } from '../models/data-parallel.js';
import { clearWorkerModels } from '../models/pool-model.js';
import { checkGeneratedOptions, loadGeneratedData } from './generated-data.js';
import type { GeneratedMix } from '../data/mix.js';
import type { GeneratedDataRecord } from '../models/types.js';

const require = createRequire(import.meta.url);

/** What `advlab train` writes in its output folder (checked before any work, see node/paths.ts). */
export const TRAIN_OUTPUT: OutputLayout = { folders: ['checkpoint', 'model'], files: ['result.json'] };

export const TRAIN_DEFAULTS = { batchSize: 64, learningRate: 1e-3, schedule: 'cosine', augment: 'shift:1', seed: 0 } as const;

/**
 * Default epochs: small training sets (mnist's 7,996 images) need more passes
 * than large ones (fashion-mnist's 56,000) for the same number of steps.
 */
export function defaultEpochs(trainSize: number): number {
  return trainSize < 20000 ? 10 : 5;
}

/**
 * Trains a zoo model on a dataset, checkpointing each epoch into `out/checkpoint`,
 * then saves the model into `out/model` and writes `out/result.json`. With
 * `resume`, continues from the last finished epoch.
 */
export async function trainRun(options: TrainRunOptions, backend: BackendInfo): Promise<TrainRunResult> {
  const startedAt = new Date();
  checkGeneratedOptions(options);
  // Before the data is read: a bad output folder would otherwise fail at the first checkpoint, after an epoch's work.
  checkOutputFolder(options.out, 'out', TRAIN_OUTPUT);
  const seed = options.seed ?? TRAIN_DEFAULTS.seed;
  const data = loadDataset(options.dataset);
  options.onProgress?.({ type: 'dataset', dataset: data });
  await options.checkInputs?.(data);
  const epochs = options.epochs ?? defaultEpochs(data.train.count);
  const batchSize = options.batchSize ?? TRAIN_DEFAULTS.batchSize;
  const learningRate = options.learningRate ?? TRAIN_DEFAULTS.learningRate;
  const schedule = options.schedule ?? TRAIN_DEFAULTS.schedule;
  const augmentSpec = options.augment ?? TRAIN_DEFAULTS.augment;
  const augment = parseAugmentations(augmentSpec);

  const source = options.trainSize === undefined ? data.train : balancedSubset(data.train, data.numClasses, options.trainSize, 'trainSize', 'train');
  const { train, validation } = holdOut(source, data.numClasses, options.validation ?? 0);
  if (options.width !== undefined && (!Number.isSafeInteger(options.width) || options.width < 1 || options.width > 16)) throw new InputError('width', `expected an integer in [1, 16], got ${options.width}`);
  // Drawn before the model: a bad generator or labeller fails before the first epoch, and the pool depends only on the seed.
  let generated: { mix: GeneratedMix; record: GeneratedDataRecord } | undefined;
  if (options.generated !== undefined) {
    generated = await loadGeneratedData({ ...options, generated: options.generated }, { imageShape: data.train.imageShape, numClasses: data.numClasses }, train.count, source.count, batchSize, seed, (done, total) => options.onProgress?.({ type: 'generating', done, total }));
    options.onProgress?.({ type: 'generated', generated: generated.record });
  }
  const zoo = { ...(options.activation !== undefined ? { activation: options.activation } : {}), ...(options.width !== undefined ? { width: options.width } : {}) };
  const { model } = await resolveModel(options.model, { imageShape: data.train.imageShape, numClasses: data.numClasses }, seed, 'model', zoo).catch(rethrowFor('model'));
  // Plain training computes each batch's gradients in shards on a pool of its own; a defended run brings its pool's steps (defense-run.ts).
  let pool: WorkerPool | undefined;
  try {
    let parallel = options.parallel;
    if (!parallel && !options.defense) {
      pool = await startShardingPool(options.workers, backend, worthSharding([model]));
      parallel = pool ? dataParallel(pool) : undefined;
    }
    const workers = parallel && parallel.workers > 1 ? parallel.workers : 1;
    const trained = await trainClassifier(model, train, {
      parallel,
      epochs,
      batchSize,
      learningRate,
      schedule,
      augment,
      seed,
      test: data.test,
      checkpoints: new CheckpointFolder(join(options.out, 'checkpoint')),
      resume: options.resume,
      stopAfterEpochs: options.stopAfterEpochs,
      defense: options.defense,
      monitor: options.monitor && validation ? (m, epoch) => options.monitor!(m, epoch, validation) : undefined,
      generated: generated?.mix,
      onProgress: options.onProgress,
    });
    await options.beforeSave?.(model, trained.history);
    const modelPath = join(options.out, 'model');
    await saveModel(model, modelPath);
    const last = trained.history[trained.history.length - 1];
    const cleanAccuracy = last?.epoch === epochs && last.testAccuracy !== undefined ? last.testAccuracy : await accuracy(model, data.test);
    const result: TrainRunResult = {
      ...runMeta('train', backend, seed, startedAt),
      options: { model: options.model, dataset: options.dataset, out: options.out, epochs, batchSize, learningRate, schedule, augment: augmentSpec, seed, resume: !!options.resume, activation: options.activation ?? 'relu', width: options.width ?? 1, trainSize: options.trainSize ?? null },
      dataset: {
        name: data.name,
        trainSize: train.count,
        ...(validation ? { validationSize: validation.count } : {}),
        testSize: data.test.count,
        skipped: data.skipped,
        numClasses: data.numClasses,
        imageShape: data.train.imageShape,
      },
      model: options.model,
      modelPath,
      parameters: model.countParams(),
      workers,
      cleanAccuracy,
      secondsPerEpoch: trained.secondsPerEpoch,
      epochs: trained.history.length ? trained.history[trained.history.length - 1].epoch : 0,
      resumedFromEpoch: trained.resumedFromEpoch,
      history: trained.history,
      packages: packageVersions(),
      ...(generated ? { generated: generated.record } : {}),
    };
    writeJsonAtomic(join(options.out, 'result.json'), result);
    return result;
  } finally {
    await pool?.close();
    if (pool) await clearWorkerModels();
    model.dispose();
  }
}

/** Versions of the packages that shape a result (for reproducibility). */
export function packageVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-backend-cpu', 'mnist', 'fashion-mnist']) {
    try {
      out[name] = (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      /* not installed */
    }
  }
  return out;
}

/**
 * Splits off `k` images of `train` for validation: the last images of each
 * class in turn (a class-balanced tail), so the split is fixed by the data.
 */
function holdOut(train: ImageSet, numClasses: number, k: number): { train: ImageSet; validation: ImageSet | null } {
  if (!Number.isSafeInteger(k) || k < 0 || k >= train.count) throw new InputError('validation', `expected an integer in [0, ${train.count - 1}], got ${k}`);
  if (k === 0) return { train, validation: null };
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  train.labels.forEach((l, i) => byClass[l].push(i));
  const held = new Set<number>();
  for (let round = 0; held.size < k; round++) {
    for (const idx of byClass) {
      if (held.size >= k) break;
      const i = idx[idx.length - 1 - round];
      if (i !== undefined) held.add(i);
    }
  }
  const keep = Int32Array.from({ length: train.count }, (_, i) => i).filter((i) => !held.has(i));
  return { train: take(train, keep), validation: take(train, Int32Array.from([...held].sort((a, b) => a - b))) };
}
