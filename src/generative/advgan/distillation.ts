/**
 * AdvGAN's black-box mode: dynamic distillation (Xiao et al., IJCAI 2018,
 * Sec. 3.3). The attacked model b is reached only through queries that
 * return its predicted class; a local surrogate f stands in for it while the
 * generator trains:
 * 1. static distillation: query b on every training image once and train f
 *    on those answers (cross-entropy from logits) for a few epochs;
 * 2. dynamic distillation: after each generator step, query b on the
 *    batch's x + G(x) and take one step on f over the batch's clean images
 *    (b's cached answers) and its perturbed ones (b's fresh answers), so f
 *    follows b where the generator's examples lie.
 * The generator never sees b's gradients or scores: only labels (decision
 * access, stricter than the paper's output probabilities). Every query is
 * counted: one per image passed to b.
 */
import { tf, type tfl } from '../../engine/tf.js';
import type { ImageSet } from '../../data/types.js';
import { batchOrder, makeBatch } from '../../data/batches.js';
import { Classifier } from '../../models/classifier.js';
import type { LoadedCheckpoint } from '../../models/checkpoint.js';
import { packModelWeights, packOptimizer, restoreModelWeights, restoreOptimizer, type OptimizerState } from '../../models/train-state.js';
import type { TensorSpec } from '../../engine/tensor-io.js';
import { Rng, deriveSeed } from '../../util/rng.js';
import { crossEntropy } from '../../attacks/losses.js';
import { InputError } from '../../errors.js';
import { yieldToEventLoop } from '../../util/yield.js';
import { readOne } from '../../engine/read.js';

/** The attacked model as a black box: its predicted class for each image (one query per image). */
export interface BlackBox {
  labels(x: tf.Tensor4D): Promise<Int32Array>;
  bounds: readonly [number, number];
  numClasses: number;
  inputShape: readonly [number, number, number];
}

/** Defaults: Adam at the generator's rate, two static epochs (enough for the surrogate to agree with b on most clean images). */
export const DISTILLATION_DEFAULTS = { learningRate: 1e-3, staticEpochs: 2, batchSize: 64 } as const;

/** Options of {@link DynamicDistillation}. */
export interface DistillationOptions {
  learningRate?: number;
  /** Epochs of static distillation before the generator trains (default 2). */
  staticEpochs?: number;
  /** Batch size of the static epochs and of the queries made for them (default 64). */
  batchSize?: number;
  seed: number;
}

/** What a checkpoint keeps of the distillation (the surrogate's weights and Adam state are files beside it). */
export interface DistillationState {
  queries: number;
  staticAgreement: number;
  surrogateSpecs: TensorSpec[];
  surrogateOptimizer: OptimizerState;
}

const FILES = { weights: 'surrogate.bin', optimizer: 'surrogate-optimizer.bin', labels: 'black-box-labels.bin' } as const;

/**
 * The surrogate and its training for AdvGAN's black-box mode (see the module
 * comment). `surrogate` is a classifier network (logits) of the black box's
 * input shape and classes; it is trained in place, and disposed by its owner.
 */
export class DynamicDistillation {
  /** The surrogate as the classifier the generator trains against. */
  readonly classifier: Classifier;
  /** Images passed to the black box so far. */
  queries = 0;
  /** The surrogate's agreement with the black box on the training images after the static phase (NaN before it). */
  staticAgreement = NaN;
  /** b's answer for every training image (from the static phase). */
  private cleanLabels: Int32Array | null = null;
  private readonly optimizer: tf.AdamOptimizer;
  private readonly vars: tf.Variable[];

  constructor(
    readonly surrogate: tfl.LayersModel,
    readonly blackBox: BlackBox,
    private readonly options: DistillationOptions,
  ) {
    const shape = surrogate.inputs[0].shape.slice(1).join();
    if (shape !== blackBox.inputShape.join()) throw new InputError('surrogate', `takes images of shape [${shape}], the black box [${blackBox.inputShape.join(', ')}]`);
    const classes = surrogate.outputs[0].shape[1];
    if (classes !== blackBox.numClasses) throw new InputError('surrogate', `has ${classes} outputs, the black box ${blackBox.numClasses} classes`);
    const lr = options.learningRate ?? DISTILLATION_DEFAULTS.learningRate;
    if (!(lr > 0 && Number.isFinite(lr))) throw new InputError('learningRate', `expected a positive number, got ${lr}`);
    const epochs = options.staticEpochs ?? DISTILLATION_DEFAULTS.staticEpochs;
    if (!Number.isInteger(epochs) || epochs < 0) throw new InputError('staticEpochs', `expected an integer >= 0, got ${epochs}`);
    const batchSize = options.batchSize ?? DISTILLATION_DEFAULTS.batchSize;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError('batchSize', `expected a positive integer, got ${batchSize}`);
    this.classifier = Classifier.fromModel(surrogate, { bounds: [blackBox.bounds[0], blackBox.bounds[1]] });
    this.optimizer = tf.train.adam(lr, 0.9, 0.999);
    this.vars = surrogate.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  }

  private async ask(x: tf.Tensor4D): Promise<Int32Array> {
    const labels = await this.blackBox.labels(x);
    if (labels.length !== x.shape[0]) throw new InputError('blackBox', `answered ${labels.length} labels for ${x.shape[0]} images`);
    this.queries += x.shape[0];
    return labels;
  }

