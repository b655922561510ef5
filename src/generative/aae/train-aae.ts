/**
 * The adversarial-autoencoder training loop (Makhzani et al., "Adversarial
 * autoencoders", arXiv:1511.05644, 2015, section 2): per batch x, two phases,
 * each an Adam step of its own optimizer (three in all), seeded, checkpointed
 * after every epoch so a killed run resumes bit-identically.
 *
 * 1. Reconstruction: encoder and decoder minimise
 *    reconstructionLoss(x, decoder(encoder(x))) (bce on the decoder's logits,
 *    or mse on its sigmoid images).
 * 2. Regularization, the GAN on the latent space (the encoder is the
 *    generator, the prior p(z) gives the "real" samples):
 *    a. the discriminator minimises latentDiscriminatorLoss(D(z'), D(E(x)))
 *       over its own weights, z' ~ p(z) fresh from the run's Rng and the codes
 *       E(x) computed outside the gradient tape (the step needs no gradient
 *       through the encoder);
 *    b. the encoder minimises encoderAdversarialLoss(D(E(x))) over its own
 *       weights, D held fixed.
 * With `regularization: false` phase 2 is skipped: a plain autoencoder on the
 * same nets, the baseline whose codes do NOT follow the prior.
 *
 * Supervised-prior mode (`supervisedPrior`, the paper's section 2.3 and
 * Figure 4): the prior sample z'_i comes from the mixture component (or
 * swiss-roll segment) of the batch's label y_i, and the discriminator gets
 * the one-hot y_i next to both z'_i and E(x_i); so the encoder must put each
 * class's codes in that class's part of the prior.
 *
 * Categorical + style mode (models built with `categories` = K; the paper's
 * Figure 8): the encoder gives class logits (q(y | x) = their softmax) and a
 * style code z, the decoder reconstructs from [y, z], and phase 2 plays two
 * latent games: the style discriminator D(z) against z' ~ N(0, I), and the
 * category discriminator C(y) against one-hot y' ~ Cat(K) (each a
 * discriminator step of its own optimizer), then one encoder step against
 * both (the sum of its two adversarial losses). It serves two uses:
 * - semi-supervised classification (`labelled`, section 5): after phase 2, a
 *   phase 3 on a batch of the labelled subset, classificationLoss(logits, y)
 *   minimised over the encoder's trunk and class head (a fifth optimizer);
 *   the labelled batches are drawn from the run's Rng, whole permutations of
 *   the subset one after the other (a fresh start each epoch, so the
 *   checkpointed Rng state reproduces them);
 * - unsupervised clustering (no `labelled`, section 6): the K categories are
 *   the clusters, and phase 3 does not exist.
 * The style prior is the gaussian one. Two additions to the paper's game,
 * both off by default here: `categoryBalance`, a batch-level term in the
 * encoder's adversarial step that keeps the clustering mode from collapsing
 * onto one category (aae-run.ts turns it on for clustering, with the
 * measurements), and `categoryNoise`, noise on the category discriminator's
 * inputs. `decayEpoch` is the paper's step decay of the learning rates.
 *
 * All losses are from logits (losses.ts). The nets have no batch norm
 * (architectures.ts), so training and inference mode compute the same.
 */
import { tf, type tfl } from '../../engine/tf.js';
import type { ImageSet } from '../../data/types.js';
import type { Augmentation } from '../../data/augment.js';
import { batchOrder, makeBatch } from '../../data/batches.js';
import { Rng, deriveSeed } from '../../util/rng.js';
import type { CheckpointStore } from '../../models/checkpoint.js';
import type { TensorSpec } from '../../engine/tensor-io.js';
import { packModelWeights, packOptimizer, restoreModelWeights, restoreOptimizer, topologyHash, type OptimizerState } from '../../models/train-state.js';
import { InputError } from '../../errors.js';
import { loopResult, type EpochLoopEvent, type EpochLoopResult } from '../../models/train.js';
import { AAE_ADVERSARIAL_LOSSES, categoryBalanceLoss, parseReconstructionLoss, type AaeAdversarialLoss, type ReconstructionLoss } from './losses.js';
import { DEFAULT_COMPONENTS, parsePrior, sampleCategorical, samplePrior, type PriorName } from './priors.js';
import type { AaeModels } from './architectures.js';
import { yieldToEventLoop } from '../../util/yield.js';
import type { TaskPool } from '../../engine/task-pool.js';
import { aaeVariables, classificationObjective, discriminatorInputs, discriminatorObjective, encode, encoderObjective, reconstructionObjective } from './aae-objectives.js';
import { balanceGradientAt, pooledPhases } from './aae-pooled.js';

