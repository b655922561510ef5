/**
 * `DepthwiseConv2dNativeBackpropFilter` for the wasm backend, which tfjs 4.22
 * does not ship.
 */
import { tf } from '../../tf.js';
import { convGeometry } from './conv-info.js';
import { heapF32, wasmBackend, type KernelArgs } from './util.js';

/**
 * Correlates each input channel with the dy channels it produced
 * (Dumoulin & Visin 2016, "A guide to convolution arithmetic for deep
 * learning", sec. 4):
 *
 *   dW[kh,kw,c,q] = sum_{n,oh,ow} x[n, oh*s + kh*d - pt, ow*s + kw*d - pl, c] * dy[n,oh,ow,c*m+q]
 *
 * Sums are kept in float64 because every entry adds up N*OH*OW products.
 */
function depthwiseConv2dNativeBackpropFilter(args: KernelArgs): tf.TensorInfo {
  const backend = wasmBackend(args);
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = (args.attrs ?? {}) as Record<string, unknown>;
  const filterShape = attrs.filterShape as [number, number, number, number];
  const { H, W, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl } =
    convGeometry({ input: x.shape, filter: filterShape, dy: dy.shape }, attrs, true);
  const [N, , , C] = x.shape;
  const CM = dy.shape[3];
  const M = filterShape[3];

  const acc = new Float64Array(KH * KW * CM);
  const xs = heapF32(backend, x);
  const g = heapF32(backend, dy);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const y0 = ((n * OH + oh) * OW + ow) * CM;
        for (let kh = 0; kh < KH; kh++) {
          const h = oh * sh + kh * dh - pt;
          if (h < 0 || h >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const w = ow * sw + kw * dw - pl;
            if (w < 0 || w >= W) continue;
            const x0 = ((n * H + h) * W + w) * C;
            const a0 = (kh * KW + kw) * CM;
            if (M === 1) {
              for (let c = 0; c < C; c++) acc[a0 + c] += xs[x0 + c] * g[y0 + c];
            } else {
              for (let c = 0; c < C; c++) {
                const xv = xs[x0 + c];
                for (let q = c * M, end = q + M; q < end; q++) acc[a0 + q] += xv * g[y0 + q];
              }
            }
          }
        }
      }
    }
  }
  const out = backend.makeOutput(filterShape, 'float32');
  heapF32(backend, out).set(acc);
  return out;
}

/** `DepthwiseConv2dNativeBackpropFilter` on wasm (any stride, padding, dilation, channel multiplier). */
export const depthwiseConv2dNativeBackpropFilterConfig: tf.KernelConfig = {
  kernelName: 'DepthwiseConv2dNativeBackpropFilter',
  backendName: 'wasm',
  kernelFunc: depthwiseConv2dNativeBackpropFilter as unknown as tf.KernelFunc,
};
