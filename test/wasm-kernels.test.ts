/**
 * advlab's wasm kernels against the CPU backend.
 *
 * Tolerance: max |wasm - cpu| over a tensor must be <= 1e-4 * max |cpu| of that
 * tensor (relative to the tensor's largest magnitude, not elementwise), since
 * the kernels sum in a different order than the CPU backend.
 *
 * tfjs's public Conv2D/DepthwiseConv2dNative gradients refuse dilations > 1, so
 * dilation is tested on the kernels directly, against the CPU backend run with
 * the equivalent zero-dilated filter (a dilated convolution is an undilated one
 * whose filter has d-1 zeros between taps).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { kernelMode, setAdvlabKernels } from '../src/engine/kernels/index.js';
import { usesCol2Im } from '../src/engine/kernels/wasm/conv2d-backprop-input.js';

const TOL = 1e-4;
type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];
type Shape4 = [number, number, number, number];

/** Deterministic values in [-1, 1) (mulberry32), so failures reproduce. */
function values(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Runs `f` on the given backend and returns its outputs' values, disposing everything it made. */
async function on(backend: 'cpu' | 'wasm', f: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const outs = tf.tidy(f);
  const list = Array.isArray(outs) ? outs : [outs];
  const vals = list.map((t) => Float32Array.from(t.dataSync()));
  tf.dispose(list);
  return vals;
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let maxAbs = 0;
  let maxDiff = 0;
  for (let i = 0; i < expected.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : d;
  }
  const rel = maxDiff / Math.max(maxAbs, 1e-30);
  assert.ok(rel <= TOL, `${what}: max relative error ${rel.toExponential(2)} > ${TOL}`);
}

async function compareBoth(what: string, f: () => tf.Tensor | tf.Tensor[]): Promise<void> {
  const cpu = await on('cpu', f);
  const wasm = await on('wasm', f);
  assert.equal(wasm.length, cpu.length);
  cpu.forEach((c, i) => assertClose(wasm[i], c, `${what} [output ${i}]`));
}

/** The filter with d-1 zeros between taps: [KH,KW,a,b] -> [(KH-1)d+1, (KW-1)d+1, a, b]. */
function dilateFilter(w: Float32Array, shape: Shape4, d: number): { values: Float32Array; shape: Shape4 } {
  const [KH, KW, A, B] = shape;
  const eh = (KH - 1) * d + 1;
  const ew = (KW - 1) * d + 1;
  const out = new Float32Array(eh * ew * A * B);
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const src = (kh * KW + kw) * A * B;
      out.set(w.subarray(src, src + A * B), (kh * d * ew + kw * d) * A * B);
    }
  }
  return { values: out, shape: [eh, ew, A, B] };
}

/** Every d-th tap of a dilated filter gradient: the inverse of {@link dilateFilter}. */
function undilate(g: Float32Array, shape: Shape4, d: number): Float32Array {
  const [KH, KW, A, B] = shape;
  const ew = (KW - 1) * d + 1;
  const out = new Float32Array(KH * KW * A * B);
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const src = (kh * d * ew + kw * d) * A * B;
      out.set(g.subarray(src, src + A * B), (kh * KW + kw) * A * B);
    }
  }
  return out;
}