/** Options of {@link trainAae}. */
export interface AaeTrainOptions {
  epochs: number;
  batchSize: number;
  /** The prior p(z) of the regularization phase. */
  prior: PriorName;
  /** Mixture components or swiss-roll segments (default 10; in the supervised-prior mode, the models' `labelClasses`). */
  components?: number;
  /** Labels choose the prior's component and are shown to the discriminator (needs `labelClasses` > 0 in the models). */
  supervisedPrior?: boolean;
  /** Run the regularization phase (default true); false trains a plain autoencoder on the same nets. */
  regularization?: boolean;
  /** Default bce (on the decoder's logits). */
  reconstructionLoss?: ReconstructionLoss;
  /** The encoder's adversarial loss (default ns). */
  adversarialLoss?: AaeAdversarialLoss;
  /** Adam's rate of the reconstruction optimizer (default 1e-3). */
  learningRate?: number;
  /** Adam's rate of the discriminator's and the encoder's adversarial optimizers (default 3e-4). */
  adversarialLearningRate?: number;
  /** Adam's beta1 of the reconstruction optimizer (default 0.9). */
  beta1?: number;
  /** Adam's beta1 of the discriminator's and the encoder's adversarial optimizers (default 0.5, as for GANs: Radford et al. 2016). */
  adversarialBeta1?: number;
  /**
   * Semi-supervised mode (the paper's section 5; models built with
   * `categories` = the number of classes): the labelled subset of phase 3, its
   * labels in [0, K). Without it a categorical model clusters (section 6).
   */
  labelled?: ImageSet;
  /** Adam's rate of the semi-supervised phase (default 1e-3; beta1 0.9). */
  classificationLearningRate?: number;
  /**
   * Categorical mode: weight of {@link categoryBalanceLoss} (the batch's mean
   * q(y | x) against Cat(K)) added to the encoder's adversarial step (default
   * 0: the paper's game as written). Without it the clustering mode collapses
   * onto one or two categories within the first epoch; see aae-run.ts, which
   * turns it on for clustering.
   */
  categoryBalance?: number;
  /**
   * Categorical mode: sd of Gaussian noise added to the category
   * discriminator's inputs, prior samples and q(y | x) alike, in both of its
   * uses (default 0). The noise hides how close to one-hot a row is, so the
   * encoder is not pushed to saturate its softmax (whose gradient then
   * vanishes); musyoku's reimplementation of section 6 uses 0.3.
   */
  categoryNoise?: number;
  /**
   * From this epoch on (1-based, inclusive) every optimizer's rate is
   * multiplied by {@link LEARNING_RATE_DECAY}: the paper's step schedule
   * (its appendix lowers each phase's rate tenfold after a number of
   * epochs). Default: no decay.
   */
  decayEpoch?: number;
  /**
   * Augmentations (../../data/augment.ts) of the labelled batches of phase 3
   * only, drawn from the run's Rng so a resume reproduces them (default none:
   * the paper's setting).
   */
  labelledAugment?: readonly Augmentation[];
  seed: number;
  /**
   * Data-parallel phases: each phase's batch is split over the pool's workers
   * (aae-task.ts), the shards' gradients summed in order, one update here;
   * with the same seed and worker count a run is bit-identical. No pool, or a
   * pool of one: every phase on this thread.
   */
  pool?: TaskPool;
  checkpoints?: CheckpointStore;
  resume?: boolean;
  /** Stop after this many epochs in this call (simulates a kill, for tests). */
  stopAfterEpochs?: number;
  /** Figures computed after each epoch (e.g. test reconstruction error), stored in the epoch's record. */
  monitor?: (models: AaeModels, epoch: number) => Promise<Record<string, number>>;
  onProgress?: (event: AaeTrainEvent) => void;
}

/** The optimizer defaults of {@link AaeTrainOptions}. */
export const AAE_OPTIMIZER_DEFAULTS = { learningRate: 1e-3, adversarialLearningRate: 3e-4, classificationLearningRate: 1e-3, beta1: 0.9, adversarialBeta1: 0.5, beta2: 0.999 } as const;

/** The factor of the step decay ({@link AaeTrainOptions.decayEpoch}): the paper's tenfold steps. */
export const LEARNING_RATE_DECAY = 0.1;

