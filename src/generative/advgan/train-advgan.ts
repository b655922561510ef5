/**
 * AdvGAN's training loop (Xiao et al., IJCAI 2018, Algorithm 1 with the
 * losses of losses.ts): per batch x with labels y,
 * 1. one Adam step on the discriminator: the GAN loss of D(x) (real) against
 *    D(x + G(x)) (perturbed), over D's weights only (G(x) computed outside
 *    the tape);
 * 2. one Adam step on the generator: L_adv (the C&W margin of the attacked
 *    classifier at x + G(x), toward the target class when `targetClass` is
 *    set: one generator per target, as the paper trains them) + alpha L_GAN +
 *    beta L_hinge, over G's weights only.
 * The attacked classifier runs in inference mode and is never updated; its
 * gradient reaches G through x + G(x). The perturbation is eps tanh(G(x)):
 * always inside the Linf ball. Seeded; checkpointed after every epoch, so a
 * killed run resumes bit-identically.
 */
import { tf, type tfl } from '../../engine/tf.js';
import type { ImageSet } from '../../data/types.js';
import { batchOrder, makeBatch } from '../../data/batches.js';
import { Rng, deriveSeed } from '../../util/rng.js';
import type { CheckpointStore } from '../../models/checkpoint.js';
import { topologyHash } from '../../models/train-state.js';
import { restorePairCheckpoint, savePairCheckpoint, type PairCheckpointState } from '../pair-checkpoint.js';
import { InputError } from '../../errors.js';
import { loopResult, type EpochLoopEvent, type EpochLoopResult } from '../../models/train.js';
import type { Classifier } from '../../models/classifier.js';
import { GAN_LOSSES, discriminatorLoss, generatorLoss, type GanLoss } from '../losses.js';
import { marginLoss, perturbationHinge, perturbedImages } from './losses.js';
import { yieldToEventLoop } from '../../util/yield.js';
import { readAndDispose } from '../../engine/read.js';
import type { DistillationState, DynamicDistillation } from './distillation.js';

/**
 * Defaults: the reference code's Adam rate and weights (mathcbc/advGAN_pytorch:
 * 10 L_adv + 1 L_GAN + 1 L_perturbation, here divided by 10), the paper's
 * least-squares GAN loss. With alpha = beta = 1 the norm terms held the
 * generator back: 73% against 90% success on mnist small-cnn at Linf 0.3
 * after the same 3 short epochs.
 */
export const ADVGAN_DEFAULTS = { learningRate: 1e-3, ganLoss: 'lsgan' as GanLoss, alpha: 0.1, beta: 0.1, hingeBound: 2, kappa: 0 } as const;

/** Options of {@link trainAdvGan}. */
export interface AdvGanTrainOptions {
  /** Linf budget of the perturbation, in the input's scale. */
  eps: number;
  epochs: number;
  batchSize: number;
  /** Adam's rate for both networks (default 1e-3). */
  learningRate?: number;
  /** The GAN loss (default lsgan, as the paper). */
  ganLoss?: GanLoss;
  /** Weight of the GAN loss (default 0.1). */
  alpha?: number;
  /** Weight of the hinge on the perturbation's L2 norm (default 0.1). */
  beta?: number;
  /** The hinge's L2 bound c (default 2, mnist's scale). */
  hingeBound?: number;
  /** The C&W confidence kappa (default 0). */
  kappa?: number;
  /** Train a targeted generator toward this class; omitted: untargeted. */
  targetClass?: number;
  seed: number;
  checkpoints?: CheckpointStore;
  resume?: boolean;
  /** Stop after this many epochs in this call (simulates a kill, for tests). */
  stopAfterEpochs?: number;
  /**
   * Black-box mode (distillation.ts): the generator trains against the
   * distillation's surrogate (pass `distillation.classifier` as the target),
   * which follows the black box through its answers to x + G(x) after every
   * generator step. Omitted: white-box, against the target's own gradients.
   */
  distillation?: DynamicDistillation;
  /** Figures computed after each epoch (e.g. success on held-out images), kept in the epoch's record. */
  monitor?: (generator: tfl.LayersModel, epoch: number) => Promise<Record<string, number>>;
  onProgress?: (event: AdvGanTrainEvent) => void;
}

/** One epoch's figures: mean losses, and the share of the epoch's images the classifier got wrong (or the target) at x + G(x) in the generator step. */
export interface AdvGanEpochRecord {
  epoch: number;
  dLoss: number;
  gLoss: number;
  advLoss: number;
  hingeLoss: number;
  /** Successes in the generator steps (before their update). */
  trainSuccess: number;
  /** Mean L2 norm of the perturbations. */
  meanL2: number;
  seconds: number;
  monitor?: Record<string, number>;
  /** Black-box mode: queries to the black box so far (static phase included), the surrogate's agreement with it on the epoch's x + G(x) before each step, and after the static phase. */
  blackBox?: { queries: number; surrogateAgreement: number; staticAgreement: number };
}