function wasmDataIds(): number {
  return (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
}

before(async () => {
  const info = await initBackend({ backend: 'wasm' });
  assert.equal(info.kernels, 'advlab');
});

test('Sign is exact on wasm for tiny, subnormal, zero and NaN inputs, float32 and int32', async () => {
  await tf.setBackend('wasm');
  const xs = [1e-8, -1e-9, 0, 1e-30, -1e-38, 3, -2];
  assert.deepEqual(Array.from(tf.sign(tf.tensor1d(xs)).dataSync()), [1, -1, 0, 1, -1, 1, -1]);
  const i = tf.sign(tf.tensor1d([5, -7, 0, 2147483647, -2147483648], 'int32'));
  assert.equal(i.dtype, 'int32');
  assert.deepEqual(Array.from(i.dataSync()), [1, -1, 0, 1, -1]);
  // NaN and -0 give 0, as on the CPU backend.
  const odd = [NaN, -0, Infinity, -Infinity];
  const [cpu] = await on('cpu', () => tf.sign(tf.tensor1d(odd)));
  const [wasm] = await on('wasm', () => tf.sign(tf.tensor1d(odd)));
  assert.deepEqual(Array.from(wasm), Array.from(cpu));
  assert.deepEqual(Array.from(wasm), [0, 0, 1, -1]);
});

const convCases: { x: Shape4; k: Shape4; s: number; pad: Pad }[] = [
  { x: [2, 7, 7, 3], k: [3, 3, 3, 4], s: 1, pad: 'valid' },
  { x: [2, 7, 7, 3], k: [3, 3, 3, 4], s: 2, pad: 'valid' },
  { x: [2, 8, 7, 3], k: [3, 3, 3, 4], s: 1, pad: 'same' },
  { x: [2, 8, 7, 3], k: [3, 2, 3, 5], s: 2, pad: 'same' },
  { x: [1, 9, 9, 2], k: [2, 3, 2, 3], s: 2, pad: 1 },
  { x: [3, 6, 6, 1], k: [3, 3, 1, 8], s: 1, pad: 2 },
  { x: [2, 9, 8, 2], k: [3, 3, 2, 3], s: 2, pad: [[0, 0], [1, 2], [0, 3], [0, 0]] },
  { x: [2, 6, 6, 2], k: [2, 2, 2, 3], s: 1, pad: [[0, 0], [3, 0], [0, 4], [0, 0]] },
  { x: [4, 12, 12, 8], k: [5, 5, 8, 6], s: 1, pad: 'same' },
  { x: [2, 9, 8, 12], k: [3, 3, 12, 5], s: 1, pad: [[0, 0], [0, 2], [1, 1], [0, 0]] },
];

test('conv2d gradients (x and filter) match the CPU backend for strides 1/2 and valid/same/number/explicit padding', async () => {
  for (const [i, c] of convCases.entries()) {
    const xv = values(size(c.x), 10 + i);
    const wv = values(size(c.k), 20 + i);
    await compareBoth(`conv2d ${JSON.stringify(c)}`, () => {
      const x = tf.tensor4d(xv, c.x);
      const w = tf.tensor4d(wv, c.k);
      const y = tf.conv2d(x, w, c.s, c.pad);
      const r = tf.tensor4d(values(size(y.shape), 30 + i), y.shape);
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad), r)));
      return g([x, w]);
    });
  }
});

const dilatedCases: { x: Shape4; k: Shape4; s: number; d: number; pad: Pad }[] = [
  { x: [2, 9, 9, 3], k: [3, 3, 3, 4], s: 1, d: 2, pad: 'valid' },
  { x: [2, 8, 7, 2], k: [3, 2, 2, 3], s: 1, d: 2, pad: 'same' },
  { x: [2, 9, 9, 2], k: [2, 3, 2, 3], s: 1, d: 2, pad: 2 },
  { x: [2, 11, 10, 2], k: [2, 3, 2, 3], s: 2, d: 2, pad: [[0, 0], [1, 0], [2, 1], [0, 0]] },
  { x: [1, 10, 9, 2], k: [2, 2, 2, 3], s: 3, d: 2, pad: 'valid' },
  { x: [2, 7, 7, 2], k: [3, 3, 2, 2], s: 1, d: 1, pad: 'valid' },
  // Eight or more input channels at stride 1 take the convolution path; these
  // cover its dilation, and padding wider than the filter (a cropped output).
  { x: [2, 9, 9, 8], k: [3, 3, 8, 4], s: 1, d: 2, pad: 'same' },
  { x: [1, 10, 9, 8], k: [3, 2, 8, 3], s: 1, d: 2, pad: 3 },
  { x: [1, 8, 8, 9], k: [2, 2, 9, 3], s: 1, d: 1, pad: [[0, 0], [4, 0], [0, 5], [0, 0]] },
];

