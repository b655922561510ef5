/**
 * Scores images that differ from known ones in a small window, by recomputing
 * only what the window reaches.
 *
 * A convolutional classifier's first layers (valid convolutions, pooling,
 * elementwise layers) are local: a change inside a window of the input
 * changes their output only in a window of their own. Square Attack (L-inf)
 * queries exactly such images, each its current best with one square
 * redrawn, thousands of times per image. Keeping each image's feature map
 * after those layers, a query recomputes the local layers on a patch around
 * the window (a few percent of the image once the squares are small), writes
 * the patch into a copy of the feature map, and runs only the rest of the
 * network in full. The outputs are those of the full forward pass: the same
 * kernels on the same numbers (each output of a convolution sums the same
 * products in the same order whatever the image's size).
 *
 * Works for a model that is a chain of layers from its input, whose first
 * layers are Conv2D (stride 1, valid padding, no dilation), MaxPooling2D or
 * AveragePooling2D (valid, stride = pool size) and elementwise layers
 * (activations, batch normalization, dropout), followed by anything. Other
 * models are scored the plain way.
 */
import { tf, tfl } from '../engine/tf.js';
import { readAndDispose, readOne } from '../engine/read.js';
import type { Classifier } from './classifier.js';

/** How a local layer maps positions along one spatial axis. */
type AxisOp = { kind: 'conv'; size: number } | { kind: 'pool'; size: number };

/** Layers that act on each position (or each channel) alone. */
const ELEMENTWISE = new Set(['Activation', 'ReLU', 'LeakyReLU', 'ELU', 'ThresholdedReLU', 'PReLU', 'BatchNormalization', 'Dropout', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout']);

/** A window of the input (rows then columns, half-open). */
interface Region {
  r0: number;
  c0: number;
}

/** The local layers of a model and the rest, or null when the model is not a chain that starts with local layers. */
function splitModel(model: tfl.LayersModel): { local: tfl.layers.Layer[]; rest: tfl.layers.Layer[]; rows: AxisOp[]; cols: AxisOp[] } | null {
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  // A chain: each layer fed by the one before (the first by the input), once.
  for (let i = 0; i < layers.length; i++) {
    const nodes = layers[i].inboundNodes;
    if (nodes.length !== 1 || nodes[0].inboundLayers.length !== 1) return null;
    const from = nodes[0].inboundLayers[0];
    if (i > 0 ? from !== layers[i - 1] : from.getClassName() !== 'InputLayer') return null;
  }
  if (model.outputs.length !== 1 || model.inputs.length !== 1) return null;
  const rows: AxisOp[] = [];
  const cols: AxisOp[] = [];
  let k = 0;
  let convs = 0;
  for (; k < layers.length; k++) {
    const layer = layers[k];
    const name = layer.getClassName();
    const c = layer.getConfig() as Record<string, unknown>;
    const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)]);
    if (c.dataFormat !== undefined && c.dataFormat !== 'channelsLast') break;
    if (name === 'Conv2D') {
      const [kh, kw] = pair(c.kernelSize);
      const [sh, sw] = pair(c.strides ?? 1);
      const [dh, dw] = pair(c.dilationRate ?? 1);
      if (c.padding !== 'valid' || sh !== 1 || sw !== 1 || dh !== 1 || dw !== 1) break;
      rows.push({ kind: 'conv', size: kh });
      cols.push({ kind: 'conv', size: kw });
      convs++;
    } else if (name === 'MaxPooling2D' || name === 'AveragePooling2D') {
      const [ph, pw] = pair(c.poolSize);
      const [sh, sw] = pair(c.strides ?? c.poolSize);
      if (c.padding !== 'valid' || sh !== ph || sw !== pw) break;
      rows.push({ kind: 'pool', size: ph });
      cols.push({ kind: 'pool', size: pw });
    } else if (!ELEMENTWISE.has(name)) break;
  }
  if (convs === 0 || k === layers.length) return null;
  return { local: layers.slice(0, k), rest: layers.slice(k), rows, cols };
}

