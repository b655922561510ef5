/**
 * The model zoo: a few small image classifiers that train on CPU/wasm in
 * minutes. Every model outputs LOGITS (no softmax): attacks need the raw scores
 * (C&W works on logits, and softmax saturation hides gradients from FGSM/PGD),
 * and the losses apply softmax themselves.
 *
 * Every layer with weights gets an initializer seeded from one `Rng(seed)`,
 * drawn in a fixed order, so the same seed gives bit-identical initial weights
 * on any backend (tfjs seeded initializers generate values in JS).
 */
import { tfl } from '../engine/tf.js';
import { InputError } from '../errors.js';
import { Rng } from '../util/rng.js';

/** Names accepted by {@link buildModel}. */
export const ZOO_NAMES = ['mlp', 'small-cnn', 'lenet', 'resnet'] as const;

/** One of {@link ZOO_NAMES}. */
export type ZooName = (typeof ZOO_NAMES)[number];

/** Options of {@link buildModel}. */
export interface BuildModelOptions {
  /** Image shape `[height, width, channels]`, without the batch dimension. */
  inputShape: [number, number, number];
  /** Number of classes = width of the logits output. */
  numClasses: number;
  /** Seed of the weight initializers (integer in [0, 2^32)). */
  seed: number;
}

type SymbolicTensor = ReturnType<typeof tfl.input>;

/** A zoo entry: help text, the smallest height/width it accepts, and its builder. */
interface ZooEntry {
  description: string;
  minSide: number;
  build(x: SymbolicTensor, numClasses: number, init: Init): SymbolicTensor;
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
    build(x, numClasses, init) {
      let h = tfl.layers.flatten({ name: 'flatten' }).apply(x) as SymbolicTensor;
      h = dense('fc1', 256, 'relu', init).apply(h) as SymbolicTensor;
      h = dense('fc2', 128, 'relu', init).apply(h) as SymbolicTensor;
      return dense('logits', numClasses, 'linear', init).apply(h) as SymbolicTensor;
    },
  },
  'small-cnn': {
    description:
      'reference CNN: conv 32 3x3 relu, conv 64 3x3 relu, maxpool 2, flatten, dense 128 relu, dense logits',
    // Two valid 3x3 convolutions take 4 pixels, the 2x2 pool then needs at least 2 left.
    minSide: 6,
    build(x, numClasses, init) {
      let h = conv('conv1', 32, 3, 1, 'valid', 'relu', true, init.glorot()).apply(x) as SymbolicTensor;
      h = conv('conv2', 64, 3, 1, 'valid', 'relu', true, init.glorot()).apply(h) as SymbolicTensor;
      h = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(h) as SymbolicTensor;
      h = tfl.layers.flatten({ name: 'flatten' }).apply(h) as SymbolicTensor;
      h = dense('fc1', 128, 'relu', init).apply(h) as SymbolicTensor;
      return dense('logits', numClasses, 'linear', init).apply(h) as SymbolicTensor;
    },
  },
  lenet: {
    description:
      'LeNet-5 style CNN (LeCun et al. 1998): conv 6 5x5 same, pool, conv 16 5x5, pool, dense 120, 84, logits',
    // same conv + pool halves the side; the valid 5x5 conv then needs >= 5 and the second pool >= 2 left.
    minSide: 12,
    build(x, numClasses, init) {
      // LeCun et al., "Gradient-based learning applied to document recognition",
      // Proc. IEEE 86(11), 1998. Modernised as usual: ReLU instead of scaled tanh,
      // max- instead of average-subsampling, full C3 connectivity, linear output
      // instead of RBF units. 'same' padding on C1 stands in for the 32x32 padding
      // of the 28x28 MNIST digits in the paper.
      let h = conv('conv1', 6, 5, 1, 'same', 'relu', true, init.glorot()).apply(x) as SymbolicTensor;
      h = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }).apply(h) as SymbolicTensor;
      h = conv('conv2', 16, 5, 1, 'valid', 'relu', true, init.glorot()).apply(h) as SymbolicTensor;
      h = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }).apply(h) as SymbolicTensor;
      h = tfl.layers.flatten({ name: 'flatten' }).apply(h) as SymbolicTensor;
      h = dense('fc1', 120, 'relu', init).apply(h) as SymbolicTensor;
      h = dense('fc2', 84, 'relu', init).apply(h) as SymbolicTensor;
      return dense('logits', numClasses, 'linear', init).apply(h) as SymbolicTensor;
    },
  },
  resnet: {
    description:
      'small ResNet (He et al. 2016): conv 16 + 3 stages (16/32/64 channels) of one basic block, global avg pool, dense logits',
    minSide: 1,
    build(x, numClasses, init) {
      // He, Zhang, Ren, Sun, "Deep residual learning for image recognition", CVPR 2016.
      // The CIFAR variant (Sec. 4.2) with n = 1 block per stage, and 1x1 strided
      // projection shortcuts (+BN) where the shape changes ("option B").
      let h = conv('stem_conv', 16, 3, 1, 'same', 'linear', false, init.he()).apply(x) as SymbolicTensor;
      h = bn('stem_bn').apply(h) as SymbolicTensor;
      h = tfl.layers.reLU({ name: 'stem_relu' }).apply(h) as SymbolicTensor;
      h = basicBlock(h, 'stage1', 16, 1, init);
      h = basicBlock(h, 'stage2', 32, 2, init);
      h = basicBlock(h, 'stage3', 64, 2, init);
      h = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(h) as SymbolicTensor;
      return dense('logits', numClasses, 'linear', init).apply(h) as SymbolicTensor;
    },
  },
};

