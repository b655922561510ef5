/**
 * Adversarial-autoencoder architectures (Makhzani et al., "Adversarial
 * autoencoders", arXiv:1511.05644, 2015): an encoder q(z | x), a decoder
 * p(x | z) and a latent discriminator D(z) that tells prior samples from codes.
 *
 * - `mlp`: the paper's fully connected nets (its appendix: encoder, decoder
 *   and discriminator each with two hidden ReLU layers of 1000 units), at 256
 *   units per hidden layer by default: on 2 CPU cores (wasm, one thread per
 *   process) the 1000-unit nets cost ~7x the multiply-adds per image (the
 *   784 x 1000 and 1000 x 1000 products against 784 x 256 and 256 x 256) for
 *   a few minutes an epoch, while 256 units already reconstruct MNIST with an
 *   8-D code and let the latent game settle within a few epochs. `width` 4
 *   gives 1024 units, the paper's size.
 * - `conv`: two stride-2 convolutions (32, 64 channels) before the code and
 *   two stride-2 transposed convolutions after it, for images whose sides are
 *   divisible by 4; its discriminator is the mlp one (the code is a vector).
 *
 * Choices that hold for both:
 * - The encoder is deterministic (the paper's first option, its section
 *   2.1): z = E(x), a linear output layer, so the codes can take any value the
 *   prior does. All the stochasticity of the aggregate posterior q(z) comes
 *   from the data, which is what the adversarial game shapes.
 * - The decoder outputs LOGITS: the bce reconstruction loss takes them as
 *   they are (losses.ts), images are sigmoid(logits), in advlab's [0, 1]
 *   scale ({@link decodeImages}).
 * - The discriminator outputs one logit per code. In the supervised-prior
 *   mode (`labelClasses` > 0; the paper's Figure 4, section 2.3) it also takes
 *   a one-hot label, so it judges a code against the prior component of its
 *   label.
 * - Categorical + style mode (`categories` = K > 0; the paper's Figure 8,
 *   sections 5 and 6): the encoder has a second head, K class LOGITS whose
 *   softmax is q(y | x), beside the style code z; the decoder takes [y, z]
 *   (K + latentDim values, y first); and a second discriminator, the
 *   `categoryDiscriminator` (the same mlp as the style one, on K inputs),
 *   judges y against one-hot samples of Cat(K). The style discriminator is the
 *   usual one on z.
 * - No batch norm: the encoder feeds two phases per batch, and training and
 *   inference would give different codes for the same image.
 * - Hidden ReLU layers get He-normal kernels (He et al. 2015), the outputs
 *   Glorot-uniform ones, all seeded from one Rng in build order, so the same
 *   seed gives the same initial weights anywhere. (The paper draws N(0, 0.01);
 *   He scaling keeps activations at unit scale through the ReLUs, which trains
 *   faster in the few epochs a 2-core budget allows.)
 */
import { tf, tfl } from '../../engine/tf.js';
import { readAndDispose, readOne } from '../../engine/read.js';
import { InputError } from '../../errors.js';
import { Rng } from '../../util/rng.js';

type SymbolicTensor = tfl.SymbolicTensor;

/** The architectures {@link buildAae} knows. */
export const AAE_ARCHS = ['mlp', 'conv'] as const;

/** One of {@link AAE_ARCHS}. */
export type AaeArch = (typeof AAE_ARCHS)[number];

/** Units of each hidden layer of the mlp nets at width 1 (see the module comment for why not the paper's 1000). */
export const MLP_HIDDEN_UNITS = 256;

/** Channels of the conv nets' first convolution at width 1 (the second has twice as many). */
export const CONV_BASE_CHANNELS = 32;

/** The default code size. */
export const DEFAULT_AAE_LATENT_DIM = 8;

/** Options of {@link buildAae}. */
export interface AaeArchOptions {
  /** Image shape `[height, width, channels]`. */
  imageShape: readonly [number, number, number];
  /** Size of the code z (default 8). */
  latentDim?: number;
  /** Seed of the weight initializers. */
  seed: number;
  /** Multiplies every hidden layer's units or channels (default 1; 4 is the paper's mlp size). */
  width?: number;
  /** Supervised-prior mode: the discriminator also takes a one-hot label of this many classes (default 0: no label input). */
  labelClasses?: number;
  /**
   * Categorical + style mode (semi-supervised classification or clustering;
   * Makhzani et al. 2015, sections 5 and 6): K >= 2 categories of the
   * encoder's class head q(y | x) and of the category discriminator (default
   * 0: a plain code z only). Not together with `labelClasses`.
   */
  categories?: number;
}