/** Output positions [a, b) a change at input positions [a, b) reaches, clipped to an output of `out` positions. */
function reach(ops: AxisOp[], a: number, b: number, sizes: number[]): [number, number] {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    if (op.kind === 'conv') {
      a = Math.max(a - op.size + 1, 0);
      b = Math.min(b, sizes[i + 1]);
    } else {
      a = Math.floor(a / op.size);
      b = Math.min(Math.ceil(b / op.size), sizes[i + 1]);
    }
  }
  return [a, b];
}

/** Input positions [a, b) that output positions [a, b) of the local layers read. */
function needs(ops: AxisOp[], a: number, b: number): [number, number] {
  for (let i = ops.length - 1; i >= 0; i--) {
    const op = ops[i];
    if (op.kind === 'conv') b = b + op.size - 1;
    else {
      a *= op.size;
      b *= op.size;
    }
  }
  return [a, b];
}

/** Spatial sizes along an axis after each local layer ([input, after layer 1, ...]). */
function axisSizes(ops: AxisOp[], input: number): number[] {
  const out = [input];
  for (const op of ops) out.push(op.kind === 'conv' ? out[out.length - 1] - op.size + 1 : Math.floor(out[out.length - 1] / op.size));
  return out;
}

/**
 * Each example's feature map after the local layers, and queries on images
 * that differ from an example's base in one window. See the module comment.
 */
export class IncrementalForward {
  private base: Float32Array = new Float32Array(0);
  private count = 0;
  private last: { rows: number[]; regions: Region[]; patches: Float32Array; qh: number; qw: number } | null = null;
  private readonly rowSizes: number[];
  private readonly colSizes: number[];
  private readonly featureSize: number;

  private constructor(
    private readonly classifier: Classifier,
    private readonly local: tfl.layers.Layer[],
    private readonly rest: tfl.layers.Layer[],
    private readonly rowOps: AxisOp[],
    private readonly colOps: AxisOp[],
    private readonly channels: number,
  ) {
    const [h, w] = classifier.inputShape;
    this.rowSizes = axisSizes(rowOps, h);
    this.colSizes = axisSizes(colOps, w);
    this.featureSize = this.rowSizes[this.rowSizes.length - 1] * this.colSizes[this.colSizes.length - 1] * channels;
  }

  /** The incremental scorer of `classifier`, or null if its model does not allow it (then score images the plain way). */
  static of(classifier: Classifier): IncrementalForward | null {
    const spec = classifier.rebuildSpec;
    if (!spec) return null;
    const split = splitModel(spec.model);
    if (!split) return null;
    const [h, w, c] = classifier.inputShape;
    const channels = tf.tidy(() => {
      let x: tf.Tensor = tf.zeros([1, h, w, c]);
      for (const l of split.local) x = l.apply(x, { training: false }) as tf.Tensor;
      return x.shape[3];
    });
    const fh = axisSizes(split.rows, h).at(-1)!;
    const fw = axisSizes(split.cols, w).at(-1)!;
    if (!channels || fh < 1 || fw < 1) return null;
    return new IncrementalForward(classifier, split.local, split.rest, split.rows, split.cols, channels);
  }

  /** Makes `images` (n, NHWC) the examples' bases and returns their logits [n * classes] (n queries). */
  async reset(images: Float32Array, n: number): Promise<Float32Array> {
    const [h, w, c] = this.classifier.inputShape;
    this.count = n;
    this.last = null;
    // Tensors out of the tidy, arrays read after it: tf.tidy walks what it returns, element by element for a typed array.
    const [features, logits] = tf.tidy(() => {
      const f = this.runLocal(tf.tensor4d(images, [n, h, w, c]));
      return [f, this.runRest(f)];
    });
    const [baseValues, logitValues] = await readAndDispose([features, logits]);
    this.base = (baseValues as Float32Array).slice();
    this.classifier.addCounts({ queries: n, gradients: 0 });
    return (logitValues as Float32Array).slice();
  }

