/**
 * Unrestricted adversarial examples from a generator's latent space (Song,
 * Shu, Kushman & Ermon, "Constructing unrestricted adversarial examples with
 * generative models", NeurIPS 2018). Instead of perturbing a real image, the
 * attack searches a latent code z near a starting code z0 so that the
 * generated image G(z, s) of the source class s is read as the target class t
 * by the attacked model f, while the generator's own auxiliary classifier
 * still reads s. Per search it minimises the paper's objective:
 *
 *   L(z) = CE(f(G(z, s)), t)                                    (attack)
 *        + λ1 · (1/m) Σ_i max(|z_i − z0_i| − ε, 0)              (stay near z0)
 *        + λ2 · CE(aux(G(z, s)), s)                              (stay class s)
 *
 * with Adam on z for a fixed number of steps. The examples are in no
 * eps-ball of any real image, so whether they still show the source class is
 * judged apart, by an independent classifier ({@link validatorPredictions}).
 *
 * Two generators ({@link LatentGenerator}):
 * - the class-conditional acgan (architectures.ts), G(z, onehot(s)), with its
 *   discriminator's auxiliary class head as aux; z0 ~ N(0, I), seeded;
 * - an adversarial autoencoder's decoder, G(z) = sigmoid(decoder(z)), with
 *   z0 = encoder(x) of a real image x of the source class. A gaussian,
 *   mixture or swiss-roll AAE (advlab's shipped mnist AAE is one: trained
 *   without labels) has no class head, so there is no auxiliary term: λ2 does
 *   not apply and the source class enters only through x.
 *
 * Choices, and where they differ from the reference code
 * (ermongroup/generative_adversary, main.py):
 * - The distance term is the paper's, max(|z − z0| − ε, 0); the code squares
 *   both sides, max((z − z0)² − ε², 0). λ2 = 100 and ε = 0.1 are the code's
 *   defaults; λ1 is 10, not its 100 (measured: see LATENT_SEARCH_DEFAULTS).
 * - The optimiser: the code takes 1000 plain gradient steps of rate 1 with
 *   annealed Gaussian noise on the gradient. Here Adam (rate
 *   {@link LATENT_SEARCH_DEFAULTS}.learningRate, β 0.9/0.999), with no noise,
 *   so a seed fixes every search; Adam's steps do not depend on the scale of
 *   the gradient, which differs from generator to generator and from model
 *   to model, so one rate serves them all.
 * - Each search's objective is summed over the batch, not averaged, so the
 *   gradient of a search is its own whatever the batch holds.
 * - The kept example is the iterate at the FIRST step at which the attacked
 *   model reads the target (step 0 is z0 itself): along the path from z0 it is
 *   the one that has moved least, so the least likely to have become another
 *   digit; a batch stops once all its searches have succeeded. A search that
 *   never succeeds keeps its last iterate. (The code runs every step and
 *   keeps the last iterate.) Every kept image is then generated and
 *   classified again (the verdict is that second reading).
 * - Generator, discriminator and attacked model run in inference mode: batch
 *   norm uses its moving statistics (in training mode tfjs-layers would
 *   update them, changing the models).
 */
import { tf, tfl } from '../engine/tf.js';
import { readAndDispose } from '../engine/read.js';
import { InputError } from '../errors.js';
import type { Classifier } from '../models/classifier.js';
import { Rng, deriveSeed } from '../util/rng.js';
import { latentCodes } from './gan/sample.js';

/**
 * A generator whose latent space is searched: images of codes, and optionally
 * a classifier of its own (the auxiliary head).
 */
export interface LatentGenerator {
  /** `acgan` (z and a class in) or `aae` (an AAE's decoder: z in). */
  readonly kind: 'acgan' | 'aae';
  readonly latentDim: number;
  /** [h, w, c] of its images. */
  readonly imageShape: readonly [number, number, number];
  /** Classes of its one-hot input (acgan); null when it takes none (aae). */
  readonly numClasses: number | null;
  /** Images in [0, 1] of the codes `z` [n, latentDim] for the classes `sources` [n]; differentiable; inference mode. Call inside tf.tidy. */
  generate(z: tf.Tensor2D, sources: tf.Tensor1D): tf.Tensor4D;
  /** The auxiliary classifier's logits [n, K] of images (acgan's discriminator head); absent when the generator has none. Call inside tf.tidy. */
  auxiliaryLogits?: (images: tf.Tensor4D) => tf.Tensor2D;
}