/** An encoder, a decoder and a latent discriminator (two in the categorical mode), and how to call them. */
export interface AaeModels {
  arch: AaeArch;
  /**
   * Input images `[n, h, w, c]` in [0, 1]; output codes `[n, latentDim]`; in
   * the categorical mode two outputs, `[z [n, latentDim], classLogits [n, K]]`
   * (see {@link encodeCategorical}).
   */
  encoder: tfl.LayersModel;
  /**
   * Input codes `[n, latentDim]`, or `[n, K + latentDim]` = [y, z] in the
   * categorical mode (see {@link categoricalCodes}); output LOGITS
   * `[n, h, w, c]` (images are their sigmoid).
   */
  decoder: tfl.LayersModel;
  /** Inputs `[z]`, or `[z, oneHotLabel]` in the supervised-prior mode; output logits `[n, 1]`. */
  discriminator: tfl.LayersModel;
  /** The categorical mode's discriminator of y: input `[n, K]` (softmax outputs or one-hot prior samples), output logits `[n, 1]`; null otherwise. */
  categoryDiscriminator: tfl.LayersModel | null;
  /** Size of the style code z (the whole code outside the categorical mode). */
  latentDim: number;
  imageShape: [number, number, number];
  /** Classes of the discriminator's one-hot label input; 0 without one. */
  labelClasses: number;
  /** K, the categories of the class head q(y | x); 0 outside the categorical mode. */
  categories: number;
}

/** Seeded initializers, drawn in build order. */
class Init {
  constructor(private readonly rng: Rng) {}
  he() {
    return tfl.initializers.heNormal({ seed: this.rng.seed() });
  }
  glorot() {
    return tfl.initializers.glorotUniform({ seed: this.rng.seed() });
  }
}

/**
 * Builds a fresh encoder, decoder and latent discriminator.
 * @throws InputError naming `arch`, `imageShape` (conv needs sides divisible by 4), `latentDim`, `width`, `labelClasses`, `categories` or `seed`.
 */
