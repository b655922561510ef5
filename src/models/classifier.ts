import { tf, tfl } from '../engine/tf.js';
import { InputError } from '../errors.js';

/** A function from a batch of images (in input scale) to logits [batch, classes]. */
export type LogitsFunction = (x: tf.Tensor4D) => tf.Tensor2D;

/** Normalization applied inside the classifier, per channel: (x - mean) / std. */
export interface Preprocessing {
  mean: number | readonly number[];
  std: number | readonly number[];
}

/** Options shared by every way of making a {@link Classifier}. */
export interface ClassifierOptions {
  /**
   * The valid input range, in the scale of the images you pass (default [0, 1]).
   * Attacks clip to it and their epsilon is measured in this scale.
   */
  bounds?: readonly [number, number];
  /**
   * Normalization the model expects, applied here, inside the classifier, so that
   * images, bounds and epsilon all stay in the input's own scale. Never normalize
   * images before handing them to an attack: an epsilon of 8/255 on inputs that
   * were divided by a std of 0.25 is really an epsilon of 32/255.
   */
  preprocess?: Preprocessing;
  /**
   * Called with the running totals after every call that spends queries or
   * gradients: the progress of a long attack where no timer can fire between
   * its steps (a worker whose reads resolve at once), or a budget watch. Keep
   * it cheap; it runs inside the attack's loop.
   */
  onCount?: (counts: { queries: number; gradients: number }) => void;
}

/** Where a model's logits come from. */
export type ModelLike =
  | tfl.LayersModel
  | { execute(x: tf.Tensor, outputs?: string | string[]): tf.Tensor | tf.Tensor[]; inputs: { shape?: number[] }[] };

/**
 * A classifier as attacks see it: logits in inference mode, input bounds,
 * optional preprocessing, class count, and counters of the queries (images
 * scored) and gradient evaluations (images differentiated) spent on it.
 * Every attack talks to a Classifier, never to a raw model.
 */
export class Classifier {
  readonly bounds: readonly [number, number];
  readonly inputShape: readonly [number, number, number];
  readonly numClasses: number;
  /** False for classifiers that must be attacked without gradients. */
  readonly hasGradients: boolean;
  private queryCount = 0;
  private gradientCount = 0;
  private readonly forward: LogitsFunction;
  private readonly mean?: tf.Tensor;
  private readonly std?: tf.Tensor;
  private readonly preprocessing?: Preprocessing;
  private layersModel?: tfl.LayersModel;
  private readonly onCount?: (counts: { queries: number; gradients: number }) => void;

  private constructor(forward: LogitsFunction, inputShape: readonly [number, number, number], numClasses: number, options: ClassifierOptions, hasGradients: boolean) {
    const bounds = options.bounds ?? [0, 1];
    if (bounds.length !== 2 || !Number.isFinite(bounds[0]) || !Number.isFinite(bounds[1]) || !(bounds[0] < bounds[1])) {
      throw new InputError('bounds', `expected [min, max] with finite min < max, got [${bounds.join(', ')}]`);
    }
    if (!Number.isInteger(numClasses) || numClasses < 2) throw new InputError('numClasses', `expected an integer >= 2, got ${numClasses}`);
    this.forward = forward;
    this.bounds = [bounds[0], bounds[1]];
    this.inputShape = inputShape;
    this.numClasses = numClasses;
    this.hasGradients = hasGradients;
    this.onCount = options.onCount;
    if (options.preprocess) {
      const channels = inputShape[2];
      this.mean = tf.keep(channelTensor(options.preprocess.mean, channels, 'preprocess.mean'));
      this.std = tf.keep(channelTensor(options.preprocess.std, channels, 'preprocess.std', true));
      this.preprocessing = { mean: options.preprocess.mean, std: options.preprocess.std };
    }
  }

  /**
   * Wraps a TF.js LayersModel (run with `training: false`, so dropout is off and
   * batch-norm uses its moving statistics) or a GraphModel.
   */
  static fromModel(model: ModelLike, options: ClassifierOptions = {}): Classifier {
    const isLayers = model instanceof tfl.LayersModel;
    const inShape = isLayers ? (model as tfl.LayersModel).inputs[0].shape : (model.inputs[0].shape ?? []);
    const [, h, w, c] = inShape;
    if (inShape.length !== 4 || !h || !w || !c || h < 0 || w < 0 || c < 0) throw new InputError('model', `expected an image model with input [batch, height, width, channels], got [${inShape.map((d) => d ?? 'batch').join(', ')}]`);
    const forward: LogitsFunction = isLayers
      ? (x) => (model as tfl.LayersModel).apply(x, { training: false }) as tf.Tensor2D
      : (x) => (model as { execute(x: tf.Tensor): tf.Tensor }).execute(x) as tf.Tensor2D;
    const numClasses = tf.tidy(() => forward(tf.zeros([1, h, w, c])).shape[1]);
    const classifier = new Classifier(forward, [h, w, c], numClasses, options, true);
    if (isLayers) classifier.layersModel = model as tfl.LayersModel;
    return classifier;
  }

