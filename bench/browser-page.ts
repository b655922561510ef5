// The page side of `npm run bench -- browser`, bundled by esbuild: the
// small-cnn attack step (logits, cross-entropy, input gradient) and forward
// pass at batch 128 on a backend of the page, timed as bench/eval.ts times
// them in Node (values read with await data(), as a page must).
import { initBackend, buildModel, Classifier, Rng, tf, type BackendName } from '../src/index.js';
import { crossEntropy } from '../src/attacks/losses.js';

interface PageBenchConfig {
  backend: BackendName;
  wasmThreads?: boolean;
  batch: number;
  warmup: number;
  repeats: number;
}

async function median(fn: () => Promise<void>, warmup: number, repeats: number): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const runs: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    runs.push(performance.now() - t0);
  }
  runs.sort((a, b) => a - b);
  const mid = runs.length >> 1;
  return runs.length % 2 ? runs[mid] : (runs[mid - 1] + runs[mid]) / 2;
}

(globalThis as Record<string, unknown>).advlabBench = async (config: PageBenchConfig) => {
  const info = await initBackend({ backend: config.backend, wasmPaths: new URL('./', location.href).href, wasmThreads: config.wasmThreads });
  const model = buildModel('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, seed: 0 });
  const classifier = Classifier.fromModel(model);
  const rng = new Rng(0);
  const x = tf.tensor4d(Float32Array.from({ length: config.batch * 784 }, () => rng.next()), [config.batch, 28, 28, 1]);
  const y = tf.tensor1d(Int32Array.from({ length: config.batch }, () => rng.int(10)), 'int32');
  try {
    const stepMs = await median(async () => {
      const r = classifier.valueAndGradient(x, (z) => crossEntropy(z, y));
      await r.grad.data();
      tf.dispose([r.value, r.grad, r.logits]);
    }, config.warmup, config.repeats);
    const forwardMs = await median(async () => {
      const z = classifier.logits(x);
      await z.data();
      z.dispose();
    }, config.warmup, config.repeats);
    return { backend: info.name, tfjsBackend: info.tfjsName, threads: info.threads, kernels: info.kernels, crossOriginIsolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated ?? false, stepMs, forwardMs };
  } finally {
    tf.dispose([x, y]);
    classifier.dispose();
    model.dispose();
  }
};
(globalThis as Record<string, unknown>).advlabBenchReady = true;