export function buildAae(arch: string, options: AaeArchOptions): AaeModels {
  if (!(AAE_ARCHS as readonly string[]).includes(arch)) throw new InputError('arch', `unknown AAE architecture "${arch}"; expected one of ${AAE_ARCHS.join(', ')}`);
  const shape = options?.imageShape;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new InputError('imageShape', `expected [height, width, channels] of positive integers, got ${JSON.stringify(shape)}`);
  }
  const latentDim = options.latentDim ?? DEFAULT_AAE_LATENT_DIM;
  if (!Number.isInteger(latentDim) || latentDim < 1) throw new InputError('latentDim', `expected a positive integer, got ${latentDim}`);
  const width = options.width ?? 1;
  if (!Number.isInteger(width) || width < 1 || width > 16) throw new InputError('width', `expected an integer in [1, 16], got ${width}`);
  const labelClasses = options.labelClasses ?? 0;
  if (!Number.isInteger(labelClasses) || labelClasses < 0) throw new InputError('labelClasses', `expected an integer >= 0, got ${labelClasses}`);
  const categories = options.categories ?? 0;
  if (!Number.isInteger(categories) || categories < 0 || categories === 1) throw new InputError('categories', `expected 0 (no class head) or an integer >= 2, got ${categories}`);
  if (categories > 0 && labelClasses > 0) throw new InputError('categories', 'the categorical mode has its own discriminator of y: not together with labelClasses (the supervised prior)');
  const [h, w, c] = shape;
  if (arch === 'conv' && (h % 4 !== 0 || w % 4 !== 0)) throw new InputError('imageShape', `the conv architecture downsamples twice by 2: image sides must be divisible by 4, got ${h}x${w}`);
  const init = new Init(new Rng(options.seed));
  const imageShape: [number, number, number] = [h, w, c];

  // Build order fixes the initializers' seeds: encoder trunk, code head, class
  // head (categorical mode), decoder, discriminator, category discriminator.
  const x = tfl.input({ shape: imageShape, name: 'image' });
  const features = arch === 'mlp' ? mlpTrunk(x, init, width) : convTrunk(x, init, width);
  const code = output('e_code', latentDim, init).apply(features) as SymbolicTensor;
  const classLogits = categories > 0 ? (output(CLASS_HEAD, categories, init).apply(features) as SymbolicTensor) : undefined;
  const z = tfl.input({ shape: [categories + latentDim], name: 'code' });
  const logits = arch === 'mlp' ? mlpDecoder(z, imageShape, init, width) : convDecoder(z, imageShape, init, width);

  const dz = tfl.input({ shape: [latentDim], name: 'd_code' });
  const dLabel = labelClasses > 0 ? tfl.input({ shape: [labelClasses], name: 'd_label' }) : undefined;
  const dIn = dLabel ? (tfl.layers.concatenate({ name: 'd_code_label' }).apply([dz, dLabel]) as SymbolicTensor) : dz;
  const units = MLP_HIDDEN_UNITS * width;
  let t = hidden('d_fc1', units, init).apply(dIn) as SymbolicTensor;
  t = hidden('d_fc2', units, init).apply(t) as SymbolicTensor;
  const dLogit = output('d_logit', 1, init).apply(t) as SymbolicTensor;

  let categoryDiscriminator: tfl.LayersModel | null = null;
  if (categories > 0) {
    const cy = tfl.input({ shape: [categories], name: 'c_category' });
    let c = hidden('c_fc1', units, init).apply(cy) as SymbolicTensor;
    c = hidden('c_fc2', units, init).apply(c) as SymbolicTensor;
    const cLogit = output('c_logit', 1, init).apply(c) as SymbolicTensor;
    categoryDiscriminator = tfl.model({ inputs: cy, outputs: cLogit, name: `aae_${arch}_category_discriminator` });
  }

  return {
    arch: arch as AaeArch,
    encoder: tfl.model({ inputs: x, outputs: classLogits ? [code, classLogits] : code, name: `aae_${arch}_encoder` }),
    decoder: tfl.model({ inputs: z, outputs: logits, name: `aae_${arch}_decoder` }),
    discriminator: tfl.model({ inputs: dLabel ? [dz, dLabel] : dz, outputs: dLogit, name: `aae_${arch}_discriminator` }),
    categoryDiscriminator,
    latentDim,
    imageShape,
    labelClasses,
    categories,
  };
}

/** Name of the encoder's class-head layer (categorical mode): its weights and the trunk's are what the supervised phase trains. */
export const CLASS_HEAD = 'e_class_logits';

/**
 * Images from codes: sigmoid(decoder(z)) in inference mode, batch by batch,
 * as NHWC float32 in [0, 1]. No tensor outlives the call.
 *
 * @param decoder an AAE decoder (outputs logits)
 * @param z codes, row-major [n, latentDim]
 * @param latentDim the code size
 * @param batchSize codes per forward pass
 */