/**
 * An acgan's generator and discriminator as a {@link LatentGenerator}: images
 * G(z, onehot(s)), and the discriminator's second output (K class logits) as
 * the auxiliary classifier. The models stay the caller's to dispose.
 * @throws InputError naming `generator` (not a conditional generator [z, class] → image) or `discriminator` (no class head of as many classes, or another image shape).
 */
export function acganLatentGenerator(generator: tfl.LayersModel, discriminator: tfl.LayersModel): LatentGenerator {
  const zShape = generator.inputs[0]?.shape;
  const classShape = generator.inputs[1]?.shape;
  const out = generator.outputs[0]?.shape;
  if (generator.inputs.length !== 2 || zShape?.length !== 2 || classShape?.length !== 2 || out?.length !== 4) {
    throw new InputError('generator', 'expected a class-conditional GAN generator: inputs [z, one-hot class], images [n, h, w, c] out (advlab gan --arch acgan)');
  }
  const numClasses = classShape[1] as number;
  const imageShape = out.slice(1) as [number, number, number];
  const heads = discriminator.outputs;
  if (discriminator.inputs.length !== 1 || heads.length !== 2 || heads[1].shape[1] !== numClasses) {
    throw new InputError('discriminator', `expected an auxiliary-classifier discriminator: one image input, outputs [real/fake logit, ${numClasses} class logits] (advlab gan --arch acgan)`);
  }
  const dShape = discriminator.inputs[0].shape.slice(1);
  if (dShape.some((d, i) => d !== imageShape[i])) throw new InputError('discriminator', `takes images of [${dShape.join(', ')}], the generator makes [${imageShape.join(', ')}]`);
  return {
    kind: 'acgan',
    latentDim: zShape[1] as number,
    imageShape,
    numClasses,
    generate: (z, sources) => generator.apply([z, tf.cast(tf.oneHot(sources, numClasses), 'float32')], { training: false }) as tf.Tensor4D,
    auxiliaryLogits: (images) => (discriminator.apply(images, { training: false }) as tf.Tensor[])[1] as tf.Tensor2D,
  };
}

/**
 * An adversarial autoencoder's decoder as a {@link LatentGenerator}: images
 * sigmoid(decoder(z)) (advlab's decoders output logits), no class input, no
 * auxiliary classifier. Start its searches at encoder(x) of real images
 * (aae/architectures.ts's encodeImages). The model stays the caller's.
 * @throws InputError naming `decoder` when it does not map codes [n, d] to images [n, h, w, c] (a categorical AAE's decoder, which takes [y, z], is refused by the caller, which knows its encoder).
 */
export function aaeLatentGenerator(decoder: tfl.LayersModel): LatentGenerator {
  const zShape = decoder.inputs[0]?.shape;
  const out = decoder.outputs[0]?.shape;
  if (decoder.inputs.length !== 1 || zShape?.length !== 2 || out?.length !== 4) throw new InputError('decoder', 'expected an AAE decoder: codes [n, d] in, image logits [n, h, w, c] out');
  return {
    kind: 'aae',
    latentDim: zShape[1] as number,
    imageShape: out.slice(1) as [number, number, number],
    numClasses: null,
    generate: (z) => tf.sigmoid(decoder.apply(z, { training: false }) as tf.Tensor) as tf.Tensor4D,
  };
}

/**
 * Defaults of {@link latentSearch}. ε = 0.1 and λ2 = 100 are the reference
 * code's defaults (ermongroup/generative_adversary main.py: z_eps = 0.1,
 * lambda1 = lambda2 = 100). λ1 is 10, not the code's 100: the code's
 * squared term pulls a coordinate back in proportion to how far it strayed,
 * the paper's hinge (used here) with a constant λ1/m, and at λ1 = 100 that
 * pull held 93 of 100 searches away from the target. Adam's rate 0.05 and 200
 * steps are ours (the code: 1000 noisy SGD steps of rate 1). Measured on an
 * acgan of `advlab gan --arch acgan --epochs 15 --workers 1` against the shipped mnist
 * small-cnn, 100 searches, seed 0, validity by the shipped LeNet:
 *
 * | λ1, λ2, rate, steps | success | valid among successes |
 * |---|---|---|
 * | 100, 100, 0.05, 100 | 7% | 100% |
 * | 10, 100, 0.01, 200 | 64% | 97% |
 * | 10, 100, 0.05, 100 | 83% | 93% |
 * | **10, 100, 0.05, 200** | **91%** | **91%** |
 * | 10, 100, 0.1, 100 | 91% | 89% |
 * | 3, 100, 0.05, 100 | 94% | 90% |
 * | 10, 0, 0.05, 100 | 96% | 75% |
 *
 * The last row is why the auxiliary term stays: without it a quarter of the
 * "successes" had stopped looking like their source class.
 */
