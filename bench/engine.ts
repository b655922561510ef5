import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import type { BackendName } from '../src/engine/backend.js';
import type { KernelMode } from '../src/engine/kernels/index.js';
import { buildModel } from '../src/models/zoo.js';
import { Rng } from '../src/util/rng.js';
import { time, machine, round } from './measure.js';
import { benchPool } from './pool.js';
import { benchKernels } from './kernels.js';
import { benchDataParallel } from './data-parallel.js';

const BATCH = 128;

interface Config {
  name: string;
  backend: BackendName;
  kernels?: KernelMode;
}

const CONFIGS: Config[] = [
  { name: 'wasm', backend: 'wasm', kernels: 'advlab' },
  { name: 'wasm-shipped', backend: 'wasm', kernels: 'shipped' },
  { name: 'cpu', backend: 'cpu' },
  { name: 'node', backend: 'node' },
];

/**
 * The reference CNN (small-cnn) at batch 128: forward, forward + input gradient
 * (one attack step) and one Adam train step, on every backend that starts here.
 */
export async function benchEngine(log: (s: string) => void, previous?: unknown) {
  const out: Record<string, unknown> = { machine: machine(), model: 'small-cnn', batch: BATCH };
  // The pure-JS cpu backend's train step takes ~9 minutes: it is timed only with ADVLAB_BENCH_CPU_TRAIN=1, else the last figure is kept.
  const previousCpu = (previous as { cpu?: { trainStepMs?: number | null; trainStepDate?: string } } | undefined)?.cpu;
  const timeCpuTrain = process.env.ADVLAB_BENCH_CPU_TRAIN === '1' || previousCpu?.trainStepMs == null;
  for (const cfg of CONFIGS) {
    let info;
    try {
      info = await initBackend({ backend: cfg.backend, kernels: cfg.kernels });
    } catch (e) {
      out[cfg.name] = { available: false, reason: (e as Error).message.split('\n')[0] };
      log(`engine.${cfg.name}: unavailable`);
      continue;
    }
    // The pure-JS cpu backend needs minutes per gradient step: time it once.
    const slow = cfg.backend === 'cpu';
    const opts = slow ? { warmup: 0, repeats: 1, budgetMs: 1 } : { warmup: 2, repeats: 7, budgetMs: 30000 };
    const rng = new Rng(0);
    const model = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
    const x = tf.tensor4d(Float32Array.from({ length: BATCH * 784 }, () => rng.next()), [BATCH, 28, 28, 1]);
    const y = tf.oneHot(tf.tensor1d(Int32Array.from({ length: BATCH }, () => rng.int(10)), 'int32'), 10);
    const optimizer = tf.train.adam(1e-3);
    const loss = (input: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, model.apply(input) as tf.Tensor) as tf.Scalar;
    const entry: Record<string, unknown> = { available: true, backend: info.name, threads: info.threads, kernels: info.kernels };
    const measure = (key: string, fn: () => void) => {
      try {
        const t = time(fn, opts);
        entry[key] = t.medianMs;
        entry[`${key}Repeats`] = t.repeats;
        log(`engine.${cfg.name}.${key} = ${t.medianMs} ms (${t.repeats} runs)`);
      } catch (e) {
        entry[key] = null;
        entry[`${key}Error`] = (e as Error).message.split('\n')[0];
        log(`engine.${cfg.name}.${key}: ${entry[`${key}Error`]}`);
      }
    };
    measure('forwardMs', () => tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync()));
    measure('attackStepMs', () => tf.tidy(() => tf.grad(loss)(x).dataSync()));
    if (cfg.backend === 'cpu' && !timeCpuTrain) {
      entry.trainStepMs = previousCpu!.trainStepMs;
      entry.trainStepDate = previousCpu!.trainStepDate ?? (previous as { machine?: { date?: string } }).machine?.date ?? null;
      log(`engine.cpu.trainStepMs = ${entry.trainStepMs} ms (kept from ${entry.trainStepDate}; ADVLAB_BENCH_CPU_TRAIN=1 times it again)`);
    } else {
      measure('trainStepMs', () => tf.tidy(() => optimizer.minimize(() => loss(x), true)!.dataSync()));
      if (cfg.backend === 'cpu') entry.trainStepDate = new Date().toISOString();
    }
    out[cfg.name] = entry;
    tf.dispose([x, y]);
    optimizer.dispose();
    model.dispose();
  }
  const wasm = out.wasm as Record<string, number> | undefined;
  const ratios: Record<string, number | null> = {};
  for (const other of ['wasm-shipped', 'cpu']) {
    const o = out[other] as Record<string, number> | undefined;
    for (const k of ['forwardMs', 'attackStepMs', 'trainStepMs']) {
      const key = `wasmSpeedupOver${other === 'cpu' ? 'Cpu' : 'Shipped'}${k[0].toUpperCase()}${k.slice(1, -2)}`;
      ratios[key] = wasm?.[k] && o?.[k] ? round(o[k] / wasm[k], 2) : null;
    }
  }
  out.ratios = ratios;
  // The kernels of a training step in GMAC/s, next to the GEMM ceiling (wasm, advlab's kernels, one thread).
  await initBackend({ backend: 'wasm', kernels: 'advlab' });
  out.kernels = benchKernels(log);
  // Both cores: one small-cnn train step with the batch's gradients in two shards, one per worker.
  out.dataParallel = await benchDataParallel(log, (out.wasm as { trainStepMs?: number } | undefined)?.trainStepMs ?? null);
  // Both cores: PGD-40 on a batch of 128 in one worker vs split over two.
  out.pool = await benchPool(log);
  return out;
}