export async function decodeImages(decoder: tfl.LayersModel, z: Float32Array, latentDim: number, batchSize = 256): Promise<Float32Array> {
  const n = z.length / latentDim;
  if (!Number.isInteger(n)) throw new InputError('z', `expected a multiple of latentDim = ${latentDim} values, got ${z.length}`);
  const size = (decoder.outputs[0].shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  const out = new Float32Array(n * size);
  for (let start = 0; start < n; start += batchSize) {
    const m = Math.min(batchSize, n - start);
    const images = tf.tidy(() => tf.sigmoid(decoder.apply(tf.tensor2d(z.subarray(start * latentDim, (start + m) * latentDim), [m, latentDim]), { training: false }) as tf.Tensor));
    out.set((await readOne(images)) as Float32Array, start * size);
  }
  return out;
}

/**
 * Codes of images: encoder(x) in inference mode, batch by batch, row-major
 * [n, latentDim]; for a categorical encoder, its style codes z (its first
 * output; {@link encodeCategorical} gives the class logits too). No tensor
 * outlives the call.
 *
 * @param encoder an AAE encoder
 * @param images NHWC float32 in [0, 1]
 * @param imageShape `[h, w, c]` of one image
 * @param batchSize images per forward pass
 */
export async function encodeImages(encoder: tfl.LayersModel, images: Float32Array, imageShape: readonly [number, number, number], batchSize = 256): Promise<Float32Array> {
  return (await encodeOutputs(encoder, images, imageShape, batchSize))[0];
}

/** The outputs of a categorical encoder on a set of images; see {@link encodeCategorical}. */
export interface CategoricalCodes {
  /** Style codes z, row-major [n, latentDim]. */
  z: Float32Array;
  /** Class logits, row-major [n, K]: q(y | x) is their softmax, the predicted category their argmax. */
  logits: Float32Array;
  n: number;
  latentDim: number;
  categories: number;
}

/**
 * Style codes and class logits of images from a categorical encoder (built
 * with `categories`), in inference mode, batch by batch. No tensor outlives
 * the call.
 *
 * @param encoder a categorical AAE encoder (two outputs: z, then the class logits)
 * @param images NHWC float32 in [0, 1]
 * @param imageShape `[h, w, c]` of one image
 * @param batchSize images per forward pass
 * @throws InputError naming `encoder` when it has no class head
 */
export async function encodeCategorical(encoder: tfl.LayersModel, images: Float32Array, imageShape: readonly [number, number, number], batchSize = 256): Promise<CategoricalCodes> {
  if (encoder.outputs.length !== 2) throw new InputError('encoder', 'expected a categorical encoder (built with categories): outputs z and class logits');
  const [z, logits] = await encodeOutputs(encoder, images, imageShape, batchSize);
  const latentDim = encoder.outputs[0].shape[1] as number;
  const categories = encoder.outputs[1].shape[1] as number;
  return { z, logits, n: z.length / latentDim, latentDim, categories };
}

/**
 * The decoder's input of the categorical mode, [y, z] per row: y the softmax
 * of the class logits (or, for generation, one-hot categories) and z the
 * style code; row-major [n, K + latentDim].
 *
 * @param y n rows of K values: class logits (`fromLogits`, turned into softmax probabilities) or probabilities/one-hot vectors as they are
 * @param z n style codes of latentDim values
 * @param categories K
 * @param latentDim the style code's size
 * @param fromLogits whether y holds logits (default true)
 */
export function categoricalCodes(y: Float32Array, z: Float32Array, categories: number, latentDim: number, fromLogits = true): Float32Array {
  const n = z.length / latentDim;
  if (!Number.isInteger(n) || y.length !== n * categories) throw new InputError('y', `expected ${categories} values per style code (${n} codes of ${latentDim}), got ${y.length}`);
  const width = categories + latentDim;
  const out = new Float32Array(n * width);
  for (let i = 0; i < n; i++) {
    const row = y.subarray(i * categories, (i + 1) * categories);
    if (fromLogits) {
      // softmax, shifted by the row's maximum so nothing overflows.
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let sum = 0;
      for (let k = 0; k < categories; k++) sum += Math.exp(row[k] - max);
      for (let k = 0; k < categories; k++) out[i * width + k] = Math.exp(row[k] - max) / sum;
    } else {
      out.set(row, i * width);
    }
    out.set(z.subarray(i * latentDim, (i + 1) * latentDim), i * width + categories);
  }
  return out;
}

/**
 * Reconstructions sigmoid(decoder(code(x))) of images in [0, 1], for every
 * mode: the code is encoder(x), or [softmax(class logits), z] in the
 * categorical mode. No tensor outlives the call.
 *
 * @param models an AAE
 * @param images NHWC float32 in [0, 1], of `models.imageShape`
 */
export async function reconstructImages(models: AaeModels, images: Float32Array): Promise<Float32Array> {
  if (models.categories === 0) return decodeImages(models.decoder, await encodeImages(models.encoder, images, models.imageShape), models.latentDim);
  const c = await encodeCategorical(models.encoder, images, models.imageShape);
  return decodeImages(models.decoder, categoricalCodes(c.logits, c.z, c.categories, c.latentDim), c.categories + c.latentDim);
}

/** Every output of an encoder (one or two), batch by batch (one wait per batch), each row-major. */
async function encodeOutputs(encoder: tfl.LayersModel, images: Float32Array, imageShape: readonly [number, number, number], batchSize: number): Promise<Float32Array[]> {
  const size = imageShape[0] * imageShape[1] * imageShape[2];
  const n = images.length / size;
  if (!Number.isInteger(n)) throw new InputError('images', `expected a multiple of ${size} values (images of [${imageShape.join(', ')}]), got ${images.length}`);
  const widths = encoder.outputs.map((o) => o.shape[1] as number);
  const outs = widths.map((d) => new Float32Array(n * d));
  for (let start = 0; start < n; start += batchSize) {
    const m = Math.min(batchSize, n - start);
    const results = tf.tidy(() => {
      const r = encoder.apply(tf.tensor4d(images.subarray(start * size, (start + m) * size), [m, ...imageShape]), { training: false }) as tf.Tensor | tf.Tensor[];
      return Array.isArray(r) ? r : [r];
    });
    (await readAndDispose(results)).forEach((values, i) => outs[i].set(values as Float32Array, start * widths[i]));
  }
  return outs;
}

function hidden(name: string, units: number, init: Init) {
  return tfl.layers.dense({ units, activation: 'relu', kernelInitializer: init.he(), biasInitializer: 'zeros', name });
}

function output(name: string, units: number, init: Init) {
  return tfl.layers.dense({ units, activation: 'linear', kernelInitializer: init.glorot(), biasInitializer: 'zeros', name });
}

/** The mlp encoder's two hidden ReLU layers (the heads come after). */
function mlpTrunk(x: SymbolicTensor, init: Init, width: number): SymbolicTensor {
  const units = MLP_HIDDEN_UNITS * width;
  let t = tfl.layers.flatten({ name: 'e_flatten' }).apply(x) as SymbolicTensor;
  t = hidden('e_fc1', units, init).apply(t) as SymbolicTensor;
  return hidden('e_fc2', units, init).apply(t) as SymbolicTensor;
}

function mlpDecoder(z: SymbolicTensor, [h, w, c]: [number, number, number], init: Init, width: number): SymbolicTensor {
  const units = MLP_HIDDEN_UNITS * width;
  let t = hidden('g_fc1', units, init).apply(z) as SymbolicTensor;
  t = hidden('g_fc2', units, init).apply(t) as SymbolicTensor;
  t = output('g_logits', h * w * c, init).apply(t) as SymbolicTensor;
  return tfl.layers.reshape({ targetShape: [h, w, c], name: 'g_image_logits' }).apply(t) as SymbolicTensor;
}

/** Two stride-2 convolutions (C, 2C channels, ReLU), flattened (the linear heads come after). */
function convTrunk(x: SymbolicTensor, init: Init, width: number): SymbolicTensor {
  const base = CONV_BASE_CHANNELS * width;
  let t = tfl.layers.conv2d({ filters: base, kernelSize: 4, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init.he(), biasInitializer: 'zeros', name: 'e_conv1' }).apply(x) as SymbolicTensor;
  t = tfl.layers.conv2d({ filters: 2 * base, kernelSize: 4, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init.he(), biasInitializer: 'zeros', name: 'e_conv2' }).apply(t) as SymbolicTensor;
  return tfl.layers.flatten({ name: 'e_flatten' }).apply(t) as SymbolicTensor;
}

/** Dense to (h/4, w/4, 2C) with ReLU, a stride-2 transposed convolution to C channels (ReLU), another to the image's channels (logits). */
function convDecoder(z: SymbolicTensor, [h, w, c]: [number, number, number], init: Init, width: number): SymbolicTensor {
  const base = CONV_BASE_CHANNELS * width;
  const [h4, w4] = [h / 4, w / 4];
  let t = hidden('g_project', h4 * w4 * 2 * base, init).apply(z) as SymbolicTensor;
  t = tfl.layers.reshape({ targetShape: [h4, w4, 2 * base], name: 'g_reshape' }).apply(t) as SymbolicTensor;
  t = tfl.layers.conv2dTranspose({ filters: base, kernelSize: 4, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init.he(), biasInitializer: 'zeros', name: 'g_up1' }).apply(t) as SymbolicTensor;
  return tfl.layers
    .conv2dTranspose({ filters: c, kernelSize: 4, strides: 2, padding: 'same', activation: 'linear', kernelInitializer: init.glorot(), biasInitializer: 'zeros', name: 'g_image_logits' })
    .apply(t) as SymbolicTensor;
}
