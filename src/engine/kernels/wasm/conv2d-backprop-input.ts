/**
 * `Conv2DBackpropInput` for the wasm backend. The shipped one is a naive C++
 * loop; this one runs on the backend's XNNPACK `Conv2D`.
 */
import { tf } from '../../tf.js';
import {
  assertNHWC,
  crop4d,
  explicitPad,
  heapF32,
  release,
  runKernel,
  wasmBackend,
  type KernelArgs,
  type WasmBackend,
  zeros,
} from './util.js';

/**
 * The input gradient of a convolution is a stride-1 convolution of dy, with
 * (s-1) zeros inserted between its rows/columns when the stride s > 1, padded
 * by (k-1)*d - p, with the filter rotated 180 degrees spatially and its in/out
 * channels swapped (Dumoulin & Visin 2016, "A guide to convolution arithmetic
 * for deep learning", sec. 4.1-4.6, transposed convolution). With stride s,
 * dilation d, top padding pt and dyz the zero-inserted dy:
 *
 *   dx[n,h,w,ci] = sum_{kh',kw',co} dyz[n, h - P + kh'*d, w - Q + kw'*d, co] * W[KH-1-kh', KW-1-kw', ci, co]
 *
 * with P = (KH-1)*d - pt (and likewise Q). XNNPACK pads virtually, so for
 * stride 1 dy is used as it is; a negative padding becomes a crop of the output.
 */
function conv2DBackpropInput(args: KernelArgs): tf.TensorInfo {
  const backend = wasmBackend(args);
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = (args.attrs ?? {}) as Record<string, unknown>;
  assertNHWC(attrs.dataFormat, 'Conv2DBackpropInput');
  const inputShape = attrs.inputShape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    attrs.strides as [number, number] | number,
    // tfjs's own Conv2D gradient never passes dilations; direct callers may.
    (attrs.dilations as [number, number] | number | undefined) ?? 1,
    attrs.pad as 'valid' | 'same' | number | tf.backend_util.ExplicitPadding,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    false,
    'channelsLast',
  );
  const [, H, W] = inputShape;
  const [N, OH, OW, CO] = dy.shape;
  const [KH, KW] = [filter.shape[0], filter.shape[1]];
  const [sh, sw] = [info.strideHeight, info.strideWidth];
  const [dh, dw] = [info.dilationHeight, info.dilationWidth];
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;

  // Size of dy after zero insertion.
  const LH = (OH - 1) * sh + 1;
  const LW = (OW - 1) * sw + 1;
  const padTop = (KH - 1) * dh - pt;
  const padLeft = (KW - 1) * dw - pl;
  const padBottom = H + pt - LH;
  const padRight = W + pl - LW;

  if (inputShape.some((v) => v === 0) || dy.shape.some((v) => v === 0)) return zeros(backend, inputShape);

  const flipped = flipFilter(backend, filter);
  const dyz = sh === 1 && sw === 1 ? dy : insertZeros(backend, dy, sh, sw, N, OH, OW, CO);
  let conv: tf.TensorInfo;
  try {
    conv = runKernel('Conv2D', backend, { x: dyz, filter: flipped }, {
      strides: [1, 1],
      dilations: [dh, dw],
      pad: explicitPad(Math.max(padTop, 0), Math.max(padBottom, 0), Math.max(padLeft, 0), Math.max(padRight, 0)),
      dataFormat: 'NHWC',
    });
  } finally {
    // Disposing `flipped` also drops the XNNPACK operator cached under its id.
    release(backend, flipped);
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

/** W[kh,kw,ci,co] -> Wf[KH-1-kh, KW-1-kw, co, ci]: rotated 180 degrees, channels swapped. */
function flipFilter(backend: WasmBackend, filter: tf.TensorInfo): tf.TensorInfo {
  const [KH, KW, CI, CO] = filter.shape;
  const out = backend.makeOutput([KH, KW, CO, CI], 'float32');
  const src = heapF32(backend, filter);
  const dst = heapF32(backend, out);
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const s0 = (kh * KW + kw) * CI * CO;
      const d0 = ((KH - 1 - kh) * KW + (KW - 1 - kw)) * CO * CI;
      for (let ci = 0; ci < CI; ci++) {
        for (let co = 0; co < CO; co++) dst[d0 + co * CI + ci] = src[s0 + ci * CO + co];
      }
    }
  }
  return out;
}

/** dy with (s-1) zero rows/columns between its entries: [N, (OH-1)*sh+1, (OW-1)*sw+1, C]. */
function insertZeros(
  backend: WasmBackend,
  dy: tf.TensorInfo,
  sh: number,
  sw: number,
  N: number,
  OH: number,
  OW: number,
  C: number,
): tf.TensorInfo {
  const LH = (OH - 1) * sh + 1;
  const LW = (OW - 1) * sw + 1;
  const out = backend.makeOutput([N, LH, LW, C], 'float32');
  const src = heapF32(backend, dy);
  const dst = heapF32(backend, out);
  dst.fill(0);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      const rowOut = (n * LH + oh * sh) * LW * C;
      const rowIn = (n * OH + oh) * OW * C;
      for (let ow = 0; ow < OW; ow++) {
        const s = rowIn + ow * C;
        dst.set(src.subarray(s, s + C), rowOut + ow * sw * C);
      }
    }
  }
  return out;
}

/** Fast `Conv2DBackpropInput` on wasm via XNNPACK (any stride, padding, dilation; NHWC). */
export const conv2DBackpropInputConfig: tf.KernelConfig = {
  kernelName: 'Conv2DBackpropInput',
  backendName: 'wasm',
  kernelFunc: conv2DBackpropInput as unknown as tf.KernelFunc,
};
