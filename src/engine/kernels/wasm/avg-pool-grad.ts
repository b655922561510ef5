/**
 * `AvgPoolGrad` for the wasm backend that is the true gradient of the forward
 * average pool.
 *
 * The forward `AvgPool` (XNNPACK on wasm, and the CPU backend) divides each
 * window's sum by the number of input elements it covers, padding excluded. The
 * shipped `AvgPoolGrad` kernels (wasm and CPU alike) divide by the full window
 * area instead, so with 'same' or explicit padding their gradient is wrong at
 * the borders (a finite-difference check disagrees). This kernel divides by the
 * same count as the forward pass.
 */
import { tf } from '../../tf.js';
import { poolGeometry } from './conv-info.js';
import { heapF32, wasmBackend, type KernelArgs, zeros } from './util.js';

/**
 * dx[n,h,w,c] = sum over the windows (oh,ow) that cover (h,w) of
 * dy[n,oh,ow,c] / |window(oh,ow) ∩ input|.
 */
function avgPoolGrad(args: KernelArgs): tf.TensorInfo {
  const backend = wasmBackend(args);
  const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const { N, H, W, C, OH, OW, KH, KW, sh, sw, pt, pl } = poolGeometry(input.shape, args.attrs ?? {});

  const out = zeros(backend, [N, H, W, C]);
  // Views after the allocation, which may grow (and detach) the heap.
  const dx = heapF32(backend, out);
  const g = heapF32(backend, dy);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      const hLo = Math.max(oh * sh - pt, 0);
      const hHi = Math.min(oh * sh - pt + KH, H);
      for (let ow = 0; ow < OW; ow++) {
        const wLo = Math.max(ow * sw - pl, 0);
        const wHi = Math.min(ow * sw - pl + KW, W);
        // A window lying wholly in the padding covers no input: nothing to route.
        if (hHi <= hLo || wHi <= wLo) continue;
        const inv = 1 / ((hHi - hLo) * (wHi - wLo));
        const y0 = ((n * OH + oh) * OW + ow) * C;
        for (let h = hLo; h < hHi; h++) {
          for (let w = wLo; w < wHi; w++) {
            const x0 = ((n * H + h) * W + w) * C;
            for (let c = 0; c < C; c++) dx[x0 + c] += g[y0 + c] * inv;
          }
        }
      }
    }
  }
  return out;
}

/** `AvgPoolGrad` on wasm, consistent with the forward pass at padded borders. */
export const avgPoolGradConfig: tf.KernelConfig = {
  kernelName: 'AvgPoolGrad',
  backendName: 'wasm',
  kernelFunc: avgPoolGrad as unknown as tf.KernelFunc,
};
