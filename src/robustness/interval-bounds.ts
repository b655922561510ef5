/**
 * Interval bound propagation (Gowal et al., "On the effectiveness of
 * interval bound propagation for training verifiably robust models", 2018;
 * reference code deepmind/interval-bound-propagation): bounds on every
 * logit over the whole Linf ball, layer by layer. An affine layer maps the
 * box with centre c and radius r to centre W·c + b and radius |W|·r (dense
 * and convolution alike; batch norm in inference mode is affine per
 * channel); a monotone activation or max-pooling maps the endpoints; flatten
 * reshapes. The ball is first cut to the input's bounds (a tighter box, still
 * containing every valid input).
 *
 * The last dense layer is elided as in the paper: bounds on the margins
 * z_j - z_y come from the penultimate box through the rows W_j - W_y, which
 * is tighter than subtracting two logit intervals. An image is verified when
 * every margin's upper bound is below 0: no input in the ball changes the
 * class. Every operation is a tfjs op, so the bounds are differentiable and
 * the IBP loss (defenses) trains through them.
 */
import { tf, type tfl } from '../engine/tf.js';
import { InputError } from '../errors.js';

/** A box as centre and radius (radius >= 0), the form affine layers map exactly. */
interface Box {
  c: tf.Tensor;
  r: tf.Tensor;
}

/** Activations that are nondecreasing elementwise functions, so endpoints map to endpoints (not swish, mish or gelu, which dip below 0; not softmax). */
const MONOTONE = new Set(['linear', 'relu', 'relu6', 'sigmoid', 'tanh', 'elu', 'selu', 'softplus', 'softsign', 'hardSigmoid']);

/** Layers bounds pass through, by class name. */
export const INTERVAL_LAYERS = ['InputLayer', 'Dense', 'Conv2D', 'Flatten', 'MaxPooling2D', 'AveragePooling2D', 'Activation', 'ReLU', 'Dropout', 'BatchNormalization', 'Reshape'] as const;

/**
 * The chain of layers of `model` with their handlers; throws an InputError
 * naming the first layer IBP cannot pass, or a model that is not a chain.
 */
export function intervalChain(model: tfl.LayersModel): tfl.layers.Layer[] {
  const layers = model.layers;
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i];
    const kind = layer.getClassName();
    if (!(INTERVAL_LAYERS as readonly string[]).includes(kind)) {
      throw new InputError('model', `interval bound propagation does not pass layer "${layer.name}" (${kind}); it handles ${INTERVAL_LAYERS.join(', ')}`);
    }
    const activation = activationOf(layer);
    if (activation !== undefined && !MONOTONE.has(activation)) {
      throw new InputError('model', `layer "${layer.name}" has activation ${activation}, which is not monotone: its interval bounds do not follow from the endpoints`);
    }
    if (i > 0) {
      const inbound = (layer as unknown as { inboundNodes: { inboundLayers: tfl.layers.Layer[] }[] }).inboundNodes;
      if (inbound.length !== 1 || inbound[0].inboundLayers.length !== 1 || inbound[0].inboundLayers[0] !== layers[i - 1]) {
        throw new InputError('model', `interval bound propagation needs a chain of layers (each fed by the one before); layer "${layer.name}" is not`);
      }
    }
  }
  const last = layers[layers.length - 1];
  if (last.getClassName() !== 'Dense' || (activationOf(last) ?? 'linear') !== 'linear') {
    throw new InputError('model', `interval bound propagation needs logits from a final linear Dense layer; the last layer "${last.name}" is ${last.getClassName()}`);
  }
  return layers;
}

/** Logit bounds of a batch over its Linf ball. */
export interface LogitBounds {
  lower: tf.Tensor2D;
  upper: tf.Tensor2D;
}

/**
 * Lower and upper bounds of every logit over {x' : |x' - x|_inf <= eps} cut
 * to `bounds` (without eliding the last layer). The caller owns the two
 * tensors.
 */
export function logitBounds(model: tfl.LayersModel, x: tf.Tensor4D, eps: number | tf.Scalar, bounds: readonly [number, number] = [0, 1]): LogitBounds {
  const layers = intervalChain(model);
  return tf.tidy(() => {
    const box = propagate(layers, inputBox(x, eps, bounds), layers.length);
    return { lower: tf.sub(box.c, box.r) as tf.Tensor2D, upper: tf.add(box.c, box.r) as tf.Tensor2D };
  }) as LogitBounds;
}