/** One epoch's figures (means over the epoch's images). */
export interface AaeEpochRecord {
  epoch: number;
  /** Reconstruction loss (before each batch's step). */
  reconstruction: number;
  /** Discriminator loss; null without the regularization phase. */
  dLoss: number | null;
  /** The encoder's adversarial loss; null without the regularization phase. */
  gLoss: number | null;
  /** Mean sigmoid(D) on prior samples (1 = "prior"); null without the regularization phase. */
  dPrior: number | null;
  /** Mean sigmoid(D) on the codes: 0.5 on both when D cannot tell them apart; null without the regularization phase. */
  dCode: number | null;
  /** Categorical mode: the category discriminator's loss; null without it or without the regularization phase. */
  catDLoss: number | null;
  /** Categorical mode: the encoder's adversarial loss against the category discriminator (gLoss is the style part; the encoder steps on their sum); else null. */
  catGLoss: number | null;
  /** Categorical mode: mean sigmoid(C) on one-hot prior samples; else null. */
  catDPrior: number | null;
  /** Categorical mode: mean sigmoid(C) on the encoder's q(y | x); else null. */
  catDCode: number | null;
  /** Semi-supervised mode: the mean classification loss of phase 3 (before each step); else null. */
  classification: number | null;
  seconds: number;
  /** Figures from {@link AaeTrainOptions.monitor}. */
  monitor?: Record<string, number>;
}

/** Progress events of {@link trainAae}. */
export type AaeTrainEvent = EpochLoopEvent<{ reconstruction: number; dLoss: number | null; gLoss: number | null; classification: number | null }, AaeEpochRecord>;

/** What {@link trainAae} did. */
export type AaeTrainResult = EpochLoopResult<AaeEpochRecord>;

interface AaeCheckpointState {
  epoch: number;
  rngState: number[];
  history: AaeEpochRecord[];
  encoderSpecs: TensorSpec[];
  decoderSpecs: TensorSpec[];
  discriminatorSpecs: TensorSpec[];
  reconstructionOptimizer: OptimizerState;
  discriminatorOptimizer: OptimizerState;
  encoderOptimizer: OptimizerState;
  /** Categorical mode: the category discriminator and its optimizer. */
  categoryDiscriminatorSpecs?: TensorSpec[];
  categoryDiscriminatorOptimizer?: OptimizerState;
  /** Semi-supervised mode: the optimizer of phase 3. */
  classificationOptimizer?: OptimizerState;
  topology: string;
}

const CHECKPOINT_FILES = [
  'encoder',
  'decoder',
  'discriminator',
  'reconstruction-optimizer',
  'discriminator-optimizer',
  'encoder-optimizer',
  'category-discriminator',
  'category-discriminator-optimizer',
  'classification-optimizer',
] as const;

/** The optimizers of a run; `category` and `classification` only in the modes that use them. */
interface Optimizers {
  reconstruction: tf.AdamOptimizer;
  discriminator: tf.AdamOptimizer;
  encoder: tf.AdamOptimizer;
  category?: tf.AdamOptimizer;
  classification?: tf.AdamOptimizer;
}

