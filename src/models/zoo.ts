/**
 * The model zoo: a few small image classifiers that train on CPU/wasm in
 * minutes. Every model outputs LOGITS (no softmax): attacks need the raw scores
 * (C&W works on logits, and softmax saturation hides gradients from FGSM/PGD),
 * and the losses apply softmax themselves.
 *
 * Every layer with weights gets an initializer seeded from one `Rng(seed)`,
 * drawn in a fixed order, so the same seed gives bit-identical initial weights
 * on any backend (tfjs seeded initializers generate values in JS).
 *
 * Two options trade the defaults for robustness under adversarial training:
 * a smooth `activation` and a `width` multiplier. Neither changes the number,
 * order or names of the weight layers, so the defaults (`relu`, width 1) build
 * exactly the models saved before the options existed.
 */
import { tfl } from '../engine/tf.js';
import { InputError } from '../errors.js';
import { Rng } from '../util/rng.js';

/** Names accepted by {@link buildModel}. */
export const ZOO_NAMES = ['mlp', 'small-cnn', 'lenet', 'resnet'] as const;

/** One of {@link ZOO_NAMES}. */
export type ZooName = (typeof ZOO_NAMES)[number];

/**
 * Hidden-layer activations accepted by {@link buildModel}. `silu` is another
 * name for `swish` (x * sigmoid(x)); `gelu` is the exact, erf-based GELU. The
 * smooth ones help adversarial training: ReLU's derivative jumps at 0, which
 * degrades the gradients both the inner attack and the weight update follow
 * (Xie et al. 2020, "Smooth adversarial training", arXiv:2006.14536). All are
 * tfjs-layers built-ins, so saved models load anywhere tfjs-layers runs.
 */
export const ZOO_ACTIVATIONS = ['relu', 'softplus', 'swish', 'silu', 'gelu', 'elu'] as const;

/** One of {@link ZOO_ACTIVATIONS}. */
export type ZooActivation = (typeof ZOO_ACTIVATIONS)[number];

/** Options of {@link buildModel}. */
export interface BuildModelOptions {
  /** Image shape `[height, width, channels]`, without the batch dimension. */
  inputShape: [number, number, number];
  /** Number of classes = width of the logits output. */
  numClasses: number;
  /** Seed of the weight initializers (integer in [0, 2^32)). */
  seed: number;
  /** Activation of every hidden layer (default `relu`); the logits stay linear. */
  activation?: ZooActivation;
  /**
   * Multiplies the channels or units of every hidden layer (integer >= 1,
   * default 1); the logits layer keeps `numClasses` units. Capacity matters
   * for robustness: adversarial training needs wider networks than standard
   * training (Madry et al., ICLR 2018, Sec. 4).
   */
  width?: number;
}

type SymbolicTensor = ReturnType<typeof tfl.input>;

/** The tfjs-layers identifiers the zoo uses ('silu' is spelt 'swish' there). */
type Activation = 'relu' | 'softplus' | 'swish' | 'gelu' | 'elu' | 'linear';

/** What the options change in every builder: the hidden activation and channel counts. */
interface Arch {
  act: Exclude<Activation, 'linear'>;
  /** `base` channels or units times the width multiplier. */
  units(base: number): number;
}

/** A zoo entry: help text, the smallest height/width it accepts, and its builder. */
interface ZooEntry {
  description: string;
  minSide: number;
  build(x: SymbolicTensor, numClasses: number, init: Init, arch: Arch): SymbolicTensor;
}

/** Hands out seeded initializers in call order (the order is part of the model's definition). */
class Init {
  constructor(private readonly rng: Rng) {}
  /** Glorot/Xavier uniform: the Keras default for dense and conv kernels. */
  glorot() {
    return tfl.initializers.glorotUniform({ seed: this.rng.seed() });
  }
  /** He normal: keeps activation variance constant through ReLU stacks (used by the ResNet). */
  he() {
    return tfl.initializers.heNormal({ seed: this.rng.seed() });
  }
}

