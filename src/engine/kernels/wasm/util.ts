/**
 * Helpers shared by advlab's wasm kernels: a structural type for tfjs's
 * `BackendWasm`, calling the backend's own (XNNPACK) kernels on raw
 * TensorInfos, and disposing intermediates.
 *
 * Heap views: the wasm memory can grow on any allocation (ours, or XNNPACK's
 * inside a kernel), which detaches every typed-array view taken before. So
 * views are always taken with {@link heapF32} right before the loop that uses
 * them, after the last allocation.
 */
import { tf } from '../../tf.js';

/** The members of tfjs's `BackendWasm` these kernels use (its class is not imported). */
export interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  incRef(dataId: tf.DataId): void;
  /** `get` of an id the backend no longer holds asks the engine to move it in from another backend: test with `has` first. */
  dataIdMap: { get(dataId: tf.DataId): { id: number } | undefined; has(dataId: tf.DataId): boolean };
}

/** Arguments a kernel function receives. */
export interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/** The backend of a kernel call, typed. */
export function wasmBackend(args: KernelArgs): WasmBackend {
  return args.backend as WasmBackend;
}

/**
 * Runs the wasm backend's registered kernel `name` on TensorInfos, outside the
 * engine: the result is not tracked, so the caller owns it and must
 * {@link release} it (or return it as the kernel's output).
 */
export function runKernel(
  name: string,
  backend: WasmBackend,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap = {},
): tf.TensorInfo {
  const config = tf.getKernel(name, 'wasm');
  if (!config) throw new Error(`advlab wasm kernels need the wasm kernel ${name}, which is not registered`);
  const out = config.kernelFunc({ inputs, backend: backend as unknown as tf.KernelBackend, attrs });
  return Array.isArray(out) ? out[0] : out;
}

/** Frees intermediates made by {@link runKernel} or `makeOutput`. */
export function release(backend: WasmBackend, ...infos: tf.TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/** A view of a float32 tensor's data on the wasm heap (valid until the next allocation). */
export function heapF32(backend: WasmBackend, info: tf.TensorInfo): Float32Array {
  if (info.dtype !== 'float32') throw new Error(`advlab wasm kernel expected float32, got ${info.dtype}`);
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/** The same data seen with another shape (no copy, no new reference). */
export function reshaped(info: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

/** Throws unless the data format is channels-last (the only one the wasm backend supports). */
export function assertNHWC(dataFormat: unknown, kernel: string): void {
  if (dataFormat != null && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new Error(`advlab wasm ${kernel} supports only dataFormat NHWC, got ${String(dataFormat)}`);
  }
}

/** Explicit NHWC padding attribute for the Conv2D kernel. */
export function explicitPad(top: number, bottom: number, left: number, right: number): tf.backend_util.ExplicitPadding {
  return [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
}

/**
 * The window `[r0, r0+rows) x [c0, c0+cols)` (all batches and channels) of a
 * 4-D float32 tensor, used to crop convolution outputs. Takes over `x`: returns
 * it when the window is all of it, else copies the window into a new tensor and
 * releases `x`.
 */
export function cropOrKeep(
  backend: WasmBackend,
  x: tf.TensorInfo,
  r0: number,
  c0: number,
  rows: number,
  cols: number,
): tf.TensorInfo {
  const [n0, h, w, d] = x.shape;
  if (r0 === 0 && c0 === 0 && h === rows && w === cols) return x;
  const out = backend.makeOutput([n0, rows, cols, d], 'float32');
  const src = heapF32(backend, x);
  const dst = heapF32(backend, out);
  const rowLen = cols * d;
  let o = 0;
  for (let b = 0; b < n0; b++) {
    for (let r = 0; r < rows; r++) {
      const s = ((b * h + r0 + r) * w + c0) * d;
      dst.set(src.subarray(s, s + rowLen), o);
      o += rowLen;
    }
  }
  release(backend, x);
  return out;
}

/** A copy of a float32 tensor's data under a data id of its own. */
export function copyOf(backend: WasmBackend, x: tf.TensorInfo): tf.TensorInfo {
  const out = backend.makeOutput([...x.shape], 'float32');
  // Views after the allocation, which may grow (and detach) the heap.
  heapF32(backend, out).set(heapF32(backend, x));
  return out;
}

/** A float32 output filled with zeros (makeOutput leaves the heap uninitialised). */
export function zeros(backend: WasmBackend, shape: number[]): tf.TensorInfo {
  const out = backend.makeOutput(shape, 'float32');
  heapF32(backend, out).fill(0);
  return out;
}

/** x with (s-1) zero rows/columns between its entries: [N, (H-1)*sh+1, (W-1)*sw+1, C]. */
export function insertZeros(backend: WasmBackend, x: tf.TensorInfo, sh: number, sw: number): tf.TensorInfo {
  const [N, H, W, C] = x.shape;
  const LH = (H - 1) * sh + 1;
  const LW = (W - 1) * sw + 1;
  const out = backend.makeOutput([N, LH, LW, C], 'float32');
  const src = heapF32(backend, x);
  const dst = heapF32(backend, out);
  dst.fill(0);
  for (let n = 0; n < N; n++) {
    for (let h = 0; h < H; h++) {
      const rowIn = (n * H + h) * W * C;
      const rowOut = (n * LH + h * sh) * LW * C;
      for (let w = 0; w < W; w++) {
        const s = rowIn + w * C;
        dst.set(src.subarray(s, s + C), rowOut + w * sw * C);
      }
    }
  }
  return out;
}