export type AdvGanTrainEvent = EpochLoopEvent<{ dLoss: number; gLoss: number; trainSuccess: number }, AdvGanEpochRecord>;
export type AdvGanTrainResult = EpochLoopResult<AdvGanEpochRecord>;

/** Trains AdvGAN's generator against `target` (see the module comment). */
export async function trainAdvGan(models: { generator: tfl.LayersModel; discriminator: tfl.LayersModel }, target: Classifier, train: ImageSet, options: AdvGanTrainOptions): Promise<AdvGanTrainResult> {
  validate(models, target, train, options);
  const { generator: G, discriminator: D } = models;
  const lr = options.learningRate ?? ADVGAN_DEFAULTS.learningRate;
  const ganLoss = options.ganLoss ?? ADVGAN_DEFAULTS.ganLoss;
  const alpha = options.alpha ?? ADVGAN_DEFAULTS.alpha;
  const beta = options.beta ?? ADVGAN_DEFAULTS.beta;
  const bound = options.hingeBound ?? ADVGAN_DEFAULTS.hingeBound;
  const kappa = options.kappa ?? ADVGAN_DEFAULTS.kappa;
  const targeted = options.targetClass !== undefined;
  const gOpt = tf.train.adam(lr, 0.5, 0.999);
  const dOpt = tf.train.adam(lr, 0.5, 0.999);
  const gVars = G.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const dVars = D.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  let rng = new Rng(deriveSeed(options.seed, 'advgan'));
  let history: AdvGanEpochRecord[] = [];
  let startEpoch = 0;
  const store = options.checkpoints;
  const topology = `${topologyHash(G)}:${topologyHash(D)}`;
  const pair = { generator: G, discriminator: D, generatorOptimizer: gOpt, discriminatorOptimizer: dOpt };
  const distillation = options.distillation;
  const saveCheckpoint = async (epoch: number) => {
    if (!store) return;
    const extra = distillation ? await distillation.pack() : undefined;
    await savePairCheckpoint(store, pair, { rng, history, epoch, topology }, extra ? { state: { distillation: extra.state }, files: extra.files } : {});
  };
  try {
    let resumed = false;
    if (store && options.resume) {
      const ck = await store.load<PairCheckpointState<AdvGanEpochRecord> & { distillation?: DistillationState }>();
      if (ck) {
        ({ rng, history, epoch: startEpoch } = await restorePairCheckpoint(ck, pair, topology, store.location, 'other networks'));
        if (distillation) await distillation.restore(ck, train.count);
        else if (ck.state.distillation) throw new InputError('resume', `the checkpoint in ${store.location} was written by a black-box run; delete it or drop --resume`);
        resumed = true;
        options.onProgress?.({ type: 'resumed', epoch: startEpoch });
      }
    }
    if (distillation && !resumed) {
      // The static phase, kept as checkpoint epoch-0 so a kill after it does not query the black box again.
      await distillation.distillStatic(train);
      await saveCheckpoint(0);
    }
    const lastEpoch = Math.min(options.epochs, startEpoch + (options.stopAfterEpochs ?? Infinity));
    for (let epoch = startEpoch + 1; epoch <= lastEpoch; epoch++) {
      const t0 = performance.now();
      const order = batchOrder(train.count, options.batchSize, rng);
      options.onProgress?.({ type: 'epoch-start', epoch, epochs: options.epochs, batches: order.length });
      const sums = { d: 0, g: 0, adv: 0, hinge: 0, success: 0, l2: 0, agreement: 0 };
      let seen = 0;
      for (let b = 0; b < order.length; b++) {
        const batch = makeBatch(train, order[b]);
        const n = order[b].length;
        const x = batch.x as tf.Tensor4D;
        const classes = targeted ? tf.fill([n], options.targetClass!, 'int32') as tf.Tensor1D : tf.cast(batch.y, 'int32') as tf.Tensor1D;
        try {
          const perturbed = tf.tidy(() => perturbedImages(x, G.apply(x, { training: true }) as tf.Tensor4D, options.eps, target.bounds).adversarial);
          const dLoss = dOpt.minimize(() => discriminatorLoss(ganLoss, D.apply(x, { training: true }) as tf.Tensor, D.apply(perturbed, { training: true }) as tf.Tensor), true, dVars) as tf.Scalar;
          perturbed.dispose();
          const kept: tf.Tensor[] = [];
          const gLoss = gOpt.minimize(
            () => {
              const { delta, adversarial } = perturbedImages(x, G.apply(x, { training: true }) as tf.Tensor4D, options.eps, target.bounds);
              const logits = target.logits(adversarial);
              const adv = tf.mean(marginLoss(logits, classes, targeted, kappa));
              const hinge = tf.mean(perturbationHinge(delta, bound));
              const gan = generatorLoss(ganLoss, D.apply(adversarial, { training: true }) as tf.Tensor);
              const predictions = tf.argMax(logits, 1);
              const success = targeted ? tf.equal(predictions, classes) : tf.notEqual(predictions, tf.cast(batch.y, 'int32'));
              kept.push(tf.keep(adv), tf.keep(hinge), tf.keep(tf.sum(tf.cast(success, 'float32'))), tf.keep(tf.sum(tf.norm(tf.reshape(tf.sub(adversarial, x), [n, -1]), 'euclidean', 1))));
              return tf.addN([adv, tf.mul(gan, alpha), tf.mul(hinge, beta)]) as tf.Scalar;
            },
            true,
            gVars,
          ) as tf.Scalar;
          // Read without dataSync (WebGPU cannot read synchronously); the tensors are disposed.
          const [adv, hinge, success, l2, dValue, gValue] = (await readAndDispose([...kept, dLoss, gLoss])).map((v) => v[0]);
          sums.d += dValue * n;
          sums.g += gValue * n;
          sums.adv += adv * n;
          sums.hinge += hinge * n;
          sums.success += success;
          sums.l2 += l2;
          if (distillation) {
            // The updated generator's examples, as the attack will make them (inference mode), teach the surrogate where b's answers matter.
            const probe = tf.tidy(() => perturbedImages(x, G.apply(x, { training: false }) as tf.Tensor4D, options.eps, target.bounds).adversarial);
            try {
              sums.agreement += (await distillation.distillStep(x, order[b], probe)) * n;
            } finally {
              probe.dispose();
            }
          }
        } finally {
          tf.dispose([batch.x, batch.y, classes]);
        }
        seen += n;
        options.onProgress?.({ type: 'batch', epoch, batch: b + 1, batches: order.length, dLoss: sums.d / seen, gLoss: sums.g / seen, trainSuccess: sums.success / seen });
        await yieldToEventLoop();
      }
      const record: AdvGanEpochRecord = {
        epoch,
        dLoss: sums.d / train.count,
        gLoss: sums.g / train.count,
        advLoss: sums.adv / train.count,
        hingeLoss: sums.hinge / train.count,
        trainSuccess: sums.success / train.count,
        meanL2: sums.l2 / train.count,
        seconds: (performance.now() - t0) / 1000,
        ...(distillation ? { blackBox: { queries: distillation.queries, surrogateAgreement: sums.agreement / train.count, staticAgreement: distillation.staticAgreement } } : {}),
      };
      if (options.monitor) record.monitor = await options.monitor(G, epoch);
      history.push(record);
      await saveCheckpoint(epoch);
      options.onProgress?.({ type: 'epoch-end', epochs: options.epochs, ...record });
    }
    return loopResult(history, startEpoch);
  } finally {
    gOpt.dispose();
    dOpt.dispose();
  }
}