test('Conv2DBackpropInput/Filter with dilations 1 and 2 match CPU on the equivalent zero-dilated filter', async () => {
  // Both of Conv2DBackpropInput's formulations are exercised.
  const paths = new Set(dilatedCases.map((c) => usesCol2Im(c.s, c.s, c.x[3])));
  assert.deepEqual([...paths].sort(), [false, true]);
  for (const [i, c] of dilatedCases.entries()) {
    const what = `conv2d backprop ${JSON.stringify(c)}`;
    const info = tf.backend_util.computeConv2DInfo(c.x, c.k, c.s, c.d, c.pad);
    const xv = values(size(c.x), 40 + i);
    const wv = values(size(c.k), 50 + i);
    const dyv = values(size(info.outShape), 60 + i);
    const wd = dilateFilter(wv, c.k, c.d);
    const [cpuDx, cpuDwd] = await on('cpu', () => {
      const dy = tf.tensor4d(dyv, info.outShape);
      return [
        tf.conv2dTranspose(dy, tf.tensor4d(wd.values, wd.shape), c.x, c.s, c.pad),
        tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.tensor4d(xv, c.x), dy }, {
          strides: c.s, pad: c.pad, dataFormat: 'NHWC', filterShape: wd.shape,
        }) as tf.Tensor,
      ];
    });
    const [wasmDx, wasmDw] = await on('wasm', () => {
      const dy = tf.tensor4d(dyv, info.outShape);
      return [
        tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: tf.tensor4d(wv, c.k) }, {
          strides: c.s, pad: c.pad, dataFormat: 'NHWC', inputShape: c.x, dilations: c.d,
        }) as tf.Tensor,
        tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.tensor4d(xv, c.x), dy }, {
          strides: c.s, pad: c.pad, dataFormat: 'NHWC', filterShape: c.k, dilations: c.d,
        }) as tf.Tensor,
      ];
    });
    assertClose(wasmDx, cpuDx, `${what} dx`);
    assertClose(wasmDw, undilate(cpuDwd, c.k, c.d), `${what} dw`);
  }
});

test('conv2d gradients of large layers, computed in chunks, match CPU and leak nothing', async () => {
  // Conv2DBackpropInput: 110*110 output pixels * 7*7*7 columns > 2^22 floats,
  // so each image is its own chunk. Conv2DBackpropFilter: 40*40*64 dy floats per
  // image > 2^18 / 4, so the batch of 4 goes in two chunks. The filter
  // gradient's GEMM (stride 1, KH*KW*CI >= 64) goes one image per chunk in
  // the first case, and 5 + 2 images (10 * 25 values of j each) in the third.
  const cases = [
    { x: [3, 116, 116, 7] as Shape4, k: [7, 7, 7, 2] as Shape4 },
    { x: [4, 42, 42, 3] as Shape4, k: [3, 3, 3, 64] as Shape4 },
    { x: [7, 12, 25, 8] as Shape4, k: [3, 3, 8, 5] as Shape4 },
  ];
  for (const [i, c] of cases.entries()) {
    const xv = values(size(c.x), 210 + i);
    const wv = values(size(c.k), 220 + i);
    const yShape: Shape4 = [c.x[0], c.x[1] - c.k[0] + 1, c.x[2] - c.k[1] + 1, c.k[3]];
    const rv = values(size(yShape), 230 + i);
    const f = () => {
      const r = tf.tensor4d(rv, yShape);
      return tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'valid'), r)))([
        tf.tensor4d(xv, c.x),
        tf.tensor4d(wv, c.k),
      ]);
    };
    const cpu = await on('cpu', f);
    await on('wasm', f);
    const buffers = wasmDataIds();
    const wasm = await on('wasm', f);
    assert.equal(wasmDataIds(), buffers);
    assertClose(wasm[0], cpu[0], `chunked ${JSON.stringify(c)} dx`);
    assertClose(wasm[1], cpu[1], `chunked ${JSON.stringify(c)} dw`);
  }
});

