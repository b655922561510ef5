/**
 * `BatchMatMul` for the wasm backend that keeps the transposed products of
 * backpropagation on XNNPACK.
 *
 * The shipped kernel only uses XNNPACK's fully-connected operator when neither
 * operand is transposed and both batch sizes are 1; anything else falls to a
 * scalar triple loop. Every dense layer's gradient is such a product
 * (dx = dy·Wᵀ, dW = xᵀ·dy), and for a 9216x128 layer at batch 128 the loop
 * takes 0.2-0.6 s where XNNPACK takes ~20 ms.
 */
import { tf } from '../../tf.js';
import { copyOf, heapF32, release, reshaped, runKernel, wasmBackend, zeros, type KernelArgs } from './util.js';
import { derivedWeight, firstSighting, keepsCopy } from './derived-weights.js';

/**
 * Materialises transposed operands with the backend's `Transpose` (a copy,
 * O(size)) and multiplies on XNNPACK through the backend's `_FusedMatMul`
 * kernel with no bias and a linear activation. When b has batch size 1, the
 * batch of a is folded into its rows ([bA, M, K] -> [bA*M, K]), since every
 * batch entry multiplies the same matrix. Other batched products (b with batch
 * > 1) go to `_FusedMatMul` with the original attributes, which is what the
 * shipped `BatchMatMul` runs too.
 */
