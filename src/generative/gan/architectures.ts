/**
 * GAN architectures: a generator (latent code, and for the conditional one a
 * class, to an image in [0, 1]) and a discriminator (image, and class, to ONE
 * LOGIT per example: the losses in ../losses.ts apply the sigmoid themselves).
 *
 * - `mlp`: the fully connected GAN of Goodfellow et al. 2014 ("Generative
 *   adversarial nets", NeurIPS), with LeakyReLU instead of maxout and batch
 *   norm in the generator's hidden layers (measured on mnist: without it the
 *   generator drew one image for every z within 3 epochs; with it, Inception
 *   Score 3.6 after 12 epochs, still short of the dcgan's).
 * - `dcgan`: Radford et al. 2016 ("Unsupervised representation learning with
 *   deep convolutional GANs", ICLR): a dense projection, then transposed
 *   convolutions (stride 2, batch norm, ReLU) in the generator; strided
 *   convolutions with LeakyReLU 0.2 in the discriminator. Sized for 2 cores:
 *   two upsamplings from h/4 x w/4, base width 32 channels.
 * - `cgan`: the dcgan pair made class-conditional: the generator gets a
 *   one-hot class next to z (Mirza & Osindero 2014, "Conditional generative
 *   adversarial nets"), the discriminator scores (x, y) with a projection
 *   (Miyato & Koyama 2018, "cGANs with projection discriminator", ICLR):
 *   logit = psi(phi(x)) + embed(y) . phi(x).
 * - `acgan`: the cgan generator with an auxiliary-classifier discriminator
 *   (Odena et al. 2017, "Conditional image synthesis with auxiliary
 *   classifier GANs", ICML): the discriminator sees the image only and has
 *   two heads, the real/fake logit and K class logits. Training adds a
 *   cross-entropy on the class head (train-gan.ts), which pushes the
 *   generator toward samples a classifier assigns to the class asked for:
 *   measured on mnist, the projection cgan's samples were classified as
 *   their class only 78-86% of the time.
 * - `infogan`: the acgan pair, unsupervised (Chen et al. 2016, "InfoGAN:
 *   interpretable representation learning by information maximizing GANs",
 *   NeurIPS): the generator's one-hot input is a categorical code drawn
 *   uniformly, not a label, and the class head Q learns to read the code back
 *   from the generator's samples (the mutual-information term). No label is
 *   used: it is an unconditional model of p(x) = sum_c p(c) p(x | c). The term
 *   makes every code a distinct, recognisable mode; on mnist the codes mostly
 *   become digits (the paper: 5% error).
 * - `scgan`: the cgan pair, self-conditioned (Liu et al. 2020, "Diverse image
 *   generation via self-conditioned GANs", CVPR): the classes are k-means
 *   clusters of the training images (gan-run.ts computes them; no label is
 *   read), and the generator draws a cluster in proportion to its size, so
 *   it is an unconditional model of p(x) = sum_c p(c) p(x | c). Liu et al.
 *   cluster the discriminator's features and re-cluster during training; a
 *   fixed clustering of the pixels is what fits 2 cores, and is enough: each
 *   cluster is a narrower target than the whole data, which the projection
 *   discriminator judges on its own. Measured on mnist with 100 clusters
 *   (the default): Inception Score 8.4 after 10 epochs where the dcgan had
 *   4.7, and 8.85 after 25. With the acgan's class head instead of the
 *   projection (50 clusters), the score rose as fast but recall fell to 0.12
 *   by epoch 9 and the smallest digit to 4.6% (the head pulls every cluster
 *   toward its most typical image; impure clusters lose their minority
 *   digit); with the projection, recall was 0.33 at epoch 8 and rising, the
 *   smallest digit 7%.
 *
 * Choices that hold for every architecture:
 * - The generator ends in a sigmoid, so samples are in advlab's [0, 1] image
 *   scale (DCGAN's tanh on [-1, 1] data is the same family: sigmoid(2t) =
 *   (tanh(t) + 1) / 2).
 * - The convolutional discriminators batch-normalise their second layer (not
 *   the first, as in DCGAN), computed on the real and the fake batch apart.
 *   Without it the discriminator fell behind the generator (whose batch norm
 *   lets it adapt fast): measured on mnist, D(x) and D(G(z)) met at 0.5 by
 *   epoch 8 while the samples were still speckled blobs, and the dcgan
 *   plateaued at FID 32, Inception Score 5. With it: FID 114 instead of 280
 *   after 3 epochs. A WGAN-GP critic must treat each example on its own (the
 *   penalty is per example, Gulrajani et al. 2017), so `discriminatorNorm:
 *   'none'` removes it; `advlab gan` does so for the wgan-gp loss. The mlp
 *   discriminator (Goodfellow et al. 2014) has none.
 * - Initial weights are seeded from one Rng in a fixed order, so the same
 *   seed gives the same weights anywhere. Layers followed by a batch norm
 *   start from N(0, 0.02) (DCGAN, Radford et al. 2016, sec. 4); the others
 *   from Glorot-uniform (Glorot & Bengio 2010). N(0, 0.02) relies on batch
 *   norm to restore the scale: without it, each layer of fan-in f multiplies
 *   the signal's spread by about 0.02 sqrt(f) / sqrt(2): in an mlp generator
 *   without batch norm the latent code reached the image at about 1% of the
 *   bias's influence.
 */
