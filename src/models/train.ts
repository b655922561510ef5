import { tf, tfl } from '../engine/tf.js';
import { readAndDispose } from '../engine/read.js';
import type { ImageSet } from '../data/types.js';
import { batchOrder, makeBatch, type Batch } from '../data/batches.js';
import { checkGeneratedMix, GeneratedStream, makeMixedBatch, mixedBatchOrder, poolFingerprint, type GeneratedMix, type MixedBatchPlan } from '../data/mix.js';
import type { Augmentation } from '../data/augment.js';
import { Rng, deriveSeed } from '../util/rng.js';
import type { TensorSpec } from '../engine/tensor-io.js';
import { packModelWeights, packOptimizer, restoreModelWeights, restoreOptimizer, setLearningRate, topologyHash } from './train-state.js';
import type { CheckpointStore } from './checkpoint.js';
import { accuracy } from './evaluate.js';
import { InputError } from '../errors.js';
import { yieldToEventLoop } from '../util/yield.js';
import { applyShardGradients, type DataParallel, type StepContext } from './data-parallel.js';


/** Options of {@link trainClassifier}. */
export interface TrainOptions {
  /** Passes over the training set. */
  epochs: number;
  /** Images per gradient step. */
  batchSize: number;
  /** Adam learning rate (Kingma & Ba 2015). */
  learningRate: number;
  /** Seeds the per-epoch shuffle and the augmentations. */
  seed: number;
  /** `cosine` (default): the rate decays to 0 over the run along a half cosine (Loshchilov & Hutter 2017); `constant`. */
  schedule?: LearningRateSchedule;
  /** Training-time augmentations applied to each batch (default none). */
  augment?: readonly Augmentation[];
  /** Test set scored after each epoch (inference mode); optional. */
  test?: ImageSet;
  /** Folder for per-epoch checkpoints (model weights, optimizer state, epoch, RNG). */
  checkpoints?: CheckpointStore;
  /** Continue from the latest checkpoint in `checkpoints`, if there is one. */
  resume?: boolean;
  /** Progress events; the library never prints. */
  onProgress?: (event: TrainEvent) => void;
  /** Stop after this many epochs in this call (for tests of kill-and-resume). */
  stopAfterEpochs?: number;
  /** Adversarial training: each batch is perturbed by the defense and trained with its loss (see src/defenses). */
  defense?: TrainingDefense;
  /**
   * Data-parallel steps: each batch's gradients are computed in shards on a
   * worker pool (see data-parallel.ts; with a defense, the inner attack runs
   * in the same task). Ignored with fewer than 2 workers, so a one-worker run
   * is the single-thread one.
   */
  parallel?: DataParallel;
  /**
   * Called after each epoch (before its checkpoint) with the model; the
   * figures it returns are stored in that epoch's record (`monitor`), e.g.
   * robust accuracy on a held-out set.
   */
  monitor?: (model: tfl.LayersModel, epoch: number) => Promise<Record<string, number>>;
  /**
   * Generated images mixed into every batch (Gowal et al. 2021; see
   * data/mix.ts): round(fraction·b) of each batch of b. An epoch keeps the
   * steps of a pass over the real data, so the same `epochs` trains as many
   * steps with or without them.
   */
  generated?: GeneratedMix;
}

/**
 * What the trainer needs from an adversarial-training defense (implemented in
 * src/defenses; declared here so models does not import the layer above it).
 */
export interface TrainingDefense {
  /** The budget at global step `step` (warm-up). */
  epsAt(step: number, stepsPerEpoch: number): number;
  /** The perturbed batch to train on (caller disposes); the model runs in inference mode. */
  perturb(model: tfl.LayersModel, batch: { x: tf.Tensor4D; y: tf.Tensor1D; eps: number; seed: number }): tf.Tensor4D | Promise<tf.Tensor4D>;
  /** The batch loss in training mode, and the logits it scored (for the accuracy count); `at` is where training stands (schedules). */
  loss(model: tfl.LayersModel, clean: tf.Tensor4D, perturbed: tf.Tensor4D, y: tf.Tensor1D, numClasses: number, at: TrainingPoint): { loss: tf.Scalar; logits: tf.Tensor2D };
}

/** Where training stands at a step: the step's budget, and the global step out of how many per epoch. */
export interface TrainingPoint {
  eps: number;
  step: number;
  stepsPerEpoch: number;
}

export type LearningRateSchedule = 'cosine' | 'constant';
export const LEARNING_RATE_SCHEDULES: readonly LearningRateSchedule[] = ['cosine', 'constant'];

