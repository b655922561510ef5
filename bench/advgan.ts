// Issue 24: generative models that make adversarial examples.
//
// - AdvGAN (white-box) against the shipped default-trained mnist small-cnn and
//   the shipped pgd-at small-cnn at Linf 0.3, trained on the 7,996-image split,
//   then attacking the same 1,000 class-balanced test images as PGD-40 (one
//   random start, 40 steps of 2.5 eps / 40): success, median L2, images per
//   second. Both attacks go through the same driver on one thread (the driver's
//   clean prediction and re-verification included), and the generator's bare
//   forward pass is timed too.
// - AdvGAN's black-box mode (dynamic distillation) against the default model:
//   success and the queries its training made.
// - Unrestricted examples from a latent space (Song et al. 2018): an acgan
//   (15 epochs, one worker) and the shipped AAE, 500 searches each against the
//   default model; success (the model reads the target) and validity (the
//   shipped metric classifier still reads the source).
//
// Every part trains into bench/.cache/advgan/<part> with resume on, and each
// part's figures are kept in bench/.cache/advgan/parts.json as it ends;
// BENCH_ADVGAN_PARTS (comma-separated, in order) runs some parts and keeps
// the others' previous figures.
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { initBackend } from '../src/node/backend.js';
import { advganRun, type AdvGanRunResult } from '../src/jobs/advgan-run.js';
import { attackRun } from '../src/jobs/attack-run.js';
import { loadAdvGanGenerator } from '../src/node/advgan-files.js';
import { loadDataset } from '../src/node/data/load.js';
import { balancedSubset } from '../src/data/subset.js';
import { tf } from '../src/engine/tf.js';
import { ganRun } from '../src/jobs/gan-run.js';
import { latentAttackRun } from '../src/jobs/latent-attack-run.js';
import { machine, round } from './measure.js';
import { loadParts, runParts } from './parts.js';

const CACHE = join('bench', '.cache', 'advgan');
const EPS = 0.3;
const IMAGES = 1000;
const EPOCHS = 15;
const MODELS = { default: 'assets/models/mnist-small-cnn', 'pgd-at': 'assets/models/mnist-small-cnn-pgd-at' } as const;
/** The standard suite on the shipped pgd-at model (README, issue 7's table: 200 images) and on the same recipe in the eval bench (500 images). */
const PGD_AT_STANDARD = { robustAccuracy: 0.745, images: 200, note: 'README issue 7 table; the eval bench measured 0.756 on 500 images for the same recipe' };