export const LATENT_SEARCH_DEFAULTS = { steps: 200, learningRate: 0.05, lambda1: 10, lambda2: 100, latentEps: 0.1, batchSize: 100 } as const;

/** Options of {@link latentSearch}; defaults in {@link LATENT_SEARCH_DEFAULTS}. */
export interface LatentSearchOptions {
  /** Adam steps per search (at most; a batch stops when all its searches succeeded). */
  steps?: number;
  /** Adam's rate on z. */
  learningRate?: number;
  /** Weight of the distance term. */
  lambda1?: number;
  /** Weight of the auxiliary classifier's cross-entropy toward the source; only for a generator with one (default 100 then). */
  lambda2?: number;
  /** ε: how far each coordinate of z may move from z0 before the distance term costs anything. */
  latentEps?: number;
  /** Searches run at once. */
  batchSize?: number;
  onProgress?: (event: LatentSearchEvent) => void;
}

/** What {@link latentSearch} reports while it runs: a batch's start, each of its steps (`succeeded` of its `searches` so far), its end. */
export type LatentSearchEvent =
  | { type: 'search-batch'; batch: number; batches: number; searches: number }
  | { type: 'search-step'; batch: number; step: number; steps: number; succeeded: number; searches: number }
  | { type: 'search-batch-end'; batch: number; batches: number; succeeded: number; searches: number; steps: number };

/** What {@link latentSearch} searches: one source, target and starting code per search. */
export interface LatentSearchInput {
  /** Source class of each search (what G is asked for, or the class of the real image behind z0). */
  sources: Int32Array;
  /** The class the attacked model should read, one per search, never the source. */
  targets: Int32Array;
  /** Starting codes, row-major [n, latentDim]. */
  z0: Float32Array;
}

/** The searches' outcome, search by search (index i in every array). */
export interface LatentSearchResult {
  count: number;
  latentDim: number;
  imageShape: [number, number, number];
  sources: Int32Array;
  targets: Int32Array;
  /** Starting and kept codes, row-major [n, latentDim]. */
  z0: Float32Array;
  z: Float32Array;
  /** G(z0, s) and G(z, s), NHWC in [0, 1]. */
  initialImages: Float32Array;
  images: Float32Array;
  /** The attacked model's reading of the initial and of the kept images. */
  initialPredictions: Int32Array;
  predictions: Int32Array;
  /** The attacked model's softmax probability of the target on the kept image. */
  targetProbabilities: Float32Array;
  /** 1 where the attacked model reads the target on the kept image. */
  success: Uint8Array;
  /** The step whose iterate was kept when it succeeded (0: z0 already did), -1 for a search that never succeeded. */
  firstSuccessStep: Int32Array;
  /** The auxiliary classifier's reading of the kept images; null without one. */
  auxiliaryPredictions: Int32Array | null;
  /** Per search at the kept code: the distance term (1/m) Σ max(|z − z0| − ε, 0), and max_i |z_i − z0_i|. */
  distancePenalty: Float32Array;
  latentLinf: Float32Array;
  /** Adam updates made, summed over the batches (each moves the whole batch). */
  steps: number;
  /** Gradient evaluations of the attacked model: images differentiated (a batch's last reading, after which it stopped, included). */
  gradients: number;
  seconds: number;
  /** The settings used, defaults filled in; lambda2 null when the generator has no auxiliary classifier. */
  options: { steps: number; learningRate: number; lambda1: number; lambda2: number | null; latentEps: number; batchSize: number };
}

/**
 * The distance term per search: (1/m) Σ_i max(|z_i − z0_i| − ε, 0) over the m
 * coordinates of each row (Song et al. 2018's soft constraint): zero while z
 * stays in the box of half-width ε around z0, then growing linearly.
 * @param z codes [n, m]
 * @param z0 starting codes [n, m]
 * @throws InputError naming `z0` (another shape) or `latentEps` (negative or not finite)
 */