import { tfl } from '../../engine/tf.js';
import { InputError } from '../../errors.js';
import { Rng } from '../../util/rng.js';

type SymbolicTensor = tfl.SymbolicTensor;

/** The architectures {@link buildGan} knows. */
export const GAN_ARCHS = ['mlp', 'dcgan', 'cgan', 'acgan', 'infogan', 'scgan'] as const;

/** One of {@link GAN_ARCHS}. */
export type GanArch = (typeof GAN_ARCHS)[number];

/** Options of {@link buildGan}. */
export interface GanArchOptions {
  /** Image shape `[height, width, channels]`. */
  imageShape: readonly [number, number, number];
  /** Size of the latent code z ~ N(0, I) (default 64). */
  latentDim?: number;
  /** Classes (the one-hot input size of the conditional architectures, infogan's number of codes, scgan's number of clusters). */
  numClasses: number;
  /** Seed of the weight initializers. */
  seed: number;
  /** Multiplies every hidden layer's channels or units (default 1). */
  width?: number;
  /**
   * Normalisation of the convolutional discriminators' second layer: `batch`
   * (default, as in DCGAN) or `none`, which the wgan-gp loss needs (its
   * penalty is per example; trainGan refuses wgan-gp with batch norm).
   */
  discriminatorNorm?: DiscriminatorNorm;
}

/** See {@link GanArchOptions.discriminatorNorm}. */
export type DiscriminatorNorm = 'batch' | 'none';

/** A generator and a discriminator, and how to call them. */
export interface GanModels {
  arch: GanArch;
  /** Inputs `[z]`, or `[z, oneHotClass]` when conditional; output images `[n, h, w, c]` in [0, 1]. */
  generator: tfl.LayersModel;
  /**
   * Inputs `[x]`, or `[x, oneHotClass]` when it takes the class
   * ({@link GanModels.discriminatorTakesClass}); output logits `[n, 1]`, or
   * `[logits [n, 1], classLogits [n, K]]` with an auxiliary classifier.
   */
  discriminator: tfl.LayersModel;
  /** The generator takes a one-hot input: a class (cgan, acgan) or, with {@link GanModels.categoricalCode}, a latent code. */
  conditional: boolean;
  /** The one-hot input is InfoGAN's unsupervised categorical code, drawn uniformly; labels are never used. */
  categoricalCode: boolean;
  /** The one-hot input is a k-means cluster of the training images (scgan), drawn in proportion to its size; labels are never used. */
  clusterCode: boolean;
  /** The discriminator takes the class as a second input (cgan's projection). */
  discriminatorTakesClass: boolean;
  /** The discriminator has a second head of class (acgan) or code (infogan) logits. */
  auxiliaryClassifier: boolean;
  /** The discriminator has batch norm (then it must run in training mode, on real and fake batches apart). */
  discriminatorNorm: DiscriminatorNorm;
  latentDim: number;
  numClasses: number;
  imageShape: [number, number, number];
}

/** The default latent size. */
export const DEFAULT_LATENT_DIM = 64;

/** Seeded kernel initializers, drawn in build order. */
class Init {
  constructor(private readonly rng: Rng) {}
  /** N(0, 0.02), for a layer followed by batch norm (Radford et al. 2016, section 4). */
  normal() {
    return tfl.initializers.randomNormal({ mean: 0, stddev: 0.02, seed: this.rng.seed() });
  }
  /** Glorot-uniform, for a layer whose output scale nothing restores. */
  glorot() {
    return tfl.initializers.glorotUniform({ seed: this.rng.seed() });
  }
}

/**
 * Builds a fresh generator and discriminator.
 * @throws InputError naming `arch`, `imageShape` (dcgan and cgan need sides divisible by 4), `latentDim`, `numClasses`, `width` or `seed`.
 */
