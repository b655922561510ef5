/**
 * `DepthwiseConv2dNativeBackpropInput` for the wasm backend, which tfjs 4.22
 * does not ship.
 */
import { tf } from '../../tf.js';
import {
  crop4d,
  explicitPad,
  heapF32,
  insertZeros,
  release,
  runKernel,
  wasmBackend,
  type KernelArgs,
  type WasmBackend,
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
  if (M === 1 && inputShape.every((v) => v > 0) && dy.shape.every((v) => v > 0)) {
    return viaDepthwiseConvolution(backend, dy, filter, inputShape, sh, sw, dh, dw, pt, pl);
  }

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
  inputShape: [number, number, number, number],
  sh: number,
  sw: number,
  dh: number,
  dw: number,
  pt: number,
  pl: number,
): tf.TensorInfo {
  const [, H, W] = inputShape;
  const [, OH, OW] = dy.shape;
  const [KH, KW, C] = filter.shape;
  const LH = (OH - 1) * sh + 1;
  const LW = (OW - 1) * sw + 1;
  const padTop = (KH - 1) * dh - pt;
  const padLeft = (KW - 1) * dw - pl;
  const padBottom = H + pt - LH;
  const padRight = W + pl - LW;

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
      pad: explicitPad(Math.max(padTop, 0), Math.max(padBottom, 0), Math.max(padLeft, 0), Math.max(padRight, 0)),
    });
  } finally {
    // Disposing `rotated` also drops the XNNPACK operator cached under its id.
    release(backend, rotated);
    if (dyz !== dy) release(backend, dyz);
  }
  const cropTop = Math.max(-padTop, 0);
  const cropLeft = Math.max(-padLeft, 0);
  if (cropTop !== 0 || cropLeft !== 0 || conv.shape[1] !== H || conv.shape[2] !== W) {
    const cropped = crop4d(backend, conv, cropTop, cropLeft, H, W);
    release(backend, conv);
    conv = cropped;
  }
  return conv;
}

/** `DepthwiseConv2dNativeBackpropInput` on wasm (any stride, padding, dilation, channel multiplier). */
export const depthwiseConv2dNativeBackpropInputConfig: tf.KernelConfig = {
  kernelName: 'DepthwiseConv2dNativeBackpropInput',
  backendName: 'wasm',
  kernelFunc: depthwiseConv2dNativeBackpropInput as unknown as tf.KernelFunc,
};
