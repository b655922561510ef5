/**
 * `Conv2DBackpropFilter` for the wasm backend, which tfjs 4.22 does not ship
 * (so training any conv net on wasm throws without it).
 */
import { tf } from '../../tf.js';
import { convGeometry } from './conv-info.js';
import {
  assertNHWC,
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
 * The filter gradient as one forward convolution on the backend's XNNPACK
 * `Conv2D`. With stride s, dilation d and padding (pt, pl):
 *
 *   dW[kh,kw,ci,co] = sum_{n,oh,ow} xpad[n, oh*s + kh*d, ow*s + kw*d, ci] * dy[n,oh,ow,co]
 *
 * (the forward convolution's definition differentiated by W; notation and
 * output-size arithmetic of Dumoulin & Visin 2016, "A guide to convolution
 * arithmetic for deep learning", sec. 2 and 5.1). Read as a forward convolution: its
 * batch is ci, its channels are n, its filter is dy (spatial size OHxOW), and
 * stride and dilation trade places (stride d, dilation s). So: x -> [ci,H,W,n],
 * dy -> [OH,OW,n,co], convolve, crop to KHxKW, and lay out [ci,KH,KW,co] as
 * [KH,KW,ci,co].
 */
function conv2DBackpropFilter(args: KernelArgs): tf.TensorInfo {
  const backend = wasmBackend(args);
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = (args.attrs ?? {}) as Record<string, unknown>;
  assertNHWC(attrs.dataFormat, 'Conv2DBackpropFilter');
  const filterShape = attrs.filterShape as [number, number, number, number];
  const { H, W, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl } =
    convGeometry({ input: x.shape, filter: filterShape, dy: dy.shape }, attrs, false);
  // Bottom/right zero padding so the output has exactly KH x KW positions; when
  // negative (trailing input rows no window reaches), pad 0 and crop instead.
  const pb = (KH - 1) * dh + (OH - 1) * sh + 1 - H - pt;
  const pr = (KW - 1) * dw + (OW - 1) * sw + 1 - W - pl;

  if (x.shape.some((v) => v === 0) || dy.shape.some((v) => v === 0)) return zeros(backend, filterShape);
  if (sh === 1 && sw === 1 && dh === 1 && dw === 1 && pb >= 0 && pr >= 0 && KH * KW * x.shape[3] >= GEMM_MIN_ROWS) {
    return filterGradientByGemm(backend, x, dy, { H, W, OH, OW, KH, KW, pt, pl, pb, pr });
  }

  // The batch is the convolution's reduction axis; it goes in chunks so each
  // chunk's dy (XNNPACK's packed "filter") stays cache-sized: measured ~15%
  // faster than one convolution over the whole batch for MNIST-sized layers.
  const N = x.shape[0];
  const chunk = Math.max(1, Math.min(N, Math.floor(FILTER_CHUNK / (OH * OW * dy.shape[3]))));
  let sum: Float64Array | undefined;
  let convShape: number[] = [];
  for (let n0 = 0; n0 < N; n0 += chunk) {
    const n1 = Math.min(N, n0 + chunk);
    const xT = transposeToChannelsOuter(backend, x, n0, n1);
    const dyT = transposeBatchInner(backend, dy, n0, n1);
    let conv: tf.TensorInfo;
    try {
      conv = runKernel('Conv2D', backend, { x: xT, filter: dyT }, {
        strides: [dh, dw],
        dilations: [sh, sw],
        pad: explicitPad(pt, Math.max(pb, 0), pl, Math.max(pr, 0)),
        dataFormat: 'NHWC',
      });
    } finally {
      // Disposing dyT also drops the XNNPACK operator cached under its id.
      release(backend, xT, dyT);
    }
    const part = heapF32(backend, conv);
    convShape = conv.shape;
    if (sum === undefined) sum = Float64Array.from(part);
    else for (let i = 0; i < part.length; i++) sum[i] += part[i];
    release(backend, conv);
  }
  return cropToFilter(backend, sum as Float64Array, convShape, KH, KW);
}

/**
 * Stride and dilation 1: the filter gradient as one matrix product per chunk
 * of images on the backend's GEMM (XNNPACK's fully-connected operator),
 *
 *   dW[(kh,kw,ci), co] = sum_j A[(kh,kw,ci), j] * B[j, co],
 *
 * j running over (n, oh, w) with w over the padded input's whole width Wp
 * (not only the OW output columns), so that every row of A is a contiguous
 * run of the channel-major padded input: A[(kh,kw,ci), (n,oh,w)] =
 * xpT[ci, n, oh + kh, w + kw] is one memcpy per (kh, kw, ci, image), and B is
 * dy with Wp - OW zero columns per row. The zero columns cost Wp / OW more
 * multiply-adds (26 / 24 for a 3x3 valid convolution on 26x26) and buy a
 * GEMM of M = KH*KW*CI rows, where XNNPACK runs at its ceiling, with no
 * element-wise im2col. The output comes in the filter's own [KH,KW,CI,CO]
 * layout. Reads past a row's end (w + kw >= Wp) meet B's zero columns.
 */
function filterGradientByGemm(
  backend: WasmBackend,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  g: { H: number; W: number; OH: number; OW: number; KH: number; KW: number; pt: number; pl: number; pb: number; pr: number },
): tf.TensorInfo {
  const { H, W, OH, OW, KH, KW, pt, pl, pb, pr } = g;
  const [N, , , CI] = x.shape;
  const CO = dy.shape[3];
  const Hp = H + pt + pb;
  const Wp = W + pl + pr;
  const imageSpan = Hp * Wp;
  const rows = KH * KW * CI;
  const span = OH * Wp; // values of j per image
  const images = Math.max(1, Math.min(N, Math.round(GEMM_CHUNK / span)));
  // One chunk of the padded input, channel-major: xpT[ci][(n-n0)*Hp*Wp + h*Wp + w], KW spare
  // (zero) floats per row for the reads past the end. One cache-sized buffer
  // for every chunk, cleared before a chunk only where stale values could
  // remain (padding, or a short last chunk).
  const rowStride = images * imageSpan + KW;
  const xpT = new Float32Array(CI * rowStride);
  const padded = pt + pb + pl + pr > 0;
  const sum = new Float64Array(rows * CO);
  for (let n0 = 0; n0 < N; n0 += images) {
    const n1 = Math.min(N, n0 + images);
    if (padded || n1 - n0 < images) xpT.fill(0);
    {
      const src = heapF32(backend, x);
      for (let n = n0; n < n1; n++) {
        for (let h = 0; h < H; h++) {
          const base = (n - n0) * imageSpan + (h + pt) * Wp + pl;
          let s = (n * H + h) * W * CI;
          for (let w = 0; w < W; w++) {
            for (let c = 0, o = base + w; c < CI; c++, o += rowStride) xpT[o] = src[s++];
          }
        }
      }
    }
    const K = (n1 - n0) * span;
    const a = backend.makeOutput([1, rows, K], 'float32');
    const b = backend.makeOutput([1, K, CO], 'float32');
    let out: tf.TensorInfo;
    try {
      // Views after both allocations (either may grow the heap).
      const av = heapF32(backend, a);
      const bv = heapF32(backend, b);
      const dyv = heapF32(backend, dy);
      for (let kh = 0; kh < KH; kh++) {
        for (let kw = 0; kw < KW; kw++) {
          for (let ci = 0; ci < CI; ci++) {
            const row = ((kh * KW + kw) * CI + ci) * K;
            const from = ci * rowStride + kh * Wp + kw;
            for (let n = n0; n < n1; n++) {
              const s = from + (n - n0) * imageSpan;
              av.set(xpT.subarray(s, s + span), row + (n - n0) * span);
            }
          }
        }
      }
      bv.fill(0);
      const rowLen = OW * CO;
      for (let n = n0; n < n1; n++) {
        for (let oh = 0; oh < OH; oh++) {
          const s = ((n * OH + oh) * OW) * CO;
          bv.set(dyv.subarray(s, s + rowLen), ((n - n0) * span + oh * Wp) * CO);
        }
      }
      out = runKernel('_FusedMatMul', backend, { a, b }, { transposeA: false, transposeB: false, activation: 'linear', leakyreluAlpha: 0 });
    } finally {
      // Disposing b also drops the XNNPACK operator packed for it.
      release(backend, a, b);
    }
    const part = heapF32(backend, out);
    for (let i = 0; i < part.length; i++) sum[i] += part[i];
    release(backend, out);
  }
  const result = backend.makeOutput([KH, KW, CI, CO], 'float32');
  heapF32(backend, result).set(sum);
  return result;
}

/** Below this many filter rows (KH*KW*CI), the GEMM is too thin to pay; the convolution path takes it. */
const GEMM_MIN_ROWS = 64;

/**
 * Target GEMM depth (values of j) per chunk: XNNPACK re-reads the packed B
 * (depth x CO floats) once per 4 rows of A, so B should stay in L2 (1,250 x
 * 64 floats = 320 KB); much smaller chunks pay more in per-chunk sums.
 */
const GEMM_CHUNK = 1250;

/** Budget (floats) for one chunk of dy as XNNPACK's packed filter. */
const FILTER_CHUNK = 1 << 18;

// The layout changes below are plain JS loops: measured 1.5-3x faster than
// the backend's generic Transpose kernel for these shapes.

/** x[n0:n1,h,w,c] -> out[c,h,w,n-n0]. */
function transposeToChannelsOuter(backend: WasmBackend, x: tf.TensorInfo, n0: number, n1: number): tf.TensorInfo {
  const [, H, W, C] = x.shape;
  const P = H * W;
  const N = n1 - n0;
  const out = backend.makeOutput([C, H, W, N], 'float32');
  const src = heapF32(backend, x);
  const dst = heapF32(backend, out);
  const PN = P * N;
  for (let n = 0; n < N; n++) {
    for (let p = 0; p < P; p++) {
      const s = ((n0 + n) * P + p) * C;
      let o = p * N + n;
      for (let c = 0; c < C; c++, o += PN) dst[o] = src[s + c];
    }
  }
  return out;
}

/** dy[n0:n1,oh,ow,c] -> out[oh,ow,n-n0,c] (whole channel rows move, so it is a block copy). */
function transposeBatchInner(backend: WasmBackend, dy: tf.TensorInfo, n0: number, n1: number): tf.TensorInfo {
  const [, OH, OW, C] = dy.shape;
  const P = OH * OW;
  const N = n1 - n0;
  const out = backend.makeOutput([OH, OW, N, C], 'float32');
  const src = heapF32(backend, dy);
  const dst = heapF32(backend, out);
  for (let n = 0; n < N; n++) {
    for (let p = 0; p < P; p++) {
      const s = ((n0 + n) * P + p) * C;
      dst.set(src.subarray(s, s + C), (p * N + n) * C);
    }
  }
  return out;
}

/** conv[ci,kh,kw,co] (possibly larger than KHxKW) -> dW[kh,kw,ci,co]. */
function cropToFilter(backend: WasmBackend, src: Float64Array, shape: number[], KH: number, KW: number): tf.TensorInfo {
  const [CI, OH, OW, CO] = shape;
  const out = backend.makeOutput([KH, KW, CI, CO], 'float32');
  const dst = heapF32(backend, out);
  for (let ci = 0; ci < CI; ci++) {
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        const s = ((ci * OH + kh) * OW + kw) * CO;
        dst.set(src.subarray(s, s + CO), ((kh * KW + kw) * CI + ci) * CO);
      }
    }
  }
  return out;
}

/** Exact `Conv2DBackpropFilter` on wasm (any stride, padding, dilation; NHWC). */
export const conv2DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc,
};