const depthwiseCases: { x: Shape4; k: Shape4; s: number; pad: Pad }[] = [
  { x: [2, 7, 7, 3], k: [3, 3, 3, 1], s: 1, pad: 'valid' },
  { x: [2, 8, 7, 3], k: [3, 3, 3, 2], s: 2, pad: 'same' },
  { x: [2, 7, 8, 4], k: [2, 3, 4, 1], s: 2, pad: 1 },
  { x: [1, 9, 9, 2], k: [3, 3, 2, 3], s: 1, pad: [[0, 0], [2, 1], [0, 2], [0, 0]] },
];

test('depthwiseConv2d gradients match the CPU backend (channel multiplier 1-3)', async () => {
  for (const [i, c] of depthwiseCases.entries()) {
    const xv = values(size(c.x), 70 + i);
    const wv = values(size(c.k), 80 + i);
    await compareBoth(`depthwiseConv2d ${JSON.stringify(c)}`, () => {
      const x = tf.tensor4d(xv, c.x);
      const w = tf.tensor4d(wv, c.k);
      const y = tf.depthwiseConv2d(x, w, c.s, c.pad);
      const r = tf.tensor4d(values(size(y.shape), 90 + i), y.shape);
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad), r)));
      return g([x, w]);
    });
  }
});

test('depthwise backprop kernels with dilations 1 and 2 match CPU on the equivalent zero-dilated filter', async () => {
  // Multiplier 1 runs on XNNPACK, larger ones in JS; both are covered.
  const cases: { x: Shape4; k: Shape4; s: number; d: number; pad: Pad }[] = [
    { x: [2, 9, 9, 3], k: [3, 3, 3, 2], s: 1, d: 2, pad: 'valid' },
    { x: [2, 8, 7, 2], k: [2, 3, 2, 1], s: 1, d: 2, pad: 'same' },
    { x: [2, 11, 10, 3], k: [2, 2, 3, 1], s: 2, d: 2, pad: [[0, 0], [4, 1], [0, 3], [0, 0]] },
    { x: [1, 10, 9, 2], k: [3, 2, 2, 3], s: 3, d: 1, pad: 2 },
  ];
  for (const [i, c] of cases.entries()) {
    const what = `depthwise backprop ${JSON.stringify(c)}`;
    const info = tf.backend_util.computeConv2DInfo(c.x, c.k, c.s, c.d, c.pad, undefined, true);
    const xv = values(size(c.x), 100 + i);
    const wv = values(size(c.k), 110 + i);
    const dyv = values(size(info.outShape), 120 + i);
    const wd = dilateFilter(wv, c.k, c.d);
    const run = (w: Float32Array, wShape: Shape4, dil: number) => () => {
      const dy = tf.tensor4d(dyv, info.outShape);
      const attrs = { strides: c.s, pad: c.pad, dilations: dil };
      return [
        tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: tf.tensor4d(w, wShape) }, {
          ...attrs, inputShape: c.x,
        }) as tf.Tensor,
        tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x: tf.tensor4d(xv, c.x), dy }, {
          ...attrs, filterShape: wShape,
        }) as tf.Tensor,
      ];
    };
    const [cpuDx, cpuDwd] = await on('cpu', run(wd.values, wd.shape, 1));
    const [wasmDx, wasmDw] = await on('wasm', run(wv, c.k, c.d));
    assertClose(wasmDx, cpuDx, `${what} dx`);
    assertClose(wasmDw, undilate(cpuDwd, c.k, c.d), `${what} dw`);
  }
});