export function latentDistancePenalty(z: tf.Tensor2D, z0: tf.Tensor2D, latentEps: number): tf.Tensor1D {
  if (!(latentEps >= 0 && Number.isFinite(latentEps))) throw new InputError('latentEps', `expected a finite number >= 0, got ${latentEps}`);
  if (z.shape[0] !== z0.shape[0] || z.shape[1] !== z0.shape[1]) throw new InputError('z0', `expected the shape of z [${z.shape.join(', ')}], got [${z0.shape.join(', ')}]`);
  return tf.tidy(() => tf.mean(tf.relu(tf.sub(tf.abs(tf.sub(z, z0)), latentEps)), 1) as tf.Tensor1D);
}

/** Softmax cross-entropy per example of `logits` [n, K] toward `classes` [n]. */
export function crossEntropyToward(logits: tf.Tensor2D, classes: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(classes, logits.shape[1])), 1)) as tf.Tensor1D);
}

/** The three terms of the objective and their weighted sum, per search. */
export interface LatentObjectiveTerms {
  /** CE(f(G(z, s)), t). */
  attack: tf.Tensor1D;
  /** (1/m) Σ max(|z − z0| − ε, 0). */
  distance: tf.Tensor1D;
  /** CE(aux(G(z, s)), s); null without an auxiliary classifier. */
  auxiliary: tf.Tensor1D | null;
  /** attack + λ1 distance + λ2 auxiliary. */
  total: tf.Tensor1D;
}

/**
 * The objective of each search from its parts (see the module comment):
 * attacked-model logits, codes, auxiliary logits (or null). Differentiable.
 * The caller owns the returned tensors (or calls this inside tf.tidy).
 */
export function latentObjective(
  parts: { logits: tf.Tensor2D; targets: tf.Tensor1D; z: tf.Tensor2D; z0: tf.Tensor2D; auxiliaryLogits: tf.Tensor2D | null; sources: tf.Tensor1D },
  weights: { lambda1: number; lambda2: number; latentEps: number },
): LatentObjectiveTerms {
  return tf.tidy(() => {
    const attack = crossEntropyToward(parts.logits, parts.targets);
    const distance = latentDistancePenalty(parts.z, parts.z0, weights.latentEps);
    const auxiliary = parts.auxiliaryLogits ? crossEntropyToward(parts.auxiliaryLogits, parts.sources) : null;
    let total = tf.add(attack, tf.mul(distance, weights.lambda1));
    if (auxiliary) total = tf.add(total, tf.mul(auxiliary, weights.lambda2));
    return { attack, distance, auxiliary, total: total as tf.Tensor1D } as LatentObjectiveTerms & tf.TensorContainerObject;
  });
}

/**
 * Seeded starting codes for an acgan's searches: `n` rows of N(0, I), the
 * generator's prior (as the reference code draws them).
 */
export function initialCodes(n: number, latentDim: number, seed: number): Float32Array {
  if (!Number.isSafeInteger(n) || n < 1) throw new InputError('n', `expected a positive integer, got ${n}`);
  if (!Number.isSafeInteger(latentDim) || latentDim < 1) throw new InputError('latentDim', `expected a positive integer, got ${latentDim}`);
  checkSeed(seed);
  return latentCodes(new Rng(deriveSeed(seed, 'latent-search-z0')), n, latentDim);
}

/** deriveSeed takes any number; a run's seed is an unsigned 32-bit integer, as everywhere in advlab. */
function checkSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new InputError('seed', `expected an integer in [0, 2^32), got ${seed}`);
}

/**
 * Source and target classes of `n` searches, class-balanced and seeded: the
 * sources cycle through `sources` (default every class) in order, and each
 * source's targets through a fresh random order of its allowed targets
 * (`targets`, default every class, minus the source itself), so every pair
 * comes up as evenly as n allows.
 * @throws InputError naming `sources` or `targets` (classes out of range, repeated, or a source with no target but itself)
 */
export function searchPairs(n: number, numClasses: number, seed: number, restrict: { sources?: readonly number[]; targets?: readonly number[] } = {}): { sources: Int32Array; targets: Int32Array } {
  if (!Number.isSafeInteger(n) || n < 1) throw new InputError('n', `expected a positive integer, got ${n}`);
  checkSeed(seed);
  const all = Array.from({ length: numClasses }, (_, c) => c);
  const check = (name: 'sources' | 'targets', classes: readonly number[] | undefined): number[] => {
    if (classes === undefined) return all;
    if (classes.length === 0 || classes.some((c) => !Number.isInteger(c) || c < 0 || c >= numClasses)) throw new InputError(name, `expected classes in [0, ${numClasses - 1}], got [${classes.join(', ')}]`);
    if (new Set(classes).size !== classes.length) throw new InputError(name, `a class is listed twice: [${classes.join(', ')}]`);
    return [...classes];
  };
  const sourceList = check('sources', restrict.sources);
  const targetList = check('targets', restrict.targets);
  const rng = new Rng(deriveSeed(seed, 'latent-search-pairs'));
  const queues = new Map<number, number[]>();
  const sources = new Int32Array(n);
  const targets = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const s = sourceList[i % sourceList.length];
    const allowed = targetList.filter((t) => t !== s);
    if (allowed.length === 0) throw new InputError('targets', `source class ${s} has no target but itself; give targets other than the source`);
    let queue = queues.get(s);
    if (!queue || queue.length === 0) {
      queue = Array.from(rng.permutation(allowed.length), (j) => allowed[j]);
      queues.set(s, queue);
    }
    sources[i] = s;
    targets[i] = queue.shift()!;
  }
  return { sources, targets };
}