/** The learning rate at global step `step` of `total`. */
export function learningRateAt(base: number, schedule: LearningRateSchedule, step: number, total: number): number {
  return schedule === 'cosine' ? base * 0.5 * (1 + Math.cos((Math.PI * step) / total)) : base;
}

/** Per-epoch record. */
export interface EpochRecord {
  epoch: number;
  loss: number;
  trainAccuracy: number;
  testAccuracy?: number;
  seconds: number;
  /** The whole epoch: its steps, the test accuracy and the monitor (not the checkpoint); what a resumed run adds up as the time its earlier epochs took. */
  wallSeconds?: number;
  /** Figures from {@link TrainOptions.monitor}. */
  monitor?: Record<string, number>;
}

/** The progress events of an epoch loop (classifier or GAN): `B` is a batch's running figures, `R` the epoch record. */
export type EpochLoopEvent<B, R> =
  | { type: 'resumed'; epoch: number }
  | { type: 'epoch-start'; epoch: number; epochs: number; batches: number }
  | ({ type: 'batch'; epoch: number; batch: number; batches: number } & B)
  | ({ type: 'epoch-end'; epochs: number } & R);

/** Progress events emitted while training. */
export type TrainEvent = EpochLoopEvent<{ loss: number; accuracy: number }, EpochRecord>;

/** What a training loop did, with its per-epoch records `R`. */
export interface EpochLoopResult<R> {
  history: R[];
  /** Epochs completed before this call (0 unless resumed). */
  resumedFromEpoch: number;
  /** Mean seconds per finished epoch (all epochs in the history). */
  secondsPerEpoch: number;
}

/** A loop's result from its history; the mean time is over every finished epoch, including those before a resume. */
export function loopResult<R extends { seconds: number }>(history: R[], resumedFromEpoch: number): EpochLoopResult<R> {
  return { history, resumedFromEpoch, secondsPerEpoch: history.length ? history.reduce((a, h) => a + h.seconds, 0) / history.length : 0 };
}

/** What {@link trainClassifier} did. */
export type TrainResult = EpochLoopResult<EpochRecord>;

interface CheckpointState {
  epoch: number;
  rngState: number[];
  history: EpochRecord[];
  modelSpecs: TensorSpec[];
  optimizerSpecs: TensorSpec[];
  /** Adam's running beta powers; restoring them exactly keeps a resumed run bit-identical. */
  accBeta: [number, number] | null;
  /** Hash of the model's topology (layers, activations, sizes): a resume into another architecture is refused. */
  topology?: string;
  /** The generated data mixed in (pool fingerprint and fraction); absent without: a resume with other generated data is refused. */
  generated?: { fingerprint: string; fraction: number };
}

/**
 * Trains a logits classifier with Adam on softmax cross-entropy, seeded,
 * checkpointing after every epoch so a killed run resumes without losing a
 * finished epoch. Works on every backend (on wasm, advlab's kernels supply the
 * convolution gradients the shipped backend lacks).
 */