const ZOO: Record<ZooName, ZooEntry> = {
  mlp: {
    description: 'multilayer perceptron: flatten, dense 256 relu, dense 128 relu, dense logits',
    minSide: 1,
    build(x, numClasses, init, { act, units }) {
      let h = tfl.layers.flatten({ name: 'flatten' }).apply(x) as SymbolicTensor;
      h = dense('fc1', units(256), act, init).apply(h) as SymbolicTensor;
      h = dense('fc2', units(128), act, init).apply(h) as SymbolicTensor;
      return dense('logits', numClasses, 'linear', init).apply(h) as SymbolicTensor;
    },
  },
  'small-cnn': {
    description:
      'reference CNN: conv 32 3x3 relu, conv 64 3x3 relu, maxpool 2, flatten, dense 128 relu, dense logits',
    // Two valid 3x3 convolutions take 4 pixels, the 2x2 pool then needs at least 2 left.
    minSide: 6,
    build(x, numClasses, init, { act, units }) {
      let h = conv('conv1', units(32), 3, 1, 'valid', act, true, init.glorot()).apply(x) as SymbolicTensor;
      h = conv('conv2', units(64), 3, 1, 'valid', act, true, init.glorot()).apply(h) as SymbolicTensor;
      h = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(h) as SymbolicTensor;
      h = tfl.layers.flatten({ name: 'flatten' }).apply(h) as SymbolicTensor;
      h = dense('fc1', units(128), act, init).apply(h) as SymbolicTensor;
      return dense('logits', numClasses, 'linear', init).apply(h) as SymbolicTensor;
    },
  },
  lenet: {
    description:
      'LeNet-5 style CNN (LeCun et al. 1998): conv 6 5x5 same, pool, conv 16 5x5, pool, dense 120, 84, logits',
    // same conv + pool halves the side; the valid 5x5 conv then needs >= 5 and the second pool >= 2 left.
    minSide: 12,
    build(x, numClasses, init, { act, units }) {
      // LeCun et al., "Gradient-based learning applied to document recognition",
      // Proc. IEEE 86(11), 1998. Modernised as usual: ReLU instead of scaled tanh,
      // max- instead of average-subsampling, full C3 connectivity, linear output
      // instead of RBF units. 'same' padding on C1 stands in for the 32x32 padding
      // of the 28x28 MNIST digits in the paper.
      let h = conv('conv1', units(6), 5, 1, 'same', act, true, init.glorot()).apply(x) as SymbolicTensor;
      h = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }).apply(h) as SymbolicTensor;
      h = conv('conv2', units(16), 5, 1, 'valid', act, true, init.glorot()).apply(h) as SymbolicTensor;
      h = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }).apply(h) as SymbolicTensor;
      h = tfl.layers.flatten({ name: 'flatten' }).apply(h) as SymbolicTensor;
      h = dense('fc1', units(120), act, init).apply(h) as SymbolicTensor;
      h = dense('fc2', units(84), act, init).apply(h) as SymbolicTensor;
      return dense('logits', numClasses, 'linear', init).apply(h) as SymbolicTensor;
    },
  },
  resnet: {
    description:
      'small ResNet (He et al. 2016): conv 16 + 3 stages (16/32/64 channels) of one basic block, global avg pool, dense logits',
    minSide: 1,
    build(x, numClasses, init, arch) {
      // He, Zhang, Ren, Sun, "Deep residual learning for image recognition", CVPR 2016.
      // The CIFAR variant (Sec. 4.2) with n = 1 block per stage, and 1x1 strided
      // projection shortcuts (+BN) where the shape changes ("option B").
      // Widening follows Zagoruyko & Komodakis, "Wide residual networks", BMVC 2016.
      let h = conv('stem_conv', arch.units(16), 3, 1, 'same', 'linear', false, init.he()).apply(x) as SymbolicTensor;
      h = bn('stem_bn').apply(h) as SymbolicTensor;
      h = activationLayer(`stem_${arch.act}`, arch.act).apply(h) as SymbolicTensor;
      h = basicBlock(h, 'stage1', arch.units(16), 1, init, arch.act);
      h = basicBlock(h, 'stage2', arch.units(32), 2, init, arch.act);
      h = basicBlock(h, 'stage3', arch.units(64), 2, init, arch.act);
      h = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(h) as SymbolicTensor;
      return dense('logits', numClasses, 'linear', init).apply(h) as SymbolicTensor;
    },
  },
};

function dense(name: string, units: number, activation: Activation, init: Init) {
  return tfl.layers.dense({
    name,
    units,
    activation,
    kernelInitializer: init.glorot(),
    biasInitializer: 'zeros',
  });
}

function conv(
  name: string,
  filters: number,
  kernelSize: number,
  strides: number,
  padding: 'same' | 'valid',
  activation: Activation,
  useBias: boolean,
  kernelInitializer: ReturnType<Init['glorot']>,
) {
  return tfl.layers.conv2d({
    name,
    filters,
    kernelSize,
    strides,
    padding,
    activation,
    useBias,
    kernelInitializer,
    ...(useBias ? { biasInitializer: 'zeros' as const } : {}),
  });
}

function bn(name: string) {
  // Deterministic initializers (gamma 1, beta 0, mean 0, variance 1): no seed needed.
  return tfl.layers.batchNormalization({ name, axis: -1 });
}