/**
 * Runs the searches (see the module comment) in batches of `batchSize`, each
 * from its z0; keeps each search's first successful iterate. No tensor
 * outlives the call; values are read with one awaited read per step.
 * @throws InputError naming `sources`, `targets`, `z0`, `classifier`, `steps`, `learningRate`, `lambda1`, `lambda2` (set for a generator without an auxiliary classifier), `latentEps` or `batchSize`
 */
export async function latentSearch(generator: LatentGenerator, classifier: Classifier, input: LatentSearchInput, options: LatentSearchOptions = {}): Promise<LatentSearchResult> {
  const o = resolveOptions(generator, options);
  const n = checkInput(generator, classifier, input);
  const d = generator.latentDim;
  const t0 = performance.now();
  const z = new Float32Array(n * d);
  const firstSuccessStep = new Int32Array(n).fill(-1);
  const batches = Math.ceil(n / o.batchSize);
  let steps = 0;
  let gradients = 0;
  for (let b = 0; b < batches; b++) {
    const start = b * o.batchSize;
    const m = Math.min(o.batchSize, n - start);
    options.onProgress?.({ type: 'search-batch', batch: b + 1, batches, searches: m });
    const rows = { sources: input.sources.subarray(start, start + m), targets: input.targets.subarray(start, start + m), z0: input.z0.subarray(start * d, (start + m) * d) };
    const taken = await searchBatch(generator, classifier, rows, o, z.subarray(start * d, (start + m) * d), firstSuccessStep.subarray(start, start + m), (step, succeeded) =>
      options.onProgress?.({ type: 'search-step', batch: b + 1, step, steps: o.steps, succeeded, searches: m }),
    );
    steps += taken.updates;
    gradients += taken.gradients;
    options.onProgress?.({ type: 'search-batch-end', batch: b + 1, batches, succeeded: taken.succeeded, searches: m, steps: taken.updates });
  }
  const verdict = await judge(generator, classifier, input, z, o);
  const success = Uint8Array.from(verdict.predictions, (p, i) => (p === input.targets[i] ? 1 : 0));
  return {
    count: n,
    latentDim: d,
    imageShape: [...generator.imageShape],
    sources: Int32Array.from(input.sources),
    targets: Int32Array.from(input.targets),
    z0: Float32Array.from(input.z0),
    z,
    ...verdict,
    success,
    firstSuccessStep,
    steps,
    gradients,
    seconds: (performance.now() - t0) / 1000,
    options: { ...o, lambda2: generator.auxiliaryLogits ? o.lambda2 : null },
  };
}

type Resolved = { steps: number; learningRate: number; lambda1: number; lambda2: number; latentEps: number; batchSize: number };

function resolveOptions(generator: LatentGenerator, options: LatentSearchOptions): Resolved {
  const D = LATENT_SEARCH_DEFAULTS;
  const steps = options.steps ?? D.steps;
  if (!Number.isSafeInteger(steps) || steps < 0) throw new InputError('steps', `expected an integer >= 0, got ${steps}`);
  const batchSize = options.batchSize ?? D.batchSize;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new InputError('batchSize', `expected a positive integer, got ${batchSize}`);
  const learningRate = options.learningRate ?? D.learningRate;
  if (!(learningRate > 0 && Number.isFinite(learningRate))) throw new InputError('learningRate', `expected a positive number, got ${learningRate}`);
  const weight = (name: 'lambda1' | 'lambda2' | 'latentEps', value: number) => {
    if (!(value >= 0 && Number.isFinite(value))) throw new InputError(name, `expected a finite number >= 0, got ${value}`);
    return value;
  };
  if (options.lambda2 !== undefined && !generator.auxiliaryLogits) {
    throw new InputError('lambda2', `the ${generator.kind} generator has no auxiliary classifier, so there is no term for λ2 to weigh; leave it unset`);
  }
  return { steps, batchSize, learningRate, lambda1: weight('lambda1', options.lambda1 ?? D.lambda1), lambda2: weight('lambda2', options.lambda2 ?? D.lambda2), latentEps: weight('latentEps', options.latentEps ?? D.latentEps) };
}