/** Trains an adversarial autoencoder (see the module comment). */
export async function trainAae(models: AaeModels, train: ImageSet, options: AaeTrainOptions): Promise<AaeTrainResult> {
  const { components, supervised } = validate(models, train, options);
  const regularize = options.regularization ?? true;
  const recKind = options.reconstructionLoss ?? 'bce';
  const advLoss = options.adversarialLoss ?? 'ns';
  const lr = options.learningRate ?? AAE_OPTIMIZER_DEFAULTS.learningRate;
  const { encoder: E, decoder: G, discriminator: D, categoryDiscriminator: C, latentDim: d, categories: K } = models;
  const categorical = K > 0;
  const labelled = options.labelled;
  const advBeta1 = options.adversarialBeta1 ?? AAE_OPTIMIZER_DEFAULTS.adversarialBeta1;
  const advLr = options.adversarialLearningRate ?? AAE_OPTIMIZER_DEFAULTS.adversarialLearningRate;
  const adam = (rate: number, beta1: number) => tf.train.adam(rate, beta1, AAE_OPTIMIZER_DEFAULTS.beta2);
  const opt: Optimizers = {
    reconstruction: adam(lr, options.beta1 ?? AAE_OPTIMIZER_DEFAULTS.beta1),
    discriminator: adam(advLr, advBeta1),
    encoder: adam(advLr, advBeta1),
    ...(categorical ? { category: adam(advLr, advBeta1) } : {}),
    ...(labelled ? { classification: adam(options.classificationLearningRate ?? AAE_OPTIMIZER_DEFAULTS.classificationLearningRate, AAE_OPTIMIZER_DEFAULTS.beta1) } : {}),
  };
  const variables = aaeVariables(models);
  let rng = new Rng(deriveSeed(options.seed, 'aae'));
  let history: AaeEpochRecord[] = [];
  let startEpoch = 0;
  const store = options.checkpoints;
  const topology = [E, G, D, ...(C ? [C] : [])].map(topologyHash).join(':');

  try {
    if (store && options.resume) {
      const ck = await store.load<AaeCheckpointState>();
      if (ck) {
        if (ck.state.topology !== topology) throw new InputError('resume', `the checkpoint in ${store.location} was written for a different AAE (architecture, code size, width, label input or categories differ); delete it or drop --resume`);
        const file = (name: (typeof CHECKPOINT_FILES)[number]) => [ck.read(`${name}.bin`), ck.name(`${name}.bin`)] as const;
        restoreModelWeights(E, ck.state.encoderSpecs, ...file('encoder'));
        restoreModelWeights(G, ck.state.decoderSpecs, ...file('decoder'));
        restoreModelWeights(D, ck.state.discriminatorSpecs, ...file('discriminator'));
        await restoreOptimizer(opt.reconstruction, ck.state.reconstructionOptimizer, ...file('reconstruction-optimizer'));
        await restoreOptimizer(opt.discriminator, ck.state.discriminatorOptimizer, ...file('discriminator-optimizer'));
        await restoreOptimizer(opt.encoder, ck.state.encoderOptimizer, ...file('encoder-optimizer'));
        if (C && opt.category) {
          const { categoryDiscriminatorSpecs: specs, categoryDiscriminatorOptimizer: state } = ck.state;
          if (!specs || !state) throw new InputError('resume', `the checkpoint in ${store.location} has no category discriminator; delete it or drop --resume`);
          restoreModelWeights(C, specs, ...file('category-discriminator'));
          await restoreOptimizer(opt.category, state, ...file('category-discriminator-optimizer'));
        }
        if (opt.classification) {
          const state = ck.state.classificationOptimizer;
          if (!state) throw new InputError('resume', `the checkpoint in ${store.location} was not written by a semi-supervised run; delete it or drop --resume`);
          await restoreOptimizer(opt.classification, state, ...file('classification-optimizer'));
        }
        rng = Rng.fromState(ck.state.rngState);
        history = ck.state.history;
        startEpoch = ck.state.epoch;
        options.onProgress?.({ type: 'resumed', epoch: startEpoch });
      }
    }

    const catNoise = options.categoryNoise ?? 0;
    const balance = options.categoryBalance ?? 0;
    /** n x K noise for the category discriminator's inputs from the run's Rng (empty without noise). */
    const noiseDraw = (rows: number): Float32Array => {
      if (!(catNoise > 0)) return new Float32Array(0);
      const e = new Float32Array(rows * K);
      for (let i = 0; i < e.length; i++) e[i] = catNoise * rng.normal();
      return e;
    };
    // The category discriminator's input, with noise drawn from the run's Rng (so a resume reproduces it).
    const noisy = (y: tf.Tensor2D): tf.Tensor2D => {
      if (!(catNoise > 0)) return y;
      const [rows, cols] = y.shape;
      return tf.add(y, tf.tensor2d(noiseDraw(rows), [rows, cols]));
    };
    const parallel = options.pool && options.pool.size > 1 ? pooledPhases(options.pool, models, opt, variables, { reconstructionLoss: recKind, adversarialLoss: advLoss, ...(supervised ? { components } : {}) }) : undefined;
    const lastEpoch = Math.min(options.epochs, startEpoch + (options.stopAfterEpochs ?? Infinity));
    // Each optimizer's rate as built; the decay is a function of the epoch, so a resume sets it again.
    const baseRates = new Map(Object.values(opt).map((o: tf.AdamOptimizer) => [o, (o as unknown as { learningRate: number }).learningRate]));
    for (let epoch = startEpoch + 1; epoch <= lastEpoch; epoch++) {
      const t0 = performance.now();
      const decay = options.decayEpoch !== undefined && epoch >= options.decayEpoch ? LEARNING_RATE_DECAY : 1;
      for (const [o, rate] of baseRates) (o as unknown as { learningRate: number }).learningRate = rate * decay;
      const order = batchOrder(train.count, options.batchSize, rng);
      const labelledOrder = labelled ? labelledBatches(labelled.count, Math.min(options.batchSize, labelled.count), order.length, rng) : [];
      options.onProgress?.({ type: 'epoch-start', epoch, epochs: options.epochs, batches: order.length });
      const sums = { rec: 0, d: 0, g: 0, prior: 0, code: 0, catD: 0, catG: 0, catPrior: 0, catCode: 0, cls: 0 };
      let seen = 0;
      let labelledSeen = 0;
      for (let b = 0; b < order.length; b++) {
        const batch = makeBatch(train, order[b]);
        const n = order[b].length;
        const labels = supervised ? (batch.y.dataSync() as Int32Array) : undefined;
        const label = labels ? (tf.tidy(() => tf.cast(tf.oneHot(batch.y, components), 'float32')) as tf.Tensor2D) : undefined;
        const read = (t: tf.Tensor | undefined) => t!.dataSync()[0] * n;
        try {
          if (parallel) {
            // The same phases, each split over the pool (aae-task.ts), with the same draws from the run's Rng in the same order.
            const xs = (await batch.x.data()) as Float32Array;
            const sliced = { x: xs, shape: batch.x.shape as [number, number, number, number], labels };
            const rec = (await parallel.step('reconstruction', sliced, {}))[0];
            sums.rec += rec.loss * n;
            if (regularize) {
              const drawn = samplePrior(options.prior, { n, d, rng, components: options.prior === 'gaussian' ? undefined : components, labels });
              const yPrior = C ? sampleCategorical(n, K, rng).y : undefined;
              const priorNoise = C ? noiseDraw(n) : undefined;
              const codeNoise = C ? noiseDraw(n) : undefined;
              const [style, category] = await parallel.step('latent', sliced, { zPrior: [drawn.z, d], ...(C ? { yPrior: [yPrior!, K], priorNoise: [priorNoise!, K], codeNoise: [codeNoise!, K] } : {}) });
              sums.d += style.loss * n;
              sums.prior += style.extras[0] * n;
              sums.code += style.extras[1] * n;
              let balanceGradient: Float32Array | undefined;
              if (category) {
                sums.catD += category.loss * n;
                sums.catPrior += category.extras[0] * n;
                sums.catCode += category.extras[1] * n;
                // The batch's mean q(y | x), from phase 2a's codes (the encoder has not moved since).
                if (balance > 0) balanceGradient = balanceGradientAt(category.extras.slice(2).map((v) => v / n));
              }
              const qNoise = C ? noiseDraw(n) : undefined;
              const enc = (await parallel.step('encoder', sliced, { ...(qNoise ? { qNoise: [qNoise, K] } : {}) }, balanceGradient ? { balance, balanceGradient } : {}))[0];
              sums.g += enc.extras[0] * n;
              if (C) sums.catG += enc.extras[1] * n;
            }
            if (labelled) {
              const lb = makeBatch(labelled, labelledOrder[b], options.labelledAugment ?? [], rng);
              try {
                const [lx, ly] = [(await lb.x.data()) as Float32Array, (await lb.y.data()) as Int32Array];
                const cls = (await parallel.step('classification', { x: lx, shape: lb.x.shape as [number, number, number, number] }, { classes: [ly, 1] }))[0];
                sums.cls += cls.loss * lb.indices.length;
                labelledSeen += lb.indices.length;
              } finally {
                tf.dispose([lb.x, lb.y]);
              }
            }
          } else {
            // Phase 1, reconstruction: encoder and decoder together.
            const rec = opt.reconstruction.minimize(() => reconstructionObjective(E, G, batch.x, recKind), true, variables.autoencoder) as tf.Scalar;
            sums.rec += read(rec);
            rec.dispose();

            if (regularize) {
              // Phase 2a, the discriminator(s): prior samples (label 1) against the codes (label 0), fixed outside the tape.
              const drawn = samplePrior(options.prior, { n, d, rng, components: options.prior === 'gaussian' ? undefined : components, labels });
              const zPrior = tf.tensor2d(drawn.z, [n, d]);
              const codes = tf.tidy(() => {
                const c = encode(E, batch.x);
                return { z: c.z, y: c.logits ? (tf.softmax(c.logits) as tf.Tensor2D) : undefined };
              });
              /** One Adam step of a discriminator: prior samples against codes; returns its loss and mean outputs, times n. */
              const discriminatorStep = (optimizer: tf.Optimizer, net: tfl.LayersModel, prior: tf.Tensor | tf.Tensor[], code: tf.Tensor | tf.Tensor[], vars: tf.Variable[]) => {
                const figures: tf.Tensor[] = [];
                const loss = optimizer.minimize(
                  () => {
                    const r = discriminatorObjective(net, prior, code);
                    figures.push(tf.keep(r.priorMean), tf.keep(r.codeMean));
                    return r.loss;
                  },
                  true,
                  vars,
                ) as tf.Scalar;
                const out = { loss: read(loss), prior: read(figures[0]), code: read(figures[1]) };
                tf.dispose([loss, ...figures]);
                return out;
              };
              const style = discriminatorStep(opt.discriminator, D, discriminatorInputs(zPrior, label), discriminatorInputs(codes.z, label), variables.discriminator);
              sums.d += style.loss;
              sums.prior += style.prior;
              sums.code += style.code;
              tf.dispose([zPrior, codes.z]);

              if (C && codes.y) {
                // The category discriminator (section 5): one-hot y' ~ Cat(K) against q(y | x).
                const yPrior = tf.tensor2d(sampleCategorical(n, K, rng).y, [n, K]);
                // Inputs, with the noise drawn in the same order as ever (prior first); tidy frees the noise itself.
                const [yIn, codeIn] = tf.tidy(() => [noisy(yPrior), noisy(codes.y!)]);
                const category = discriminatorStep(opt.category!, C, yIn, codeIn, variables.category);
                sums.catD += category.loss;
                sums.catPrior += category.prior;
                sums.catCode += category.code;
                tf.dispose([yPrior, codes.y, yIn, codeIn].filter((t, i, all) => all.indexOf(t) === i));
              }

              // Phase 2b, the encoder as the generator of the latent GAN(s): the discriminators held fixed; against both at once in the categorical mode.
              const parts: tf.Tensor[] = [];
              const gLoss = opt.encoder.minimize(
                () => {
                  const r = encoderObjective(E, D, C ?? undefined, batch.x, label, advLoss, noisy);
                  if (!r.category) return r.style;
                  parts.push(tf.keep(r.style), tf.keep(r.category));
                  // The batch-level balance term (losses.ts): the encoder's own push toward using every category.
                  const category = balance > 0 ? (tf.add(r.category, tf.mul(balance, categoryBalanceLoss(r.q!))) as tf.Scalar) : r.category;
                  return tf.add(r.style, category) as tf.Scalar;
                },
                true,
                variables.encoder,
              ) as tf.Scalar;
              sums.g += read(parts.length ? parts[0] : gLoss);
              if (parts.length) sums.catG += read(parts[1]);
              tf.dispose([gLoss, ...parts]);
            }

            if (labelled) {
              // Phase 3, semi-supervised classification (section 5): q(y | x) on a labelled batch.
              const lb = makeBatch(labelled, labelledOrder[b], options.labelledAugment ?? [], rng);
              try {
                const cls = opt.classification!.minimize(() => classificationObjective(E, lb.x, lb.y), true, variables.classifier) as tf.Scalar;
                sums.cls += cls.dataSync()[0] * lb.indices.length;
                labelledSeen += lb.indices.length;
                cls.dispose();
              } finally {
                tf.dispose([lb.x, lb.y]);
              }
            }
          }
        } finally {
          tf.dispose([batch.x, batch.y, label as tf.Tensor].filter(Boolean));
        }
        seen += n;
        options.onProgress?.({
          type: 'batch',
          epoch,
          batch: b + 1,
          batches: order.length,
          reconstruction: sums.rec / seen,
          dLoss: regularize ? sums.d / seen : null,
          gLoss: regularize ? sums.g / seen : null,
          classification: labelled ? sums.cls / labelledSeen : null,
        });
        // Let timers (progress bars) run between steps.
        await yieldToEventLoop();
      }
      const mean = (sum: number) => (regularize ? sum / train.count : null);
      const catMean = (sum: number) => (categorical ? mean(sum) : null);
      const record: AaeEpochRecord = {
        epoch,
        reconstruction: sums.rec / train.count,
        dLoss: mean(sums.d),
        gLoss: mean(sums.g),
        dPrior: mean(sums.prior),
        dCode: mean(sums.code),
        catDLoss: catMean(sums.catD),
        catGLoss: catMean(sums.catG),
        catDPrior: catMean(sums.catPrior),
        catDCode: catMean(sums.catCode),
        classification: labelled ? sums.cls / labelledSeen : null,
        seconds: (performance.now() - t0) / 1000,
      };
      if (options.monitor) record.monitor = await options.monitor(models, epoch);
      history.push(record);
      if (store) await saveCheckpoint(store, models, opt, rng, history, epoch, topology);
      options.onProgress?.({ type: 'epoch-end', epochs: options.epochs, ...record });
    }
    return loopResult(history, startEpoch);
  } finally {
    for (const o of Object.values(opt)) (o as tf.AdamOptimizer).dispose();
  }
}

