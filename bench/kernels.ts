/**
 * The wasm kernels one small-cnn training step runs, each in GMAC/s (10^9
 * multiply-adds per second, one thread), next to the ceiling: the fastest of
 * a few plain matrix products on the backend's GEMM (XNNPACK, wasm SIMD),
 * the best the engine does with the same arithmetic. The shapes are small-cnn's
 * second convolution and first dense layer at batch 128, where the step
 * spends its time.
 */
import { tf } from '../src/engine/tf.js';
import { time, round } from './measure.js';

const BATCH = 128;

interface KernelCase {
  name: string;
  /** Multiply-adds of one call. */
  macs: number;
  run: () => tf.Tensor;
}

export function benchKernels(log: (s: string) => void): Record<string, unknown> {
  const rng = (shape: number[]) => tf.randomUniform(shape, -1, 1, 'float32', 7);
  // small-cnn conv2: 26x26x32 -> 24x24x64, 3x3 valid.
  const x = rng([BATCH, 26, 26, 32]) as tf.Tensor4D;
  // Weights are variables, as in a model: their rearranged copies are kept across calls (derived-weights.ts), as in an attack.
  const filter = tf.variable(rng([3, 3, 32, 64])) as unknown as tf.Tensor4D;
  const dy = rng([BATCH, 24, 24, 64]) as tf.Tensor4D;
  const convMacs = BATCH * 24 * 24 * 64 * 3 * 3 * 32;
  // small-cnn fc1: 9216 -> 128.
  const h = rng([BATCH, 9216]) as tf.Tensor2D;
  const w = tf.variable(rng([9216, 128])) as unknown as tf.Tensor2D;
  const dz = rng([BATCH, 128]) as tf.Tensor2D;
  const denseMacs = BATCH * 9216 * 128;
  // GEMMs of several shapes (square, and the im2col shape of conv2); the fastest is the ceiling.
  const gemms = [
    [1024, 1024, 1024],
    [512, 512, 512],
    [BATCH * 24 * 24, 288, 64],
    [BATCH, 9216, 128],
  ].map(([m, k, n]) => ({ m, k, n, a: rng([m, k]) as tf.Tensor2D, b: rng([k, n]) as tf.Tensor2D }));
  const convAttrs = { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1] };
  const cases: KernelCase[] = [
    ...gemms.map((g) => ({ name: `gemm${g.m}x${g.k}x${g.n}`, macs: g.m * g.k * g.n, run: () => tf.matMul(g.a, g.b) })),
    { name: 'conv2D', macs: convMacs, run: () => tf.conv2d(x, filter, 1, 'valid') },
    { name: 'conv2DBackpropInput', macs: convMacs, run: () => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, { ...convAttrs, inputShape: x.shape }) as tf.Tensor },
    { name: 'conv2DBackpropFilter', macs: convMacs, run: () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...convAttrs, filterShape: filter.shape }) as tf.Tensor },
    { name: 'denseForward', macs: denseMacs, run: () => tf.matMul(h, w) },
    { name: 'denseInputGradient', macs: denseMacs, run: () => tf.matMul(dz, w, false, true) },
    { name: 'denseWeightGradient', macs: denseMacs, run: () => tf.matMul(h, dz, true, false) },
  ];
  const out: Record<string, unknown> = {};
  for (const c of cases) {
    const t = time(() => {
      const r = c.run();
      r.dataSync();
      r.dispose();
    }, { warmup: 2, repeats: 7, budgetMs: 20000 });
    const gmacs = round(c.macs / (t.medianMs / 1000) / 1e9, 2);
    out[c.name] = { ms: t.medianMs, gmacPerSecond: gmacs, macs: c.macs };
    log(`engine.kernels.${c.name}: ${t.medianMs} ms, ${gmacs} GMAC/s`);
  }
  tf.dispose([x, filter, dy, h, w, dz, ...gemms.flatMap((g) => [g.a, g.b])]);
  const ceiling = Math.max(...gemms.map((g) => (out[`gemm${g.m}x${g.k}x${g.n}`] as { gmacPerSecond: number }).gmacPerSecond));
  out.ceilingGmacPerSecond = ceiling;
  const forward = (out.conv2D as { gmacPerSecond: number }).gmacPerSecond;
  const ratios: Record<string, number> = {};
  for (const k of ['conv2D', 'conv2DBackpropInput', 'conv2DBackpropFilter', 'denseForward', 'denseInputGradient', 'denseWeightGradient']) {
    const g = (out[k] as { gmacPerSecond: number }).gmacPerSecond;
    ratios[`${k}ToCeiling`] = round(g / ceiling, 2);
    if (k.startsWith('conv2DBackprop')) ratios[`${k}ToForward`] = round(g / forward, 2);
  }
  out.ratios = ratios;
  return out;
}