/**
 * Upper bounds of the margins z_j - z_y (j != y; 0 at j = y) over the ball,
 * the last dense layer elided (see the module comment): the "worst-case
 * logits" of the IBP loss. `labels` int32 [n]. Call inside tf.tidy or
 * dispose the result.
 */
export function worstCaseMargins(model: tfl.LayersModel, x: tf.Tensor4D, labels: tf.Tensor1D, eps: number | tf.Scalar, bounds: readonly [number, number] = [0, 1]): tf.Tensor2D {
  const layers = intervalChain(model);
  return tf.tidy(() => {
    const box = propagate(layers, inputBox(x, eps, bounds), layers.length - 1);
    const last = layers[layers.length - 1];
    const { kernel, bias } = weightsOf(last);
    const K = kernel.shape[1] as number;
    // Rows W_j - W_y for each example: [n, d, K].
    const wy = tf.transpose(tf.gather(kernel, labels, 1)); // [n, d]
    const diff = tf.sub(tf.expandDims(kernel, 0), tf.expandDims(wy, 2));
    const centre = tf.squeeze(tf.matMul(tf.expandDims(box.c, 1), diff), [1]); // [n, K]
    const radius = tf.squeeze(tf.matMul(tf.expandDims(box.r, 1), tf.abs(diff)), [1]);
    let margins = tf.add(centre, radius);
    if (bias) margins = tf.add(margins, tf.sub(tf.expandDims(bias, 0), tf.expandDims(tf.gather(bias, labels), 1)));
    // Exactly 0 at j = y (the difference row is 0 there; the mask removes rounding).
    const notTrue = tf.sub(1, tf.oneHot(labels, K));
    return tf.mul(margins, notTrue) as tf.Tensor2D;
  });
}

/**
 * Whether each image is verified at `eps`: every margin's upper bound below
 * 0 (last layer elided). Returns a boolean per image.
 */
export async function verifiedAt(model: tfl.LayersModel, x: tf.Tensor4D, labels: tf.Tensor1D, eps: number, bounds: readonly [number, number] = [0, 1]): Promise<boolean[]> {
  const worst = tf.tidy(() => {
    const m = worstCaseMargins(model, x, labels, eps, bounds);
    // The true class's own entry is 0: exclude it by pushing it to -inf.
    return tf.max(tf.where(tf.cast(tf.oneHot(labels, m.shape[1]), 'bool'), tf.fill(m.shape, -Infinity), m), 1);
  });
  const values = (await worst.data()) as Float32Array;
  worst.dispose();
  return Array.from(values, (v) => v < 0);
}

function inputBox(x: tf.Tensor4D, eps: number | tf.Scalar, [lo, hi]: readonly [number, number]): Box {
  const lower = tf.clipByValue(tf.sub(x, eps), lo, hi);
  const upper = tf.clipByValue(tf.add(x, eps), lo, hi);
  return { c: tf.div(tf.add(lower, upper), 2), r: tf.div(tf.sub(upper, lower), 2) };
}

/** The box after the first `count` layers of the chain. */
function propagate(layers: tfl.layers.Layer[], input: Box, count: number): Box {
  let box = input;
  for (let i = 0; i < count; i++) box = through(layers[i], box);
  return box;
}