function validate(models: { generator: tfl.LayersModel; discriminator: tfl.LayersModel }, target: Classifier, train: ImageSet, o: AdvGanTrainOptions): void {
  if (!(o.eps > 0 && Number.isFinite(o.eps))) throw new InputError('eps', `expected a positive Linf budget, got ${o.eps}`);
  if (o.eps > target.bounds[1] - target.bounds[0]) throw new InputError('eps', `${o.eps} exceeds the input range: is it in the input's scale?`);
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new InputError('epochs', `expected a positive integer, got ${o.epochs}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new InputError('batchSize', `expected a positive integer, got ${o.batchSize}`);
  if (o.learningRate !== undefined && !(o.learningRate > 0 && Number.isFinite(o.learningRate))) throw new InputError('learningRate', `expected a positive number, got ${o.learningRate}`);
  if (o.ganLoss !== undefined && !(GAN_LOSSES as readonly string[]).includes(o.ganLoss)) throw new InputError('ganLoss', `unknown GAN loss "${o.ganLoss}"; expected one of ${GAN_LOSSES.join(', ')}`);
  if (o.ganLoss === 'wgan-gp') throw new InputError('ganLoss', 'wgan-gp needs its gradient penalty, which AdvGAN does not train with; use lsgan, ns, minimax or hinge');
  for (const key of ['alpha', 'beta', 'hingeBound', 'kappa'] as const) {
    const v = o[key];
    if (v !== undefined && !(v >= 0 && Number.isFinite(v))) throw new InputError(key, `expected a number >= 0, got ${v}`);
  }
  if (o.targetClass !== undefined && !(Number.isInteger(o.targetClass) && o.targetClass >= 0 && o.targetClass < target.numClasses)) throw new InputError('targetClass', `expected a class in [0, ${target.numClasses}), got ${o.targetClass}`);
  if (o.distillation && target !== o.distillation.classifier) throw new InputError('distillation', "in black-box mode the generator trains against the distillation's surrogate: pass distillation.classifier as the target");
  if (o.resume && !o.checkpoints) throw new InputError('resume', 'needs a checkpoint store (checkpoints)');
  if (train.count === 0) throw new InputError('train', 'the training set is empty');
  const shape = models.generator.inputs[0].shape.slice(1).join();
  if (train.imageShape.join() !== shape || target.inputShape.join() !== shape) throw new InputError('train', `the generator takes images of shape [${shape}], the data has [${train.imageShape.join(', ')}] and the classifier [${target.inputShape.join(', ')}]`);
}
