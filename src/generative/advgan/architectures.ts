/**
 * AdvGAN's networks, after Xiao et al. 2018 (their mnist generator and
 * discriminator, as in the reference code mathcbc/advGAN_pytorch):
 * - the generator maps an image to an unbounded perturbation map of its shape:
 *   a conv encoder (8, 16 and 32 channels, two stride-2 steps), residual blocks
 *   of 32 channels, and a transposed-conv decoder back to the image's size
 *   (losses.ts then bounds it with eps tanh). Batch norm stands in for instance
 *   norm, which tfjs-layers lacks;
 * - the discriminator maps an image to one logit (real image or perturbed one):
 *   three stride-2 4x4 convolutions (8, 16, 32) with leaky ReLU, then a dense
 *   logit. Losses take its logits (generative/losses.ts), never a sigmoid.
 */
import { tfl } from '../../engine/tf.js';
import { InputError } from '../../errors.js';
import { Rng } from '../../util/rng.js';

type SymbolicTensor = ReturnType<typeof tfl.input>;

/** Residual blocks in the generator's bottleneck (the paper's mnist model has 4). */
export const ADVGAN_RES_BLOCKS = 4;

/** AdvGAN's generator and discriminator for images of `imageShape` ([h, w, c], h and w multiples of 4). */
export function buildAdvGan(imageShape: readonly [number, number, number], seed: number): { generator: tfl.LayersModel; discriminator: tfl.LayersModel } {
  const [h, w, c] = imageShape;
  if (!(h % 4 === 0 && w % 4 === 0 && h >= 8 && w >= 8)) throw new InputError('imageShape', `AdvGAN's generator halves the image twice: height and width must be multiples of 4 (at least 8), got ${h}x${w}`);
  const rng = new Rng(seed);
  const init = () => tfl.initializers.glorotUniform({ seed: rng.seed() });
  const conv = (name: string, filters: number, kernel: number, stride: number) =>
    tfl.layers.conv2d({ name, filters, kernelSize: kernel, strides: stride, padding: 'same', kernelInitializer: init() });
  const bn = (name: string) => tfl.layers.batchNormalization({ name, momentum: 0.9 });
  const relu = (name: string) => tfl.layers.reLU({ name });

  const x = tfl.input({ shape: [h, w, c], name: 'image' });
  let t = x as SymbolicTensor;
  for (const [i, [filters, stride]] of [[8, 1], [16, 2], [32, 2]].entries()) {
    t = conv(`enc${i + 1}`, filters, 3, stride).apply(t) as SymbolicTensor;
    t = relu(`enc${i + 1}_relu`).apply(bn(`enc${i + 1}_bn`).apply(t)) as SymbolicTensor;
  }
  for (let b = 1; b <= ADVGAN_RES_BLOCKS; b++) {
    let r = conv(`res${b}_a`, 32, 3, 1).apply(t) as SymbolicTensor;
    r = relu(`res${b}_relu`).apply(bn(`res${b}_a_bn`).apply(r)) as SymbolicTensor;
    r = bn(`res${b}_b_bn`).apply(conv(`res${b}_b`, 32, 3, 1).apply(r)) as SymbolicTensor;
    t = tfl.layers.add({ name: `res${b}_add` }).apply([t, r]) as SymbolicTensor;
  }
  for (const [i, filters] of [16, 8].entries()) {
    t = tfl.layers.conv2dTranspose({ name: `dec${i + 1}`, filters, kernelSize: 3, strides: 2, padding: 'same', kernelInitializer: init() }).apply(t) as SymbolicTensor;
    t = relu(`dec${i + 1}_relu`).apply(bn(`dec${i + 1}_bn`).apply(t)) as SymbolicTensor;
  }
  const out = conv('perturbation', c, 3, 1).apply(t) as SymbolicTensor;
  const generator = tfl.model({ inputs: x, outputs: out, name: 'advgan_generator' });

  const d = tfl.input({ shape: [h, w, c], name: 'image' });
  let u = d as SymbolicTensor;
  for (const [i, filters] of [8, 16, 32].entries()) {
    u = conv(`d${i + 1}`, filters, 4, 2).apply(u) as SymbolicTensor;
    u = tfl.layers.leakyReLU({ alpha: 0.2, name: `d${i + 1}_lrelu` }).apply(u) as SymbolicTensor;
  }
  u = tfl.layers.flatten({ name: 'flatten' }).apply(u) as SymbolicTensor;
  const logit = tfl.layers.dense({ units: 1, name: 'logit', kernelInitializer: init() }).apply(u) as SymbolicTensor;
  const discriminator = tfl.model({ inputs: d, outputs: logit, name: 'advgan_discriminator' });
  return { generator, discriminator };
}
