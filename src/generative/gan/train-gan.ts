/**
 * The GAN training loop: alternating discriminator and generator steps with
 * their own Adam optimizers, seeded, checkpointed after every epoch so a
 * killed run resumes bit-identically (Goodfellow et al. 2014, Algorithm 1).
 *
 * Per step, with a real batch x (and its classes y for the conditional GAN):
 * 1. `criticSteps` times: fakes G(z) from fresh latent codes (for the
 *    conditional GAN, of the real batch's classes, so the critic compares
 *    like with like), then one Adam step on the discriminator loss over the
 *    discriminator's weights only; for wgan-gp plus the gradient penalty on
 *    random interpolates. The fakes are computed outside the gradient tape:
 *    the discriminator step needs no gradient through G.
 * 2. One Adam step on the generator loss over the generator's weights, with
 *    fresh codes (and classes drawn uniformly, or from `generatorClassPrior`:
 *    scgan's cluster sizes).
 * Both networks run in training mode (batch-norm batch statistics); the
 * discriminator sees the real and the fake batch in separate calls, so each
 * is normalised with its own statistics (see architectures.ts).
 *
 * With an auxiliary-classifier discriminator (acgan), both losses add the
 * class head's cross-entropy: the discriminator's on the real batch with its
 * labels, the generator's on its samples with the classes asked for. Unlike
 * Odena et al. 2017, the discriminator's classifier is not also trained on
 * the fakes: that term rewards it for learning the generator's artefacts as
 * class cues, and the generator then satisfies the classifier with them
 * instead of with the class's shape.
 *
 * InfoGAN (infogan) draws the generator's code uniformly in both steps and
 * never reads a label; its code head Q is trained on the fakes with the codes
 * they were drawn with (in the discriminator step, through D's weights) and
 * the generator on the same cross-entropy (in its step): the mutual-information
 * lower bound of Chen et al. 2016 with lambda = 1, their value for discrete codes.
 */
import { tf } from '../../engine/tf.js';
import type { ImageSet } from '../../data/types.js';
import { batchOrder, makeBatch } from '../../data/batches.js';
import { Rng, cumulativeProbabilities, deriveSeed, isDistribution } from '../../util/rng.js';
import type { CheckpointStore } from '../../models/checkpoint.js';
import type { TensorSpec } from '../../engine/tensor-io.js';
import { topologyHash } from '../../models/train-state.js';
import { restorePairCheckpoint, savePairCheckpoint, type PairCheckpointState } from '../pair-checkpoint.js';
import { InputError } from '../../errors.js';
import { loopResult, type EpochLoopEvent, type EpochLoopResult } from '../../models/train.js';
import { DEFAULT_GP_LAMBDA, GAN_LOSSES, type GanLoss } from '../losses.js';
import { discriminatorObjective, generatorInputs, generatorObjective, type GanObjectiveSpec } from './gan-objectives.js';
import { GAN_TASK_URL, type GanStepPayload } from './gan-task.js';
import { splitRanges, type TaskPool } from '../../engine/task-pool.js';
import { applyShardGradients } from '../../models/data-parallel.js';
import { WeightsChannel } from '../../models/published-weights.js';
import type { ShardGradients } from '../../models/train-task.js';
import { readOne } from '../../engine/read.js';
import type { GanModels } from './architectures.js';
import { WeightAverage } from './weight-average.js';
import { yieldToEventLoop } from '../../util/yield.js';

