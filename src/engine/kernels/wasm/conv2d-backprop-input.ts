/**
 * `Conv2DBackpropInput` for the wasm backend. The shipped one is a naive C++
 * loop; this one runs on XNNPACK (the backend's `Conv2D` or its GEMM).
 */
import { tf } from '../../tf.js';
import { convGeometry, fullCorrelationPadding, type ConvGeometry } from './conv-info.js';
import {
  assertNHWC,
  cropOrKeep,
  heapF32,
  release,
  reshaped,
  runKernel,
  wasmBackend,
  type KernelArgs,
  type WasmBackend,
  zeros,
} from './util.js';
import { derivedWeight } from './derived-weights.js';

/** Shapes and hyper-parameters of one backprop-input call (NHWC). */
interface Geometry extends ConvGeometry {
  N: number;
  CI: number;
  CO: number;
}

/** Largest column buffer (floats) the col2im path holds at once; bigger batches go in chunks. */
const COLUMN_CHUNK = 1 << 22;

/**
 * Picks between two XNNPACK formulations. The convolution one does no wasted
 * work at stride 1 but puts CI on the GEMM's output-channel axis, which
 * XNNPACK tiles by 8, so few input channels (images: 1 or 3) waste most of it;
 * at stride s it multiplies s*s times more zeros than it needs. The col2im one
 * does exactly the useful multiply-adds and pays a JS scatter of
 * N*OH*OW*KH*KW*CI adds, small next to the GEMM's CO-times-larger work.
 */
export function usesCol2Im(sh: number, sw: number, inChannels: number): boolean {
  return sh > 1 || sw > 1 || inChannels < 8;
}

function conv2DBackpropInput(args: KernelArgs): tf.TensorInfo {
  const backend = wasmBackend(args);
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = (args.attrs ?? {}) as Record<string, unknown>;
  assertNHWC(attrs.dataFormat, 'Conv2DBackpropInput');
  const inputShape = attrs.inputShape as [number, number, number, number];
  const spatial = convGeometry({ input: inputShape, filter: filter.shape, dy: dy.shape }, attrs, false);
  if (inputShape.some((v) => v === 0) || dy.shape.some((v) => v === 0)) return zeros(backend, inputShape);
  const g: Geometry = { ...spatial, N: dy.shape[0], CI: inputShape[3], CO: dy.shape[3] };
  return usesCol2Im(g.sh, g.sw, g.CI) ? viaCol2Im(backend, dy, filter, g) : viaConvolution(backend, dy, filter, g);
}

/**
 * Stride 1: the input gradient is the full correlation of dy with the filter
 * rotated 180 degrees spatially and its in/out channels swapped, padded by
 * (k-1)*d - p (Dumoulin & Visin 2016, "A guide to convolution arithmetic for
 * deep learning", sec. 4.3-4.6, unit-stride transposed convolution; sec. 5.1
 * for dilation):
 *
 *   dx[n,h,w,ci] = sum_{kh',kw',co} dypad[n, h + kh'*d, w + kw'*d, co] * W[KH-1-kh', KW-1-kw', ci, co]
 *
 * with dypad padded by P = (KH-1)*d - pt on top (likewise left). XNNPACK pads
 * virtually; a negative padding (explicit padding wider than the dilated
 * filter) becomes a crop of the output.
 */
function viaConvolution(backend: WasmBackend, dy: tf.TensorInfo, filter: tf.TensorInfo, g: Geometry): tf.TensorInfo {
  const { H, W, OH, OW, dh, dw } = g;
  if (g.sh !== 1 || g.sw !== 1) throw new Error('advlab wasm Conv2DBackpropInput: convolution path needs stride 1');
  const { pad, cropTop, cropLeft } = fullCorrelationPadding(g, OH, OW);
  // A model's filter keeps its rotated copy, and XNNPACK its packed operator, across calls.
  const flipped = derivedWeight(backend, filter, `conv-flipped ${filter.shape.join('x')}`, () => flipFilter(backend, filter));
  let conv: tf.TensorInfo;
  try {
    conv = runKernel('Conv2D', backend, { x: dy, filter: flipped.info }, {
      strides: [1, 1],
      dilations: [dh, dw],
      pad,
      dataFormat: 'NHWC',
    });
  } finally {
    // Disposing a throwaway copy also drops the XNNPACK operator cached under its id.
    if (flipped.owned) release(backend, flipped.info);
  }
  return cropOrKeep(backend, conv, cropTop, cropLeft, H, W);
}

