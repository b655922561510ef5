/**
 * `DepthwiseConv2dNativeBackpropInput` for the wasm backend, which tfjs 4.22
 * does not ship.
 */
import { tf } from '../../tf.js';
import { heapF32, wasmBackend, type KernelArgs } from './util.js';

/**
 * Scatters every dy entry back through the window that produced it
 * (the adjoint of the forward depthwise convolution; Dumoulin & Visin 2016,
 * "A guide to convolution arithmetic for deep learning", sec. 4):
 *
 *   dx[n, oh*s + kh*d - pt, ow*s + kw*d - pl, c] += sum_q dy[n,oh,ow,c*m+q] * W[kh,kw,c,q]
 *
 * The channel index c*m+q is the same flat offset in dy's pixel and in W's
 * (kh,kw) slice, so the inner loop walks both contiguously.
 */
function depthwiseConv2dNativeBackpropInput(args: KernelArgs): tf.TensorInfo {
  const backend = wasmBackend(args);
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = (args.attrs ?? {}) as Record<string, unknown>;
  const inputShape = attrs.inputShape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    attrs.strides as [number, number] | number,
    (attrs.dilations as [number, number] | number | undefined) ?? 1,
    attrs.pad as 'valid' | 'same' | number | tf.backend_util.ExplicitPadding,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    true,
  );
  const [N, H, W, C] = inputShape;
  const [, OH, OW, CM] = dy.shape;
  const [KH, KW, , M] = filter.shape;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;

  const out = backend.makeOutput([N, H, W, C], 'float32');
  // Views after the allocation: makeOutput may grow (and detach) the heap.
  const dx = heapF32(backend, out);
  const g = heapF32(backend, dy);
  const f = heapF32(backend, filter);
  dx.fill(0);
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
            const f0 = (kh * KW + kw) * CM;
            if (M === 1) {
              for (let c = 0; c < C; c++) dx[x0 + c] += g[y0 + c] * f[f0 + c];
            } else {
              for (let c = 0; c < C; c++) {
                let s = 0;
                for (let q = c * M, end = q + M; q < end; q++) s += g[y0 + q] * f[f0 + q];
                dx[x0 + c] += s;
              }
            }
          }
        }
      }
    }
  }
  return out;
}

/** `DepthwiseConv2dNativeBackpropInput` on wasm (any stride, padding, dilation, channel multiplier). */
export const depthwiseConv2dNativeBackpropInputConfig: tf.KernelConfig = {
  kernelName: 'DepthwiseConv2dNativeBackpropInput',
  backendName: 'wasm',
  kernelFunc: depthwiseConv2dNativeBackpropInput as unknown as tf.KernelFunc,
};