/** A standalone activation layer; ReLU keeps its own layer class, so default models serialize exactly as before. */
function activationLayer(name: string, act: Arch['act']) {
  return act === 'relu' ? tfl.layers.reLU({ name }) : tfl.layers.activation({ activation: act, name });
}

/** conv-bn-act-conv-bn, plus the (projected when the shape changes) input, then the activation. */
function basicBlock(x: SymbolicTensor, name: string, filters: number, stride: number, init: Init, act: Arch['act']): SymbolicTensor {
  const inChannels = x.shape[x.shape.length - 1];
  // Convolutions before a BN have no bias: BN's beta makes it redundant.
  let h = conv(`${name}_conv1`, filters, 3, stride, 'same', 'linear', false, init.he()).apply(x) as SymbolicTensor;
  h = bn(`${name}_bn1`).apply(h) as SymbolicTensor;
  h = activationLayer(`${name}_${act}1`, act).apply(h) as SymbolicTensor;
  h = conv(`${name}_conv2`, filters, 3, 1, 'same', 'linear', false, init.he()).apply(h) as SymbolicTensor;
  h = bn(`${name}_bn2`).apply(h) as SymbolicTensor;
  let shortcut = x;
  if (stride !== 1 || inChannels !== filters) {
    shortcut = conv(`${name}_proj`, filters, 1, stride, 'same', 'linear', false, init.he()).apply(x) as SymbolicTensor;
    shortcut = bn(`${name}_proj_bn`).apply(shortcut) as SymbolicTensor;
  }
  h = tfl.layers.add({ name: `${name}_add` }).apply([h, shortcut]) as SymbolicTensor;
  return activationLayer(`${name}_out`, act).apply(h) as SymbolicTensor;
}

/** Validates the architecture options (undefined = default) and maps `silu` to tfjs-layers' `swish`. */
function parseArch(activation: string = 'relu', width: number = 1): Arch {
  if (!(ZOO_ACTIVATIONS as readonly string[]).includes(activation)) {
    throw new InputError('activation', `unknown activation "${activation}"; expected one of ${ZOO_ACTIVATIONS.join(', ')}`);
  }
  if (!Number.isInteger(width) || width < 1) throw new InputError('width', `expected an integer >= 1, got ${width}`);
  const act = activation === 'silu' ? 'swish' : (activation as Arch['act']);
  return { act, units: (base) => base * width };
}

/** True if `name` is one of {@link ZOO_NAMES}. */
export function isZooName(name: string): name is ZooName {
  return (ZOO_NAMES as readonly string[]).includes(name);
}

/**
 * Builds a fresh, uncompiled zoo model that maps images `[n, h, w, c]` to
 * logits `[n, numClasses]`.
 *
 * @throws InputError('model') for an unknown name; InputError('inputShape'),
 *   ('numClasses'), ('seed'), ('activation') or ('width') for bad options,
 *   including images too small for the model's convolutions and pools.
 */
export function buildModel(name: string, opts: BuildModelOptions): tfl.LayersModel {
  if (!isZooName(name)) {
    throw new InputError('model', `unknown model "${name}"; expected one of ${ZOO_NAMES.join(', ')}`);
  }
  const { inputShape, numClasses, seed } = opts;
  if (
    !Array.isArray(inputShape) ||
    inputShape.length !== 3 ||
    !inputShape.every((d) => Number.isInteger(d) && d > 0)
  ) {
    throw new InputError('inputShape', `expected [height, width, channels] of positive integers, got ${JSON.stringify(inputShape)}`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 2) {
    throw new InputError('numClasses', `expected an integer >= 2, got ${numClasses}`);
  }
  const entry = ZOO[name];
  const [h, w] = inputShape;
  if (h < entry.minSide || w < entry.minSide) {
    throw new InputError(
      'inputShape',
      `model "${name}" needs images of at least ${entry.minSide}x${entry.minSide}, got ${h}x${w}`,
    );
  }
  const arch = parseArch(opts.activation, opts.width);
  const init = new Init(new Rng(seed)); // validates the seed
  const input = tfl.input({ shape: [...inputShape], name: 'input' });
  const output = entry.build(input, numClasses, init, arch);
  return tfl.model({ inputs: input, outputs: output, name: name.replace(/-/g, '_') });
}

/** One line per zoo model, for `--help` text; the descriptions are of the defaults (`relu`, width 1). */
export function describeZoo(): { name: ZooName; description: string }[] {
  return ZOO_NAMES.map((name) => ({ name, description: ZOO[name].description }));
}