export function buildGan(arch: string, options: GanArchOptions): GanModels {
  if (!(GAN_ARCHS as readonly string[]).includes(arch)) throw new InputError('arch', `unknown GAN architecture "${arch}"; expected one of ${GAN_ARCHS.join(', ')}`);
  const shape = options.imageShape;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new InputError('imageShape', `expected [height, width, channels] of positive integers, got ${JSON.stringify(shape)}`);
  }
  const latentDim = options.latentDim ?? DEFAULT_LATENT_DIM;
  if (!Number.isInteger(latentDim) || latentDim < 1) throw new InputError('latentDim', `expected a positive integer, got ${latentDim}`);
  if (!Number.isInteger(options.numClasses) || options.numClasses < 1) throw new InputError('numClasses', `expected a positive integer, got ${options.numClasses}`);
  const width = options.width ?? 1;
  if (!Number.isInteger(width) || width < 1 || width > 16) throw new InputError('width', `expected an integer in [1, 16], got ${width}`);
  const discriminatorNorm = options.discriminatorNorm ?? 'batch';
  if (discriminatorNorm !== 'batch' && discriminatorNorm !== 'none') throw new InputError('discriminatorNorm', `expected batch or none, got ${JSON.stringify(discriminatorNorm)}`);
  const [h, w, c] = shape;
  if (arch !== 'mlp' && (h % 4 !== 0 || w % 4 !== 0)) throw new InputError('imageShape', `the ${arch} architecture upsamples twice by 2: image sides must be divisible by 4, got ${h}x${w}`);
  const init = new Init(new Rng(options.seed));
  const k = options.numClasses;
  const categoricalCode = arch === 'infogan';
  const clusterCode = arch === 'scgan';
  const conditional = arch === 'cgan' || arch === 'acgan' || categoricalCode || clusterCode;
  const discriminatorTakesClass = arch === 'cgan' || clusterCode;
  const auxiliaryClassifier = arch === 'acgan' || categoricalCode;
  const imageShape: [number, number, number] = [h, w, c];

  const z = tfl.input({ shape: [latentDim], name: 'z' });
  const gClass = conditional ? tfl.input({ shape: [k], name: 'class' }) : undefined;
  const gIn = gClass ? (tfl.layers.concatenate({ name: 'z_class' }).apply([z, gClass]) as SymbolicTensor) : z;
  const x = tfl.input({ shape: [h, w, c], name: 'image' });
  const dClass = discriminatorTakesClass ? tfl.input({ shape: [k], name: 'class' }) : undefined;

  let image: SymbolicTensor;
  let logit: SymbolicTensor;
  let classLogits: SymbolicTensor | undefined;
  if (arch === 'mlp') {
    image = mlpGenerator(gIn, imageShape, init, width);
    logit = mlpDiscriminator(x, init, width);
  } else {
    image = convGenerator(gIn, imageShape, init, width);
    const features = convFeatures(x, init, width, discriminatorNorm);
    logit = dense('d_logit', 1, init).apply(features) as SymbolicTensor;
    if (dClass) {
      // Projection: the class embedding's inner product with the features, added to the logit.
      const embed = tfl.layers.dense({ units: features.shape[1] as number, useBias: false, kernelInitializer: init.glorot(), name: 'd_class_embed' }).apply(dClass) as SymbolicTensor;
      const projection = tfl.layers.dot({ axes: -1, name: 'd_projection' }).apply([embed, features]) as SymbolicTensor;
      logit = tfl.layers.add({ name: 'd_logit_cond' }).apply([logit, projection]) as SymbolicTensor;
    }
    if (auxiliaryClassifier) classLogits = dense('d_class_logits', k, init).apply(features) as SymbolicTensor;
  }
  const generator = tfl.model({ inputs: gClass ? [z, gClass] : z, outputs: image, name: `${arch}_generator` });
  const discriminator = tfl.model({ inputs: dClass ? [x, dClass] : x, outputs: classLogits ? [logit, classLogits] : logit, name: `${arch}_discriminator` });
  return { arch: arch as GanArch, generator, discriminator, conditional, categoricalCode, clusterCode, discriminatorTakesClass, auxiliaryClassifier, discriminatorNorm: arch === 'mlp' ? 'none' : discriminatorNorm, latentDim, numClasses: k, imageShape };
}

/** A dense layer not followed by batch norm. */
function dense(name: string, units: number, init: Init, activation: 'linear' | 'sigmoid' = 'linear') {
  return tfl.layers.dense({ units, activation, kernelInitializer: init.glorot(), biasInitializer: 'zeros', name });
}

/**
 * Batch norm with momentum 0.9 (tfjs's default is 0.99): samples are drawn in
 * inference mode, from the moving statistics, and a 2-core budget has a few
 * thousand steps; at 0.99 the statistics lag the generator by ~100 steps.
 */