const poolCases: { x: Shape4; f: number; s: number; pad: Pad; ties?: boolean }[] = [
  { x: [2, 8, 8, 3], f: 2, s: 2, pad: 'valid' },
  { x: [2, 7, 7, 3], f: 3, s: 2, pad: 'same' },
  { x: [2, 7, 6, 2], f: 3, s: 1, pad: 'same' },
  { x: [1, 9, 9, 2], f: 2, s: 3, pad: 1 },
  { x: [2, 6, 6, 4], f: 3, s: 1, pad: 'valid', ties: true },
  // The unrolled 2x2 path: ties, and odd sizes whose last row and column no window covers.
  { x: [2, 8, 8, 5], f: 2, s: 2, pad: 'valid', ties: true },
  { x: [1, 7, 9, 3], f: 2, s: 2, pad: 'valid', ties: true },
];

test('maxPool gradients match the CPU backend, including ties', async () => {
  for (const [i, c] of poolCases.entries()) {
    let xv = values(size(c.x), 130 + i);
    // Values from {-1, 0, 1} make many windows hold several equal maxima.
    if (c.ties) xv = xv.map((v) => Math.round(v));
    await compareBoth(`maxPool ${JSON.stringify(c)}`, () => {
      const x = tf.tensor4d(xv, c.x);
      const y = tf.maxPool(x, c.f, c.s, c.pad);
      const r = tf.tensor4d(values(size(y.shape), 140 + i), y.shape);
      return tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, c.f, c.s, c.pad), r)))(x);
    });
  }
});

test('avgPool gradients are the true gradient of the forward pass, also at padded borders', async () => {
  // The forward average excludes padding; tfjs's own AvgPoolGrad (CPU and
  // shipped wasm) divides by the full window instead, which is wrong at padded
  // borders. Reference: CPU autodiff of the same average written as
  // depthwiseConv2d(x, ones) / depthwiseConv2d(1, ones), whose gradient is right.
  for (const [i, c] of poolCases.entries()) {
    const xv = values(size(c.x), 150 + i);
    const ones = tf.ones([c.f, c.f, c.x[3], 1]) as tf.Tensor4D;
    const asConv = (a: tf.Tensor4D) =>
      tf.div(tf.depthwiseConv2d(a, ones, c.s, c.pad), tf.depthwiseConv2d(tf.onesLike(a), ones, c.s, c.pad));
    const withReference = (pool: (a: tf.Tensor4D) => tf.Tensor) => () => {
      const x = tf.tensor4d(xv, c.x);
      const y = tf.avgPool(x, c.f, c.s, c.pad);
      const r = tf.tensor4d(values(size(y.shape), 160 + i), y.shape);
      return [y, tf.grad((a: tf.Tensor) => tf.sum(tf.mul(pool(a as tf.Tensor4D), r)))(x)];
    };
    const [cpuY, cpuDx] = await on('cpu', withReference(asConv));
    const [cpuPoolY] = await on('cpu', withReference((a) => tf.avgPool(a, c.f, c.s, c.pad)));
    assertClose(cpuY, cpuPoolY, `avgPool ${JSON.stringify(c)} forward = conv form`);
    const [wasmY, wasmDx] = await on('wasm', withReference((a) => tf.avgPool(a, c.f, c.s, c.pad)));
    assertClose(wasmY, cpuY, `avgPool ${JSON.stringify(c)} forward`);
    assertClose(wasmDx, cpuDx, `avgPool ${JSON.stringify(c)} dx`);
    ones.dispose();
  }
});

test('gather (UnsortedSegmentSum) and tile gradients match the CPU backend', async () => {
  const table = values(7 * 5, 150);
  const idx = [3, 0, 3, 6, 1, 3];
  await compareBoth('gather grad', () => {
    const t = tf.tensor2d(table, [7, 5]);
    const r = tf.tensor2d(values(idx.length * 5, 151), [idx.length, 5]);
    return tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.gather(a, tf.tensor1d(idx, 'int32')), r)))(t);
  });
  await compareBoth('tile and its grad', () => {
    const t = tf.tensor3d(values(2 * 3 * 4, 152), [2, 3, 4]);
    const r = tf.tensor3d(values(4 * 3 * 8, 153), [4, 3, 8]);
    return [tf.tile(t, [2, 1, 2]), tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.tile(a, [2, 1, 2]), r)))(t)];
  });
});

