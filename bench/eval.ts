import { existsSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, type BackendInfo } from '../src/engine/backend.js';
import { loadModel } from '../src/models/io.js';
import { Classifier } from '../src/models/classifier.js';
import { loadBuiltinDataset } from '../src/data/builtin.js';
import { balancedSubset } from '../src/data/subset.js';
import type { AttackInput } from '../src/attacks/validate.js';
import { defenseRun } from '../src/defenses/defense-run.js';
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
 * Issue 6: the quick and standard suites on 1,000 mnist test images, Linf, on
 * a 2-worker pool (what `advlab eval` uses on 2 cores): wall time, images per
 * second, gradients and queries per image, robust accuracy, next to PGD-40 at
 * the same eps (the suite must be at least as strong):
 * - the default-trained small-cnn (undefended) at eps 0.3 and 0.5 (both ~0);
 * - an adversarially trained small-cnn (PGD-AT) at eps 0.3: the quick suite on
 *   1,000 images, the standard suite on the first 100 (its cost per robust
 *   image is what issue 6's speed target is about).
 */
export async function benchEval(log: (s: string) => void, previous?: unknown) {
  // ADVLAB_BENCH_ONLY=undefended or =adversarial re-measures that model and keeps the other's figures.
  const only = process.env.ADVLAB_BENCH_ONLY?.split(',').filter(Boolean);
  const wanted = (key: string) => !only || only.includes(key);
  const kept = only && previous && typeof previous === 'object' ? (previous as Record<string, unknown>) : {};
  const backend = await initBackend({ backend: 'wasm' });
  const out: Record<string, unknown> = { ...kept, machine: machine(), backend: backend.name, threads: backend.threads, kernels: backend.kernels, workers: 2, images: N, batch: BATCH };
  const pool = await WorkerPool.start({ size: 2, backend: 'wasm' });
  try {
    if (wanted('undefended')) {
      const { model, classifier, images } = await referenceSetup(backend, N, log);
      try {
        out.undefended = { model: 'small-cnn (advlab train defaults)', ...(await measureModel('undefended', classifier, images, [0.3, 0.5], ['quick', 'standard'], pool, log)) };
      } finally {
        classifier.dispose();
        model.dispose();
      }
    }
    if (wanted('adversarial')) {
      const { model, classifier, images, description } = await adversarialSetup(backend, N, log);
      try {
        const first100 = { ...images, images: images.images.subarray(0, 100 * 784), labels: images.labels.subarray(0, 100), count: 100 };
        out.adversarial = {
          model: description,
          ...(await measureModel('adversarial', classifier, images, [0.3], ['quick'], pool, log)),
          standardOn100: await measureModel('adversarial (100 images)', classifier, first100, [0.3], ['standard'], pool, log),
        };
      } finally {
        classifier.dispose();
        model.dispose();
      }
    }
  } finally {
    await pool.close();
    await clearWorkerModels();
  }
  return out;
}

/** PGD-40 and the given suites at each eps: robust accuracy, wall time, images per second, costs per image. */
async function measureModel(
  name: string,
  classifier: Classifier,
  images: AttackInput,
  epsList: number[],
  suites: string[],
  pool: WorkerPool,
  log: (s: string) => void,
): Promise<Record<string, unknown>> {
  const result: Record<string, unknown> = {};
  for (const eps of epsList) {
    const key = `eps${String(eps).replace('.', '')}`;
    const entry: Record<string, unknown> = { eps };
    const t0 = performance.now();
    const p = await runAttack(findAttack('pgd')!, classifier, images, { norm: 'linf', eps, batchSize: BATCH, pool, params: { steps: 40, stepSize: 0.01 } });
    entry.cleanAccuracy = p.summary.cleanAccuracy;
    entry.pgd40 = { robustAccuracy: p.summary.robustAccuracy, wallSeconds: round((performance.now() - t0) / 1000, 1), gradientsPerImage: round(p.summary.gradientsPerImage, 2) };
    for (const suiteName of suites) {
      const suite = buildSuite({ suite: suiteName, norm: 'linf', numClasses: 10 });
      const t1 = performance.now();
      const ev = await evaluateRobustness(classifier, images, { suite, eps, batchSize: BATCH, pool, keepImages: false });
      const wall = (performance.now() - t1) / 1000;
      const s = ev.summary;
      entry[suiteName] = {
        robustAccuracy: s.robustAccuracy,
        confidenceInterval: s.confidenceInterval.map((v) => round(v, 4)),
        wallSeconds: round(wall, 1),
        imagesPerSecond: round(images.count / wall, 2),
        gradientsPerImage: round(s.gradientsPerImage, 2),
        queriesPerImage: round(s.queriesPerImage, 2),
        stages: s.stages.map((st) => ({ name: st.name, broken: st.broken, attacked: st.attacked, gradients: st.gradients, queries: st.queries })),
      };
      log(`${name} eps ${eps} ${suiteName}: robust ${s.robustAccuracy} (pgd40 ${p.summary.robustAccuracy}), ${round(wall, 1)} s, ${round(images.count / wall, 1)} img/s, ${round(s.gradientsPerImage, 1)} grads/img, ${round(s.queriesPerImage, 1)} queries/img`);
    }
    result[key] = entry;
  }
  return result;
}

/** Where the adversarially trained reference model is cached (trained by `advlab train --defense pgd-at` settings if absent). */
const ADVERSARIAL_DIR = join(dirname(fileURLToPath(import.meta.url)), '.cache', 'small-cnn-mnist-pgd-at');

/** PGD-AT settings of the adversarially trained reference model (issue 7's PyTorch reference: 10 steps of 0.075, Adam 1e-3, batch 128). */
export const ADVERSARIAL_TRAINING = { model: 'small-cnn', dataset: 'mnist', defense: 'pgd-at', defenseEps: 0.3, defenseSteps: 10, epochs: 10, batchSize: 128, epsWarmup: 1 } as const;

async function adversarialSetup(backend: BackendInfo, n: number, log: (s: string) => void) {
  if (!existsSync(join(ADVERSARIAL_DIR, 'model', 'model.json'))) {
    log(`adversarially training the reference small-cnn (${JSON.stringify(ADVERSARIAL_TRAINING)}) into ${ADVERSARIAL_DIR}`);
    await defenseRun({ ...ADVERSARIAL_TRAINING, out: ADVERSARIAL_DIR, resume: true, evidence: false }, backend);
  }
  const model = await loadModel(ADVERSARIAL_DIR);
  // Describe the model by the run that made it (its result.json), not by the constants above.
  const run = JSON.parse(readFileSync(join(ADVERSARIAL_DIR, 'result.json'), 'utf8')) as { options: object; defense?: object; dataset: { trainSize: number }; cleanAccuracy: number; secondsPerEpoch: number; epochs: number };
  const description = { options: run.options, defense: run.defense ?? null, trainSize: run.dataset.trainSize, epochs: run.epochs, secondsPerEpoch: run.secondsPerEpoch, cleanAccuracyFullTestSplit: run.cleanAccuracy };
  return { model, classifier: Classifier.fromModel(model), images: balancedSubset(loadBuiltinDataset('mnist').test, 10, n), description };
}