function batchMatMul(args: KernelArgs): tf.TensorInfo {
  const backend = wasmBackend(args);
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
  const transposeA = attrs.transposeA === true;
  const transposeB = attrs.transposeB === true;
  if (a.dtype !== 'float32' || b.dtype !== 'float32') {
    throw new Error('BatchMatMul for non non-float32 tensors not yet supported.');
  }
  const ra = a.shape.length;
  const rb = b.shape.length;
  const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const Kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (K !== Kb) {
    throw new Error(
      `Error in matMul: inner shapes (${K}) and (${Kb}) of Tensors with shapes ${a.shape} and ${b.shape} ` +
        `and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const batchA = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  const batchB = b.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  const outShape = [
    ...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)),
    M,
    N,
  ];
  const a3 = reshaped(a, transposeA ? [batchA, K, M] : [batchA, M, K]);
  const b3 = reshaped(b, transposeB ? [batchB, N, K] : [batchB, K, N]);
  const linear = { activation: 'linear', leakyreluAlpha: 0 };

  // An empty inner dimension sums nothing: zeros (XNNPACK would leave the output unwritten).
  if (K === 0) return zeros(backend, outShape);
  // A model's weight keeps its transposed copy and packed operator: XNNPACK is then the fastest at any size.
  if (batchB === 1 && transposeB && !transposeA && batchA * M <= FEW_ROWS && !keepsCopy(b)) return fewRowsTimesTransposed(backend, a3, b3, batchA * M, K, N, outShape);
  // A weight met for the first time in this version (a training step's input gradient): a·bᵀ = (b·aᵀ)ᵀ rearranges only the activations.
  if (batchB === 1 && transposeB && !transposeA && M * N > 0 && firstSighting(backend, b, `matmul-transposed ${K}x${N}`)) return weightTimesTransposed(backend, a3, b3, batchA * M, K, N, outShape);
  const folds = batchB === 1 && (transposeA || transposeB || batchA > 1);
  if (!folds || M * N === 0) {
    const out = runKernel('_FusedMatMul', backend, { a: a3, b: b3 }, { transposeA, transposeB, ...linear });
    return reshaped(out, outShape);
  }
  const at = transposeA ? transposeInner(backend, a3) : a3;
  // b always goes in as a tensor of its own: XNNPACK caches its packed weights
  // under the tensor id (not the shape), and reshapes share ids, so reusing b's
  // own id here could meet a stale operator packed for another shape. A
  // model's weight keeps its copy (and packed operator) across calls.
  const bt = derivedWeight(backend, b, transposeB ? `matmul-transposed ${K}x${N}` : `matmul ${K}x${N}`, () =>
    transposeB ? runKernel('Transpose', backend, { x: b3 }, { perm: [0, 2, 1] }) : copyOf(backend, b3),
  );
  try {
    const out = runKernel(
      '_FusedMatMul',
      backend,
      { a: reshaped(at, [1, batchA * M, K]), b: reshaped(bt.info, [1, K, N]) },
      { transposeA: false, transposeB: false, ...linear },
    );
    return reshaped(out, outShape);
  } finally {
    // Disposing a throwaway copy also drops the XNNPACK operator cached under its id.
    if (at !== a3) release(backend, at);
    if (bt.owned) release(backend, bt.info);
  }
}

/**
 * Below this many rows of a, a·bᵀ is computed by dot products here when b is
 * not a model weight: XNNPACK would first transpose and pack all of b (for a
 * 9216x128 matrix, ~50 ms whatever the batch). A weight's transposed copy is
 * kept (derived-weights.ts), so for it XNNPACK wins at any size. Each
 * output is a dot product of two contiguous rows, so the loop streams memory.
 * The sum runs in float32, k in order, a rounded product added to a rounded
 * sum, as XNNPACK's wasm SIMD GEMM accumulates each output (mul then add, no
 * fused multiply-add): the result is bit for bit XNNPACK's, so a gradient does
 * not depend on how many images share its batch.
 */
const FEW_ROWS = 16;

function fewRowsTimesTransposed(backend: ReturnType<typeof wasmBackend>, a: tf.TensorInfo, b: tf.TensorInfo, rows: number, K: number, N: number, outShape: number[]): tf.TensorInfo {
  const out = backend.makeOutput(outShape, 'float32');
  // Views taken after the allocation: it may grow (and detach) the heap.
  const av = heapF32(backend, a);
  const bv = heapF32(backend, b);
  const ov = heapF32(backend, out);
  for (let i = 0; i < rows; i++) {
    const ai = i * K;
    for (let j = 0; j < N; j++) {
      const bj = j * K;
      let sum = 0;
      for (let k = 0; k < K; k++) sum = Math.fround(sum + Math.fround(av[ai + k] * bv[bj + k]));
      ov[i * N + j] = sum;
    }
  }
  return out;
}

/**
 * a·bᵀ for a weight b [N, K] whose rearranged copy is not kept: computed as
 * (b·aᵀ)ᵀ, where b is already the GEMM's row-major left operand, so only the
 * activations are rearranged (aᵀ, rows x K, packed by XNNPACK; the product's
 * transpose, N x rows) instead of the weight (transposed and packed, K x N).
 * In training each weight version meets one input gradient, so a kept copy
 * would never be reused; a second call on the same version (an attack) makes
 * and keeps the copy (derived-weights.ts).
 */
function weightTimesTransposed(backend: ReturnType<typeof wasmBackend>, a: tf.TensorInfo, b: tf.TensorInfo, rows: number, K: number, N: number, outShape: number[]): tf.TensorInfo {
  const aT = transposeInner(backend, reshaped(a, [1, rows, K]));
  let product: tf.TensorInfo | undefined;
  try {
    product = runKernel('_FusedMatMul', backend, { a: reshaped(b, [1, N, K]), b: aT }, { transposeA: false, transposeB: false, activation: 'linear', leakyreluAlpha: 0 });
    return reshaped(transposeInner(backend, product), outShape);
  } finally {
    // Disposing aT also drops the XNNPACK operator packed for it.
    release(backend, aT, ...(product ? [product] : []));
  }
}

/**
 * [B, R, C] -> [B, C, R] in tiles of 32x32 (both the reads and the writes of a
 * tile stay in cache lines): measured ~3x faster than the backend's generic
 * Transpose for a 128x9216 activation.
 */
function transposeInner(backend: ReturnType<typeof wasmBackend>, x: tf.TensorInfo): tf.TensorInfo {
  const [B, R, C] = x.shape;
  const out = backend.makeOutput([B, C, R], 'float32');
  const src = heapF32(backend, x);
  const dst = heapF32(backend, out);
  const T = 32;
  for (let b = 0; b < B; b++) {
    const base = b * R * C;
    for (let r0 = 0; r0 < R; r0 += T) {
      const r1 = Math.min(R, r0 + T);
      for (let c0 = 0; c0 < C; c0 += T) {
        const c1 = Math.min(C, c0 + T);
        for (let r = r0; r < r1; r++) {
          let s = base + r * C + c0;
          for (let c = c0, o = base + c0 * R + r; c < c1; c++, o += R) dst[o] = src[s++];
        }
      }
    }
  }
  return out;
}

/** `BatchMatMul` on wasm with transposed operands and folded batches on XNNPACK. */
export const batchMatMulConfig: tf.KernelConfig = {
  kernelName: 'BatchMatMul',
  backendName: 'wasm',
  kernelFunc: batchMatMul as unknown as tf.KernelFunc,
};