test('Tile matches the CPU backend exactly for ranks 0-5, every dtype and reps of 0 and 1', async () => {
  const cases: [number[], number[]][] = [
    [[], []],
    [[5], [3]],
    [[2, 3], [1, 4]],
    [[1, 1, 1, 32], [4, 6, 6, 1]], // batch norm's gradient shape
    [[2, 1, 3, 1, 2], [1, 3, 2, 2, 1]],
    [[3, 2], [0, 2]],
  ];
  for (const [shape, reps] of cases) {
    for (const dtype of ['float32', 'int32', 'bool'] as const) {
      const data = Array.from(values(size(shape), 160 + shape.length), (v) => (dtype === 'float32' ? v : dtype === 'int32' ? Math.round(v * 100) : v > 0 ? 1 : 0));
      const run = async (backend: 'cpu' | 'wasm') => {
        await tf.setBackend(backend);
        const t = tf.tensor(data, shape, dtype);
        const out = tf.tile(t, reps);
        const result = { shape: out.shape, values: Array.from(out.dataSync()) };
        tf.dispose([t, out]);
        return result;
      };
      const cpu = await run('cpu');
      const wasm = await run('wasm');
      assert.deepEqual(wasm, cpu, `tile ${dtype} [${shape}] x [${reps}]`);
    }
  }
});

test('matMul with transposes, batches and broadcasting, and dense-layer gradients, match the CPU backend', async () => {
  const cases: [number[], number[], boolean, boolean][] = [
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [3, 7], true, true],
    [[4, 5, 7], [7, 3], false, false],
    [[4, 7, 5], [3, 7], true, true],
    [[2, 3, 5, 7], [1, 7, 3], false, false],
    [[1, 5, 7], [4, 7, 3], false, false],
    [[4, 5, 7], [4, 3, 7], false, true],
    [[4, 7, 5], [1, 7, 3], true, false],
    [[1, 0], [0, 3], false, false],
    // a·bᵀ with up to 16 rows runs as dot products in JS, above that on XNNPACK: both sides of the switch.
    [[16, 33], [9, 33], false, true],
    [[17, 33], [9, 33], false, true],
    [[2, 3, 7], [5, 7], false, true],
    [[2, 9, 7], [1, 5, 7], false, true],
  ];
  for (const [i, [sa, sb, ta, tb]] of cases.entries()) {
    const av = values(size(sa), 180 + i);
    const bv = values(size(sb), 190 + i);
    await compareBoth(`matMul ${JSON.stringify([sa, sb, ta, tb])}`, () => tf.matMul(tf.tensor(av, sa), tf.tensor(bv, sb), ta, tb));
  }
  const xv = values(16 * 300, 200);
  const wv = values(300 * 40, 201);
  await compareBoth('dense gradients', () => {
    const r = tf.tensor2d(values(16 * 40, 202), [16, 40]);
    return tf.grads((x: tf.Tensor, w: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), r)))([
      tf.tensor2d(xv, [16, 300]),
      tf.tensor2d(wv, [300, 40]),
    ]);
  });
});