function bn(name: string) {
  return tfl.layers.batchNormalization({ name, momentum: 0.9 });
}

function leaky(name: string) {
  return tfl.layers.leakyReLU({ alpha: 0.2, name });
}

function mlpGenerator(zIn: SymbolicTensor, [h, w, c]: [number, number, number], init: Init, width: number): SymbolicTensor {
  let t = tfl.layers.dense({ units: 256 * width, useBias: false, kernelInitializer: init.normal(), name: 'g_fc1' }).apply(zIn) as SymbolicTensor;
  t = bn('g_bn1').apply(t) as SymbolicTensor;
  t = leaky('g_act1').apply(t) as SymbolicTensor;
  t = tfl.layers.dense({ units: 512 * width, useBias: false, kernelInitializer: init.normal(), name: 'g_fc2' }).apply(t) as SymbolicTensor;
  t = bn('g_bn2').apply(t) as SymbolicTensor;
  t = leaky('g_act2').apply(t) as SymbolicTensor;
  t = dense('g_out', h * w * c, init, 'sigmoid').apply(t) as SymbolicTensor;
  return tfl.layers.reshape({ targetShape: [h, w, c], name: 'g_image' }).apply(t) as SymbolicTensor;
}

function mlpDiscriminator(x: SymbolicTensor, init: Init, width: number): SymbolicTensor {
  let t = tfl.layers.flatten({ name: 'd_flatten' }).apply(x) as SymbolicTensor;
  t = dense('d_fc1', 512 * width, init).apply(t) as SymbolicTensor;
  t = leaky('d_act1').apply(t) as SymbolicTensor;
  t = dense('d_fc2', 256 * width, init).apply(t) as SymbolicTensor;
  t = leaky('d_act2').apply(t) as SymbolicTensor;
  return dense('d_logit', 1, init).apply(t) as SymbolicTensor;
}

/** dense to (h/4, w/4, 4C), then two stride-2 transposed convolutions: 2C channels, then the image's. */
function convGenerator(zIn: SymbolicTensor, [h, w, c]: [number, number, number], init: Init, width: number): SymbolicTensor {
  const base = 32 * width;
  const [h4, w4] = [h / 4, w / 4];
  // Layers before a batch norm need no bias: its beta is one.
  let t = tfl.layers.dense({ units: h4 * w4 * 2 * base, useBias: false, kernelInitializer: init.normal(), name: 'g_project' }).apply(zIn) as SymbolicTensor;
  t = bn('g_bn0').apply(t) as SymbolicTensor;
  t = tfl.layers.reLU({ name: 'g_act0' }).apply(t) as SymbolicTensor;
  t = tfl.layers.reshape({ targetShape: [h4, w4, 2 * base], name: 'g_reshape' }).apply(t) as SymbolicTensor;
  t = tfl.layers.conv2dTranspose({ filters: base, kernelSize: 4, strides: 2, padding: 'same', useBias: false, kernelInitializer: init.normal(), name: 'g_up1' }).apply(t) as SymbolicTensor;
  t = bn('g_bn1').apply(t) as SymbolicTensor;
  t = tfl.layers.reLU({ name: 'g_act1' }).apply(t) as SymbolicTensor;
  return tfl.layers
    .conv2dTranspose({ filters: c, kernelSize: 4, strides: 2, padding: 'same', activation: 'sigmoid', kernelInitializer: init.glorot(), biasInitializer: 'zeros', name: 'g_image' })
    .apply(t) as SymbolicTensor;
}

/** Two stride-2 convolutions (C, 2C channels) with LeakyReLU 0.2, the second one batch-normalised unless `norm` is 'none', flattened. */
function convFeatures(x: SymbolicTensor, init: Init, width: number, norm: DiscriminatorNorm): SymbolicTensor {
  const base = 32 * width;
  let t = tfl.layers.conv2d({ filters: base, kernelSize: 4, strides: 2, padding: 'same', kernelInitializer: init.glorot(), biasInitializer: 'zeros', name: 'd_conv1' }).apply(x) as SymbolicTensor;
  t = leaky('d_act1').apply(t) as SymbolicTensor;
  t = tfl.layers.conv2d({ filters: 2 * base, kernelSize: 4, strides: 2, padding: 'same', kernelInitializer: init.glorot(), biasInitializer: 'zeros', name: 'd_conv2' }).apply(t) as SymbolicTensor;
  if (norm === 'batch') t = bn('d_bn2').apply(t) as SymbolicTensor;
  t = leaky('d_act2').apply(t) as SymbolicTensor;
  return tfl.layers.flatten({ name: 'd_flatten' }).apply(t) as SymbolicTensor;
}
