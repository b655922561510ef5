/**
 * The playground's evaluation, in a Web Worker so the page stays responsive
 * and Cancel can stop it (the page terminates the worker): the quick suite on
 * the first `n` class-balanced test digits at each eps, with progress.
 */
import { balancedSubset, buildSuite, Classifier, evaluateRobustness, initBackend, type BackendName, type EpsilonResult } from '../../index.js';
import { fetchImageSet, loadModelFromFiles, loadModelFromUrl } from '../model-store.js';

/** Page → worker. */
export interface EvalRequest {
  backend: BackendName;
  /** The site's base URL: the .wasm files are in wasm/, the test digits in data/. */
  base: string;
  model: { url: string } | { files: File[] };
  n: number;
  eps: number[];
  seed: number;
}

/** Worker → page. */
export type EvalMessage =
  | { type: 'progress'; eps: number; done: number; total: number; broken: number; stage: string }
  | { type: 'done'; sweep: EpsilonResult[]; cleanAccuracy: number; count: number; backend: string; seconds: number }
  | { type: 'error'; message: string };

const post = (m: EvalMessage) => (self as unknown as { postMessage(m: EvalMessage): void }).postMessage(m);

self.onmessage = async (e: MessageEvent<EvalRequest>) => {
  const r = e.data;
  try {
    const t0 = performance.now();
    const info = await initBackend({ backend: r.backend, wasmPaths: new URL('wasm/', r.base).href });
    const model = 'url' in r.model ? await loadModelFromUrl(r.model.url) : await loadModelFromFiles(r.model.files);
    const classifier = Classifier.fromModel(model);
    try {
      const test = await fetchImageSet(new URL('data/mnist-test-images.npy', r.base).href, new URL('data/mnist-test-labels.npy', r.base).href, 1000);
      const subset = balancedSubset(test, 10, r.n);
      const suite = buildSuite({ suite: 'quick', norm: 'linf', numClasses: classifier.numClasses });
      const sweep: EpsilonResult[] = [];
      let cleanAccuracy = 0;
      for (const eps of r.eps) {
        const ev = await evaluateRobustness(classifier, subset, {
          suite,
          eps,
          seed: r.seed,
          onProgress: (p) => post({ type: 'progress', eps, done: p.done, total: p.total, broken: p.broken, stage: p.stage }),
        });
        cleanAccuracy = ev.cleanPredictions.reduce((a, y, i) => a + (y === subset.labels[i] ? 1 : 0), 0) / subset.count;
        sweep.push(ev.summary);
      }
      post({ type: 'done', sweep, cleanAccuracy, count: subset.count, backend: info.name, seconds: (performance.now() - t0) / 1000 });
    } finally {
      classifier.dispose();
      model.dispose();
    }
  } catch (err) {
    post({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  }
};