/** The number of searches, after checking that the input fits the generator and the classifier. */
function checkInput(generator: LatentGenerator, classifier: Classifier, input: LatentSearchInput): number {
  const { sources, targets, z0 } = input;
  if (!(sources instanceof Int32Array) || sources.length < 1) throw new InputError('sources', 'expected an Int32Array of one source class per search (at least one)');
  const n = sources.length;
  if (!(targets instanceof Int32Array) || targets.length !== n) throw new InputError('targets', `expected an Int32Array of ${n} target classes (one per search)`);
  if (!(z0 instanceof Float32Array) || z0.length !== n * generator.latentDim) throw new InputError('z0', `expected a Float32Array of ${n} x ${generator.latentDim} values (one code per search)`);
  if (!z0.every(Number.isFinite)) throw new InputError('z0', 'holds a value that is not finite');
  const shape = generator.imageShape;
  if (classifier.inputShape.some((v, i) => v !== shape[i])) throw new InputError('classifier', `takes images of [${classifier.inputShape.join(', ')}], the generator makes [${shape.join(', ')}]`);
  const K = classifier.numClasses;
  if (generator.numClasses !== null && generator.numClasses !== K) throw new InputError('classifier', `has ${K} classes, the generator ${generator.numClasses}`);
  for (let i = 0; i < n; i++) {
    if (!(sources[i] >= 0 && sources[i] < K)) throw new InputError('sources', `search ${i}: class ${sources[i]} is not in [0, ${K - 1}]`);
    if (!(targets[i] >= 0 && targets[i] < K)) throw new InputError('targets', `search ${i}: class ${targets[i]} is not in [0, ${K - 1}]`);
    if (targets[i] === sources[i]) throw new InputError('targets', `search ${i}: the target is the source class ${sources[i]}`);
  }
  return n;
}

/**
 * One batch: Adam on z from z0 for up to `steps` updates, the first
 * successful iterate of each row written to `zOut` and its step to
 * `firstStep`; returns the updates made, the images differentiated and the
 * searches that succeeded.
 */
async function searchBatch(
  generator: LatentGenerator,
  classifier: Classifier,
  rows: { sources: Int32Array; targets: Int32Array; z0: Float32Array },
  o: Resolved,
  zOut: Float32Array,
  firstStep: Int32Array,
  onStep: (step: number, succeeded: number) => void,
): Promise<{ updates: number; gradients: number; succeeded: number }> {
  const m = rows.sources.length;
  const d = generator.latentDim;
  const sources = tf.tensor1d(rows.sources, 'int32');
  const targets = tf.tensor1d(rows.targets, 'int32');
  const z0 = tf.tensor2d(rows.z0, [m, d]);
  // The variable shares z0's buffer until Adam's first update assigns it a new one.
  const z = tf.variable(z0, true);
  const adam = tf.train.adam(o.learningRate, 0.9, 0.999);
  let succeeded = 0;
  let gradients = 0;
  try {
    // Step k reads the attacked model at the k-th iterate (the gradient comes
    // from the same forward pass), then moves it unless the batch is done.
    for (let step = 0; ; step++) {
      const current = tf.clone(z);
      let predictions: tf.Tensor;
      let grads: tf.NamedTensorMap | null = null;
      if (step < o.steps) {
        let kept: tf.Tensor | undefined;
        const { value, grads: g } = tf.variableGrads(() => {
          const images = generator.generate(z as tf.Tensor2D, sources);
          const logits = classifier.logits(images);
          kept = tf.keep(tf.argMax(logits, 1));
          const auxiliaryLogits = generator.auxiliaryLogits ? generator.auxiliaryLogits(images) : null;
          return tf.sum(latentObjective({ logits, targets, z: z as tf.Tensor2D, z0, auxiliaryLogits, sources }, o).total) as tf.Scalar;
        }, [z]);
        value.dispose();
        grads = g;
        predictions = kept!;
        gradients += m;
      } else {
        predictions = tf.tidy(() => tf.argMax(classifier.logits(generator.generate(z as tf.Tensor2D, sources)), 1));
      }
      const [p, zv] = await readAndDispose([predictions, current]);
      for (let i = 0; i < m; i++) {
        if (firstStep[i] < 0 && p[i] === rows.targets[i]) {
          firstStep[i] = step;
          zOut.set(zv.subarray(i * d, (i + 1) * d), i * d);
          succeeded++;
        }
      }
      onStep(step, succeeded);
      if (succeeded === m || step === o.steps) {
        if (grads) tf.dispose(Object.values(grads));
        for (let i = 0; i < m; i++) if (firstStep[i] < 0) zOut.set(zv.subarray(i * d, (i + 1) * d), i * d);
        return { updates: step, gradients, succeeded };
      }
      adam.applyGradients(Object.entries(grads!).map(([name, tensor]) => ({ name, tensor })));
      tf.dispose(Object.values(grads!));
    }
  } finally {
    adam.dispose();
    tf.dispose([z, z0, sources, targets]);
  }
}