function through(layer: tfl.layers.Layer, box: Box): Box {
  const kind = layer.getClassName();
  const config = layer.getConfig() as Record<string, unknown>;
  switch (kind) {
    case 'InputLayer':
    case 'Dropout':
      return box;
    case 'Flatten':
      return { c: tf.reshape(box.c, [box.c.shape[0], -1]), r: tf.reshape(box.r, [box.r.shape[0], -1]) };
    case 'Reshape': {
      const shape = [box.c.shape[0], ...(config.targetShape as number[])];
      return { c: tf.reshape(box.c, shape), r: tf.reshape(box.r, shape) };
    }
    case 'Dense': {
      const { kernel, bias } = weightsOf(layer);
      let c = tf.matMul(box.c as tf.Tensor2D, kernel as tf.Tensor2D);
      if (bias) c = tf.add(c, bias);
      return activate(layer, { c, r: tf.matMul(box.r as tf.Tensor2D, tf.abs(kernel) as tf.Tensor2D) });
    }
    case 'Conv2D': {
      const { kernel, bias } = weightsOf(layer);
      const strides = config.strides as [number, number];
      const padding = config.padding as 'valid' | 'same';
      const dilations = config.dilationRate as [number, number];
      if (config.dataFormat === 'channelsFirst') throw new InputError('model', `layer "${layer.name}": interval bounds need channels-last convolutions`);
      let c = tf.conv2d(box.c as tf.Tensor4D, kernel as tf.Tensor4D, strides, padding, 'NHWC', dilations);
      if (bias) c = tf.add(c, bias);
      return activate(layer, { c, r: tf.conv2d(box.r as tf.Tensor4D, tf.abs(kernel) as tf.Tensor4D, strides, padding, 'NHWC', dilations) });
    }
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      const pool = (t: tf.Tensor) =>
        (kind === 'MaxPooling2D' ? tf.maxPool : tf.avgPool)(t as tf.Tensor4D, config.poolSize as [number, number], config.strides as [number, number], config.padding as 'valid' | 'same');
      // Max-pooling is monotone in each input (endpoints); average-pooling is affine with weights >= 0 (centre and radius).
      if (kind === 'AveragePooling2D') return { c: pool(box.c), r: pool(box.r) };
      return fromEndpoints(pool(tf.sub(box.c, box.r)), pool(tf.add(box.c, box.r)));
    }
    case 'Activation':
    case 'ReLU':
      return activate(layer, box);
    case 'BatchNormalization': {
      const w = weightsByName(layer);
      const axis = config.axis as number;
      if (axis !== -1 && axis !== box.c.rank - 1) throw new InputError('model', `layer "${layer.name}": interval bounds need batch norm over the last axis`);
      const epsilon = config.epsilon as number;
      const scale = tf.div(w.gamma ?? 1, tf.sqrt(tf.add(w.moving_variance, epsilon)));
      const shift = tf.sub(w.beta ?? 0, tf.mul(w.moving_mean, scale));
      return { c: tf.add(tf.mul(box.c, scale), shift), r: tf.mul(box.r, tf.abs(scale)) };
    }
    default:
      throw new InputError('model', `interval bound propagation does not pass layer "${layer.name}" (${kind})`);
  }
}

function activationOf(layer: tfl.layers.Layer): string | undefined {
  const kind = layer.getClassName();
  if (kind === 'ReLU') return 'relu';
  const a = (layer.getConfig() as Record<string, unknown>).activation;
  return typeof a === 'string' ? a : undefined;
}

/** The layer's activation applied to the box's endpoints (monotone, checked in intervalChain). */
function activate(layer: tfl.layers.Layer, box: Box): Box {
  const name = activationOf(layer) ?? 'linear';
  if (name === 'linear') return box;
  if (layer.getClassName() === 'ReLU') {
    const max = (layer.getConfig() as { maxValue?: number | null }).maxValue;
    const f = (t: tf.Tensor) => (max != null ? tf.clipByValue(t, 0, max) : tf.relu(t));
    return fromEndpoints(f(tf.sub(box.c, box.r)), f(tf.add(box.c, box.r)));
  }
  const fn = (layer as unknown as { activation: { apply(t: tf.Tensor): tf.Tensor } }).activation;
  return fromEndpoints(fn.apply(tf.sub(box.c, box.r)), fn.apply(tf.add(box.c, box.r)));
}

function fromEndpoints(lower: tf.Tensor, upper: tf.Tensor): Box {
  return { c: tf.div(tf.add(lower, upper), 2), r: tf.div(tf.sub(upper, lower), 2) };
}

/** A layer's weights by their short name (kernel, bias, gamma, ...), as the variables' tensors (differentiable). */
function weightsByName(layer: tfl.layers.Layer): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const w of layer.weights) out[w.originalName.split('/').pop()!] = w.read();
  return out;
}

function weightsOf(layer: tfl.layers.Layer): { kernel: tf.Tensor; bias?: tf.Tensor } {
  const w = weightsByName(layer);
  if (!w.kernel) throw new InputError('model', `layer "${layer.name}" has no kernel`);
  return { kernel: w.kernel, bias: w.bias };
}
