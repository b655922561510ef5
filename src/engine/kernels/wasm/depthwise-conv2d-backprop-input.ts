/**
 * `DepthwiseConv2dNativeBackpropInput` for the wasm backend, which tfjs 4.22
 * does not ship.
 */
import { tf } from '../../tf.js';
import { convGeometry, fullCorrelationPadding, type ConvGeometry } from './conv-info.js';
import {
  cropOrKeep,
  heapF32,
  insertZeros,
  release,
  runKernel,
  wasmBackend,
  type KernelArgs,
  type WasmBackend,
  zeros,
} from './util.js';

/**
 * Channel multiplier 1 runs on XNNPACK: the input gradient of a depthwise
 * convolution is the depthwise correlation of dy (zero-inserted for stride > 1)
 * with the filter rotated 180 degrees, padded by (k-1)*d - p (Dumoulin & Visin
 * 2016, "A guide to convolution arithmetic for deep learning", sec. 4,
 * transposed convolution, applied per channel; zero insertion as in sec. 4.7). Larger multipliers use a JS
 * loop that scatters every dy entry back through the window that produced it:
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
  const geometry = convGeometry({ input: inputShape, filter: filter.shape, dy: dy.shape }, attrs, true);
  const { H, W, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl } = geometry;
  const [N, , , C] = inputShape;
  const CM = dy.shape[3];
  const M = filter.shape[3];
  if (M === 1 && inputShape.every((v) => v > 0) && dy.shape.every((v) => v > 0)) {
    return viaDepthwiseConvolution(backend, dy, filter, geometry);
  }

  const out = zeros(backend, [N, H, W, C]);
  // Views after the allocation, which may grow (and detach) the heap.
  const dx = heapF32(backend, out);
  const g = heapF32(backend, dy);
  const f = heapF32(backend, filter);
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
  return out;
}

/** The multiplier-1 case on the backend's XNNPACK `DepthwiseConv2dNative` (see above). */
function viaDepthwiseConvolution(
  backend: WasmBackend,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  g: ConvGeometry,
): tf.TensorInfo {
  const { H, W, OH, OW, KH, KW, sh, sw, dh, dw } = g;
  const C = filter.shape[2];
  // dy's size after zero insertion.
  const LH = (OH - 1) * sh + 1;
  const LW = (OW - 1) * sw + 1;
  const { pad, cropTop, cropLeft } = fullCorrelationPadding(g, LH, LW);

  const rotated = backend.makeOutput([KH, KW, C, 1], 'float32');
  const src = heapF32(backend, filter);
  const dst = heapF32(backend, rotated);
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const s = (kh * KW + kw) * C;
      dst.set(src.subarray(s, s + C), ((KH - 1 - kh) * KW + (KW - 1 - kw)) * C);
    }
  }
  const dyz = sh === 1 && sw === 1 ? dy : insertZeros(backend, dy, sh, sw);
  let conv: tf.TensorInfo;
  try {
    conv = runKernel('DepthwiseConv2dNative', backend, { x: dyz, filter: rotated }, {
      strides: [1, 1],
      dilations: [dh, dw],
      pad,
    });
  } finally {
    // Disposing `rotated` also drops the XNNPACK operator cached under its id.
    release(backend, rotated);
    if (dyz !== dy) release(backend, dyz);
  }
  return cropOrKeep(backend, conv, cropTop, cropLeft, H, W);
}

/** `DepthwiseConv2dNativeBackpropInput` on wasm (any stride, padding, dilation, channel multiplier). */
export const depthwiseConv2dNativeBackpropInputConfig: tf.KernelConfig = {
  kernelName: 'DepthwiseConv2dNativeBackpropInput',
  backendName: 'wasm',
  kernelFunc: depthwiseConv2dNativeBackpropInput as unknown as tf.KernelFunc,
};