  /**
   * Logits of `proposals` (one full image per entry of `rows`, NHWC), where
   * proposal j equals the base of example rows[j] except in the window of
   * `size` x `size` pixels at (tops[j], lefts[j]). Counts one query each.
   */
  async score(rows: number[], proposals: Float32Array, tops: number[], lefts: number[], size: number): Promise<Float32Array> {
    const m = rows.length;
    const [h, w, c] = this.classifier.inputShape;
    const fh = this.rowSizes.at(-1)!;
    const fw = this.colSizes.at(-1)!;
    // The feature region a window reaches has at most this size; every example's is placed inside the map.
    const span = (ops: AxisOp[], sizes: number[], extent: number) => {
      let most = 0;
      for (let a = 0; a + size <= extent; a++) {
        const [x, y] = reach(ops, a, a + size, sizes);
        most = Math.max(most, y - x);
      }
      return most;
    };
    const qh = span(this.rowOps, this.rowSizes, h);
    const qw = span(this.colOps, this.colSizes, w);
    const regions: Region[] = rows.map((_, j) => ({
      r0: Math.min(reach(this.rowOps, tops[j], tops[j] + size, this.rowSizes)[0], fh - qh),
      c0: Math.min(reach(this.colOps, lefts[j], lefts[j] + size, this.colSizes)[0], fw - qw),
    }));
    const [pr0, pr1] = needs(this.rowOps, 0, qh);
    const [pc0, pc1] = needs(this.colOps, 0, qw);
    const ph = pr1 - pr0;
    const pw = pc1 - pc0;
    const inputStart = (r: Region) => [needs(this.rowOps, r.r0, r.r0 + qh)[0], needs(this.colOps, r.c0, r.c0 + qw)[0]];
    // Input patches around each window.
    const patches = new Float32Array(m * ph * pw * c);
    regions.forEach((r, j) => {
      const [i0, k0] = inputStart(r);
      const src = j * h * w * c;
      for (let y = 0; y < ph; y++) {
        const from = src + ((i0 + y) * w + k0) * c;
        patches.set(proposals.subarray(from, from + pw * c), ((j * ph + y) * pw) * c);
      }
    });
    const fc = this.channels;
    const local = ((await readOne(tf.tidy(() => this.runLocal(tf.tensor4d(patches, [m, ph, pw, c]))))) as Float32Array).slice();
    // Each example's base features with its region replaced.
    const maps = new Float32Array(m * this.featureSize);
    regions.forEach((r, j) => {
      maps.set(this.base.subarray(rows[j] * this.featureSize, (rows[j] + 1) * this.featureSize), j * this.featureSize);
      for (let y = 0; y < qh; y++) {
        const from = (j * qh + y) * qw * fc;
        maps.set(local.subarray(from, from + qw * fc), j * this.featureSize + ((r.r0 + y) * fw + r.c0) * fc);
      }
    });
    const logits = ((await readOne(tf.tidy(() => this.runRest(tf.tensor4d(maps, [m, fh, fw, fc]))))) as Float32Array).slice();
    this.last = { rows, regions, patches: local, qh, qw };
    this.classifier.addCounts({ queries: m, gradients: 0 });
    return logits;
  }

  /** After {@link score}: proposal j becomes the base of its example. */
  accept(j: number): void {
    const last = this.last;
    if (!last || j < 0 || j >= last.rows.length) throw new RangeError(`no scored proposal ${j} to accept`);
    const { qh, qw } = last;
    const fc = this.channels;
    const fw = this.colSizes.at(-1)!;
    const r = last.regions[j];
    const offset = last.rows[j] * this.featureSize;
    for (let y = 0; y < qh; y++) {
      const from = ((j * qh + y) * qw) * fc;
      this.base.set(last.patches.subarray(from, from + qw * fc), offset + ((r.r0 + y) * fw + r.c0) * fc);
    }
  }

  /** Examples whose bases are kept. */
  get examples(): number {
    return this.count;
  }

  private runLocal(x: tf.Tensor4D): tf.Tensor4D {
    let h: tf.Tensor = this.classifier.preprocessInput(x);
    for (const l of this.local) h = l.apply(h, { training: false }) as tf.Tensor;
    return h as tf.Tensor4D;
  }

  private runRest(features: tf.Tensor4D): tf.Tensor2D {
    let h: tf.Tensor = features;
    for (const l of this.rest) h = l.apply(h, { training: false }) as tf.Tensor;
    return h as tf.Tensor2D;
  }
}