/**
 * The verdict on the kept codes, batch by batch: the initial and kept images,
 * the attacked model's readings of both, its probability of the target, the
 * auxiliary classifier's reading and the distance from z0.
 */
async function judge(generator: LatentGenerator, classifier: Classifier, input: LatentSearchInput, zKept: Float32Array, o: Resolved) {
  const n = input.sources.length;
  const d = generator.latentDim;
  const size = generator.imageShape.reduce((a, b) => a * b, 1);
  const out = {
    initialImages: new Float32Array(n * size),
    images: new Float32Array(n * size),
    initialPredictions: new Int32Array(n),
    predictions: new Int32Array(n),
    targetProbabilities: new Float32Array(n),
    auxiliaryPredictions: generator.auxiliaryLogits ? new Int32Array(n) : null,
    distancePenalty: new Float32Array(n),
    latentLinf: new Float32Array(n),
  };
  for (let start = 0; start < n; start += o.batchSize) {
    const m = Math.min(o.batchSize, n - start);
    const tensors = tf.tidy(() => {
      const sources = tf.tensor1d(input.sources.subarray(start, start + m), 'int32');
      const targets = tf.tensor1d(input.targets.subarray(start, start + m), 'int32');
      const z0 = tf.tensor2d(input.z0.subarray(start * d, (start + m) * d), [m, d]);
      const z = tf.tensor2d(zKept.subarray(start * d, (start + m) * d), [m, d]);
      const initial = generator.generate(z0, sources);
      const images = generator.generate(z, sources);
      const logits = classifier.logits(images);
      const targetProbability = tf.sum(tf.mul(tf.softmax(logits), tf.oneHot(targets, logits.shape[1])), 1);
      const aux = generator.auxiliaryLogits ? tf.argMax(generator.auxiliaryLogits(images), 1) : tf.zeros([m], 'int32');
      const linf = tf.max(tf.abs(tf.sub(z, z0)), 1);
      return [initial, images, tf.argMax(classifier.logits(initial), 1), tf.argMax(logits, 1), targetProbability, aux, latentDistancePenalty(z, z0, o.latentEps), linf];
    });
    const [initial, images, initialPredictions, predictions, targetProbabilities, aux, distance, linf] = await readAndDispose(tensors);
    out.initialImages.set(initial, start * size);
    out.images.set(images, start * size);
    out.initialPredictions.set(initialPredictions, start);
    out.predictions.set(predictions, start);
    out.targetProbabilities.set(targetProbabilities, start);
    out.auxiliaryPredictions?.set(aux, start);
    out.distancePenalty.set(distance, start);
    out.latentLinf.set(linf, start);
  }
  return out;
}

/**
 * The independent classifier's reading of images (NHWC in [0, 1]), in
 * batches: the validity check of unrestricted examples, which no eps-ball
 * vouches for. Use a classifier other than the attacked model (the shipped
 * metric classifier of the dataset): the attacked model is wrong on them by
 * construction. No tensor outlives the call.
 */
export async function validatorPredictions(validator: Classifier, images: Float32Array, batchSize: number = LATENT_SEARCH_DEFAULTS.batchSize): Promise<Int32Array> {
  const shape = validator.inputShape;
  const size = shape[0] * shape[1] * shape[2];
  const n = images.length / size;
  if (!Number.isInteger(n)) throw new InputError('images', `expected a multiple of ${size} values (images of [${shape.join(', ')}]), got ${images.length}`);
  const out = new Int32Array(n);
  for (let start = 0; start < n; start += batchSize) {
    const m = Math.min(batchSize, n - start);
    const p = tf.tidy(() => validator.predict(tf.tensor4d(images.subarray(start * size, (start + m) * size), [m, ...shape])));
    out.set((await readAndDispose([p]))[0], start);
  }
  return out;
}

