import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf } from '../src/engine/tf.js';
import { initBackend } from '../src/engine/backend.js';
import { trainRun } from '../src/models/train-run.js';
import { loadModel } from '../src/models/io.js';
import { Classifier } from '../src/models/classifier.js';
import { loadBuiltinDataset } from '../src/data/builtin.js';
import { balancedSubset } from '../src/data/subset.js';
import { runAttack } from '../src/attacks/run.js';
import { findAttack } from '../src/attacks/index.js';
import { crossEntropy } from '../src/attacks/losses.js';
import type { RunAttackOptions } from '../src/attacks/run.js';
import { time, machine, round } from './measure.js';

const N = 1000;
const BATCH = 128;
/** The default-trained reference model; trained once (advlab train's defaults) and cached here. */
const MODEL_DIR = join(dirname(fileURLToPath(import.meta.url)), '.cache', 'small-cnn-mnist');

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
export async function benchAttacks(log: (s: string) => void) {
  const backend = await initBackend({ backend: 'wasm' });
  if (!existsSync(join(MODEL_DIR, 'model', 'model.json'))) {
    log(`training the reference small-cnn (advlab train defaults) into ${MODEL_DIR}`);
    await trainRun({ model: 'small-cnn', dataset: 'mnist', out: MODEL_DIR, resume: true }, backend);
  }
  const model = await loadModel(MODEL_DIR);
  const classifier = Classifier.fromModel(model);
  const images = balancedSubset(loadBuiltinDataset('mnist').test, 10, N);
  const out: Record<string, unknown> = { machine: machine(), backend: backend.name, threads: backend.threads, kernels: backend.kernels, model: 'small-cnn (advlab train defaults)', images: N, batch: BATCH };

  // One attack step at this batch size, as the engine section measures it.
  const x = tf.tensor4d(images.images.slice(0, BATCH * 784), [BATCH, 28, 28, 1]);
  const y = tf.tensor1d(images.labels.slice(0, BATCH), 'int32');
  const step = time(() => tf.tidy(() => classifier.valueAndGradient(x, (z) => crossEntropy(z, y)).grad.dataSync()), { warmup: 2, repeats: 7 });
  tf.dispose([x, y]);
  out.attackStepMs = step.medianMs;
  log(`attack step (batch ${BATCH}) ${step.medianMs} ms`);

  for (const cfg of CONFIGS) {
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
  classifier.dispose();
  model.dispose();
  return out;
}