  /** Phase 1: b's answers on every training image, then `staticEpochs` epochs of the surrogate on them. Returns the surrogate's agreement with b on the training images after it. */
  async distillStatic(train: ImageSet): Promise<number> {
    const batchSize = this.options.batchSize ?? DISTILLATION_DEFAULTS.batchSize;
    const labels = new Int32Array(train.count);
    for (const idx of batchOrder(train.count, batchSize)) {
      const batch = makeBatch(train, idx);
      try {
        const answers = await this.ask(batch.x as tf.Tensor4D);
        idx.forEach((i, k) => (labels[i] = answers[k]));
      } finally {
        tf.dispose([batch.x, batch.y]);
      }
    }
    this.cleanLabels = labels;
    const rng = new Rng(deriveSeed(this.options.seed, 'static-distillation'));
    for (let e = 0; e < (this.options.staticEpochs ?? DISTILLATION_DEFAULTS.staticEpochs); e++) {
      for (const idx of batchOrder(train.count, batchSize, rng)) {
        const batch = makeBatch(train, idx);
        try {
          this.fit(batch.x as tf.Tensor4D, Int32Array.from(idx, (i) => labels[i]));
        } finally {
          tf.dispose([batch.x, batch.y]);
        }
        await yieldToEventLoop();
      }
    }
    this.staticAgreement = await this.agreement(train, labels, batchSize);
    return this.staticAgreement;
  }

  /**
   * Phase 2, after a generator step on the batch `indices` of the training
   * set: b's answers on `perturbed` (counted), then one step of the surrogate
   * on the clean and perturbed images. Returns the share of `perturbed` on
   * which the surrogate agreed with b before its step.
   */
  async distillStep(x: tf.Tensor4D, indices: Int32Array, perturbed: tf.Tensor4D): Promise<number> {
    if (!this.cleanLabels) throw new InputError('distillStep', 'run distillStatic (or restore a checkpoint) first');
    const answers = await this.ask(perturbed);
    const predicted = await readOne(tf.tidy(() => this.classifier.predict(perturbed)));
    const agreement = answers.filter((a, i) => a === predicted[i]).length / answers.length;
    const clean = Int32Array.from(indices, (i) => this.cleanLabels![i]);
    const both = tf.concat([x, perturbed]);
    try {
      const labels = new Int32Array(clean.length + answers.length);
      labels.set(clean, 0);
      labels.set(answers, clean.length);
      this.fit(both as tf.Tensor4D, labels);
    } finally {
      both.dispose();
    }
    return agreement;
  }

  /** One Adam step of the surrogate: mean cross-entropy toward b's labels, from logits. */
  private fit(x: tf.Tensor4D, labels: Int32Array): void {
    const y = tf.tensor1d(labels, 'int32');
    try {
      const loss = this.optimizer.minimize(() => tf.mean(crossEntropy(this.surrogate.apply(x, { training: true }) as tf.Tensor2D, y)) as tf.Scalar, true, this.vars);
      loss?.dispose();
    } finally {
      y.dispose();
    }
  }

  private async agreement(train: ImageSet, labels: Int32Array, batchSize: number): Promise<number> {
    let same = 0;
    for (const idx of batchOrder(train.count, batchSize)) {
      const batch = makeBatch(train, idx);
      try {
        const p = await readOne(tf.tidy(() => this.classifier.predict(batch.x as tf.Tensor4D)));
        idx.forEach((i, k) => (same += p[k] === labels[i] ? 1 : 0));
      } finally {
        tf.dispose([batch.x, batch.y]);
      }
    }
    return same / train.count;
  }

  /** The state and files a checkpoint keeps (see pair-checkpoint.ts's extra state). */
  async pack(): Promise<{ state: DistillationState; files: Record<string, Uint8Array> }> {
    if (!this.cleanLabels) throw new InputError('pack', 'nothing to save before distillStatic');
    const w = packModelWeights(this.surrogate);
    const o = await packOptimizer(this.optimizer);
    const labels = new Uint8Array(this.cleanLabels.buffer.slice(this.cleanLabels.byteOffset, this.cleanLabels.byteOffset + this.cleanLabels.byteLength));
    return { state: { queries: this.queries, staticAgreement: this.staticAgreement, surrogateSpecs: w.specs, surrogateOptimizer: o.state }, files: { [FILES.weights]: w.data, [FILES.optimizer]: o.data, [FILES.labels]: labels } };
  }

  /** Restores the surrogate, its optimizer, b's cached answers and the query count from a checkpoint written by {@link pack}. */
  async restore(ck: LoadedCheckpoint<{ distillation?: DistillationState }>, trainCount: number): Promise<void> {
    const state = ck.state.distillation;
    if (!state) throw new InputError('resume', 'the checkpoint was written by a white-box run; delete it or drop black-box mode');
    restoreModelWeights(this.surrogate, state.surrogateSpecs, ck.read(FILES.weights), ck.name(FILES.weights));
    await restoreOptimizer(this.optimizer, state.surrogateOptimizer, ck.read(FILES.optimizer), ck.name(FILES.optimizer));
    const bytes = ck.read(FILES.labels);
    if (bytes.byteLength !== trainCount * 4) throw new InputError('resume', `${ck.name(FILES.labels)} holds ${bytes.byteLength / 4} labels for ${trainCount} training images`);
    this.cleanLabels = new Int32Array(bytes.slice().buffer);
    this.queries = state.queries;
    this.staticAgreement = state.staticAgreement;
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