test("an image's input gradient does not depend on its batch: the same bits alone, in 5, in 16 or in 37 (XNNPACK and the few-rows path)", async () => {
  await initBackend({ backend: 'wasm' });
  const n = 37;
  const x = values(n * 6 * 6 * 2, 230);
  const filter = tf.tensor4d(values(3 * 3 * 2 * 8, 231), [3, 3, 2, 8]);
  const dense = tf.tensor2d(values(4 * 4 * 8 * 10, 232), [128, 10]);
  const net = (input: tf.Tensor) => tf.matMul(tf.reshape(tf.relu(tf.conv2d(input as tf.Tensor4D, filter, 1, 'valid')), [input.shape[0], -1]) as tf.Tensor2D, dense);
  const grad = (start: number, count: number) =>
    tf.tidy(() => tf.grad((input: tf.Tensor) => tf.sum(tf.mul(net(input), tf.range(0, 10))))(tf.tensor4d(x.subarray(start * 72, (start + count) * 72), [count, 6, 6, 2])).dataSync() as Float32Array);
  const whole = grad(0, n);
  for (const count of [1, 5, 16]) {
    for (let start = 0; start + count <= n; start += count) assert.deepEqual(grad(start, count), whole.subarray(start * 72, (start + count) * 72), `batch of ${count} at ${start}`);
  }
  tf.dispose([filter, dense]);
});

test('a small CNN training step (all weight and input gradients) matches the CPU backend', async () => {
  const xv = values(4 * 12 * 12 * 1, 160);
  const params = {
    w1: { shape: [3, 3, 1, 6] as Shape4, v: values(54, 161) },
    w2: { shape: [3, 3, 6, 8] as Shape4, v: values(432, 162) },
    dw: { shape: [3, 3, 8, 2] as Shape4, v: values(144, 163) },
    fc: { shape: [5 * 5 * 16, 10], v: values(400 * 10, 164) },
  };
  await compareBoth('small CNN grads', () => {
    const x = tf.tensor4d(xv, [4, 12, 12, 1]);
    const ps = Object.values(params).map((p) => tf.tensor(p.v, p.shape));
    const loss = (xi: tf.Tensor, w1: tf.Tensor, w2: tf.Tensor, dw: tf.Tensor, fc: tf.Tensor) => {
      let h = tf.relu(tf.conv2d(xi as tf.Tensor4D, w1 as tf.Tensor4D, 1, 'same'));
      h = tf.relu(tf.conv2d(h, w2 as tf.Tensor4D, 1, 'valid'));
      h = tf.maxPool(h, 2, 2, 'valid');
      h = tf.depthwiseConv2d(h, dw as tf.Tensor4D, 1, 'same');
      const logits = tf.matMul(tf.reshape(h, [4, -1]), fc as tf.Tensor2D);
      return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d([1, 4, 7, 9], 'int32'), 10), logits);
    };
    return tf.grads(loss as (...a: tf.Tensor[]) => tf.Tensor)([x, ...ps]);
  });
});

test('the gradient kernels leak no tensors and no wasm buffers', async () => {
  await tf.setBackend('wasm');
  const x = tf.tensor4d(values(2 * 9 * 9 * 3, 170), [2, 9, 9, 3]);
  const w = tf.tensor4d(values(3 * 3 * 3 * 4, 171), [3, 3, 3, 4]);
  const dwf = tf.tensor4d(values(3 * 3 * 3 * 2, 172), [3, 3, 3, 2]);
  const idx = tf.tensor1d([0, 1, 1], 'int32');
  const step = () => {
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => {
      const y = tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same');
      const z = tf.depthwiseConv2d(a as tf.Tensor4D, c as tf.Tensor4D, 1, 'valid');
      return tf.add(
        tf.add(tf.sum(tf.maxPool(y, 2, 1, 'same')), tf.sum(tf.avgPool(z, 2, 2, 'valid'))),
        tf.add(tf.sum(tf.sign(tf.gather(a, idx))), tf.sum(tf.matMul(tf.reshape(a, [2, -1]), tf.reshape(a, [2, -1]), true))),
      );
    })([x, w, dwf]);
    tf.dispose(g);
  };
  step(); // warm-up: lets tfjs create anything it caches once
  const tensors = tf.memory().numTensors;
  const buffers = wasmDataIds();
  for (let i = 0; i < 3; i++) step();
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(wasmDataIds(), buffers);
  tf.dispose([x, w, dwf, idx]);
});