/**
 * The labelled batches of one epoch (semi-supervised mode): `steps` batches
 * of `size` indices into the labelled subset, cut from permutations of it
 * drawn one after the other from `rng`, so every labelled image is seen
 * equally often.
 */
function labelledBatches(count: number, size: number, steps: number, rng: Rng): Int32Array[] {
  const all = new Int32Array(steps * size);
  for (let filled = 0; filled < all.length; filled += count) {
    const p = rng.permutation(count);
    all.set(p.subarray(0, Math.min(count, all.length - filled)), filled);
  }
  return Array.from({ length: steps }, (_, s) => all.subarray(s * size, (s + 1) * size));
}

async function saveCheckpoint(store: CheckpointStore, models: AaeModels, opt: Optimizers, rng: Rng, history: AaeEpochRecord[], epoch: number, topology: string): Promise<void> {
  const e = packModelWeights(models.encoder);
  const g = packModelWeights(models.decoder);
  const d = packModelWeights(models.discriminator);
  const ro = await packOptimizer(opt.reconstruction);
  const dO = await packOptimizer(opt.discriminator);
  const eo = await packOptimizer(opt.encoder);
  const c = models.categoryDiscriminator ? packModelWeights(models.categoryDiscriminator) : undefined;
  const co = opt.category ? await packOptimizer(opt.category) : undefined;
  const so = opt.classification ? await packOptimizer(opt.classification) : undefined;
  const state: AaeCheckpointState = {
    epoch,
    rngState: rng.getState(),
    history,
    encoderSpecs: e.specs,
    decoderSpecs: g.specs,
    discriminatorSpecs: d.specs,
    reconstructionOptimizer: ro.state,
    discriminatorOptimizer: dO.state,
    encoderOptimizer: eo.state,
    ...(c && co ? { categoryDiscriminatorSpecs: c.specs, categoryDiscriminatorOptimizer: co.state } : {}),
    ...(so ? { classificationOptimizer: so.state } : {}),
    topology,
  };
  await store.save(`epoch-${epoch}`, state, {
    'encoder.bin': e.data,
    'decoder.bin': g.data,
    'discriminator.bin': d.data,
    'reconstruction-optimizer.bin': ro.data,
    'discriminator-optimizer.bin': dO.data,
    'encoder-optimizer.bin': eo.data,
    ...(c && co ? { 'category-discriminator.bin': c.data, 'category-discriminator-optimizer.bin': co.data } : {}),
    ...(so ? { 'classification-optimizer.bin': so.data } : {}),
  });
}