export async function trainClassifier(model: tfl.LayersModel, train: ImageSet, options: TrainOptions): Promise<TrainResult> {
  validate(options, train);
  const numClasses = outputClasses(model);
  const mix = options.generated;
  if (mix) checkGeneratedMix(mix, train, numClasses);
  // Only checkpoints need it: hashing a large pool costs a second or so.
  const mixState = mix && options.checkpoints ? { fingerprint: mix.fingerprint ?? poolFingerprint(mix.pool), fraction: mix.fraction } : undefined;
  const stream = mix ? new GeneratedStream(mix.pool.count, deriveSeed(options.seed, 'generated')) : undefined;
  const schedule = options.schedule ?? 'cosine';
  const optimizer = tf.train.adam(options.learningRate);
  let rng = new Rng(deriveSeed(options.seed, 'shuffle'));
  let history: EpochRecord[] = [];
  let startEpoch = 0;
  const store = options.checkpoints;

  try {
    if (store && options.resume) {
      const ck = await store.load<CheckpointState>();
      if (ck) {
        if (ck.state.topology && ck.state.topology !== topologyHash(model)) {
          throw new InputError('resume', `the checkpoint in ${store.location} was written for a different model (its layers, activation or width differ); delete it or drop --resume`);
        }
        if (ck.state.generated?.fingerprint !== mixState?.fingerprint || ck.state.generated?.fraction !== mixState?.fraction) {
          // The pool is regenerated from the seed on resume: it must be the same images (same generator, seed, count, labeller and backend).
          const what = !mixState ? 'with generated data mixed in, this run has none' : !ck.state.generated ? 'without generated data, this run mixes some in' : 'with other generated data (another generator, seed, count, labeller or fraction, or a backend that drew other images)';
          throw new InputError('resume', `the checkpoint in ${store.location} was written ${what}; delete it or drop --resume`);
        }
        restoreModelWeights(model, ck.state.modelSpecs, ck.read('model.bin'), ck.name('model.bin'));
        await restoreOptimizer(optimizer, { specs: ck.state.optimizerSpecs, accBeta: ck.state.accBeta }, ck.read('optimizer.bin'), ck.name('optimizer.bin'));
        rng = Rng.fromState(ck.state.rngState);
        history = ck.state.history;
        startEpoch = ck.state.epoch;
        options.onProgress?.({ type: 'resumed', epoch: startEpoch });
      }
    }

    const lastEpoch = Math.min(options.epochs, startEpoch + (options.stopAfterEpochs ?? Infinity));
    for (let epoch = startEpoch + 1; epoch <= lastEpoch; epoch++) {
      const t0 = performance.now();
      // With generated data, each batch's plan names the real and the generated images that fill it (same sizes as without).
      const order: readonly (Int32Array | MixedBatchPlan)[] = mix && stream ? mixedBatchOrder(train.count, options.batchSize, mix.fraction, stream, epoch, rng) : batchOrder(train.count, options.batchSize, rng);
      const sizeOf = (b: number): number => {
        const o = order[b];
        return o instanceof Int32Array ? o.length : o.real.length + o.generated.length;
      };
      const batchAt = (b: number): Batch => {
        const o = order[b];
        return o instanceof Int32Array ? makeBatch(train, o, options.augment, rng) : makeMixedBatch(train, mix!.pool, o, options.augment, rng);
      };
      options.onProgress?.({ type: 'epoch-start', epoch, epochs: options.epochs, batches: order.length });
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      // Data-parallel steps make the next batch (loading and augmentation) while the workers compute; the
      // generator is drawn in the same order either way, so the batches are the same.
      let prepared: Batch | undefined;
      for (let b = 0; b < order.length; b++) {
        // The rate depends only on the step index, so a resumed run follows the same curve.
        setLearningRate(optimizer, learningRateAt(options.learningRate, schedule, (epoch - 1) * order.length + b, options.epochs * order.length));
        const batch = prepared ?? batchAt(b);
        prepared = undefined;
        const prepareNext = b + 1 < order.length ? () => (prepared = batchAt(b + 1)) : undefined;
        const step = (epoch - 1) * order.length + b;
        const eps = options.defense ? options.defense.epsAt(step, order.length) : 0;
        const seed = deriveSeed(options.seed, `defense:${step}`);
        const { loss, correct: c } = options.parallel && options.parallel.workers > 1
          ? await parallelStep(model, optimizer, batch, options.parallel, { numClasses, eps, seed, step, stepsPerEpoch: order.length }, prepareNext)
          : options.defense
          ? await defendedStep(model, optimizer, batch, numClasses, options.defense, { eps, step, stepsPerEpoch: order.length }, seed)
          : await trainStep(model, optimizer, batch, numClasses);
        lossSum += loss * sizeOf(b);
        correct += c;
        seen += sizeOf(b);
        options.onProgress?.({ type: 'batch', epoch, batch: b + 1, batches: order.length, loss: lossSum / seen, accuracy: correct / seen });
        // Let timers (progress bars) run between steps.
        await yieldToEventLoop();
      }
      const record: EpochRecord = {
        epoch,
        loss: lossSum / train.count,
        trainAccuracy: correct / train.count,
        seconds: (performance.now() - t0) / 1000,
      };
      if (options.test) record.testAccuracy = await accuracy(model, options.test);
      if (options.monitor) record.monitor = await options.monitor(model, epoch);
      record.wallSeconds = (performance.now() - t0) / 1000;
      history.push(record);
      if (store) await saveCheckpoint(store, model, optimizer, rng, history, epoch, mixState);
      options.onProgress?.({ type: 'epoch-end', epochs: options.epochs, ...record });
    }
    return loopResult(history, startEpoch);
  } finally {
    optimizer.dispose();
  }
}