test("a model's weights keep one rearranged copy across gradient calls; a new value or disposing the weight frees it", async () => {
  await tf.setBackend('wasm');
  const x = tf.tensor2d(values(20 * 64, 240), [20, 64]);
  // A variable made from a tensor shares its data: the tensor goes, the variable keeps the data.
  const weight = <R extends tf.Rank>(t: tf.Tensor<R>): tf.Variable<R> => {
    const v = tf.variable(t);
    t.dispose();
    return v;
  };
  const w = weight(tf.tensor2d(values(64 * 8, 241), [64, 8]));
  const filter = weight(tf.tensor4d(values(3 * 3 * 8 * 4, 242), [3, 3, 8, 4]));
  const img = tf.tensor4d(values(2 * 6 * 6 * 8, 243), [2, 6, 6, 8]);
  // Input gradients only: dx = dy wᵀ (a transposed copy of w) and the conv's rotated filter.
  const step = () => {
    const [gx, gi] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.add(tf.sum(tf.matMul(a as tf.Tensor2D, w)), tf.sum(tf.conv2d(b as tf.Tensor4D, filter, 1, 'valid'))))([x, img]);
    const out = [gx.dataSync().slice(), gi.dataSync().slice()];
    tf.dispose([gx, gi]);
    return out;
  };
  // The dense weight met once (a training step's use) is multiplied without a
  // kept copy, as (w·dyᵀ)ᵀ; met again (an attack's steps), its transposed copy is made and kept.
  const first = step();
  const once = wasmDataIds();
  assert.deepEqual(step(), first, 'the kept copy gives the gradient the first call computed without it');
  const buffers = wasmDataIds();
  assert.equal(buffers, once + 1, 'the transposed copy is made at the second call');
  for (let i = 0; i < 3; i++) assert.deepEqual(step(), first, 'the kept copies give the same gradients');
  assert.equal(wasmDataIds(), buffers, 'one copy per weight, reused');
  // A new value: the old copy goes at the next call, which computes without a copy; the call after keeps a new one.
  const twice = tf.mul(w, 2) as tf.Tensor2D;
  w.assign(twice);
  twice.dispose();
  const doubled = step();
  assert.equal(wasmDataIds(), once);
  assert.deepEqual(step(), doubled);
  assert.equal(wasmDataIds(), buffers);
  doubled[0].forEach((v, i) => assert.ok(Math.abs(v - 2 * first[0][i]) <= 1e-6 * Math.abs(first[0][i]) + 1e-6));
  // Disposed weights: their copies are freed at the next call of the kernels.
  w.dispose();
  filter.dispose();
  tf.tidy(() => tf.matMul(x, tf.ones([8, 64]), false, true).dataSync());
  tf.tidy(() => tf.conv2d(img, tf.ones([3, 3, 8, 4]), 1, 'valid').dataSync());
  const after = wasmDataIds();
  assert.ok(after <= buffers - 4, `${buffers} -> ${after} buffers: the weights and their copies are gone`);
  tf.dispose([x, img]);
});

test('setAdvlabKernels switches between the shipped and advlab kernels, ending in advlab', async () => {
  await tf.setBackend('wasm');
  const sign = () => tf.tidy(() => tf.sign(tf.scalar(1e-8)).dataSync()[0]);
  try {
    setAdvlabKernels('shipped');
    assert.equal(kernelMode(), 'shipped');
    assert.equal(sign(), 0, 'the shipped wasm Sign rounds 1e-8 to 0');
    assert.throws(() =>
      tf.tidy(() => tf.grad((w: tf.Tensor) => tf.sum(tf.conv2d(tf.ones([1, 4, 4, 1]) as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid')))(
        tf.ones([2, 2, 1, 1]),
      )),
    );
  } finally {
    setAdvlabKernels('advlab');
  }
  assert.equal(kernelMode(), 'advlab');
  assert.equal(sign(), 1);
});
