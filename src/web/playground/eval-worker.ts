/**
 * The playground's evaluation, in a Web Worker so the page stays responsive
 * and Cancel can stop it (the page terminates the worker). It runs the same
 * job as `advlab eval` (jobs/eval-job.ts) on the first `n` class-balanced test
 * digits shipped with the site, and answers with result.json in the CLI's
 * schema and the same self-contained report.html; only the files are missing
 * (`files` and `options.out` are null: the page offers both as downloads).
 */
import { balancedSubset, buildSuite, Classifier, initBackend, runMeta, tf, type BackendName, type EvalRunResult } from '../../index.js';
import { runEvalJob } from '../../jobs/eval-job.js';
import { renderEvalReport } from '../../report/eval-report.js';
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
  /** Images of the sanity checks' sample (the CLI's --sanity-sample). */
  sanitySample: number;
}

/** Worker → page. */
export type EvalMessage =
  | { type: 'progress'; phase: string; done: number; total: number }
  | { type: 'done'; result: EvalRunResult; report: string }
  | { type: 'error'; message: string };

/** The shipped test digits (the first 1,000 of the mnist test split, class-balanced subsets of them). */
const TEST_DIGITS = 1000;
const BATCH = 128;

const post = (m: EvalMessage) => (self as unknown as { postMessage(m: EvalMessage): void }).postMessage(m);

self.onmessage = async (e: MessageEvent<EvalRequest>) => {
  const r = e.data;
  try {
    const startedAt = new Date();
    // A worker of a cross-origin-isolated page may start wasm threads of its own.
    const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
    const info = await initBackend({ backend: r.backend, wasmPaths: new URL('wasm/', r.base).href, wasmThreads: isolated });
    const model = 'url' in r.model ? await loadModelFromUrl(r.model.url) : await loadModelFromFiles(r.model.files);
    const modelPath = 'url' in r.model ? r.model.url : r.model.files.map((f) => f.name).join(', ');
    const classifier = Classifier.fromModel(model);
    try {
      const test = await fetchImageSet(new URL('data/mnist-test-images.npy', r.base).href, new URL('data/mnist-test-labels.npy', r.base).href, TEST_DIGITS);
      const subset = balancedSubset(test, 10, r.n);
      const suite = buildSuite({ suite: 'quick', norm: 'linf', numClasses: classifier.numClasses });
      const classNames = Array.from({ length: 10 }, (_, i) => String(i));
      const t0 = performance.now();
      const job = await runEvalJob({
        classifier,
        images: subset,
        classNames,
        suite,
        eps: r.eps,
        seed: r.seed,
        batchSize: BATCH,
        minimal: [],
        corruptions: [],
        sanitySample: r.sanitySample,
        workers: 1,
        onProgress: (p) => {
          if (p.type === 'batch') post({ type: 'progress', phase: p.phase, done: p.done, total: p.total });
        },
      });
      const seconds = (performance.now() - t0) / 1000;
      const [h, w, c] = subset.imageShape;
      const result: EvalRunResult = {
        ...runMeta('eval', info, r.seed, startedAt),
        options: {
          model: modelPath,
          dataset: 'mnist',
          suite: suite.name,
          attacks: null,
          norm: 'linf',
          eps: [...r.eps],
          n: subset.count,
          batchSize: BATCH,
          seed: r.seed,
          corruptions: [],
          minimal: null,
          bounds: [...classifier.bounds],
          preprocess: null,
          workers: 1,
          allPoints: false,
          defense: null,
          out: null,
        },
        dataset: { name: 'mnist', testSize: TEST_DIGITS, numClasses: 10, imageShape: [h, w, c], classNames },
        model: modelPath,
        modelPath,
        ...job.fields,
        defense: null,
        workers: 1,
        seconds,
        resumed: false,
        files: null,
        packages: { '@tensorflow/tfjs-core': tf.version_core },
      };
      const report = await renderEvalReport(result, {
        clean: subset.images,
        adversarial: job.head.adversarial!,
        labels: subset.labels,
        cleanPredictions: job.head.cleanPredictions,
        adversarialPredictions: job.head.finalPredictions,
        brokenBy: job.head.brokenBy,
        imageShape: [h, w, c],
      });
      post({ type: 'done', result, report });
    } finally {
      classifier.dispose();
      model.dispose();
    }
  } catch (err) {
    post({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  }
};
