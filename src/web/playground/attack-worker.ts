/**
 * The playground's attack, in a Web Worker: the page stays responsive while
 * a long attack (C&W, Square, HopSkipJump) runs, shows its progress, and
 * Cancel stops it by terminating the worker. Progress is what the attack has
 * spent so far (the classifier counts every gradient and query), posted a few
 * times a second from inside its loop.
 */
import { Classifier, findAttack, initBackend, runAttack, type AttackResult, type BackendName, type Norm } from '../../index.js';
import { loadModelFromFiles, loadModelFromUrl } from '../model-store.js';

/** Page → worker. */
export interface AttackRequest {
  backend: BackendName;
  /** The site's base URL (the .wasm files are in wasm/). */
  base: string;
  model: { url: string } | { files: File[] };
  image: Float32Array;
  label: number;
  attack: string;
  norm: Norm;
  /** Omitted for a minimal-perturbation attack. */
  eps?: number;
  params: Record<string, unknown>;
  seed: number;
}

/** Worker → page. */
export type AttackMessage =
  | { type: 'progress'; gradients: number; queries: number; seconds: number }
  | { type: 'done'; result: AttackResult; seconds: number; backend: string }
  | { type: 'error'; message: string };

const post = (m: AttackMessage) => (self as unknown as { postMessage(m: AttackMessage): void }).postMessage(m);
const PROGRESS_EVERY_MS = 250;

self.onmessage = async (e: MessageEvent<AttackRequest>) => {
  const r = e.data;
  try {
    const attack = findAttack(r.attack);
    if (!attack) throw new Error(`unknown attack "${r.attack}"`);
    const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
    const info = await initBackend({ backend: r.backend, wasmPaths: new URL('wasm/', r.base).href, wasmThreads: isolated });
    const model = 'url' in r.model ? await loadModelFromUrl(r.model.url) : await loadModelFromFiles(r.model.files);
    // The wasm backend's reads resolve at once, so no timer fires while the attack runs: progress comes from the classifier's own counts.
    let t0 = performance.now();
    let last = 0;
    const classifier = Classifier.fromModel(model, {
      onCount: ({ gradients, queries }) => {
        const now = performance.now();
        if (now - last < PROGRESS_EVERY_MS) return;
        last = now;
        post({ type: 'progress', gradients, queries, seconds: (now - t0) / 1000 });
      },
    });
    try {
      t0 = performance.now();
      const result = await runAttack(attack, classifier, { images: r.image, labels: Int32Array.of(r.label), count: 1, imageShape: classifier.inputShape }, { eps: r.eps, norm: r.norm, params: r.params, seed: r.seed });
      post({ type: 'done', result, seconds: (performance.now() - t0) / 1000, backend: info.name });
    } finally {
      classifier.dispose();
      model.dispose();
    }
  } catch (err) {
    post({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  }
};