  /**
   * Wraps a function that returns logits. Set `gradients: false` for a model that
   * may only be queried (black-box attacks never differentiate).
   */
  static fromFunction(fn: LogitsFunction, spec: ClassifierOptions & { inputShape: readonly [number, number, number]; numClasses: number; gradients?: boolean }): Classifier {
    return new Classifier(fn, spec.inputShape, spec.numClasses, spec, spec.gradients ?? true);
  }

  /** Logits for `x` (in input scale); differentiable; counts `x.shape[0]` queries. Call inside tf.tidy. */
  logits(x: tf.Tensor4D): tf.Tensor2D {
    this.queryCount += x.shape[0];
    this.onCount?.(this.counts);
    return this.forward(this.preprocessInput(x));
  }

  /** `x` normalized as the model expects it (the identity without preprocessing); per pixel, so it applies to any crop. Call inside tf.tidy. */
  preprocessInput(x: tf.Tensor4D): tf.Tensor4D {
    return (this.mean && this.std ? tf.div(tf.sub(x, this.mean), this.std) : x) as tf.Tensor4D;
  }

  /** Predicted labels (argmax of the logits). */
  predict(x: tf.Tensor4D): tf.Tensor1D {
    return tf.tidy(() => tf.argMax(this.logits(x), 1) as tf.Tensor1D);
  }

  /**
   * Per-example loss and its gradient with respect to the input, plus the logits
   * of that same forward pass. `loss` maps (logits, x) to one value per example;
   * the gradient is of their sum, so each example's gradient is its own. Counts
   * `x.shape[0]` gradient evaluations (and as many queries). The caller owns the
   * three returned tensors (or calls this inside tf.tidy).
   */
  valueAndGradient(x: tf.Tensor4D, loss: (logits: tf.Tensor2D, x: tf.Tensor4D) => tf.Tensor1D): { value: tf.Tensor1D; grad: tf.Tensor4D; logits: tf.Tensor2D } {
    if (!this.hasGradients) throw new InputError('classifier', 'this classifier gives no gradients; use a black-box attack (square, simba, hopskipjump)');
    this.gradientCount += x.shape[0];
    this.onCount?.(this.counts);
    let keptValue: tf.Tensor1D | undefined;
    let keptLogits: tf.Tensor2D | undefined;
    try {
      return tf.tidy(() => {
        const { value, grad } = tf.valueAndGrad((input: tf.Tensor4D) => {
          // tfjs runs this inside its own tidy scope: keep copies of what we return past it.
          const logits = this.logits(input);
          const perExample = loss(logits, input);
          keptLogits = tf.keep(tf.clone(logits));
          keptValue = tf.keep(tf.clone(perExample));
          return tf.sum(perExample) as tf.Scalar;
        })(x);
        value.dispose();
        // Tracked copies leave through this tidy; the kept ones are freed below.
        return { value: tf.clone(keptValue!), grad: grad as tf.Tensor4D, logits: tf.clone(keptLogits!) };
      });
    } finally {
      keptValue?.dispose();
      keptLogits?.dispose();
    }
  }

  /**
   * What it takes to rebuild this classifier elsewhere (e.g. in a worker
   * thread): the wrapped LayersModel, bounds and preprocessing. Null for a
   * classifier made from a function or a GraphModel.
   */
  get rebuildSpec(): { model: tfl.LayersModel; bounds: readonly [number, number]; preprocess?: Preprocessing } | null {
    if (!this.layersModel) return null;
    return { model: this.layersModel, bounds: this.bounds, ...(this.preprocessing ? { preprocess: this.preprocessing } : {}) };
  }

  /** Adds work done on a copy of this classifier (in a worker) to its counters. */
  addCounts(counts: { queries: number; gradients: number }): void {
    this.queryCount += counts.queries;
    this.gradientCount += counts.gradients;
  }

  /** Queries (images scored) and gradient evaluations (images differentiated) so far. */
  get counts(): { queries: number; gradients: number } {
    return { queries: this.queryCount, gradients: this.gradientCount };
  }

  resetCounts(): void {
    this.queryCount = 0;
    this.gradientCount = 0;
  }

  /** Frees the preprocessing constants (not the wrapped model). */
  dispose(): void {
    tf.dispose([this.mean, this.std].filter((t): t is tf.Tensor => !!t));
  }
}

function channelTensor(value: number | readonly number[], channels: number, argument: string, positive = false): tf.Tensor {
  const values = typeof value === 'number' ? new Array(channels).fill(value) : [...value];
  if (values.length !== channels) throw new InputError(argument, `expected 1 or ${channels} values (one per channel), got ${values.length}`);
  if (values.some((v) => !Number.isFinite(v) || (positive && v <= 0))) throw new InputError(argument, `expected finite${positive ? ' positive' : ''} numbers, got [${values.join(', ')}]`);
  return tf.tensor1d(values);
}