/** Checks the options against the models and the data; gives the prior's number of components and whether labels are used. */
function validate(models: AaeModels, train: ImageSet, o: AaeTrainOptions): { components: number; supervised: boolean } {
  if (!o || typeof o !== 'object') throw new InputError('options', 'expected the training options');
  parsePrior(o.prior, 'prior');
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new InputError('epochs', `expected a positive integer, got ${o.epochs}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new InputError('batchSize', `expected a positive integer, got ${o.batchSize}`);
  for (const key of ['learningRate', 'adversarialLearningRate'] as const) {
    const v = o[key];
    if (v !== undefined && !(v > 0 && Number.isFinite(v))) throw new InputError(key, `expected a positive number, got ${v}`);
  }
  for (const key of ['beta1', 'adversarialBeta1'] as const) {
    const v = o[key];
    if (v !== undefined && !(v >= 0 && v < 1)) throw new InputError(key, `expected a number in [0, 1), got ${v}`);
  }
  if (o.reconstructionLoss !== undefined) parseReconstructionLoss(o.reconstructionLoss, 'reconstructionLoss');
  if (o.adversarialLoss !== undefined && !(AAE_ADVERSARIAL_LOSSES as readonly string[]).includes(o.adversarialLoss)) {
    throw new InputError('adversarialLoss', `unknown adversarial loss "${o.adversarialLoss}"; expected one of ${AAE_ADVERSARIAL_LOSSES.join(', ')}`);
  }
  if (o.resume && !o.checkpoints) throw new InputError('resume', 'needs a checkpoint store (checkpoints)');
  if (train.count === 0) throw new InputError('train', 'the training set is empty');
  const [h, w, c] = models.imageShape;
  if (train.imageShape.join() !== [h, w, c].join()) throw new InputError('train', `the AAE encodes images of shape [${h}, ${w}, ${c}] but the data has [${train.imageShape.join(', ')}]`);
  // The prior's dimension check (mixture >= 2, swiss-roll = 2), before any step.
  const supervised = !!o.supervisedPrior;
  if (o.prior === 'gaussian') {
    if (o.components !== undefined && o.components !== 1) throw new InputError('components', `the gaussian prior has one component, got ${o.components}`);
    if (supervised) throw new InputError('supervisedPrior', 'the gaussian prior has no components for the labels to choose; use mixture or swiss-roll');
  }
  const K = models.categories ?? 0;
  if (K > 0) {
    if (!models.categoryDiscriminator) throw new InputError('models', 'a categorical AAE (categories > 0) needs its category discriminator');
    if (o.prior !== 'gaussian') throw new InputError('prior', `the categorical + style code takes the gaussian prior on its style part (the categories have their own Cat(${K}) prior), got ${o.prior}`);
  }
  if (o.labelled !== undefined) {
    const l = o.labelled;
    if (K === 0) throw new InputError('labelled', 'the semi-supervised phase needs a class head: build the AAE with categories = the number of classes');
    if (!l || !(l.images instanceof Float32Array) || !(l.labels instanceof Int32Array) || l.count < 1) throw new InputError('labelled', 'expected a non-empty ImageSet of labelled images');
    if (l.imageShape.join() !== [h, w, c].join()) throw new InputError('labelled', `the AAE encodes images of shape [${h}, ${w}, ${c}] but the labelled images have [${l.imageShape.join(', ')}]`);
    const bad = l.labels.findIndex((y) => y < 0 || y >= K);
    if (bad >= 0) throw new InputError('labelled', `label ${l.labels[bad]} at ${bad} is outside [0, ${K}) (the class head's categories)`);
  }
  if (o.labelledAugment?.length && o.labelled === undefined) throw new InputError('labelledAugment', 'augments the labelled batches of the semi-supervised phase: needs labelled');
  if (o.decayEpoch !== undefined && !(Number.isSafeInteger(o.decayEpoch) && o.decayEpoch >= 1)) throw new InputError('decayEpoch', `expected an epoch >= 1, got ${o.decayEpoch}`);
  for (const key of ['categoryBalance', 'categoryNoise'] as const) {
    const v = o[key];
    if (v === undefined) continue;
    if (!(v >= 0 && Number.isFinite(v))) throw new InputError(key, `expected a number >= 0, got ${v}`);
    if (v > 0 && K === 0) throw new InputError(key, 'acts on the class head q(y | x): build the AAE with categories');
  }
  const clr = o.classificationLearningRate;
  if (clr !== undefined && !(clr > 0 && Number.isFinite(clr))) throw new InputError('classificationLearningRate', `expected a positive number, got ${clr}`);
  if (supervised && models.labelClasses < 1) throw new InputError('supervisedPrior', 'the discriminator has no label input: build the AAE with labelClasses');
  const components = supervised ? models.labelClasses : (o.components ?? DEFAULT_COMPONENTS);
  if (supervised && o.components !== undefined && o.components !== components) {
    throw new InputError('components', `the supervised prior has one component per label class (${models.labelClasses}), got ${o.components}`);
  }
  try {
    samplePrior(o.prior, { n: 1, d: models.latentDim, rng: new Rng(0), components: o.prior === 'gaussian' ? undefined : components });
  } catch (e) {
    // The prior's "d" is the models' code size.
    if (e instanceof InputError && e.argument === 'd') throw new InputError('latentDim', e.message.slice(3));
    throw e;
  }
  if (supervised) {
    const bad = train.labels.findIndex((l) => l < 0 || l >= components);
    if (bad >= 0) throw new InputError('train', `label ${train.labels[bad]} at ${bad} is outside [0, ${components}) (one prior component per class)`);
  } else if (models.labelClasses > 0) {
    throw new InputError('supervisedPrior', 'the discriminator takes a label (labelClasses > 0): train it with supervisedPrior');
  }
  return { components, supervised };
}