/** Options of {@link trainGan}. */
export interface GanTrainOptions {
  epochs: number;
  batchSize: number;
  loss: GanLoss;
  /** Adam's rate (default 2e-4; wgan-gp 1e-4). */
  learningRate?: number;
  /** Adam's beta1 (default 0.5, Radford et al. 2016; wgan-gp 0). */
  beta1?: number;
  /** Adam's beta2 (default 0.999; wgan-gp 0.9, Gulrajani et al. 2017). */
  beta2?: number;
  /** Discriminator steps per generator step (default 1; wgan-gp 5, Gulrajani et al. 2017). */
  criticSteps?: number;
  /** One-sided label smoothing of the real targets (minimax and ns only), e.g. 0.9. */
  labelSmoothing?: number;
  /** Gradient-penalty weight of wgan-gp (default 10). */
  gpLambda?: number;
  /**
   * Keep an exponential moving average of the generator's weights with this
   * decay (Yazıcı et al. 2019), e.g. 0.999; 0 or omitted: none. The monitor
   * sees the averaged generator, the checkpoint keeps both, and the
   * generator ends training with the averaged weights.
   */
  emaDecay?: number;
  /**
   * Probabilities of the classes the generator step asks for (conditional
   * GANs; default uniform). The self-conditioned GAN draws its clusters in
   * proportion to their sizes, so its samples keep the data's mix.
   */
  generatorClassPrior?: readonly number[];
  seed: number;
  /**
   * Data-parallel steps: each discriminator and generator step's batch is
   * split over the pool's workers (gan-task.ts), the shards' gradients summed
   * in order, one update here (see models/data-parallel.ts for batch norm).
   * Ignored with fewer than 2 workers.
   */
  pool?: TaskPool;
  checkpoints?: CheckpointStore;
  resume?: boolean;
  /** Stop after this many epochs in this call (simulates a kill, for tests). */
  stopAfterEpochs?: number;
  /** Figures computed after each epoch (e.g. FID on samples), stored in the epoch's record. */
  monitor?: (models: GanModels, epoch: number) => Promise<Record<string, number>>;
  onProgress?: (event: GanTrainEvent) => void;
}

/** One epoch's figures. */
export interface GanEpochRecord {
  epoch: number;
  /** Mean discriminator and generator losses over the epoch's steps. */
  dLoss: number;
  gLoss: number;
  /**
   * Mean discriminator output on real and on generated images: the
   * probability sigmoid(logit) for minimax and ns, the raw output for the
   * others (lsgan targets 1 and 0, hinge and wgan-gp are unbounded scores).
   */
  dReal: number;
  dFake: number;
  seconds: number;
  /** Figures from {@link GanTrainOptions.monitor}. */
  monitor?: Record<string, number>;
}

export type GanTrainEvent = EpochLoopEvent<{ dLoss: number; gLoss: number }, GanEpochRecord>;

/** What {@link trainGan} did. */
export type GanTrainResult = EpochLoopResult<GanEpochRecord>;

interface GanCheckpointState extends PairCheckpointState<GanEpochRecord> {
  /** Specs of the generator's weight average (null without one) and its update count. */
  averageSpecs?: TensorSpec[] | null;
  averageUpdates?: number;
}

/** The defaults that depend on the loss (see {@link GanTrainOptions}). */
export function ganOptimizerDefaults(loss: GanLoss): { learningRate: number; beta1: number; beta2: number; criticSteps: number } {
  return loss === 'wgan-gp' ? { learningRate: 1e-4, beta1: 0, beta2: 0.9, criticSteps: 5 } : { learningRate: 2e-4, beta1: 0.5, beta2: 0.999, criticSteps: 1 };
}