function dense(name: string, units: number, activation: 'relu' | 'linear', init: Init) {
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
  activation: 'relu' | 'linear',
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

/** conv-bn-relu-conv-bn, plus the (projected when the shape changes) input, then relu. */
function basicBlock(x: SymbolicTensor, name: string, filters: number, stride: number, init: Init): SymbolicTensor {
  const inChannels = x.shape[x.shape.length - 1];
  // Convolutions before a BN have no bias: BN's beta makes it redundant.
  let h = conv(`${name}_conv1`, filters, 3, stride, 'same', 'linear', false, init.he()).apply(x) as SymbolicTensor;
  h = bn(`${name}_bn1`).apply(h) as SymbolicTensor;
  h = tfl.layers.reLU({ name: `${name}_relu1` }).apply(h) as SymbolicTensor;
  h = conv(`${name}_conv2`, filters, 3, 1, 'same', 'linear', false, init.he()).apply(h) as SymbolicTensor;
  h = bn(`${name}_bn2`).apply(h) as SymbolicTensor;
  let shortcut = x;
  if (stride !== 1 || inChannels !== filters) {
    shortcut = conv(`${name}_proj`, filters, 1, stride, 'same', 'linear', false, init.he()).apply(x) as SymbolicTensor;
    shortcut = bn(`${name}_proj_bn`).apply(shortcut) as SymbolicTensor;
  }
  h = tfl.layers.add({ name: `${name}_add` }).apply([h, shortcut]) as SymbolicTensor;
  return tfl.layers.reLU({ name: `${name}_out` }).apply(h) as SymbolicTensor;
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
 *   ('numClasses') or ('seed') for bad options, including images too small for
 *   the model's convolutions and pools.
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
  const init = new Init(new Rng(seed)); // validates the seed
  const input = tfl.input({ shape: [...inputShape], name: 'input' });
  const output = entry.build(input, numClasses, init);
  return tfl.model({ inputs: input, outputs: output, name: name.replace(/-/g, '_') });
}

/** One line per zoo model, for `--help` text. */
export function describeZoo(): { name: ZooName; description: string }[] {
  return ZOO_NAMES.map((name) => ({ name, description: ZOO[name].description }));
}