/** One search in result.json. */
export interface LatentSearchRecord {
  source: number;
  target: number;
  /** The attacked model reads the target on the kept image. */
  success: boolean;
  /** The independent classifier reads the source on the kept image. */
  valid: boolean;
  prediction: number;
  validatorPrediction: number;
  /** The auxiliary classifier's reading, or null without one. */
  auxiliaryPrediction: number | null;
  targetProbability: number;
  /** The step whose iterate was kept (0: z0 itself), or null when the search never succeeded. */
  firstSuccessStep: number | null;
  /** The attacked and the independent classifier on the starting image G(z0, s). */
  initialPrediction: number;
  initialValidatorPrediction: number;
  distancePenalty: number;
  latentLinf: number;
}

/** Rates over all searches. */
export interface LatentSearchSummary {
  count: number;
  /** The attacked model reads the target. */
  successRate: number;
  /** The independent classifier reads the source. */
  validityRate: number;
  /** Both: unrestricted adversarial examples that a second opinion calls valid. */
  validSuccessRate: number;
  /** Valid among the successes; null with none. */
  validityOfSuccesses: number | null;
  /** The independent classifier reads the source on the starting images: the validity the search started from. */
  initialValidityRate: number;
  /** The attacked model reads the source on the starting images. */
  initialSourceRate: number;
  /** The auxiliary classifier reads the source on the kept images; null without one. */
  auxiliarySourceRate: number | null;
  /** Median step of the kept iterate over the successes; null with none. */
  medianSuccessStep: number | null;
  /** Mean max_i |z_i − z0_i| of the kept codes. */
  meanLatentLinf: number;
}

/**
 * Per-search records and the rates over all searches, from a search's result
 * and the independent classifier's readings of its kept and starting images
 * ({@link validatorPredictions}).
 * @throws InputError naming `validity` when a reading is missing
 */
export function summarizeLatentSearch(result: LatentSearchResult, validity: { images: Int32Array; initialImages: Int32Array }): { summary: LatentSearchSummary; records: LatentSearchRecord[] } {
  const n = result.count;
  if (validity.images.length !== n || validity.initialImages.length !== n) throw new InputError('validity', `expected ${n} readings of the kept and of the starting images`);
  const records: LatentSearchRecord[] = Array.from({ length: n }, (_, i) => ({
    source: result.sources[i],
    target: result.targets[i],
    success: result.success[i] === 1,
    valid: validity.images[i] === result.sources[i],
    prediction: result.predictions[i],
    validatorPrediction: validity.images[i],
    auxiliaryPrediction: result.auxiliaryPredictions ? result.auxiliaryPredictions[i] : null,
    targetProbability: result.targetProbabilities[i],
    firstSuccessStep: result.firstSuccessStep[i] >= 0 ? result.firstSuccessStep[i] : null,
    initialPrediction: result.initialPredictions[i],
    initialValidatorPrediction: validity.initialImages[i],
    distancePenalty: result.distancePenalty[i],
    latentLinf: result.latentLinf[i],
  }));
  const rate = (keep: (r: LatentSearchRecord) => boolean) => records.filter(keep).length / n;
  const successes = records.filter((r) => r.success);
  const steps = successes.map((r) => r.firstSuccessStep!).sort((a, b) => a - b);
  const summary: LatentSearchSummary = {
    count: n,
    successRate: successes.length / n,
    validityRate: rate((r) => r.valid),
    validSuccessRate: rate((r) => r.valid && r.success),
    validityOfSuccesses: successes.length ? successes.filter((r) => r.valid).length / successes.length : null,
    initialValidityRate: rate((r) => r.initialValidatorPrediction === r.source),
    initialSourceRate: rate((r) => r.initialPrediction === r.source),
    auxiliarySourceRate: result.auxiliaryPredictions ? rate((r) => r.auxiliaryPrediction === r.source) : null,
    medianSuccessStep: steps.length ? median(steps) : null,
    meanLatentLinf: records.reduce((a, r) => a + r.latentLinf, 0) / n,
  };
  return { summary, records };
}

function median(sorted: number[]): number {
  const k = sorted.length >> 1;
  return sorted.length % 2 ? sorted[k] : (sorted[k - 1] + sorted[k]) / 2;
}
