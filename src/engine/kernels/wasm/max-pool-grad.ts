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

/** `MaxPoolGrad` on wasm matching the CPU backend's tie-breaking. */
export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: 'MaxPoolGrad',
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as tf.KernelFunc,
};
