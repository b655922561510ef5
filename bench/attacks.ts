import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/node/backend.js';
import { referenceSetup } from './reference-model.js';
import { Classifier } from '../src/models/classifier.js';
import { balancedSubset } from '../src/data/subset.js';
import { runAttack } from '../src/attacks/run.js';
import { WorkerPool } from '../src/node/worker-pool.js';
import { clearWorkerModels } from '../src/models/pool-model.js';
import { findAttack } from '../src/attacks/index.js';
import { crossEntropy } from '../src/attacks/losses.js';
import type { RunAttackOptions } from '../src/attacks/run.js';
import { time, machine, round } from './measure.js';

const N = 1000;
const BATCH = 128;

const CONFIGS: { key: string; attack: string; options: RunAttackOptions }[] = [
  { key: 'fgsm', attack: 'fgsm', options: { norm: 'linf', eps: 0.3 } },
  { key: 'pgd40', attack: 'pgd', options: { norm: 'linf', eps: 0.3, params: { steps: 40, stepSize: 0.01 } } },
  { key: 'apgdCe', attack: 'apgd', options: { norm: 'linf', eps: 0.3, params: { steps: 100, loss: 'ce' } } },
  { key: 'cwL2', attack: 'cw', options: { norm: 'l2', params: { steps: 100, binarySteps: 5 } } },
  { key: 'square', attack: 'square', options: { norm: 'linf', eps: 0.3, params: { queries: 1000 } } },
];

/**
 * The attacks of issue 5 on 1,000 balanced mnist test images against the
 * default-trained small-cnn, batch 128: robust accuracy, images per second,
 * gradient and query evaluations per image; for PGD-40, its wall time over 40
 * engine attack steps (forward + input gradient, measured in this run) per batch.
 */
export async function benchAttacks(log: (s: string) => void, previous?: unknown) {
  // ADVLAB_BENCH_ONLY=pgd40,pgd40TwoWorkers re-measures those entries and keeps the others.
  const only = process.env.ADVLAB_BENCH_ONLY?.split(',').filter(Boolean);
  const wanted = (key: string) => !only || only.includes(key);
  const backend = await initBackend({ backend: 'wasm' });
  const { model, classifier, images } = await referenceSetup(backend, N, log);
  const kept = only && previous && typeof previous === 'object' ? (previous as Record<string, unknown>) : {};
  const out: Record<string, unknown> = { ...kept, machine: machine(), backend: backend.name, threads: backend.threads, kernels: backend.kernels, model: 'small-cnn (advlab train defaults)', images: N, batch: BATCH };

  // One attack step at this batch size, as the engine section measures it.
  const x = tf.tensor4d(images.images.slice(0, BATCH * 784), [BATCH, 28, 28, 1]);
  const y = tf.tensor1d(images.labels.slice(0, BATCH), 'int32');
  const step = time(() => tf.tidy(() => classifier.valueAndGradient(x, (z) => crossEntropy(z, y)).grad.dataSync()), { warmup: 2, repeats: 7 });
  tf.dispose([x, y]);
  out.attackStepMs = step.medianMs;
  log(`attack step (batch ${BATCH}) ${step.medianMs} ms`);

  for (const cfg of CONFIGS) {
    if (!wanted(cfg.key)) continue;
    const r = await runAttack(findAttack(cfg.attack)!, classifier, images, { ...cfg.options, batchSize: BATCH, seed: 0 });
    const s = r.summary;
    const entry: Record<string, unknown> = {
      attack: cfg.attack,
      norm: r.norm,
      eps: r.eps,
      params: r.params,
      cleanAccuracy: s.cleanAccuracy,
      robustAccuracy: s.robustAccuracy,
      successRate: round(s.successRate, 4),
      imagesPerSecond: round(s.imagesPerSecond, 2),
      gradientsPerImage: round(s.gradientsPerImage, 2),
      queriesPerImage: round(s.queriesPerImage, 2),
      seconds: round(r.seconds, 1),
      medianL2: s.medianL2 === null ? null : round(s.medianL2, 4),
      medianLinf: s.medianLinf === null ? null : round(s.medianLinf, 4),
      rejected: r.rejected,
    };
    if (cfg.key === 'pgd40') {
      // The figure: wall time over 40 full-batch steps for every batch. Early stopping
      // makes it small on an undefended model, so also: wall time per batch-gradient actually spent.
      const batches = N / BATCH;
      entry.wallOver40StepsRatio = round((r.seconds * 1000) / (40 * step.medianMs * batches), 3);
      entry.wallPerGradientStepRatio = round((r.seconds * 1000) / ((r.gradients / BATCH) * step.medianMs), 3);
    }
    out[cfg.key] = entry;
    log(`${cfg.key}: robust ${s.robustAccuracy} (clean ${s.cleanAccuracy}), ${entry.imagesPerSecond} img/s, ${entry.gradientsPerImage} grads/img, ${entry.queriesPerImage} queries/img, ${entry.seconds}s`);
  }
  if (wanted('pgd40TwoWorkers')) out.pgd40TwoWorkers = await pgdTwoWorkers(classifier, images, step.medianMs, log);
  classifier.dispose();
  model.dispose();
  return out;
}

/**
 * PGD-40 as above, its batches spread over a 2-worker pool (what `advlab attack`
 * does by default on 2 cores), against the same run in this thread; timed
 * alternately, best of 2 each. The images must be identical.
 */
async function pgdTwoWorkers(classifier: Classifier, images: ReturnType<typeof balancedSubset>, stepMs: number, log: (s: string) => void) {
  const cfg = CONFIGS.find((c) => c.key === 'pgd40')!;
  const attack = findAttack(cfg.attack)!;
  const pool = await WorkerPool.start({ size: 2, backend: 'wasm' });
  try {
    const runs = { one: [] as number[], two: [] as number[] };
    let identical = true;
    let last: Awaited<ReturnType<typeof runAttack>> | undefined;
    for (let r = 0; r < 2; r++) {
      const a = await runAttack(attack, classifier, images, { ...cfg.options, batchSize: BATCH, seed: 0 });
      const b = await runAttack(attack, classifier, images, { ...cfg.options, batchSize: BATCH, seed: 0, pool });
      runs.one.push(a.seconds);
      runs.two.push(b.seconds);
      identical &&= a.adversarial.every((v, i) => Object.is(v, b.adversarial[i])) && a.success.every((v, i) => v === b.success[i]);
      last = b;
      log(`pgd40 one thread ${round(a.seconds, 1)} s, two workers ${round(b.seconds, 1)} s`);
    }
    const one = Math.min(...runs.one);
    const two = Math.min(...runs.two);
    return {
      workers: 2,
      robustAccuracy: last!.summary.robustAccuracy,
      imagesPerSecond: round(N / two, 2),
      seconds: round(two, 1),
      oneThreadSeconds: round(one, 1),
      speedupOverOneThread: round(one / two, 2),
      wallOver40StepsRatio: round((two * 1000) / (40 * stepMs * (N / BATCH)), 3),
      identicalResults: identical,
    };
  } finally {
    await pool.close();
    await clearWorkerModels();
  }
}