/** Trains a GAN (see the module comment). */
export async function trainGan(models: GanModels, train: ImageSet, options: GanTrainOptions): Promise<GanTrainResult> {
  validate(models, train, options);
  const defaults = ganOptimizerDefaults(options.loss);
  const lr = options.learningRate ?? defaults.learningRate;
  const beta1 = options.beta1 ?? defaults.beta1;
  const beta2 = options.beta2 ?? defaults.beta2;
  const criticSteps = options.criticSteps ?? defaults.criticSteps;
  const { generator: G, discriminator: D } = models;
  const gOpt = tf.train.adam(lr, beta1, beta2);
  const dOpt = tf.train.adam(lr, beta1, beta2);
  const gVars = G.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const dVars = D.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  let rng = new Rng(deriveSeed(options.seed, 'gan'));
  let history: GanEpochRecord[] = [];
  let startEpoch = 0;
  const store = options.checkpoints;
  const topology = `${topologyHash(G)}:${topologyHash(D)}`;
  const k = models.numClasses;
  const probabilities = options.loss === 'ns' || options.loss === 'minimax';
  const average = options.emaDecay ? new WeightAverage(G, options.emaDecay) : null;
  const cumulativePrior = options.generatorClassPrior ? cumulativeProbabilities(options.generatorClassPrior) : null;
  const pair = { generator: G, discriminator: D, generatorOptimizer: gOpt, discriminatorOptimizer: dOpt };

  try {
    if (store && options.resume) {
      const ck = await store.load<GanCheckpointState>();
      if (ck) {
        ({ rng, history, epoch: startEpoch } = await restorePairCheckpoint(ck, pair, topology, store.location, 'a different GAN (architecture, latent size or width differ)'));
        if (average) {
          if (!ck.state.averageSpecs) throw new InputError('resume', `the checkpoint in ${store.location} has no generator weight average; resume with the same emaDecay`);
          average.restore(ck.state.averageSpecs, ck.read('generator-average.bin'), ck.name('generator-average.bin'), ck.state.averageUpdates ?? 0);
        } else if (ck.state.averageSpecs) throw new InputError('resume', `the checkpoint in ${store.location} was trained with a generator weight average; resume with the same emaDecay`);
        options.onProgress?.({ type: 'resumed', epoch: startEpoch });
      }
    }

    const latent = (n: number): tf.Tensor2D => {
      const z = new Float32Array(n * models.latentDim);
      for (let i = 0; i < z.length; i++) z[i] = rng.normal();
      return tf.tensor2d(z, [n, models.latentDim]);
    };
    const oneHot = (labels: Int32Array): tf.Tensor2D => tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), k), 'float32') as tf.Tensor2D);
    const spec: GanObjectiveSpec = {
      loss: options.loss,
      ...(options.labelSmoothing !== undefined ? { labelSmoothing: options.labelSmoothing } : {}),
      gpLambda: options.gpLambda ?? DEFAULT_GP_LAMBDA,
      probabilities,
      discriminatorTakesClass: models.discriminatorTakesClass,
    };
    const parallel = options.pool && options.pool.size > 1 ? { pool: options.pool, generator: new WeightsChannel(), discriminator: new WeightsChannel() } : undefined;
    /** Shards of one step on the pool; returns the summed loss and extras after the update. */
    const parallelStep = async (step: GanStepPayload['step'], optimizer: tf.Optimizer, n: number, fill: (from: number, to: number) => Partial<GanStepPayload>) => {
      const { pool } = parallel!;
      const generator = await parallel!.generator.publish(G);
      const discriminator = await parallel!.discriminator.publish(D);
      const ranges = splitRanges(n, Math.min(pool.size, n));
      const payloads = ranges.map(([from, to]) => ({ step, generator, discriminator, spec, numClasses: k, batchSize: n, latentDim: models.latentDim, ...fill(from, to) }) as GanStepPayload);
      const parts = await pool.run<ShardGradients, GanStepPayload>({ module: GAN_TASK_URL, name: 'ganStepTask' }, payloads);
      return applyShardGradients(step === 'generator' ? G : D, optimizer, parts, ranges.map(([from, to]) => to - from), [G, D]);
    };

    const lastEpoch = Math.min(options.epochs, startEpoch + (options.stopAfterEpochs ?? Infinity));
    for (let epoch = startEpoch + 1; epoch <= lastEpoch; epoch++) {
      const t0 = performance.now();
      const order = batchOrder(train.count, options.batchSize, rng);
      options.onProgress?.({ type: 'epoch-start', epoch, epochs: options.epochs, batches: order.length });
      const sums = { d: 0, g: 0, real: 0, fake: 0 };
      let seen = 0;
      for (let b = 0; b < order.length; b++) {
        const batch = makeBatch(train, order[b]);
        const n = order[b].length;
        const labelled = models.conditional && !models.categoricalCode;
        const realClass = labelled ? oneHot(batch.y.dataSync() as Int32Array) : undefined;
        const realLabels = labelled && models.auxiliaryClassifier ? tf.cast(batch.y, 'int32') : undefined;
        try {
          for (let s = 0; s < criticSteps; s++) {
            const z = latent(n);
            const codes = models.categoricalCode ? Int32Array.from({ length: n }, () => rng.int(k)) : undefined;
            const step = ((epoch - 1) * order.length + b) * criticSteps + s;
            const gpSeed = deriveSeed(options.seed, `gp:${step}`);
            if (parallel) {
              const [zs, xs] = [(await z.data()) as Float32Array, (await batch.x.data()) as Float32Array];
              const ys = labelled ? ((await batch.y.data()) as Int32Array) : undefined;
              // The step's interpolation eps, drawn as the single-thread penalty draws them, sliced per shard.
              const eps = options.loss === 'wgan-gp' ? ((await readOne(tf.randomUniform([n], 0, 1, 'float32', gpSeed))) as Float32Array) : undefined;
              const [, h, w, c] = batch.x.shape as [number, number, number, number];
              const size = h * w * c;
              const r = await parallelStep('discriminator', dOpt, n, (from, to) => ({
                z: zs.slice(from * models.latentDim, to * models.latentDim),
                real: xs.slice(from * size, to * size),
                shape: [to - from, h, w, c],
                ...(ys ? { realClasses: ys.slice(from, to), realLabels: !!realLabels } : {}),
                ...(codes ? { codes: codes.slice(from, to), fakeClasses: codes.slice(from, to) } : ys ? { fakeClasses: ys.slice(from, to) } : {}),
                ...(eps ? { penaltyEps: eps.slice(from, to) } : {}),
              }));
              if (s === criticSteps - 1) {
                sums.d += r.loss * n;
                sums.real += r.extras[0] * n;
                sums.fake += r.extras[1] * n;
              }
              z.dispose();
              continue;
            }
            const fakeClass = codes ? oneHot(codes) : realClass;
            const fake = tf.tidy(() => G.apply(generatorInputs(z, fakeClass), { training: true }) as tf.Tensor4D);
            let realMean: tf.Scalar | undefined;
            let fakeMean: tf.Scalar | undefined;
            const dLoss = dOpt.minimize(
              () => {
                const r = discriminatorObjective(D, spec, { real: batch.x, fake, realClass, fakeClass, realLabels, codes, penalty: gpSeed });
                realMean = tf.keep(r.realMean);
                fakeMean = tf.keep(r.fakeMean);
                return r.loss;
              },
              true,
              dVars,
            ) as tf.Scalar;
            if (s === criticSteps - 1) {
              sums.d += dLoss.dataSync()[0] * n;
              sums.real += realMean!.dataSync()[0] * n;
              sums.fake += fakeMean!.dataSync()[0] * n;
            }
            tf.dispose([z, fake, dLoss, realMean as tf.Tensor, fakeMean as tf.Tensor]);
            if (codes) fakeClass!.dispose();
          }
          const z = latent(n);
          const fakeLabels = models.conditional ? Int32Array.from({ length: n }, () => (cumulativePrior ? rng.categorical(cumulativePrior) : rng.int(k))) : undefined;
          if (parallel) {
            const zs = (await z.data()) as Float32Array;
            const r = await parallelStep('generator', gOpt, n, (from, to) => ({ z: zs.slice(from * models.latentDim, to * models.latentDim), ...(fakeLabels ? { fakeClasses: fakeLabels.slice(from, to) } : {}) }));
            average?.update();
            sums.g += r.loss * n;
            z.dispose();
          } else {
            const fakeClass = fakeLabels ? oneHot(fakeLabels) : undefined;
            const gLoss = gOpt.minimize(() => generatorObjective(G, D, spec, z, fakeClass, fakeLabels), true, gVars) as tf.Scalar;
            average?.update();
            sums.g += gLoss.dataSync()[0] * n;
            tf.dispose([z, gLoss, fakeClass as tf.Tensor].filter(Boolean));
          }
        } finally {
          tf.dispose([batch.x, batch.y, realClass as tf.Tensor, realLabels as tf.Tensor].filter(Boolean));
        }
        seen += n;
        options.onProgress?.({ type: 'batch', epoch, batch: b + 1, batches: order.length, dLoss: sums.d / seen, gLoss: sums.g / seen });
        // Let timers (progress bars) run between steps.
        await yieldToEventLoop();
      }
      const record: GanEpochRecord = {
        epoch,
        dLoss: sums.d / train.count,
        gLoss: sums.g / train.count,
        dReal: sums.real / train.count,
        dFake: sums.fake / train.count,
        seconds: (performance.now() - t0) / 1000,
      };
      const monitor = options.monitor;
      if (monitor) record.monitor = average ? await average.withAverage(() => monitor(models, epoch)) : await monitor(models, epoch);
      history.push(record);
      if (store) {
        const avg = average?.pack();
        await savePairCheckpoint<GanEpochRecord, Pick<GanCheckpointState, 'averageSpecs' | 'averageUpdates'>>(store, pair, { rng, history, epoch, topology }, {
          state: { averageSpecs: avg ? avg.specs : null, averageUpdates: average?.updates ?? 0 },
          files: avg ? { 'generator-average.bin': avg.data } : {},
        });
      }
      options.onProgress?.({ type: 'epoch-end', epochs: options.epochs, ...record });
    }
    average?.apply();
    return loopResult(history, startEpoch);
  } finally {
    gOpt.dispose();
    dOpt.dispose();
    average?.dispose();
  }
}