export async function benchAdvgan(log: (s: string) => void, previous?: unknown) {
  const backend = await initBackend({ backend: 'wasm' });
  const parts = loadParts(CACHE, previous);
  const PARTS: Record<string, () => Promise<void>> = {};

  const summary = (r: { successRate: number; cleanAccuracy: number; robustAccuracy: number; medianL2: number | null; imagesPerSecond: number; count: number }) => ({
    images: r.count,
    cleanAccuracy: round(r.cleanAccuracy, 4),
    successRate: round(r.successRate, 4),
    robustAccuracy: round(r.robustAccuracy, 4),
    medianL2: r.medianL2 === null ? null : round(r.medianL2, 3),
    imagesPerSecond: round(r.imagesPerSecond, 1),
  });

  for (const [name, model] of Object.entries(MODELS)) {
    PARTS[`pgd40-${name}`] = async () => {
      const out = join(CACHE, `pgd40-${name}`);
      rmSync(out, { recursive: true, force: true });
      const r = await attackRun({ model, dataset: 'mnist', attack: 'pgd', norm: 'linf', eps: EPS, params: { steps: 40 }, n: IMAGES, workers: 1, out }, backend);
      parts[`pgd40-${name}`] = { ...summary({ ...r, medianL2: r.perturbation.l2.median }), gradientsPerImage: round(r.gradientsPerImage, 1) };
    };
    PARTS[`advgan-${name}`] = async () => {
      const out = join(CACHE, `advgan-${name}`);
      const r = await advganRun({ model, dataset: 'mnist', eps: EPS, epochs: EPOCHS, n: IMAGES, out, resume: true }, backend);
      parts[`advgan-${name}`] = { ...advganFigures(r), bareForwardImagesPerSecond: await bareForward(out) };
    };
  }
  PARTS['advgan-black-box'] = async () => {
    const out = join(CACHE, 'advgan-black-box');
    const r = await advganRun({ model: MODELS.default, dataset: 'mnist', eps: EPS, epochs: EPOCHS, n: IMAGES, out, resume: true, blackBox: {} }, backend);
    parts['advgan-black-box'] = { ...advganFigures(r), blackBox: r.blackBox };
  };

  PARTS.acgan = async () => {
    const r = await ganRun({ dataset: 'mnist', arch: 'acgan', epochs: 15, workers: 1, out: join(CACHE, 'acgan'), resume: true, seed: 0 }, backend);
    parts.acgan = { epochs: r.history.length, seconds: round(r.history.reduce((t, h) => t + h.seconds, 0), 0), fid: r.metrics ? round(r.metrics.fid, 2) : null, inceptionScore: r.metrics ? round(r.metrics.inceptionScore, 2) : null };
  };
  for (const [name, generator] of [['latent-acgan', join(CACHE, 'acgan')], ['latent-aae', 'mnist-aae']] as const) {
    PARTS[name] = async () => {
      const out = join(CACHE, name);
      rmSync(out, { recursive: true, force: true });
      const r = await latentAttackRun({ generator, model: MODELS.default, n: 500, seed: 0, out }, backend);
      const s = r.summary;
      parts[name] = {
        searches: s.count,
        successRate: round(s.successRate, 4),
        validityRate: round(s.validityRate, 4),
        validSuccessRate: round(s.validSuccessRate, 4),
        validityOfSuccesses: s.validityOfSuccesses === null ? null : round(s.validityOfSuccesses, 4),
        initialValidityRate: round(s.initialValidityRate, 4),
        validator: r.validator.path,
        seconds: round(r.search.seconds, 0),
      };
    };
  }

  function advganFigures(r: AdvGanRunResult) {
    const trainingSeconds = r.history.reduce((s, h) => s + h.seconds, 0);
    return { epochs: r.history.length, trainImages: r.dataset.trainSize, trainingSeconds: round(trainingSeconds, 0), ...summary({ ...r.attack, count: r.attack.count }), medianLinf: r.attack.medianLinf === null ? null : round(r.attack.medianLinf, 3) };
  }

  /** The generator's forward pass alone on the 1,000 test images (batches of 256, best of 3), without the driver's predictions. */
  async function bareForward(run: string): Promise<number> {
    const { generator } = await loadAdvGanGenerator(run);
    const data = loadDataset('mnist');
    const subset = balancedSubset(data.test, data.numClasses, IMAGES, 'n', 'test');
    let best = Infinity;
    try {
      for (let rep = 0; rep < 3; rep++) {
        const t0 = performance.now();
        for (let i = 0; i < IMAGES; i += 256) {
          const k = Math.min(256, IMAGES - i);
          const size = 28 * 28;
          const y = tf.tidy(() => generator.apply(tf.tensor4d(subset.images.subarray(i * size, (i + k) * size), [k, 28, 28, 1]), { training: false }) as tf.Tensor);
          await y.data();
          y.dispose();
        }
        best = Math.min(best, performance.now() - t0);
      }
    } finally {
      generator.dispose();
    }
    return round(IMAGES / (best / 1000), 0);
  }

  await runParts(CACHE, 'BENCH_ADVGAN_PARTS', PARTS, parts, log);
  // Ratios of the same run's figures (these machines are noisy).
  const ratios: Record<string, unknown> = {};
  for (const name of Object.keys(MODELS)) {
    const a = parts[`advgan-${name}`] as { imagesPerSecond: number; bareForwardImagesPerSecond: number } | undefined;
    const p = parts[`pgd40-${name}`] as { imagesPerSecond: number } | undefined;
    if (a && p) ratios[name] = { speedupThroughDriver: round(a.imagesPerSecond / p.imagesPerSecond, 1), speedupBareForward: round(a.bareForwardImagesPerSecond / p.imagesPerSecond, 1) };
  }
  return { machine: machine(), backend: backend.name, threads: backend.threads, kernels: backend.kernels, eps: EPS, images: IMAGES, pgdAtStandardSuite: PGD_AT_STANDARD, parts, ratios };
}