/** One Adam step on one batch (disposed here); returns the batch's mean loss and correct count (read in one wait). */
async function trainStep(model: tfl.LayersModel, optimizer: tf.Optimizer, batch: Batch, numClasses: number): Promise<{ loss: number; correct: number }> {
  let correctT: tf.Scalar | undefined;
  try {
    const lossT = optimizer.minimize(() => {
      const logits = model.apply(batch.x, { training: true }) as tf.Tensor2D;
      correctT = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), batch.y), 'int32'))) as tf.Scalar;
      return tf.losses.softmaxCrossEntropy(tf.oneHot(batch.y, numClasses), logits) as tf.Scalar;
    }, true) as tf.Scalar;
    const [loss, correct] = await readAndDispose([lossT, correctT!]);
    return { loss: loss[0], correct: correct[0] };
  } finally {
    tf.dispose([batch.x, batch.y, correctT as tf.Tensor]);
  }
}

/** One Adam step from the batch's gradients computed in shards on a pool (batch disposed here). */
async function parallelStep(model: tfl.LayersModel, optimizer: tf.Optimizer, batch: Batch, parallel: DataParallel, context: StepContext, whileComputing?: () => void): Promise<{ loss: number; correct: number }> {
  try {
    const { parts, sizes } = await parallel.gradients(model, batch, context, whileComputing);
    return applyShardGradients(model, optimizer, parts, sizes);
  } finally {
    tf.dispose([batch.x, batch.y]);
  }
}

/**
 * One adversarial-training step: the defense perturbs the batch (model in
 * inference mode), then Adam minimises the defense's loss (training mode).
 * The correct count is on what the loss scored (the perturbed batch for
 * PGD-AT and FGSM-RS, the clean one for TRADES).
 */
async function defendedStep(model: tfl.LayersModel, optimizer: tf.Optimizer, batch: Batch, numClasses: number, defense: TrainingDefense, at: TrainingPoint, seed: number): Promise<{ loss: number; correct: number }> {
  const { eps } = at;
  let correctT: tf.Scalar | undefined;
  let perturbed: tf.Tensor4D | undefined;
  try {
    perturbed = await defense.perturb(model, { x: batch.x as tf.Tensor4D, y: batch.y as tf.Tensor1D, eps, seed });
    const lossT = optimizer.minimize(() => {
      const { loss, logits } = defense.loss(model, batch.x as tf.Tensor4D, perturbed!, batch.y as tf.Tensor1D, numClasses, at);
      correctT = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), batch.y), 'int32'))) as tf.Scalar;
      return loss;
    }, true) as tf.Scalar;
    const [loss, correct] = await readAndDispose([lossT, correctT!]);
    return { loss: loss[0], correct: correct[0] };
  } finally {
    tf.dispose([batch.x, batch.y, correctT as tf.Tensor, perturbed as tf.Tensor].filter(Boolean));
  }
}

async function saveCheckpoint(store: CheckpointStore, model: tfl.LayersModel, optimizer: tf.AdamOptimizer, rng: Rng, history: EpochRecord[], epoch: number, generated: CheckpointState['generated']): Promise<void> {
  const modelPack = packModelWeights(model);
  const opt = await packOptimizer(optimizer);
  const state: CheckpointState = {
    epoch,
    rngState: rng.getState(),
    history,
    modelSpecs: modelPack.specs,
    optimizerSpecs: opt.state.specs,
    accBeta: opt.state.accBeta,
    topology: topologyHash(model),
    ...(generated ? { generated } : {}),
  };
  await store.save(`epoch-${epoch}`, state, { 'model.bin': modelPack.data, 'optimizer.bin': opt.data });
}

function outputClasses(model: tfl.LayersModel): number {
  const shape = model.outputs[0].shape;
  const k = shape[shape.length - 1];
  if (shape.length !== 2 || k == null || k < 2) throw new InputError('model', `expected a classifier with logits of shape [batch, classes], got [${shape.map((d) => d ?? 'batch').join(', ')}]`);
  return k;
}

function validate(o: TrainOptions, train: ImageSet): void {
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new InputError('epochs', `expected a positive integer, got ${o.epochs}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new InputError('batchSize', `expected a positive integer, got ${o.batchSize}`);
  if (!(o.learningRate > 0) || !Number.isFinite(o.learningRate)) throw new InputError('learningRate', `expected a positive number, got ${o.learningRate}`);
  if (o.schedule !== undefined && !LEARNING_RATE_SCHEDULES.includes(o.schedule)) throw new InputError('schedule', `expected one of ${LEARNING_RATE_SCHEDULES.join(', ')}, got "${o.schedule}"`);
  if (o.resume && !o.checkpoints) throw new InputError('resume', 'needs a checkpoint store (checkpoints)');
  if (train.count === 0) throw new InputError('train', 'the training set is empty');
}
