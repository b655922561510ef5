import { initBackend } from '../src/engine/backend.js';
import { referenceSetup } from './reference-model.js';
import { WorkerPool } from '../src/engine/pool.js';
import { clearWorkerModels } from '../src/models/pool-model.js';
import { runAttack } from '../src/attacks/run.js';
import { findAttack } from '../src/attacks/index.js';
import { buildSuite } from '../src/robustness/suites.js';
import { evaluateRobustness } from '../src/robustness/evaluate.js';
import { machine, round } from './measure.js';

const N = 1000;
const BATCH = 128;

/**
 * Issue 6: the quick and standard suites on 1,000 mnist test images against
 * the default-trained small-cnn (undefended), Linf, on a 2-worker pool (what
 * `advlab eval` uses on 2 cores): wall time, images per second, gradients and
 * queries per image, robust accuracy; next to PGD-40 at the same eps (the
 * suite must be at least as strong) and at eps 0.5 (both must reach ~0).
 */
export async function benchEval(log: (s: string) => void) {
  const backend = await initBackend({ backend: 'wasm' });
  const { model, classifier, images } = await referenceSetup(backend, N, log);
  const pool = await WorkerPool.start({ size: 2, backend: 'wasm' });
  const out: Record<string, unknown> = { machine: machine(), backend: backend.name, threads: backend.threads, kernels: backend.kernels, workers: 2, images: N, batch: BATCH };
  try {
    const undefended: Record<string, unknown> = { model: 'small-cnn (advlab train defaults)' };
    for (const eps of [0.3, 0.5]) {
      const key = `eps${String(eps).replace('.', '')}`;
      const entry: Record<string, unknown> = { eps };
      const p = await runAttack(findAttack('pgd')!, classifier, images, { norm: 'linf', eps, batchSize: BATCH, pool, params: { steps: 40, stepSize: 0.01 } });
      entry.pgd40 = { robustAccuracy: p.summary.robustAccuracy, seconds: round(p.seconds, 1), gradientsPerImage: round(p.summary.gradientsPerImage, 2) };
      entry.cleanAccuracy = p.summary.cleanAccuracy;
      for (const suiteName of ['quick', 'standard']) {
        const suite = buildSuite({ suite: suiteName, norm: 'linf', numClasses: 10 });
        const t0 = performance.now();
        const ev = await evaluateRobustness(classifier, images, { suite, eps, batchSize: BATCH, pool, keepImages: false });
        const wall = (performance.now() - t0) / 1000;
        const s = ev.summary;
        entry[suiteName] = {
          robustAccuracy: s.robustAccuracy,
          confidenceInterval: s.confidenceInterval.map((v) => round(v, 4)),
          wallSeconds: round(wall, 1),
          imagesPerSecond: round(N / wall, 2),
          gradientsPerImage: round(s.gradientsPerImage, 2),
          queriesPerImage: round(s.queriesPerImage, 2),
          stages: s.stages.map((st) => ({ name: st.name, broken: st.broken, attacked: st.attacked, gradients: st.gradients, queries: st.queries })),
        };
        log(`undefended eps ${eps} ${suiteName}: robust ${s.robustAccuracy} (pgd40 ${p.summary.robustAccuracy}), ${round(wall, 1)} s, ${round(N / wall, 1)} img/s, ${round(s.gradientsPerImage, 1)} grads/img, ${round(s.queriesPerImage, 1)} queries/img`);
      }
      undefended[key] = entry;
    }
    out.undefended = undefended;
  } finally {
    await pool.close();
    await clearWorkerModels();
    classifier.dispose();
    model.dispose();
  }
  return out;
}