function validate(models: GanModels, train: ImageSet, o: GanTrainOptions): void {
  if (!(GAN_LOSSES as readonly string[]).includes(o.loss)) throw new InputError('loss', `unknown GAN loss "${o.loss}"; expected one of ${GAN_LOSSES.join(', ')}`);
  if (o.loss === 'wgan-gp' && models.discriminatorNorm !== 'none') throw new InputError('loss', "wgan-gp's gradient penalty is per example: build the discriminator with discriminatorNorm 'none' (no batch norm)");
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new InputError('epochs', `expected a positive integer, got ${o.epochs}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new InputError('batchSize', `expected a positive integer, got ${o.batchSize}`);
  if (o.learningRate !== undefined && !(o.learningRate > 0 && Number.isFinite(o.learningRate))) throw new InputError('learningRate', `expected a positive number, got ${o.learningRate}`);
  for (const key of ['beta1', 'beta2'] as const) {
    const v = o[key];
    if (v !== undefined && !(v >= 0 && v < 1)) throw new InputError(key, `expected a number in [0, 1), got ${v}`);
  }
  if (o.criticSteps !== undefined && (!Number.isInteger(o.criticSteps) || o.criticSteps < 1)) throw new InputError('criticSteps', `expected a positive integer, got ${o.criticSteps}`);
  if (o.emaDecay !== undefined && !(o.emaDecay >= 0 && o.emaDecay < 1)) throw new InputError('emaDecay', `expected a number in [0, 1), got ${o.emaDecay}`);
  if (o.generatorClassPrior !== undefined) {
    if (!models.conditional || models.categoricalCode) throw new InputError('generatorClassPrior', 'applies to a generator with a class input (cgan, acgan, scgan)');
    if (!isDistribution(o.generatorClassPrior, models.numClasses)) throw new InputError('generatorClassPrior', `expected ${models.numClasses} non-negative probabilities summing to 1`);
  }
  if (o.resume && !o.checkpoints) throw new InputError('resume', 'needs a checkpoint store (checkpoints)');
  if (train.count === 0) throw new InputError('train', 'the training set is empty');
  const [h, w, c] = models.imageShape;
  if (train.imageShape.join() !== [h, w, c].join()) throw new InputError('train', `the GAN generates images of shape [${h}, ${w}, ${c}] but the data has [${train.imageShape.join(', ')}]`);
  if (models.conditional && !models.categoricalCode && train.labels.some((l) => l < 0 || l >= models.numClasses)) throw new InputError('train', `labels must be in [0, ${models.numClasses - 1}] for the conditional GAN`);
}