/**
 * Any stride, dilation and padding: first the per-pixel products
 * cols[n,oh,ow,(kh,kw,ci)] = sum_co dy[n,oh,ow,co] * W[kh,kw,ci,co] as one
 * XNNPACK GEMM (dy is used in place as its [N*OH*OW, CO] left operand), then
 * col2im: each column entry is added to dx[n, oh*s + kh*d - pt, ow*s + kw*d - pl, ci],
 * skipping positions in the padding. This is multiplying by the transpose of
 * the convolution's matrix (Dumoulin & Visin 2016, sec. 4.1-4.2), so strides
 * cost no zero insertion.
 */
function viaCol2Im(backend: WasmBackend, dy: tf.TensorInfo, filter: tf.TensorInfo, g: Geometry): tf.TensorInfo {
  const { N, H, W, CI, OH, OW, CO, KH, KW, sh, sw, dh, dw, pt, pl } = g;
  const KKC = KH * KW * CI;
  const perImage = OH * OW;
  // [CO, KH*KW*CI]: the GEMM's weights, packed once by XNNPACK for every chunk (and every call, for a model's filter).
  const wt = derivedWeight(backend, filter, `conv-columns ${filter.shape.join('x')}`, () => runKernel('Transpose', backend, { x: reshaped(filter, [KKC, CO]) }, { perm: [1, 0] }));
  const out = zeros(backend, [N, H, W, CI]);
  const imagesPerChunk = Math.max(1, Math.floor(COLUMN_CHUNK / (perImage * KKC)));
  try {
    for (let n0 = 0; n0 < N; n0 += imagesPerChunk) {
      const n1 = Math.min(N, n0 + imagesPerChunk);
      const rows = (n1 - n0) * perImage;
      const whole = n0 === 0 && n1 === N;
      const a = whole ? reshaped(dy, [1, rows, CO]) : backend.makeOutput([1, rows, CO], 'float32');
      if (!whole) heapF32(backend, a).set(heapF32(backend, dy).subarray(n0 * perImage * CO, n1 * perImage * CO));
      let cols: tf.TensorInfo;
      try {
        cols = runKernel('_FusedMatMul', backend, { a, b: reshaped(wt.info, [1, CO, KKC]) }, {
          transposeA: false,
          transposeB: false,
          activation: 'linear',
          leakyreluAlpha: 0,
        });
      } finally {
        if (!whole) release(backend, a);
      }
      // Views after the GEMM: it may have grown (and detached) the heap.
      const c = heapF32(backend, cols);
      const dx = heapF32(backend, out);
      for (let n = n0; n < n1; n++) {
        for (let oh = 0; oh < OH; oh++) {
          for (let ow = 0; ow < OW; ow++) {
            const c0 = (((n - n0) * OH + oh) * OW + ow) * KKC;
            for (let kh = 0; kh < KH; kh++) {
              const h = oh * sh + kh * dh - pt;
              if (h < 0 || h >= H) continue;
              for (let kw = 0; kw < KW; kw++) {
                const w = ow * sw + kw * dw - pl;
                if (w < 0 || w >= W) continue;
                const d0 = ((n * H + h) * W + w) * CI;
                const s0 = c0 + (kh * KW + kw) * CI;
                for (let ci = 0; ci < CI; ci++) dx[d0 + ci] += c[s0 + ci];
              }
            }
          }
        }
      }
      release(backend, cols);
    }
  } catch (e) {
    release(backend, out);
    throw e;
  } finally {
    if (wt.owned) release(backend, wt.info);
  }
  return out;
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

/** Fast `Conv2DBackpropInput` on wasm via XNNPACK (any stride, padding, dilation; NHWC). */
export const conv2DBackpropInputConfig: tf.KernelConfig = {
  kernelName: 'Conv2DBackpropInput',
  backendName: 'wasm',
  kernelFunc: conv2DBackpropInput as unknown as tf.KernelFunc,
};
