/**
 * `MaxPoolGrad` for the wasm backend: a single pass over the input instead of
 * the shipped kernel's per-input-pixel search.
 */
import { tf } from '../../tf.js';
import { poolGeometry } from './conv-info.js';
import { heapF32, wasmBackend, type KernelArgs, zeros } from './util.js';

/**
 * Routes each dy entry to the first maximum of its window (row-major order,
 * strict `>`, padding excluded), exactly as the CPU backend does; a window
 * with no value above -Infinity passes no gradient. The argmax is recomputed
 * from the input (not matched against the forward output), so NaNs and
 * hand-made `output` tensors behave as on the CPU backend.
 */
function maxPoolGrad(args: KernelArgs): tf.TensorInfo {
  const backend = wasmBackend(args);
  const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const { N, H, W, C, OH, OW, KH, KW, sh, sw, pt, pl } = poolGeometry(input.shape, args.attrs ?? {});

  const out = zeros(backend, [N, H, W, C]);
  // Views after the allocation, which may grow (and detach) the heap.
  const dx = heapF32(backend, out);
  const xs = heapF32(backend, input);
  const g = heapF32(backend, dy);
  if (KH === 2 && KW === 2 && sh === 2 && sw === 2 && pt === 0 && pl === 0 && OH * 2 <= H && OW * 2 <= W) {
    pool2x2(xs, g, dx, N, H, W, C, OH, OW);
    return out;
  }
  // Channels innermost: every read of a window row is contiguous (NHWC), with
  // the running maximum and its position kept per channel.
  const best = new Float32Array(C);
  const where = new Int32Array(C);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      const h0 = oh * sh - pt;
      const hLo = Math.max(h0, 0);
      const hHi = Math.min(h0 + KH, H);
      for (let ow = 0; ow < OW; ow++) {
        const w0 = ow * sw - pl;
        const wLo = Math.max(w0, 0);
        const wHi = Math.min(w0 + KW, W);
        best.fill(-Infinity);
        where.fill(-1);
        for (let h = hLo; h < hHi; h++) {
          for (let w = wLo; w < wHi; w++) {
            const i0 = ((n * H + h) * W + w) * C;
            for (let c = 0; c < C; c++) {
              const v = xs[i0 + c];
              if (v > best[c]) {
                best[c] = v;
                where[c] = i0 + c;
              }
            }
          }
        }
        const y0 = ((n * OH + oh) * OW + ow) * C;
        for (let c = 0; c < C; c++) if (where[c] >= 0) dx[where[c]] += g[y0 + c];
      }
    }
  }
  return out;
}

/**
 * The common 2x2 pool of stride 2 without padding, unrolled: the window's four
 * values compared in row-major order with strict `>` (the first maximum wins,
 * as above); a window of NaNs or -Infinity only passes nothing.
 */
function pool2x2(xs: Float32Array, g: Float32Array, dx: Float32Array, N: number, H: number, W: number, C: number, OH: number, OW: number): void {
  const row = W * C;
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const i00 = ((n * H + 2 * oh) * W + 2 * ow) * C;
        const y0 = ((n * OH + oh) * OW + ow) * C;
        for (let c = 0; c < C; c++) {
          const a = i00 + c;
          const b = a + C;
          const d = a + row;
          const e = d + C;
          let where = -1;
          let best = -Infinity;
          if (xs[a] > best) {
            best = xs[a];
            where = a;
          }
          if (xs[b] > best) {
            best = xs[b];
            where = b;
          }
          if (xs[d] > best) {
            best = xs[d];
            where = d;
          }
          if (xs[e] > best) where = e;
          if (where >= 0) dx[where] += g[y0 + c];
        }
      }
    }
  }
}

/** `MaxPoolGrad` on wasm matching the CPU backend's tie-breaking. */
export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: 'MaxPoolGrad',
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as tf.KernelFunc,
};
